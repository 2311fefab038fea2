//! Arguments several bindings take, converted one way for all of them.

use pyo3::exceptions::{PyMemoryError, PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};

use crate::pool;
use crate::TokenId;

/// A sequence of token ids (any iterable of ints but a `str`), read into a vector reserved
/// fallibly: pyo3's `Vec<u32>` reserves the sequence's length infallibly, and so aborts the
/// process when a few million ids do not fit (`MemoryError` here).
pub(crate) struct Ids(pub Vec<TokenId>);

impl<'a, 'py> FromPyObject<'a, 'py> for Ids {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "ids must be a sequence of ints, not str",
            ));
        }
        let mut ids = Vec::new();
        if let Ok(n) = obj.len() {
            ids.try_reserve_exact(n).map_err(|_| {
                PyMemoryError::new_err(format!("out of memory: no room for {n} token ids"))
            })?;
        }
        for item in obj.try_iter()? {
            if ids.len() == ids.capacity() {
                ids.try_reserve(1)
                    .map_err(|_| PyMemoryError::new_err("out of memory reading token ids"))?;
            }
            ids.push(item?.extract::<TokenId>()?);
        }
        Ok(Ids(ids))
    }
}

/// A `num_threads` argument that is not None: an int (or any object with `__index__`), not a
/// bool. Its value is the core's to check (`pool::threads`: at least 1, capped at so many
/// per CPU); a negative one, which no `usize` holds, gets the core's error here.
pub(crate) struct NumThreads(pub usize);

impl NumThreads {
    /// The core's form of an optional `num_threads`.
    pub(crate) fn of(arg: Option<NumThreads>) -> Option<usize> {
        arg.map(|n| n.0)
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for NumThreads {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let type_error = || {
            let name = super::objects::type_name(&obj);
            PyTypeError::new_err(format!("num_threads must be an int or None, not {name}"))
        };
        if obj.is_instance_of::<PyBool>() {
            return Err(type_error());
        }
        match obj.extract::<i64>() {
            Ok(n) if n < 0 => Err(pool::invalid_threads(n).into()),
            Ok(n) => Ok(NumThreads(usize::try_from(n).unwrap_or(usize::MAX))),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
                if obj.lt(0)? {
                    Err(pool::invalid_threads(obj.str()?).into())
                } else {
                    // More than any machine has: the core caps it.
                    Ok(NumThreads(usize::MAX))
                }
            }
            Err(_) => Err(type_error()),
        }
    }
}
