//! The text of Python `str` objects for the encoder: as stored, where `str_layout` can read
//! the code units (transcoded later, without the GIL, on the call's threads), else as
//! CPython's own UTF-8 (`utf8_of`), the path that works on any interpreter.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

use super::str_layout;
use crate::encode::Text;
use crate::transcode::Units;

#[cfg(not(windows))]
extern "C" {
    // In every CPython 3 (in the limited API from 3.10 on, which is why pyo3's abi3-py39
    // build leaves it out). Windows' abi3 `python3.dll` exports it only from 3.10 on.
    fn PyUnicode_AsUTF8AndSize(
        unicode: *mut ffi::PyObject,
        size: *mut ffi::Py_ssize_t,
    ) -> *const std::os::raw::c_char;
}

/// The UTF-8 text of a Python `str` made by CPython: borrowed from the copy it keeps inside
/// the string (made once per string, and free for ASCII strings).
pub(crate) enum Utf8<'a> {
    #[cfg_attr(windows, allow(dead_code))]
    Borrowed(&'a str),
    #[cfg_attr(not(windows), allow(dead_code))]
    Copied(PyBackedStr),
}

impl std::ops::Deref for Utf8<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Utf8::Borrowed(s) => s,
            Utf8::Copied(s) => s,
        }
    }
}

/// CPython's UTF-8 of `text` (its error, a `UnicodeEncodeError`, for a lone surrogate).
pub(crate) fn utf8_of<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Utf8<'a>> {
    #[cfg(not(windows))]
    {
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `text` is a live str and the GIL is held; the buffer CPython returns is
        // valid UTF-8 that lives, unchanged, as long as the string (so as long as `'a`).
        let ptr = unsafe { PyUnicode_AsUTF8AndSize(text.as_ptr(), &mut size) };
        if ptr.is_null() {
            return Err(PyErr::fetch(text.py()));
        }
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size as usize) };
        // SAFETY: CPython's UTF-8 form of a str is valid UTF-8 (lone surrogates fail above).
        Ok(Utf8::Borrowed(unsafe {
            std::str::from_utf8_unchecked(bytes)
        }))
    }
    #[cfg(windows)]
    {
        Ok(Utf8::Copied(text.extract()?))
    }
}

/// A `str`'s text as it is stored, borrowed from the string.
pub(crate) enum Storage<'a> {
    /// UTF-8 already: an ASCII string, one whose UTF-8 copy CPython has made, or CPython's
    /// UTF-8 where the code units were not read.
    Utf8(Utf8<'a>),
    Units(Units<'a>),
}

impl Storage<'_> {
    /// The text for the encoder: its UTF-8, or its code units.
    pub(crate) fn text(&self) -> Text<'_> {
        match self {
            Storage::Utf8(s) => Text::Utf8(s),
            Storage::Units(units) => Text::Units(*units),
        }
    }
}

/// The error for `text`, which holds a lone surrogate: CPython's own `UnicodeEncodeError`.
pub(crate) fn surrogate_error(text: &Bound<'_, PyString>) -> PyErr {
    match utf8_of(text) {
        Err(e) => e,
        Ok(_) => pyo3::exceptions::PyValueError::new_err("the text holds a lone surrogate"),
    }
}

/// The storage of `text`, read under the GIL: its code units where `str_layout` reads them,
/// else CPython's UTF-8.
pub(crate) fn storage_of<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Storage<'a>> {
    match str_layout::read_storage(text) {
        Some(storage) => Ok(storage),
        None => Ok(Storage::Utf8(utf8_of(text)?)),
    }
}
