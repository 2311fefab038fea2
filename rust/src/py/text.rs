//! The text of Python `str` objects, as UTF-8 for the encoder.
//!
//! CPython stores a `str` as Latin-1, UCS-2 or UCS-4 code units (PEP 393). Its UTF-8 form
//! is made on request (`PyUnicode_AsUTF8AndSize`) under the GIL, at about 1.4 GB/s, and is
//! then kept with the string: a serial step before any parallel work, and about a sixth of a
//! cold one-thread encode of web text (measured). So the bindings read the code units
//! themselves (`Storage`) under the GIL, which is free, and transcode them
//! (`crate::transcode`) after releasing it, on the call's threads.
//!
//! The stable ABI has no accessor for the code units, so where they are is read from the
//! object's layout, fixed within CPython 3.9-3.11 and within 3.12-3.14. That reading is used
//! only on those versions, on 64-bit builds, after a self-check against `PyUnicode_ReadChar`
//! on strings of every width, and only for exact, compact `str` objects; anything else
//! takes CPython's own UTF-8, as does a string holding a lone surrogate (to raise CPython's
//! error for it).

use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyString;

use crate::encode::memory;
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

/// The UTF-8 of each text in `storages`: borrowed, or transcoded side by side into `buf`
/// (on `num_threads` threads when there are several texts to transcode); or the index of a
/// text that holds a lone surrogate. Call without the GIL.
pub(crate) fn utf8_all<'s>(
    storages: &'s [Storage<'_>],
    buf: &'s mut Vec<u8>,
    num_threads: Option<usize>,
) -> Result<Vec<&'s str>, usize> {
    use rayon::prelude::*;
    let lens: Vec<usize> = storages
        .iter()
        .map(|s| match s {
            Storage::Utf8(_) => 0,
            Storage::Units(units) => units.utf8_len(),
        })
        .collect();
    // One buffer for all: a dozen page faults in huge pages rather than one per 4 KB.
    *buf = memory::zeroed_bytes(lens.iter().sum());
    let mut rest = buf.as_mut_slice();
    let mut work = Vec::new();
    for (i, (storage, &len)) in storages.iter().zip(&lens).enumerate() {
        if let Storage::Units(units) = storage {
            let (region, tail) = rest.split_at_mut(len);
            work.push((i, units, region));
            rest = tail;
        }
    }
    let write = |(i, units, region): &mut (usize, &Units<'_>, &mut [u8])| {
        units.write_utf8(region).err().map(|_| *i)
    };
    let serial = |work: &mut Vec<(usize, &Units<'_>, &mut [u8])>| work.iter_mut().find_map(write);
    let failed = if num_threads == Some(1) || work.len() <= 1 {
        serial(&mut work)
    } else {
        let parallel = crate::encode::pool::in_pool(num_threads, || {
            work.par_iter_mut().filter_map(write).min()
        });
        // A pool that cannot start fails the encode right after; transcode here meanwhile.
        match parallel {
            Ok(failed) => failed,
            Err(_) => serial(&mut work),
        }
    };
    drop(work);
    if let Some(i) = failed {
        return Err(i);
    }
    let mut refs = Vec::with_capacity(storages.len());
    let mut rest: &[u8] = buf;
    for (storage, &len) in storages.iter().zip(&lens) {
        refs.push(match storage {
            Storage::Utf8(s) => &**s,
            Storage::Units(_) => {
                let (region, tail) = rest.split_at(len);
                rest = tail;
                // SAFETY: `write_utf8` filled `region` with the UTF-8 of scalar values.
                unsafe { std::str::from_utf8_unchecked(region) }
            }
        });
    }
    Ok(refs)
}

/// The error for `text`, which holds a lone surrogate: CPython's own `UnicodeEncodeError`.
pub(crate) fn surrogate_error(text: &Bound<'_, PyString>) -> PyErr {
    match utf8_of(text) {
        Err(e) => e,
        Ok(_) => pyo3::exceptions::PyValueError::new_err("the text holds a lone surrogate"),
    }
}

/// The storage of `text`, read under the GIL (the code units where the layout is known).
pub(crate) fn storage_of<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Storage<'a>> {
    if let Some(layout) = checked_layout(text.py()) {
        if text.is_exact_instance_of::<PyString>() {
            // SAFETY: `layout` passed the self-check on this interpreter, the object is an
            // exact str (so laid out as one) and lives as long as `'a`, and str objects do
            // not change once made.
            if let Some(storage) = unsafe { read(&layout, text.as_ptr()) } {
                return Ok(storage);
            }
        }
    }
    Ok(Storage::Utf8(utf8_of(text)?))
}

/// Where a compact `str` keeps its parts, in bytes from the start of the object.
#[derive(Clone, Copy, Debug)]
struct Layout {
    length: usize,
    state: usize,
    /// Code units of an ASCII string.
    ascii_data: usize,
    /// Length and address of the UTF-8 copy of another string (0 while not made).
    utf8_length: usize,
    utf8: usize,
    /// Code units of a string that is not ASCII.
    data: usize,
    /// 3.9 to 3.11 also have a "ready" bit, which must be set.
    ready_bit: bool,
}

/// The layout CPython 3.`minor` is known to use on 64-bit builds.
fn layout_for(minor: u8) -> Option<Layout> {
    if cfg!(not(target_pointer_width = "64")) {
        return None;
    }
    let (ascii_data, ready_bit) = match minor {
        // PyASCIIObject: head (16), length, hash, state (4 + 4 padding), then wstr until 3.11.
        9..=11 => (48, true),
        12..=14 => (40, false),
        _ => return None,
    };
    // PyCompactUnicodeObject adds utf8_length and utf8, then wstr_length until 3.11.
    Some(Layout {
        length: 16,
        state: 32,
        ascii_data,
        utf8_length: ascii_data,
        utf8: ascii_data + 8,
        data: ascii_data + if ready_bit { 24 } else { 16 },
        ready_bit,
    })
}

/// The text of the str at `obj` read through `layout`, or `None` where it is not a compact
/// string in a form this knows.
///
/// # Safety
/// `obj` must be a live exact `str` laid out as `layout` says, and outlive `'a`.
unsafe fn read<'a>(layout: &Layout, obj: *mut ffi::PyObject) -> Option<Storage<'a>> {
    let base = obj.cast::<u8>();
    let len = base.add(layout.length).cast::<isize>().read();
    let state = base.add(layout.state).cast::<u32>().read();
    let kind = (state >> 2) & 7;
    let compact = (state >> 5) & 1 == 1;
    let ascii = (state >> 6) & 1 == 1;
    let ready = !layout.ready_bit || (state >> 7) & 1 == 1;
    if !compact || !ready || len < 0 {
        return None;
    }
    let len = len as usize;
    if ascii {
        let units = std::slice::from_raw_parts(base.add(layout.ascii_data), len);
        return Some(Storage::Utf8(Utf8::Borrowed(
            std::str::from_utf8_unchecked(units),
        )));
    }
    let utf8 = base.add(layout.utf8).cast::<*const u8>().read();
    if !utf8.is_null() {
        let n = base.add(layout.utf8_length).cast::<isize>().read();
        let bytes = std::slice::from_raw_parts(utf8, n.max(0) as usize);
        return Some(Storage::Utf8(Utf8::Borrowed(
            std::str::from_utf8_unchecked(bytes),
        )));
    }
    let data = base.add(layout.data);
    Some(Storage::Units(match kind {
        1 => Units::Latin1(std::slice::from_raw_parts(data, len)),
        2 => Units::Ucs2(std::slice::from_raw_parts(data.cast::<u16>(), len)),
        4 => Units::Ucs4(std::slice::from_raw_parts(data.cast::<u32>(), len)),
        _ => return None,
    }))
}

/// This interpreter's layout, if it is a known one and reading through it gives, for
/// strings of every width, exactly the characters and lengths CPython reports.
fn checked_layout(py: Python<'_>) -> Option<Layout> {
    static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();
    *LAYOUT.get_or_init(|| {
        let version = py.version_info();
        let layout = layout_for(version.minor).filter(|_| version.major == 3)?;
        let samples = [
            "",
            "plain ascii",
            "Latin-1: caf\u{e9} \u{ff}",
            "UCS-2: \u{20ac} \u{4e2d}\u{6587} \u{ffff}",
            "UCS-4: \u{1f600} \u{10ffff} and more",
        ];
        samples
            .iter()
            .all(|s| agrees(py, &layout, s))
            .then_some(layout)
    })
}

/// Whether reading a fresh str of `sample` through `layout` gives `sample` back, unit by
/// unit as `PyUnicode_ReadChar` sees them.
fn agrees(py: Python<'_>, layout: &Layout, sample: &str) -> bool {
    let text = PyString::new(py, sample);
    let obj = text.as_ptr();
    // SAFETY: `text` is a live exact str; the read is checked against CPython's own
    // accessors before anything relies on it.
    let Some(storage) = (unsafe { read(layout, obj) }) else {
        return false;
    };
    let chars: Vec<u32> = sample.chars().map(u32::from).collect();
    // SAFETY: `obj` is a live str and the GIL is held.
    let (n, read_char) = unsafe {
        (ffi::PyUnicode_GetLength(obj), |i: usize| {
            ffi::PyUnicode_ReadChar(obj, i as ffi::Py_ssize_t)
        })
    };
    if n != chars.len() as ffi::Py_ssize_t
        || !chars.iter().enumerate().all(|(i, &c)| read_char(i) == c)
    {
        return false;
    }
    let widest = chars.iter().copied().max().unwrap_or(0);
    match storage {
        // Non-ASCII samples must come back as code units, or their offsets go unchecked.
        Storage::Utf8(s) => sample.is_ascii() && &*s == sample,
        Storage::Units(Units::Latin1(u)) => {
            widest < 0x100 && u.iter().map(|&x| u32::from(x)).eq(chars)
        }
        Storage::Units(Units::Ucs2(u)) => {
            (0x100..0x1_0000).contains(&widest) && u.iter().map(|&x| u32::from(x)).eq(chars)
        }
        Storage::Units(Units::Ucs4(u)) => widest >= 0x1_0000 && u.iter().copied().eq(chars),
    }
}

/// Whether this interpreter's `str` storage is read directly (the layout is known and passed
/// its self-check); otherwise every text takes CPython's UTF-8. For the tests.
#[pyfunction]
pub(crate) fn reads_str_storage(py: Python<'_>) -> bool {
    checked_layout(py).is_some()
}
