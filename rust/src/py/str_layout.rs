//! Reading a `str`'s code units straight from CPython's object layout.
//!
//! CPython stores a `str` as Latin-1, UCS-2 or UCS-4 code units (PEP 393) and makes its
//! UTF-8 form only on request, under the GIL: a serial step before any parallel work, and a
//! large part of a cold encode (the figures are in `benches/RESULTS.md`). Reading the code
//! units under the GIL is free, and they are transcoded after it is released, on the call's
//! threads. But the stable ABI has no accessor for them, so where they are is read from the
//! object's private layout, fixed within CPython 3.9-3.11 and within 3.12-3.14: an unusual
//! dependency on interpreter internals, kept to this module.
//!
//! It is used only where all of these hold, decided once per process (`checked_layout`):
//! `BPELM_NO_STR_LAYOUT` is not set (set, it forces the fallback, for the tests); the
//! interpreter is a 64-bit CPython 3.9 to 3.14 with the usual object header (`known_build`:
//! not PyPy, not a free-threaded or `Py_TRACE_REFS` build); and reading fresh strings of
//! every width through the layout agrees with `PyUnicode_ReadChar`. Even then only exact,
//! compact `str` objects are read. Anywhere else `read_storage` returns `None` and the
//! caller takes CPython's own UTF-8, which works on any interpreter (as does a string
//! holding a lone surrogate, to raise CPython's error for it).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use super::text::{Storage, Utf8};
use crate::transcode::Units;

/// The storage of `text` read through the checked layout, or `None` where this module does
/// not read it (see the module's notes).
pub(crate) fn read_storage<'a>(text: &'a Bound<'_, PyString>) -> Option<Storage<'a>> {
    let layout = checked_layout(text.py())?;
    if !text.is_exact_instance_of::<PyString>() {
        return None;
    }
    // SAFETY: `layout` passed the self-check on this interpreter, the object is an exact
    // str (so laid out as one) and lives as long as `'a`, and str objects do not change
    // once made.
    unsafe { read(&layout, text.as_ptr()) }
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

/// This interpreter's layout: `None` where `BPELM_NO_STR_LAYOUT` is set, or where this is not
/// a CPython this knows (see the module's notes), or where reading strings of every width
/// through the layout does not give exactly the characters and lengths CPython reports.
/// Decided once per process.
fn checked_layout(py: Python<'_>) -> Option<Layout> {
    static LAYOUT: PyOnceLock<Option<Layout>> = PyOnceLock::new();
    *LAYOUT.get_or_init(py, || {
        if forced_off() || !known_build(py).unwrap_or(false) {
            return None;
        }
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

/// Whether `BPELM_NO_STR_LAYOUT` asks for CPython's UTF-8 always (set, and neither empty
/// nor `0`).
fn forced_off() -> bool {
    std::env::var_os("BPELM_NO_STR_LAYOUT").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether this is a CPython build whose objects start with the usual header: not another
/// implementation, and `ob_type` right after `ob_refcnt`, where it is not in a free-threaded
/// build, a `Py_TRACE_REFS` build or PyPy (each puts other fields first, moving every field
/// after them). Checked on the object itself: importing `sysconfig` to ask would cost the
/// first encode of a process a few milliseconds.
fn known_build(py: Python<'_>) -> PyResult<bool> {
    let name: String = py
        .import("sys")?
        .getattr("implementation")?
        .getattr("name")?
        .extract()?;
    if name != "cpython" {
        return Ok(false);
    }
    let text = PyString::new(py, "x");
    // SAFETY: any object of any of these builds is more than two words long; the second
    // word is only compared, never followed.
    let second = unsafe { text.as_ptr().cast::<usize>().add(1).read() };
    Ok(second == std::ptr::addr_of!(ffi::PyUnicode_Type) as usize)
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

/// Whether this interpreter's `str` storage is read directly (the layout is known, passed its
/// self-check and `BPELM_NO_STR_LAYOUT` is not set); otherwise every text takes CPython's
/// UTF-8. For the tests.
#[pyfunction]
pub(crate) fn reads_str_storage(py: Python<'_>) -> bool {
    checked_layout(py).is_some()
}
