//! Bindings for the pretok part of the core: the pretokenizer, special-token splitting and
//! chunking, exposed mainly so the Python tests can check them against oracles.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

use crate::pretokenize::for_each_pretoken;
use crate::special::{Segment, SpecialTokens};

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

/// `text` cut into its ordinary pieces (str) and special tokens (their index, int).
#[pyfunction]
fn split_special<'py>(
    py: Python<'py>,
    text: &str,
    special_tokens: Vec<String>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let specials = SpecialTokens::new(&special_tokens)?;
    let mut out = Vec::new();
    for segment in specials.segments(text) {
        out.push(match segment {
            Segment::Text(s) => PyString::new(py, s).into_any(),
            Segment::Special(i) => PyInt::new(py, i).into_any(),
        });
    }
    Ok(out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pretokenize, m)?)?;
    m.add_function(wrap_pyfunction!(split_special, m)?)?;
    Ok(())
}
