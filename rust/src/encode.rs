//! Encoding and decoding with a trained vocabulary.
//!
//! OWNER: encoder helper.
