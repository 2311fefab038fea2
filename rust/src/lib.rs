//! bpelm's core: GPT-2 pretokenization, byte-level BPE training, encoding and decoding.
//!
//! The crate is plain Rust; the Python bindings live in `py` behind the `python` feature
//! so that `cargo test` builds and links without a Python interpreter.

pub mod alloc;
pub mod cancel;
pub mod compressed;
pub mod corpus;
pub mod encode;
pub mod error;
pub mod pool;
pub mod pretokenize;
pub mod progress;
pub mod special;
pub mod stream;
pub mod tmpfile;
pub mod train;
pub mod transcode;
pub mod vocab;

#[cfg(feature = "python")]
mod py;

pub use error::BpeError;

/// A token id. GPT-2 sized vocabularies fit in `u16`, but ids are `u32` everywhere inside.
pub type TokenId = u32;
