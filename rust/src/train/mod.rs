//! Byte-level BPE training: count pretokens in parallel, then merge incrementally.
//!
//! OWNER: trainer helper.
