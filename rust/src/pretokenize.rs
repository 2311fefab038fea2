//! GPT-2 pretokenization: a hand-written scanner equivalent to the pattern
//! `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
//!
//! OWNER: pretokenizer helper. The signatures below are the contract the trainer and the
//! encoder build on; the bodies are placeholders until the scanner lands.

/// The GPT-2 pretokens of a text, in order; together they cover the text exactly.
pub struct Pretokens<'a> {
    text: &'a str,
    pos: usize,
}

/// Iterates over the pretokens of `text`.
pub fn pretokens(text: &str) -> Pretokens<'_> {
    Pretokens { text, pos: 0 }
}

impl<'a> Iterator for Pretokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let _ = (self.text, self.pos);
        unimplemented!("pretokenizer scanner not written yet")
    }
}
