//! o200k's split pattern (GPT-4o's), hand-written. The pattern is seven alternatives:
//!
//! ```text
//! 1. [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! 2. [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//! 3. \p{N}{1,3}
//! 4.  ?[^\s\p{L}\p{N}]+[\r\n/]*
//! 5. \s*[\r\n]+
//! 6. \s+(?!\S)
//! 7. \s+
//! ```
//!
//! applied as tiktoken applies it (fancy-regex: leftmost-first, greedy, backtracking). Call
//! the first letter set `A` (upper, title, modifier and other letters, marks) and the
//! second `B` (lower, modifier and other letters, marks). Backtracking resolves as follows:
//!
//! * alternative 1 from `p`: the `A` run from `p` ends at `q`. If a lower-case letter
//!   follows, the match runs on through the `B` run from `q`. Otherwise `A*` gives
//!   characters back until one it gave back is also in `B` (a modifier or other letter, or
//!   a mark), and the match ends after that one; with none, the alternative fails;
//! * alternative 2 from `p`: a non-empty `A` run, then the `B` run after it;
//! * each is tried first with the optional leading character (anything but a letter, a
//!   number, `\r` or `\n`) and then without it, and then the optional contraction (either
//!   case, `ſ` for `s`) is taken if it follows;
//! * whitespace: up to and including the run's last `\r` or `\n`; else the whole run at the
//!   end of the text; else a run of two or more without its last character; else the one
//!   character.
//!
//! Every byte is looked at a bounded number of times, so the scan is linear on any input.

use super::ascii::{ascii_run, AsciiSet};
use super::cl100k::{contraction_len_any_case, numbers_end, whitespace_run, WhitespaceRun};
use super::classes::{CaseClass, ClassTable};

type Table = ClassTable<CaseClass>;

/// The first letter set: `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`.
const A: u8 = CaseClass::Upper.bit() | CaseClass::Caseless.bit() | CaseClass::Mark.bit();
/// The second letter set: `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`.
const B: u8 = CaseClass::Lower.bit() | CaseClass::Caseless.bit() | CaseClass::Mark.bit();
/// In both letter sets: what `A*` can give back to `B+`.
const BOTH: u8 = A & B;
/// `[^\s\p{L}\p{N}]`.
const OTHERS: u8 = CaseClass::Mark.bit() | CaseClass::Other.bit();
/// `[^\r\n\p{L}\p{N}]` is these classes, less `\r` and `\n`.
const PREFIX: u8 = CaseClass::Mark.bit() | CaseClass::Other.bit() | CaseClass::Space.bit();

/// The end of the run of characters in `set` from `i`; `ascii` is the set's ASCII part.
#[inline(always)]
fn run(t: &Table, bytes: &[u8], i: usize, set: u8, ascii: Option<AsciiSet>) -> usize {
    let mut i = ascii.map_or(i, |a| ascii_run(bytes, i, a));
    while i < bytes.len() {
        let (c, len) = t.at(bytes, i);
        if c.bit() & set == 0 {
            break;
        }
        i += len;
    }
    i
}

#[inline(always)]
fn a_run(t: &Table, bytes: &[u8], p: usize) -> usize {
    run(t, bytes, p, A, Some(AsciiSet::Upper))
}

#[inline(always)]
fn b_run(t: &Table, bytes: &[u8], p: usize) -> usize {
    run(t, bytes, p, B, Some(AsciiSet::Lower))
}

/// Alternative 1's `A*B+` from `p`: its end, or `None`.
#[inline(always)]
fn lower_word(t: &Table, bytes: &[u8], p: usize) -> Option<usize> {
    let q = a_run(t, bytes, p);
    if q < bytes.len() && t.at(bytes, q).0 == CaseClass::Lower {
        return Some(b_run(t, bytes, q));
    }
    given_back(t, bytes, p, q)
}

/// Where `B+` ends when `A*` has run from `p` to `q` with no `B` character after it: just
/// after the last character of the run that is in both sets.
#[inline(never)]
fn given_back(t: &Table, bytes: &[u8], p: usize, q: usize) -> Option<usize> {
    let mut end = None;
    let mut i = p;
    while i < q {
        let (c, len) = t.at(bytes, i);
        i += len;
        if c.bit() & BOTH != 0 {
            end = Some(i);
        }
    }
    end
}

/// Alternative 2's `A+B*` from `p`: its end, or `None`.
#[inline(always)]
fn upper_word(t: &Table, bytes: &[u8], p: usize) -> Option<usize> {
    let q = a_run(t, bytes, p);
    (q > p).then(|| b_run(t, bytes, q))
}

/// The end of alternative 1 or 2 at `s` (the optional leading character included), before
/// the contraction; `None` when neither matches.
#[inline(always)]
fn word_end(t: &Table, bytes: &[u8], s: usize, c0: CaseClass, len0: usize) -> Option<usize> {
    let prefix = c0.bit() & PREFIX != 0 && !matches!(bytes[s], b'\r' | b'\n');
    // Without the leading character the word starts at `s`, which only a letter or a mark
    // (a prefix character that is also in `A`) can begin.
    let bare = !prefix || c0 == CaseClass::Mark;
    if prefix {
        if let Some(end) = lower_word(t, bytes, s + len0) {
            return Some(end);
        }
    }
    if bare {
        if let Some(end) = lower_word(t, bytes, s) {
            return Some(end);
        }
    }
    if prefix {
        if let Some(end) = upper_word(t, bytes, s + len0) {
            return Some(end);
        }
    }
    if bare {
        return upper_word(t, bytes, s);
    }
    None
}

/// `end`, or the end of the contraction (`(?i:'s|'t|'re|'ve|'m|'ll|'d)?`) that follows it.
#[inline(always)]
fn with_contraction(bytes: &[u8], end: usize) -> usize {
    if bytes.get(end) == Some(&b'\'') {
        end + contraction_len_any_case(bytes, end)
    } else {
        end
    }
}

/// The end of the o200k pretoken starting at `s < bytes.len()`.
#[inline(always)]
pub fn pretoken_end(t: &Table, bytes: &[u8], s: usize) -> usize {
    let n = bytes.len();
    let b0 = bytes[s];
    // Most pretokens first: an ASCII-led word, alone or after a space, by the first
    // alternative (which is also the first the full order below tries for them).
    let word = if b0.is_ascii_alphabetic() {
        Some(s)
    } else if b0 == b' ' && bytes.get(s + 1).is_some_and(u8::is_ascii_alphabetic) {
        Some(s + 1)
    } else {
        None
    };
    if let Some(p) = word {
        // `A*` over ASCII capitals, then a lower-case ASCII letter: `B+` from there. (A
        // non-ASCII character after the capitals may be in `A`: the full rule decides.)
        let q = ascii_run(bytes, p, AsciiSet::Upper);
        if bytes.get(q).is_some_and(u8::is_ascii_lowercase) {
            return with_contraction(bytes, b_run(t, bytes, q));
        }
        if let Some(end) = lower_word(t, bytes, p) {
            return with_contraction(bytes, end);
        }
    }
    let (c0, len0) = t.at(bytes, s);
    if let Some(end) = word_end(t, bytes, s, c0, len0) {
        return with_contraction(bytes, end);
    }
    if c0 == CaseClass::Number {
        return numbers_end(t, bytes, s + len0, CaseClass::Number);
    }
    // ` ?[^\s\p{L}\p{N}]+[\r\n/]*`
    let others_from = if c0.bit() & OTHERS != 0 {
        Some(s)
    } else if bytes[s] == b' ' && s + 1 < n && t.at(bytes, s + 1).0.bit() & OTHERS != 0 {
        Some(s + 1)
    } else {
        None
    };
    if let Some(from) = others_from {
        let mut end = run(t, bytes, from, OTHERS, None);
        while end < n && matches!(bytes[end], b'\r' | b'\n' | b'/') {
            end += 1;
        }
        return end;
    }
    // Whitespace (every other class matched above).
    let WhitespaceRun {
        end,
        last,
        after_newline,
    } = whitespace_run(t, bytes, s, CaseClass::Space);
    if let Some(e) = after_newline {
        return e; // `\s*[\r\n]+`
    }
    if end == n {
        return n; // `\s+(?!\S)` at the end
    }
    if last > s {
        return last; // `\s+(?!\S)`
    }
    end.max(s + len0) // `\s+`
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_against_regex, split_with};
    use super::super::Pattern;

    fn split(text: &str) -> Vec<&str> {
        split_with(&Pattern::O200k, text)
    }

    #[test]
    fn case_aware_words() {
        assert_eq!(split("HelloWorld"), ["Hello", "World"]);
        assert_eq!(split("XMLHttpRequest"), ["XMLHttp", "Request"]);
        assert_eq!(split("HELLO world"), ["HELLO", " world"]);
        assert_eq!(split("it's IT'S"), ["it's", " IT'S"]);
        assert_eq!(
            split("Hello, 12345!"),
            ["Hello", ",", " ", "123", "45", "!"]
        );
        assert_eq!(split("a/b\n/c"), ["a", "/b", "\n", "/c"]);
        assert_eq!(split("x.\n/y"), ["x", ".\n/", "y"]);
    }

    #[test]
    fn marks_and_caseless_letters() {
        // A mark is in both letter sets: `A*` gives it back to `B+`.
        assert_eq!(split("CAFE\u{301} X"), ["CAFE\u{301}", " X"]);
        assert_eq!(split("\u{301}"), ["\u{301}"]);
        assert_eq!(split("中文ABC"), ["中文", "ABC"]);
    }

    #[test]
    fn whitespace() {
        assert_eq!(split("a\n  "), ["a", "\n", "  "]);
        assert_eq!(split("a \n b"), ["a", " \n", " b"]);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("\u{3000}word"), ["\u{3000}word"]);
    }

    #[test]
    fn agrees_with_the_regex_engine() {
        check_against_regex(&Pattern::O200k, super::super::O200K_REGEX);
    }
}
