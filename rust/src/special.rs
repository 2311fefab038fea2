//! Special tokens: validated once, then found in text leftmost first, longest first.

use aho_corasick::{AhoCorasick, Input, MatchKind};
use memchr::memmem;

use crate::error::{BpeError, Result};

/// A validated set of special tokens (non-empty, distinct strings), in the caller's order.
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens {
    tokens: Vec<String>,
    /// What finds the tokens in text.
    searcher: Searcher,
    /// Which bytes some token starts with, to skip most positions cheaply.
    first_bytes: Vec<u8>,
    max_len: usize,
}

/// How `SpecialTokens` finds its tokens, leftmost first, longest first.
#[derive(Debug, Clone, Default)]
enum Searcher {
    /// No tokens.
    #[default]
    None,
    /// One token (the usual `<|endoftext|>`): its plain search, without an automaton's
    /// layers around it, which took most of the 6% the search cost in a call on 100 bytes.
    /// Boxed: it holds 32-byte-aligned vectors, and an encoder lives inside a Python
    /// object, which CPython aligns to 16 bytes only (inline, its aligned loads crashed
    /// wherever the object happened to lie).
    One(Box<memmem::Finder<'static>>),
    /// Several: a leftmost-longest automaton.
    Many(AhoCorasick),
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
        for (i, token) in tokens.iter().enumerate() {
            if token.is_empty() {
                return Err(BpeError::InvalidArgument(format!(
                    "special token {i} is the empty string"
                )));
            }
            if tokens[..i].contains(token) {
                return Err(BpeError::InvalidArgument(format!(
                    "special token {token:?} is given more than once"
                )));
            }
        }
        let searcher = match tokens {
            [] => Searcher::None,
            [token] => Searcher::One(Box::new(memmem::Finder::new(token.as_bytes()).into_owned())),
            _ => Searcher::Many(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(tokens)
                    .map_err(|e| {
                        BpeError::InvalidArgument(format!(
                            "cannot build the special-token matcher: {e}"
                        ))
                    })?,
            ),
        };
        let mut first_bytes: Vec<u8> = tokens.iter().map(|t| t.as_bytes()[0]).collect();
        first_bytes.sort_unstable();
        first_bytes.dedup();
        Ok(SpecialTokens {
            tokens: tokens.to_vec(),
            searcher,
            first_bytes,
            max_len: tokens.iter().map(String::len).max().unwrap_or(0),
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

    /// The index of `token` in the set, if it is one of them.
    pub fn index_of(&self, token: &str) -> Option<usize> {
        self.tokens.iter().position(|t| t == token)
    }

    /// The length in bytes of the longest token (0 when there are none).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The distinct first bytes of the tokens, sorted.
    pub fn first_bytes(&self) -> &[u8] {
        &self.first_bytes
    }

    /// The leftmost match (longest among those starting at the same place) starting at or
    /// after byte `from`: `(start, end, index)`.
    pub fn find_from(&self, text: &str, from: usize) -> Option<(usize, usize, usize)> {
        self.find_in(text, from, text.len())
    }

    /// Like `find_from`, but only matches lying wholly within bytes `from..to`.
    pub fn find_in(&self, text: &str, from: usize, to: usize) -> Option<(usize, usize, usize)> {
        let to = to.min(text.len());
        if from > to {
            return None;
        }
        match &self.searcher {
            Searcher::None => None,
            Searcher::One(finder) => {
                let start = from + finder.find(&text.as_bytes()[from..to])?;
                Some((start, start + finder.needle().len(), 0))
            }
            Searcher::Many(automaton) => automaton
                .find(Input::new(text).span(from..to))
                .map(|m| (m.start(), m.end(), m.pattern().as_usize())),
        }
    }

    /// Whether some token occurs in `text` starting exactly at byte `pos`.
    pub fn starts_at(&self, text: &str, pos: usize) -> bool {
        let rest = text.as_bytes().get(pos..).unwrap_or_default();
        match rest.first() {
            Some(b) if self.first_bytes.binary_search(b).is_ok() => {
                self.tokens.iter().any(|t| rest.starts_with(t.as_bytes()))
            }
            _ => false,
        }
    }

    /// Whether a cut at byte `pos` would fall strictly inside an occurrence of a token, or
    /// strictly inside a token whose beginning `text` ends with (more text could complete
    /// it). A cut where this is false cannot change which tokens are found.
    pub fn straddles(&self, text: &str, pos: usize) -> bool {
        let bytes = text.as_bytes();
        let pos = pos.min(bytes.len());
        self.tokens.iter().any(|t| {
            let t = t.as_bytes();
            // Starts q with pos - len(t) < q < pos.
            (pos.saturating_sub(t.len() - 1)..pos).any(|q| {
                let seen = &bytes[q..bytes.len().min(q + t.len())];
                t.starts_with(seen)
            })
        })
    }

    /// Splits `text` into ordinary text and special tokens. At each position the leftmost
    /// match wins, and among matches starting there the longest. Empty `Text` pieces are
    /// not produced.
    pub fn segments<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Segment<'a>> + 'a {
        Segments {
            specials: self,
            text,
            pos: 0,
            pending: None,
        }
    }
}

/// The iterator behind `SpecialTokens::segments`.
struct Segments<'a> {
    specials: &'a SpecialTokens,
    text: &'a str,
    pos: usize,
    /// A match found while emitting the text before it: `(end, index)`.
    pending: Option<(usize, usize)>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        if let Some((end, index)) = self.pending.take() {
            self.pos = end;
            return Some(Segment::Special(index));
        }
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        match self.specials.find_from(self.text, start) {
            None => {
                self.pos = self.text.len();
                Some(Segment::Text(&self.text[start..]))
            }
            Some((m_start, m_end, index)) if m_start == start => {
                self.pos = m_end;
                Some(Segment::Special(index))
            }
            Some((m_start, m_end, index)) => {
                self.pos = m_start;
                self.pending = Some((m_end, index));
                Some(Segment::Text(&self.text[start..m_start]))
            }
        }
    }
}

impl std::iter::FusedIterator for Segments<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tokens: &[&str]) -> SpecialTokens {
        let tokens: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        SpecialTokens::new(&tokens).expect("valid special tokens")
    }

    fn segments<'a>(s: &'a SpecialTokens, text: &'a str) -> Vec<Segment<'a>> {
        s.segments(text).collect()
    }

    #[test]
    fn validation_names_the_problem() {
        let err = SpecialTokens::new(&["<a>".to_string(), String::new()]).expect_err("empty token");
        assert!(err.to_string().contains("special token 1"), "{err}");
        let err = SpecialTokens::new(&["<a>".into(), "<b>".into(), "<a>".into()])
            .expect_err("repeated token");
        assert!(err.to_string().contains("\"<a>\""), "{err}");
        assert!(matches!(err, BpeError::InvalidArgument(_)));
        assert!(SpecialTokens::new(&[]).is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn no_specials_is_one_text_segment() {
        let s = SpecialTokens::default();
        assert_eq!(
            segments(&s, "a<|endoftext|>b"),
            [Segment::Text("a<|endoftext|>b")]
        );
        assert_eq!(segments(&s, ""), []);
        assert!(!s.starts_at("x", 0) && !s.straddles("x", 1));
    }

    #[test]
    fn splits_around_specials() {
        let s = set(&["<|endoftext|>", "<|pad|>"]);
        use Segment::{Special, Text};
        assert_eq!(
            segments(&s, "a<|endoftext|>b<|pad|><|pad|>"),
            [Text("a"), Special(0), Text("b"), Special(1), Special(1)]
        );
        assert_eq!(segments(&s, "<|endoftext|>"), [Special(0)]);
        assert_eq!(segments(&s, "<|endoftext|"), [Text("<|endoftext|")]);
        assert_eq!(s.index_of("<|pad|>"), Some(1));
        assert_eq!(s.index_of("<|nope|>"), None);
        assert_eq!(s.max_len(), 13);
    }

    #[test]
    fn longest_match_wins_at_the_same_start_and_leftmost_first() {
        let s = set(&["<|endoftext|>", "<|endoftext|><|endoftext|>"]);
        use Segment::{Special, Text};
        assert_eq!(
            segments(&s, "x<|endoftext|><|endoftext|><|endoftext|>"),
            [Text("x"), Special(1), Special(0)]
        );
        // Overlapping tokens: the one starting first wins even if a later one is longer.
        let s = set(&["ab", "bcd"]);
        assert_eq!(segments(&s, "abcd"), [Special(0), Text("cd")]);
        assert_eq!(segments(&s, "xbcd"), [Text("x"), Special(1)]);
    }

    /// One token is searched without an automaton (`Searcher::One`): the same leftmost match
    /// wholly within `from..to` as a search of every position, on text of overlapping near
    /// misses, and as the automaton finds for the same token beside another.
    #[test]
    fn one_token_is_found_as_a_search_of_every_position() {
        let s = set(&["<|eot|>"]);
        let two = set(&["<|eot|>", "\u{1}"]);
        let text = "<|e<|eot|><|eot|>x<|eot<|eot|>|>";
        for from in 0..=text.len() + 1 {
            for to in 0..=text.len() + 1 {
                let want = (from..text.len())
                    .find(|&i| i + 7 <= to.min(text.len()) && text[i..].starts_with("<|eot|>"))
                    .map(|i| (i, i + 7, 0));
                assert_eq!(s.find_in(text, from, to), want, "{from}..{to}");
                assert_eq!(two.find_in(text, from, to), want, "{from}..{to}");
            }
        }
    }

    #[test]
    fn straddles_and_starts_at() {
        let s = set(&["<|eot|>"]);
        let text = "ab<|eot|>cd";
        assert!(s.starts_at(text, 2) && !s.starts_at(text, 3));
        assert!(!s.straddles(text, 2) && !s.straddles(text, 9));
        assert!((3..9).all(|p| s.straddles(text, p)));
        // A prefix of a token at the end of the text could still become one.
        assert!(s.straddles("ab<|eo", 4));
        assert!(!s.straddles("ab<|eo", 2));
        assert!(!s.straddles("ab<x", 3));
        assert!(!s.straddles("", 0));
    }
}
