//! `IdArray`: a Rust vector of ids handed to numpy without a copy.
//!
//! numpy wraps any object with an `__array_interface__` (a pointer, a shape and a type) as
//! an array whose `base` keeps that object, and so the vector, alive. That works under the
//! stable ABI, where the buffer protocol is not available before Python 3.11, and saves
//! the copy into a `bytearray` (which pyo3 also zero-fills first) on every encode.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::TokenId;

/// The element type with the byte order numpy spells it in (`<` little-endian, `>` big).
const fn typestr(size: usize) -> &'static str {
    match (cfg!(target_endian = "little"), size) {
        (true, 4) => "<u4",
        (true, _) => "<u8",
        (false, 4) => ">u4",
        (false, _) => ">u8",
    }
}

enum Elements {
    U32(Vec<TokenId>),
    U64(Vec<u64>),
}

/// A vector of unsigned integers for `np.asarray`, which shares its memory.
#[pyclass(frozen, name = "IdArray", module = "bpelm._core")]
pub struct IdArray {
    elements: Elements,
}

impl IdArray {
    pub fn from_ids(mut ids: Vec<TokenId>) -> Self {
        // The encoder over-reserves; give back what is far beyond the ids (a large
        // allocation shrinks in place).
        if ids.capacity() > ids.len() + ids.len() / 4 + 1024 {
            ids.shrink_to_fit();
        }
        IdArray {
            elements: Elements::U32(ids),
        }
    }

    pub fn from_u64(values: Vec<u64>) -> Self {
        IdArray {
            elements: Elements::U64(values),
        }
    }

    /// `(address of the first element, number of elements, element size)`.
    fn raw(&self) -> (usize, usize, usize) {
        match &self.elements {
            Elements::U32(v) => (v.as_ptr() as usize, v.len(), 4),
            Elements::U64(v) => (v.as_ptr() as usize, v.len(), 8),
        }
    }
}

#[pymethods]
impl IdArray {
    /// numpy's array interface (version 3). The memory is marked writable: nothing on the
    /// Rust side reads it after the encoder has filled it.
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (address, len, size) = self.raw();
        let d = super::objects::dict(py)?;
        d.set_item("version", 3)?;
        d.set_item("shape", (len,))?;
        d.set_item("typestr", typestr(size))?;
        d.set_item("data", (address, false))?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.raw().1
    }
}
