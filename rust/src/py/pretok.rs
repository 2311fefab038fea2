//! Bindings for the pretok part of the core: the pretokenizer, special-token splitting and
//! chunking, exposed mainly so the Python tests can check them against oracles.

use pyo3::prelude::*;

use crate::pretokenize::for_each_pretoken;

/// Texts longer than this are split without the GIL.
const DETACH_BYTES: usize = 1 << 16;

/// The GPT-2 pretokens of `text`.
#[pyfunction]
fn pretokenize(py: Python<'_>, text: &str) -> Vec<String> {
    let split = || {
        let mut out = Vec::new();
        for_each_pretoken(text, |p| out.push(p.to_owned()));
        out
    };
    if text.len() > DETACH_BYTES {
        py.detach(split)
    } else {
        split()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pretokenize, m)?)?;
    Ok(())
}
