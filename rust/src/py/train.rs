//! Bindings for the train part of the core.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::args::NumThreads;
use super::objects;
use super::signals::Signals;
use crate::pretokenize::Pattern;
use crate::stream::WINDOW_BYTES;
use crate::train::{train_file, train_words, TrainOptions, Trained};
use crate::TokenId;

/// Trains byte-level BPE on a UTF-8 file, cut into pretokens by `pattern` (a name or a
/// regular expression); returns `(vocab, merges)` as `dict[int, bytes]` and
/// `list[tuple[bytes, bytes]]`. Runs without the GIL; Ctrl-C stops it within a chunk or a
/// merge (`KeyboardInterrupt`).
#[pyfunction]
#[pyo3(signature = (input_path, vocab_size, special_tokens, num_threads = None, progress = false, pattern = "gpt2", window_bytes = WINDOW_BYTES))]
#[allow(clippy::too_many_arguments)]
fn train_bpe<'py>(
    py: Python<'py>,
    input_path: PathBuf,
    vocab_size: usize,
    special_tokens: Vec<String>,
    num_threads: Option<NumThreads>,
    progress: bool,
    pattern: &str,
    window_bytes: usize,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>)> {
    let pattern = Pattern::parse(pattern)?;
    let signals = Signals::new();
    let cancel = || signals.cancelled();
    let options = TrainOptions {
        num_threads: NumThreads::of(num_threads),
        progress,
        window_bytes,
        cancel: Some(&cancel),
    };
    let trained = objects::detach(py, || {
        train_file(&input_path, vocab_size, &special_tokens, &pattern, &options)
    })?
    .map_err(|e| signals.error(e))?;
    let vocab = objects::dict(py)?;
    for (id, bytes) in trained.vocab.iter().enumerate() {
        // Ids are below the vocabulary size, which is at most 2^32 (checked).
        let id = objects::int(py, id as TokenId)?;
        vocab.set_item(id, objects::bytes(py, bytes)?)?;
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
    let trained = objects::detach(py, || {
        train_words(
            word_counts.iter().map(|(w, n)| (w.as_slice(), *n)),
            n_merges,
        )
    })??;
    merges_to_py(py, &trained)
}

fn merges_to_py<'py>(py: Python<'py>, trained: &Trained) -> PyResult<Bound<'py, PyList>> {
    let token = |id: TokenId| {
        trained
            .vocab
            .get(id as usize)
            .map_or(&[][..], Vec::as_slice)
    };
    let pairs = trained.merges.iter().map(|&(l, r)| (token(l), token(r)));
    objects::byte_pairs(py, trained.merges.len(), pairs)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train_bpe, m)?)?;
    m.add_function(wrap_pyfunction!(_learn_merges, m)?)?;
    Ok(())
}
