//! Vocabularies and merges: building ranks, reading and writing GPT-2 style files.
//!
//! OWNER: encoder helper.
