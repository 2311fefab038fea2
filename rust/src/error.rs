//! The one error type of the core. `py` maps each variant onto a Python exception.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BpeError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Input text is not UTF-8; `offset` is the byte offset of the first bad byte.
    #[error("{path}: not valid UTF-8 at byte offset {offset}")]
    NotUtf8 { path: String, offset: u64 },
    /// A vocabulary or merges file is malformed; `line` and `column` count from 1 (a
    /// column where one is known: JSON on one line, as GPT-2's `encoder.json` is).
    #[error("{path}:{line}{}: {message}", column.map(|c| format!(":{c}")).unwrap_or_default())]
    BadFile {
        path: String,
        line: usize,
        column: Option<usize>,
        message: String,
    },
    /// A token id outside the vocabulary, or one it leaves unused.
    #[error("token id {id} is {} for a vocabulary of {vocab_size} tokens", if *id < *vocab_size as u64 { "unused" } else { "out of range" })]
    UnknownId { id: u64, vocab_size: usize },
    /// Text `text` of a call holds a code unit with no UTF-8 (a lone surrogate) at
    /// character `unit`.
    #[error("text {text} holds a lone surrogate at character {unit}")]
    NotUnicode { text: usize, unit: usize },
    /// Memory for a buffer the input sized could not be had (`alloc`).
    /// `bytes` is 0 where the size is not known (a decoder's own allocation).
    #[error(
        "out of memory: {}{what} could not be allocated",
        if *bytes > 0 { format!("{bytes} bytes for ") } else { String::new() }
    )]
    OutOfMemory { what: &'static str, bytes: usize },
    /// A long call was cancelled between chunks (`Cancel`), e.g. by Ctrl-C.
    #[error("interrupted")]
    Interrupted,
    /// Any other bad argument (vocab size too small, empty or duplicate special token, ...).
    #[error("{0}")]
    InvalidArgument(String),
}

impl BpeError {
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        BpeError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, BpeError>;
