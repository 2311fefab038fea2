//! Bindings for the train part of the core.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::args::NumThreads;
use crate::train::{train_file, train_words, Trained};

/// Trains byte-level BPE on a UTF-8 file; returns `(vocab, merges)` as
/// `dict[int, bytes]` and `list[tuple[bytes, bytes]]`. Runs without the GIL.
#[pyfunction]
#[pyo3(signature = (input_path, vocab_size, special_tokens, num_threads = None, progress = false))]
fn train_bpe<'py>(
    py: Python<'py>,
    input_path: PathBuf,
    vocab_size: usize,
    special_tokens: Vec<String>,
    num_threads: Option<NumThreads>,
    progress: bool,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let trained = py.detach(|| {
        train_file(
            &input_path,
            vocab_size,
            &special_tokens,
            NumThreads::of(num_threads),
            progress,
        )
    })?;
    let vocab = PyDict::new(py);
    for (id, bytes) in trained.vocab.iter().enumerate() {
        vocab.set_item(id, PyBytes::new(py, bytes))?;
    }
    Ok((vocab, merges_to_py(py, &trained)?))
}

/// The merge loop alone, on words given as `{bytes: count}`; for testing against the
/// reference trainer without pretokenization in between.
#[pyfunction]
fn _learn_merges<'py>(
    py: Python<'py>,
    word_counts: Vec<(Vec<u8>, u64)>,
    n_merges: usize,
) -> PyResult<Bound<'py, PyList>> {
    let trained = py.detach(|| {
        train_words(
            word_counts.iter().map(|(w, n)| (w.as_slice(), *n)),
            n_merges,
        )
    })?;
    merges_to_py(py, &trained)
}

fn merges_to_py<'py>(py: Python<'py>, trained: &Trained) -> PyResult<Bound<'py, PyList>> {
    let merges = PyList::empty(py);
    for &(left, right) in &trained.merges {
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, &trained.vocab[left as usize]),
                PyBytes::new(py, &trained.vocab[right as usize]),
            ],
        )?;
        merges.append(pair)?;
    }
    Ok(merges)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_bpe, m)?)?;
    m.add_function(wrap_pyfunction!(_learn_merges, m)?)?;
    Ok(())
}
