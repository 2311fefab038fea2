//! Special tokens: validated once, then found in text leftmost first, longest first.
//!
//! OWNER: pretokenizer helper. Signatures are the contract; bodies are placeholders.

use crate::error::Result;

/// A validated set of special tokens (non-empty, distinct strings), in the caller's order.
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens {
    tokens: Vec<String>,
}

/// A piece of text between special tokens, or one special token (its index in the set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    Special(usize),
}

impl SpecialTokens {
    /// Validates `tokens`: an empty or a repeated token is an `InvalidArgument` error.
    pub fn new(tokens: &[String]) -> Result<Self> {
        Ok(SpecialTokens {
            tokens: tokens.to_vec(),
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Splits `text` into ordinary text and special tokens. At each position the leftmost
    /// match wins, and among matches starting there the longest. Empty `Text` pieces are
    /// not produced.
    pub fn segments<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Segment<'a>> + 'a {
        let _ = text;
        std::iter::empty()
    }
}
