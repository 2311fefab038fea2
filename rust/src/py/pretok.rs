//! Bindings for the pretok part of the core: the pretokenizer, special-token splitting and
//! chunking, exposed mainly so the Python tests can check them against oracles.

use pyo3::prelude::*;
use pyo3::types::{PyInt, PyString};

use std::path::PathBuf;

use crate::corpus::{self, Corpus};
use crate::pretokenize::Pattern;
use crate::special::{Segment, SpecialTokens};

/// The pretokens of `text` by `pattern` (a name or a regular expression), split without
/// the GIL.
#[pyfunction]
#[pyo3(signature = (text, pattern = "gpt2"))]
fn pretokenize(py: Python<'_>, text: &str, pattern: &str) -> PyResult<Vec<String>> {
    let pattern = Pattern::parse(pattern)?;
    let pieces = py.detach(|| {
        let mut out = Vec::new();
        pattern
            .for_each_pretoken(text, |p| out.push(p.to_owned()))
            .map(|()| out)
    })?;
    Ok(pieces)
}

/// `(name, regex)` of the split pattern `spec` names or is (`name` None for a custom
/// one); ValueError for an unknown name or a regex the engine cannot run.
#[pyfunction]
fn split_pattern(spec: &str) -> PyResult<(Option<&'static str>, String)> {
    let pattern = Pattern::parse(spec)?;
    Ok((pattern.name(), pattern.regex().to_string()))
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

/// `text` cut into ranges of about `target_bytes` (byte offsets into its UTF-8 encoding) at
/// places where cutting changes neither pretokens nor special-token matches.
#[pyfunction]
#[pyo3(signature = (text, special_tokens, target_bytes, pattern = "gpt2"))]
fn chunk_ranges(
    py: Python<'_>,
    text: &str,
    special_tokens: Vec<String>,
    target_bytes: usize,
    pattern: &str,
) -> PyResult<Vec<(usize, usize)>> {
    let specials = SpecialTokens::new(&special_tokens)?;
    let pattern = Pattern::parse(pattern)?;
    let ranges = py.detach(|| corpus::chunk_ranges(text, &specials, &pattern, target_bytes));
    Ok(ranges.into_iter().map(|r| (r.start, r.end)).collect())
}

/// The greatest safe cut (a byte offset) in `0 < p <= pos`, or None.
#[pyfunction]
#[pyo3(signature = (text, special_tokens, pos, pattern = "gpt2"))]
fn safe_split_before(
    text: &str,
    special_tokens: Vec<String>,
    pos: usize,
    pattern: &str,
) -> PyResult<Option<usize>> {
    let specials = SpecialTokens::new(&special_tokens)?;
    let pattern = Pattern::parse(pattern)?;
    Ok(corpus::safe_split_before(text, &specials, &pattern, pos))
}

/// The text of a UTF-8 file, read the way training and encoding read files (memory-mapped
/// and checked); for tests of the error messages.
#[pyfunction]
fn read_corpus(py: Python<'_>, path: PathBuf) -> PyResult<String> {
    let text = py.detach(|| Corpus::open(&path).map(|c| c.text().to_owned()))?;
    Ok(text)
}

/// Which build of the pretoken scanners runs here: "avx2" or "baseline".
#[pyfunction]
fn vector_build() -> &'static str {
    crate::pretokenize::vector_build()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(vector_build, m)?)?;
    m.add_function(wrap_pyfunction!(pretokenize, m)?)?;
    m.add_function(wrap_pyfunction!(split_pattern, m)?)?;
    m.add_function(wrap_pyfunction!(split_special, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_ranges, m)?)?;
    m.add_function(wrap_pyfunction!(safe_split_before, m)?)?;
    m.add_function(wrap_pyfunction!(read_corpus, m)?)?;
    Ok(())
}
