//! Python bindings: the `bpelm._core` module. Only this folder touches PyO3.

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyKeyError, PyKeyboardInterrupt, PyMemoryError,
    PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

use crate::error::BpeError;

mod args;
mod encode;
mod front;
mod objects;
mod pretok;
mod signals;
mod str_layout;
mod text;
mod train;

impl From<BpeError> for PyErr {
    fn from(err: BpeError) -> PyErr {
        let message = err.to_string();
        match err {
            BpeError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
                // ENOMEM (a memory map refused under RLIMIT_AS, say) is memory, not a file.
                std::io::ErrorKind::OutOfMemory => PyMemoryError::new_err(message),
                _ => PyOSError::new_err(message),
            },
            BpeError::OutOfMemory { .. } => PyMemoryError::new_err(message),
            // The bindings raise the signal's own exception where they saw it; this is
            // for a cancellation with no Python error behind it.
            BpeError::Interrupted => PyKeyboardInterrupt::new_err(message),
            BpeError::UnknownId { .. } => PyKeyError::new_err(message),
            BpeError::NotUtf8 { .. }
            | BpeError::NotUnicode { .. }
            | BpeError::BadFile { .. }
            | BpeError::InvalidArgument(_) => PyValueError::new_err(message),
        }
    }
}

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    crate::pretokenize::prepare_tables();
    pretok::register(m)?;
    train::register(m)?;
    encode::register(m)?;
    m.add_class::<front::EncodeFront>()?;
    m.add_function(wrap_pyfunction!(str_layout::reads_str_storage, m)?)?;
    Ok(())
}
