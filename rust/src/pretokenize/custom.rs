//! Any other split pattern, run by fancy-regex (the engine tiktoken uses, with look-ahead
//! and back-references). This is the slow path: a general backtracking engine, several
//! times slower than the hand-written scanners, kept for correctness on patterns bpelm
//! does not know.
//!
//! Pretokens are the pattern's matches, as in tiktoken. Unlike tiktoken, text that no match
//! covers is not dropped: each gap between matches is a pretoken of its own, so that
//! decoding always gives the text back. (The built-in patterns leave no gaps.)

use super::ends::{Ends, MAX_ENDS};
use crate::error::{BpeError, Result};

/// A compiled user pattern.
#[derive(Debug)]
pub struct CustomPattern {
    source: String,
    regex: fancy_regex::Regex,
}

impl CustomPattern {
    /// Compiles `source`; `InvalidArgument` names the pattern and what is wrong with it.
    pub fn new(source: &str) -> Result<Self> {
        if source.is_empty() {
            return Err(BpeError::InvalidArgument(
                "the split pattern may not be empty".into(),
            ));
        }
        let regex = fancy_regex::Regex::new(source).map_err(|e| {
            BpeError::InvalidArgument(format!(
                "split pattern {source:?} is not a pattern bpelm can run: {e}"
            ))
        })?;
        Ok(CustomPattern {
            source: source.to_string(),
            regex,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The pretoken ends of `text`; call `CustomEnds::finish` after the last to learn
    /// whether the engine gave up on the text.
    pub fn ends<'a>(&'a self, text: &'a str) -> CustomEnds<'a> {
        CustomEnds {
            matches: self.regex.find_iter(text),
            source: &self.source,
            n: text.len(),
            pos: 0,
            after_gap: None,
            error: None,
        }
    }
}

/// The matches of a `CustomPattern` on one text, gaps included (see the module's doc).
pub struct CustomEnds<'a> {
    matches: fancy_regex::Matches<'a, 'a, str>,
    source: &'a str,
    n: usize,
    /// End of the last pretoken given.
    pos: usize,
    /// The end of a match whose gap before it was given last.
    after_gap: Option<usize>,
    /// Where and why the engine gave up (its backtracking limit), if it did.
    error: Option<(usize, fancy_regex::Error)>,
}

impl CustomEnds<'_> {
    /// `InvalidArgument` if the engine gave up on the text (the rest of the text was then
    /// given as one pretoken, so that a caller's loop ends).
    pub fn finish(self) -> Result<()> {
        match self.error {
            None => Ok(()),
            Some((at, e)) => Err(BpeError::InvalidArgument(format!(
                "split pattern {:?} failed on the text at byte {at}: {e}",
                self.source
            ))),
        }
    }

    fn next_end(&mut self) -> Option<usize> {
        if let Some(end) = self.after_gap.take() {
            return Some(end);
        }
        if self.pos >= self.n {
            return None;
        }
        loop {
            match self.matches.next() {
                Some(Ok(m)) if m.start() == m.end() => continue,
                Some(Ok(m)) if m.start() > self.pos => {
                    self.after_gap = Some(m.end());
                    return Some(m.start());
                }
                Some(Ok(m)) => return Some(m.end()),
                Some(Err(e)) => {
                    self.error = Some((self.pos, e));
                    return Some(self.n);
                }
                None => return Some(self.n),
            }
        }
    }
}

impl Ends for CustomEnds<'_> {
    fn next_ends(&mut self, ends: &mut [usize; MAX_ENDS]) -> Option<usize> {
        let mut count = 0;
        while count < 64 {
            let Some(end) = self.next_end() else { break };
            self.pos = end;
            ends[count] = end;
            count += 1;
        }
        (count > 0).then_some(count)
    }
}
