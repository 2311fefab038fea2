//! Bindings for the encode part of the core: `CoreTokenizer` and `encode_file`.
//!
//! Thin wrappers: arguments are converted here (their values are the core's to check), the
//! work runs in one core call with the GIL released, and `BpeError` becomes a Python
//! exception through `From`.

use std::path::PathBuf;

use numpy::PyArray1;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::args::{Ids, NumThreads};
use super::objects;
use super::signals::Signals;
use super::text::{storage_of, surrogate_error, Storage};
use crate::encode::file::CHUNK_BYTES;
use crate::encode::{encode_file, Dtype, EncodeFileOptions, Encoder, Text};
use crate::error::BpeError;
use crate::pretokenize::Pattern;
use crate::stream::WINDOW_BYTES;
use crate::vocab::Vocab;
use crate::TokenId;

/// The Rust tokenizer behind `bpelm.Tokenizer`.
#[pyclass(frozen, name = "CoreTokenizer", module = "bpelm._core")]
pub(crate) struct PyCoreTokenizer {
    inner: Encoder,
    /// A Python int per token id, made on first use: a list of ids then costs a reference
    /// count per element instead of a new int object.
    ints: PyOnceLock<Vec<Py<PyAny>>>,
}

// CPython aligns an object to 16 bytes, and the class's data lies inside it: a field that
// needs more (a SIMD searcher inline) would be misaligned, and its aligned loads crash.
const _: () = assert!(std::mem::align_of::<PyCoreTokenizer>() <= 16);

impl PyCoreTokenizer {
    fn wrap(inner: Encoder) -> Self {
        PyCoreTokenizer {
            inner,
            ints: PyOnceLock::new(),
        }
    }

    /// The tokens of one `str` (`storage` its storage, read once by the caller), encoded
    /// without the GIL (short ones holding it, see `SHORT_CALL_BYTES`), on this thread.
    fn encode_one(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyString>,
        storage: &Storage,
    ) -> PyResult<Vec<TokenId>> {
        run_encode(py, text, storage, |t| self.inner.encode_text(t))
    }

    /// `f` of the tokens of `text`: a short one's (up to `SCRATCH_BYTES`) encoded into this
    /// thread's scratch buffers rather than new ones, for `f` to copy out.
    fn with_ids<R>(
        &self,
        py: Python<'_>,
        text: &Bound<'_, PyString>,
        f: impl FnOnce(EncodedIds<'_>) -> PyResult<R>,
    ) -> PyResult<R> {
        let storage = storage_of(text)?;
        if storage.text().size() > SCRATCH_BYTES {
            return f(EncodedIds::Owned(self.encode_one(py, text, &storage)?));
        }
        SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // Only by re-entrance on this thread: buffers of its own.
                return f(EncodedIds::Owned(self.encode_one(py, text, &storage)?));
            };
            let (ids, utf8) = &mut *scratch;
            run_encode(py, text, &storage, |t| {
                self.inner.encode_text_reusing(t, ids, utf8)
            })?;
            f(EncodedIds::Scratch(ids))
        })
    }

    /// `Encoder::encode_texts_flat` of `texts`, without the GIL: each given as CPython
    /// stores it where that can be read (`text::storage_of`), else as CPython's UTF-8.
    fn encode_flat(
        &self,
        py: Python<'_>,
        texts: &[Bound<'_, PyString>],
        num_threads: Option<usize>,
    ) -> PyResult<(Vec<TokenId>, Vec<u64>)> {
        let storages = texts.iter().map(storage_of).collect::<PyResult<Vec<_>>>()?;
        let encode = || {
            let texts: Vec<Text<'_>> = storages.iter().map(Storage::text).collect();
            self.inner.encode_texts_flat(&texts, num_threads)
        };
        let size: usize = storages.iter().map(|s| s.text().size()).sum();
        let result = if size <= SHORT_CALL_BYTES {
            objects::attached(encode)?
        } else {
            objects::detach(py, encode)?
        };
        result.map_err(|e| match e {
            BpeError::NotUnicode { text, .. } => surrogate_error(&texts[text]),
            e => e.into(),
        })
    }

    /// `ids` (all below the vocabulary size) as a Python list.
    fn id_list<'py>(&self, py: Python<'py>, ids: &[TokenId]) -> PyResult<Bound<'py, PyList>> {
        // Made fallibly (`objects`): a list of millions of ids can meet a memory limit.
        let ints = self.ints.get_or_try_init(py, || {
            (0..self.inner.vocab().len())
                .map(|id| Ok(objects::int(py, id as TokenId)?.unbind()))
                .collect::<PyResult<Vec<_>>>()
        })?;
        if (COUNTED_REFS..=u32::MAX as usize).contains(&ids.len()) {
            if let Some(list) = objects::list_of_counted(py, ints, ids)? {
                return Ok(list);
            }
        }
        let item = |id: TokenId| match ints.get(id as usize) {
            Some(int) => Ok(int.bind(py).clone()),
            // Every id comes from the vocabulary; a stray one still gets its own int.
            None => objects::int(py, id),
        };
        objects::list(py, ids.len(), ids.iter().map(|&id| item(id)))
    }
}

/// `encode` of `storage` (the storage of `text`), run holding the GIL for a short text (see
/// `SHORT_CALL_BYTES`) and without it otherwise; a lone surrogate raises CPython's own error.
fn run_encode<T: Send>(
    py: Python<'_>,
    text: &Bound<'_, PyString>,
    storage: &Storage,
    encode: impl FnOnce(&Text<'_>) -> crate::error::Result<T> + Send,
) -> PyResult<T> {
    let source = storage.text();
    let run = || encode(&source);
    let result = if source.size() <= SHORT_CALL_BYTES {
        objects::attached(run)?
    } else {
        objects::detach(py, run)?
    };
    result.map_err(|e| match e {
        BpeError::NotUnicode { .. } => surrogate_error(text),
        e => e.into(),
    })
}

/// A text's ids as `PyCoreTokenizer::with_ids` gives them: in the thread's scratch buffer,
/// or in a buffer of their own that the caller may keep.
enum EncodedIds<'s> {
    Scratch(&'s [TokenId]),
    Owned(Vec<TokenId>),
}

impl EncodedIds<'_> {
    fn as_slice(&self) -> &[TokenId] {
        match self {
            EncodedIds::Scratch(ids) => ids,
            EncodedIds::Owned(ids) => ids,
        }
    }
}

/// `encode_batch_flat`'s `(ids, offsets)`.
type FlatArrays<'py> = (Bound<'py, PyArray1<TokenId>>, Bound<'py, PyArray1<i64>>);

/// `ids` with the memory far beyond them given back: the encoder over-reserves, and a
/// large allocation shrinks in place.
fn shrunk(mut ids: Vec<TokenId>) -> Vec<TokenId> {
    if ids.capacity() > ids.len() + ids.len() / 4 + 1024 {
        ids.shrink_to_fit();
    }
    ids
}

/// Texts of up to this many bytes (all of a call's together) are encoded holding the GIL:
/// about a microsecond of work (see `objects::attached`).
const SHORT_CALL_BYTES: usize = 1024;
/// From this many ids on (up to `u32::MAX`, what an int's count holds), a list's references
/// are counted first (`objects::list_of_counted`): lists 15-30% faster to make on 1-10 MB.
const COUNTED_REFS: usize = 1 << 16;
/// Up to this many ids, `encode_to_array` copies them into a fresh array.
const SMALL_ARRAY_IDS: usize = 4096;
/// Texts of up to this many bytes (code units) are encoded into `SCRATCH`: their ids are
/// copied out anyway (a list's ints, or a small array), and the buffers stay small.
const SCRATCH_BYTES: usize = 1 << 14;

thread_local! {
    /// A thread's buffers for the ids and the UTF-8 of a short text (see `with_ids`).
    static SCRATCH: std::cell::RefCell<(Vec<TokenId>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn bytes_of(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    obj.cast::<PyBytes>()
        .map(|b| b.as_bytes().to_vec())
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be bytes, not {}",
                objects::type_name(obj)
            ))
        })
}

#[pymethods]
impl PyCoreTokenizer {
    /// `vocab`: dict[int, bytes] with ids 0..n; `merges`: list of (bytes, bytes) in rank
    /// order; special tokens missing from the vocabulary are appended; `pattern`: the split
    /// pattern's name (`gpt2`, `cl100k`, `o200k`) or a regular expression.
    #[new]
    #[pyo3(signature = (vocab, merges, special_tokens, pattern = "gpt2"))]
    fn new(
        py: Python<'_>,
        vocab: &Bound<'_, PyDict>,
        merges: &Bound<'_, PyList>,
        special_tokens: Vec<String>,
        pattern: &str,
    ) -> PyResult<Self> {
        let pattern = Pattern::parse(pattern)?;
        let mut entries = Vec::with_capacity(vocab.len());
        for (k, v) in vocab.iter() {
            let id: TokenId = k.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "vocab keys must be token ids (int from 0 to 2**32-1), got {}",
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            entries.push((id, bytes_of(&v, &format!("vocab[{id}]"))?));
        }
        let mut pairs = Vec::with_capacity(merges.len());
        for (i, item) in merges.iter().enumerate() {
            let tuple = item
                .cast::<PyTuple>()
                .ok()
                .filter(|t| t.len() == 2)
                .ok_or_else(|| {
                    PyTypeError::new_err(format!("merges[{i}] must be a (bytes, bytes) tuple"))
                })?;
            let what = format!("merges[{i}]");
            pairs.push((
                bytes_of(&tuple.get_item(0)?, &what)?,
                bytes_of(&tuple.get_item(1)?, &what)?,
            ));
        }
        let inner = objects::detach(py, || {
            Vocab::from_id_map(entries, &pairs)
                .and_then(|v| Encoder::new(v, &special_tokens, pattern))
        })??;
        Ok(PyCoreTokenizer::wrap(inner))
    }

    /// Loads GPT-2 style `vocab.json` + `merges.txt`.
    #[staticmethod]
    #[pyo3(signature = (vocab_path, merges_path, special_tokens, pattern = "gpt2"))]
    fn from_files(
        py: Python<'_>,
        vocab_path: PathBuf,
        merges_path: PathBuf,
        special_tokens: Vec<String>,
        pattern: &str,
    ) -> PyResult<Self> {
        let pattern = Pattern::parse(pattern)?;
        let inner = objects::detach(py, || {
            Encoder::from_files(&vocab_path, &merges_path, &special_tokens, pattern)
        })??;
        Ok(PyCoreTokenizer::wrap(inner))
    }

    /// Writes GPT-2 style `vocab.json` + `merges.txt`, each atomically.
    fn save(&self, py: Python<'_>, vocab_path: PathBuf, merges_path: PathBuf) -> PyResult<()> {
        objects::detach(py, || self.inner.save(&vocab_path, &merges_path))??;
        Ok(())
    }

    /// This vocabulary matching only the special tokens at `indices` in text (none: the
    /// ordinary mode); shares the vocabulary and caches, so it is cheap to make.
    fn with_specials(&self, indices: Vec<usize>) -> PyResult<Self> {
        Ok(PyCoreTokenizer::wrap(self.inner.with_specials(&indices)?))
    }

    /// The tokens of `text` as a list of ints.
    pub(crate) fn encode<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.with_ids(py, text, |ids| self.id_list(py, ids.as_slice()))
    }

    /// The tokens of `text` as a numpy uint32 array, made through numpy's C API: a few ids
    /// are copied into a fresh array (an allocation costs less than the bookkeeping of a
    /// shared one), more are handed over where they lie, the array owning the vector.
    pub(crate) fn encode_to_array<'py>(
        &self,
        py: Python<'py>,
        text: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyArray1<TokenId>>> {
        self.with_ids(py, text, |ids| match ids {
            EncodedIds::Owned(ids) if ids.len() > SMALL_ARRAY_IDS => {
                Ok(PyArray1::from_vec(py, shrunk(ids)))
            }
            ids => Ok(PyArray1::from_slice(py, ids.as_slice())),
        })
    }

    /// Encodes each text on `num_threads` threads (None: one per CPU), keeping the order.
    #[pyo3(signature = (texts, num_threads=None))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        num_threads: Option<NumThreads>,
    ) -> PyResult<Bound<'py, PyList>> {
        // Encoded as `encode_batch_flat` does, then cut into one list per text.
        let (ids, offsets) = self.encode_flat(py, &texts, NumThreads::of(num_threads))?;
        let lists = offsets.windows(2).map(|w| {
            Ok(self
                .id_list(py, &ids[w[0] as usize..w[1] as usize])?
                .into_any())
        });
        objects::list(py, texts.len(), lists)
    }

    /// Encodes each text on `num_threads` threads (None: one per CPU) into one array:
    /// `(ids, offsets)`, numpy arrays of the uint32 ids of all texts concatenated and of the
    /// int64 offsets (one more than the texts), both owning the core's vectors.
    #[pyo3(signature = (texts, num_threads=None))]
    fn encode_batch_flat<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<Bound<'py, PyString>>,
        num_threads: Option<NumThreads>,
    ) -> PyResult<FlatArrays<'py>> {
        let (ids, offsets) = self.encode_flat(py, &texts, NumThreads::of(num_threads))?;
        // numpy indexes with signed ints; an offset counts ids, far below 2^63.
        let offsets: Vec<i64> = offsets.into_iter().map(|o| o as i64).collect();
        Ok((
            PyArray1::from_vec(py, shrunk(ids)),
            PyArray1::from_vec(py, offsets),
        ))
    }

    /// Encodes the longest prefix of `text` that no text appended later can change.
    /// Returns `(tokens, characters consumed)`; `encode_iterable` keeps the rest of the
    /// buffer for the next round.
    fn encode_prefix<'py>(
        &self,
        py: Python<'py>,
        text: PyBackedStr,
    ) -> PyResult<(Bound<'py, PyList>, usize)> {
        let (ids, chars) = objects::detach(py, || self.inner.encode_prefix(&text))??;
        Ok((self.id_list(py, &ids)?, chars))
    }

    /// The bytes of `ids`, concatenated. Unknown id: KeyError naming it.
    fn decode_bytes<'py>(&self, py: Python<'py>, ids: Ids) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = objects::detach(py, || self.inner.decode_bytes(&ids.0))??;
        objects::bytes(py, &bytes)
    }

    /// The vocabulary as dict[int, bytes].
    fn vocab<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = objects::dict(py)?;
        let tokens = self.inner.vocab().tokens().iter().enumerate();
        for (id, bytes) in tokens.filter(|(_, t)| !t.is_empty()) {
            d.set_item(objects::int(py, id as TokenId)?, objects::bytes(py, bytes)?)?;
        }
        Ok(d)
    }

    /// The merges in rank order as list[tuple[bytes, bytes]].
    fn merges<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let vocab = self.inner.vocab();
        objects::byte_pairs(py, vocab.num_merges(), vocab.merges())
    }

    #[getter]
    fn vocab_size(&self) -> usize {
        self.inner.vocab().len()
    }

    #[getter]
    fn special_tokens(&self) -> Vec<String> {
        self.inner.special_tokens().tokens().to_vec()
    }

    #[getter]
    fn special_ids(&self) -> Vec<TokenId> {
        self.inner.special_ids().to_vec()
    }

    /// The split pattern: its name (`gpt2`, `cl100k`, `o200k`), or the regular expression
    /// of a custom one.
    #[getter]
    fn pattern(&self) -> &str {
        self.inner.pattern().spec()
    }

    /// The split pattern's regular expression (tiktoken's spelling for a built-in one).
    #[getter]
    fn pattern_regex(&self) -> &str {
        self.inner.pattern().regex()
    }

    /// The id of the token with these bytes, or None.
    fn token_id(&self, token: &[u8]) -> Option<TokenId> {
        self.inner.vocab().id(token)
    }
}

/// `{token: rank}` from the text of a `.tiktoken` file; ValueError names the malformed line
/// of `source` (for the message).
#[pyfunction]
fn parse_ranks<'py>(py: Python<'py>, data: &[u8], source: &str) -> PyResult<Bound<'py, PyDict>> {
    let parsed = py
        .detach(|| crate::vocab::ranks::parse_ranks(data))
        .map_err(|(line, why)| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "{source}:{line}: not `BASE64 RANK` ({why})"
            ))
        })?;
    let ranks = objects::dict(py)?;
    for (token, rank) in parsed {
        ranks.set_item(objects::bytes(py, &token)?, objects::int(py, rank)?)?;
    }
    Ok(ranks)
}

/// The merges, in rank order, that make the tokens of tiktoken `ranks` (`{bytes: rank}`);
/// with `strict`, ValueError for a missing single byte or a token that is no merge of two
/// lower ranks, else such tokens are left out. Runs without the GIL.
#[pyfunction]
#[pyo3(signature = (ranks, strict = true))]
fn merges_from_ranks<'py>(
    py: Python<'py>,
    ranks: &Bound<'py, PyDict>,
    strict: bool,
) -> PyResult<Bound<'py, PyList>> {
    let mut entries = Vec::with_capacity(ranks.len());
    for (token, rank) in ranks.iter() {
        entries.push((bytes_of(&token, "a rank's token")?, rank.extract::<u32>()?));
    }
    let merges = objects::detach(py, || {
        crate::vocab::ranks::merges_from_ranks(&entries, strict)
    })??;
    let pairs = merges.iter().map(|(l, r)| (l.as_slice(), r.as_slice()));
    objects::byte_pairs(py, merges.len(), pairs)
}

/// Encodes a UTF-8 file into a `.npy` or `.bin` token array; returns `(tokens, bytes)`.
#[pyfunction(name = "encode_file")]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (tokenizer, input_path, output_path, dtype="uint16", num_threads=None, progress=false, chunk_bytes=CHUNK_BYTES, window_bytes=WINDOW_BYTES))]
fn py_encode_file(
    py: Python<'_>,
    tokenizer: &PyCoreTokenizer,
    input_path: PathBuf,
    output_path: PathBuf,
    dtype: &str,
    num_threads: Option<NumThreads>,
    progress: bool,
    chunk_bytes: usize,
    window_bytes: usize,
) -> PyResult<(u64, u64)> {
    let signals = Signals::new();
    let cancel = || signals.cancelled();
    let options = EncodeFileOptions {
        dtype: Dtype::parse(dtype)?,
        num_threads: NumThreads::of(num_threads),
        progress,
        chunk_bytes,
        window_bytes,
        cancel: Some(&cancel),
    };
    let stats = objects::detach(py, || {
        encode_file(&tokenizer.inner, &input_path, &output_path, &options)
    })?
    .map_err(|e| signals.error(e))?;
    Ok((stats.tokens, stats.bytes))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCoreTokenizer>()?;
    m.add_function(wrap_pyfunction!(py_encode_file, m)?)?;
    m.add_function(wrap_pyfunction!(merges_from_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(parse_ranks, m)?)?;
    Ok(())
}
