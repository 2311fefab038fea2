//! Python objects made fallibly: a failed allocation is the `MemoryError` CPython set,
//! never a panic.
//!
//! pyo3's infallible constructors (`PyList::new`, `PyBytes::new`, `PyDict::new`, ints via
//! `into_pyobject`) panic when CPython returns NULL, and that panic reaches Python as
//! `PanicException`, a `BaseException` that `except Exception` misses. Every object whose
//! count or size the input decides is made here instead.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyMemoryError, PyRuntimeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::TokenId;

/// The name of `obj`'s type, for error messages ("?" where it has none).
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A new list of `len` empty slots (`PyList_New`), each to be filled once.
fn empty_list(py: Python<'_>, len: usize) -> PyResult<Bound<'_, PyAny>> {
    let n = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| PyMemoryError::new_err("list too long for Python"))?;
    // SAFETY: the GIL is held; a NULL result is the error CPython set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(n)) }
}

/// A list of `items` (exactly `len` of them), made with `PyList_New`.
pub(crate) fn list<'py>(
    py: Python<'py>,
    len: usize,
    items: impl IntoIterator<Item = PyResult<Bound<'py, PyAny>>>,
) -> PyResult<Bound<'py, PyList>> {
    let list = empty_list(py, len)?;
    let mut filled = 0usize;
    for item in items.into_iter().take(len) {
        // SAFETY: `filled < len` is in range of the new list; SetItem steals the reference
        // (and succeeds for an in-range index of a list).
        let rc = unsafe {
            ffi::PyList_SetItem(list.as_ptr(), filled as ffi::Py_ssize_t, item?.into_ptr())
        };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
        filled += 1;
    }
    if filled != len {
        return Err(PyRuntimeError::new_err(
            "list built with fewer items than announced",
        ));
    }
    // SAFETY: every slot of the list was filled above.
    Ok(unsafe { list.cast_into_unchecked() })
}

/// The list of `ints[id]` for each of `ids` (at most `u32::MAX` of them), each int's new
/// references taken together: taken one id after another, a long list's ints (a
/// vocabulary's worth, megabytes of objects) are each touched where they lie, a cache miss
/// an id. `None`, with nothing taken, where an id has no int in `ints`.
pub(crate) fn list_of_counted<'py>(
    py: Python<'py>,
    ints: &[Py<PyAny>],
    ids: &[TokenId],
) -> PyResult<Option<Bound<'py, PyList>>> {
    let mut counts = vec![0u32; ints.len()];
    for &id in ids {
        match counts.get_mut(id as usize) {
            Some(count) => *count += 1,
            None => return Ok(None),
        }
    }
    let list = empty_list(py, ids.len())?;
    for (int, &count) in ints.iter().zip(&counts) {
        for _ in 0..count {
            // SAFETY: the GIL is held and `int` is alive (held by `ints`).
            unsafe { ffi::Py_INCREF(int.as_ptr()) };
        }
    }
    for (i, &id) in ids.iter().enumerate() {
        // SAFETY: `i < ids.len()` is in range of the new list, whose slots are empty; SetItem
        // steals one of the references taken above (one for each time `id` occurs).
        unsafe {
            ffi::PyList_SetItem(
                list.as_ptr(),
                i as ffi::Py_ssize_t,
                ints[id as usize].as_ptr(),
            )
        };
    }
    // SAFETY: every slot of the list was filled above.
    Ok(Some(unsafe { list.cast_into_unchecked() }))
}

/// The tuple `(first, second)`.
pub(crate) fn pair<'py>(
    py: Python<'py>,
    first: Bound<'py, PyAny>,
    second: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; a NULL result is the error CPython set.
    let t = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(2))? };
    for (i, item) in [first, second].into_iter().enumerate() {
        // SAFETY: index 0 or 1 of a new 2-tuple; SetItem steals the reference.
        if unsafe { ffi::PyTuple_SetItem(t.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) } != 0 {
            return Err(PyErr::fetch(py));
        }
    }
    Ok(t)
}

/// The list of `(bytes, bytes)` tuples of `len` byte-string pairs (merges).
pub(crate) fn byte_pairs<'py, 'a>(
    py: Python<'py>,
    len: usize,
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> PyResult<Bound<'py, PyList>> {
    let items = pairs
        .into_iter()
        .map(|(l, r)| pair(py, bytes(py, l)?.into_any(), bytes(py, r)?.into_any()));
    list(py, len, items)
}

/// A Python int of `id`.
pub(crate) fn int(py: Python<'_>, id: TokenId) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held; a NULL result is the error CPython set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromUnsignedLong(id.into())) }
}

/// `bytes` with a copy of `data` (`PyBytes::new_with` reports a failed allocation).
pub(crate) fn bytes<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, data.len(), |buf| {
        buf.copy_from_slice(data);
        Ok(())
    })
}

/// An empty dict.
pub(crate) fn dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    // SAFETY: the GIL is held; a NULL result is the error CPython set.
    let d = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDict_New())? };
    // SAFETY: PyDict_New returns a dict.
    Ok(unsafe { d.cast_into_unchecked() })
}

/// Runs `f` (a core call) without the GIL, turning a panic into a `RuntimeError` rather
/// than letting it reach Python as `PanicException` (a `BaseException`).
pub(crate) fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(internal_error)
}

/// Like `detach`, but keeping the GIL: for calls of a microsecond or so, which releasing
/// and taking back the GIL would make a fifth slower, and which hold up other threads no
/// longer than an ordinary Python call does.
pub(crate) fn attached<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(internal_error)
}

fn internal_error(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    PyRuntimeError::new_err(format!("internal error in bpelm's core: {message}"))
}
