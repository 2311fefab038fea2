//! cl100k's split pattern (GPT-4's, also nanochat's and rustbpe's), hand-written:
//!
//! ```text
//! '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
//! ```
//!
//! applied as tiktoken applies it (fancy-regex, leftmost-first). At each position:
//!
//! * `'` and a contraction in either case (`'s`, `'S`, `'ll`, `'LL`, `'Ve`, ...; `s` also
//!   matches `ſ`, U+017F, its Unicode case fold) is taken first;
//! * a letter run, which one character before it joins unless that character is a letter,
//!   a number, `\r` or `\n` (so ` word`, `.word`, `\tword`);
//! * one to three numbers;
//! * a run of "other" characters (neither whitespace, letter nor number), with one U+0020
//!   before it and the `\r` / `\n` run after it;
//! * otherwise whitespace: a run that reaches the end of the text whole; else up to and
//!   including its last `\r` or `\n`; else a run of two or more without its last character
//!   (which starts the next pretoken); else the one character.
//!
//! Every byte is looked at a bounded number of times, so the scan is linear on any input.

use super::classes::{CharClass, ClassTable};
use super::gpt2::run_end;

/// The length of a contraction in either case at `bytes[i] == b'\''`, or 0: `'` then `s`,
/// `d`, `m`, `t`, `ll`, `ve` or `re`, each letter in either case, and `ſ` (U+017F, which
/// Unicode case folding makes an `s`) for `s`. The two patterns that use it spell the
/// contractions differently but accept the same strings.
#[inline]
pub(super) fn contraction_len_any_case(bytes: &[u8], i: usize) -> usize {
    let at = |k: usize| bytes.get(i + k).map_or(0, |b| b | 0x20);
    match at(1) {
        b's' | b'd' | b'm' | b't' => 2,
        b'l' if at(2) == b'l' => 3,
        b'v' | b'r' if at(2) == b'e' => 3,
        // U+017F LATIN SMALL LETTER LONG S.
        0xE5 if bytes.get(i + 1..i + 3) == Some(&[0xC5, 0xBF]) => 3,
        _ => 0,
    }
}

/// The end of the cl100k pretoken starting at `s < bytes.len()`.
#[inline(always)]
pub fn pretoken_end(t: &ClassTable<CharClass>, bytes: &[u8], s: usize) -> usize {
    let n = bytes.len();
    let b0 = bytes[s];
    // Most pretokens first: an ASCII word, alone or after a space (both take the letter
    // run whole, the space as `[^\r\n\p{L}\p{N}]?+`).
    if b0.is_ascii_alphabetic() {
        return run_end(t, bytes, s + 1, CharClass::Letter);
    }
    if b0 == b' ' && bytes.get(s + 1).is_some_and(u8::is_ascii_alphabetic) {
        return run_end(t, bytes, s + 2, CharClass::Letter);
    }
    if b0 == b'\'' {
        let len = contraction_len_any_case(bytes, s);
        if len > 0 {
            return s + len;
        }
    }
    let (c0, len0) = t.at(bytes, s);
    let i = s + len0;
    match c0 {
        CharClass::Letter => return run_end(t, bytes, i, CharClass::Letter),
        CharClass::Number => return numbers_end(t, bytes, i, CharClass::Number),
        _ => {}
    }
    let next = (i < n).then(|| t.at(bytes, i));
    // `[^\r\n\p{L}\p{N}]?+\p{L}++`: one character of any other kind joins a letter run.
    if b0 != b'\r' && b0 != b'\n' {
        if let Some((CharClass::Letter, len1)) = next {
            return run_end(t, bytes, i + len1, CharClass::Letter);
        }
    }
    // ` ?[^\s\p{L}\p{N}]++[\r\n]*+`
    let others_from = match (c0, next) {
        (CharClass::Other, _) => Some(s),
        (_, Some((CharClass::Other, _))) if b0 == b' ' => Some(i),
        _ => None,
    };
    if let Some(from) = others_from {
        let mut end = run_end(t, bytes, from, CharClass::Other);
        while end < n && matches!(bytes[end], b'\r' | b'\n') {
            end += 1;
        }
        return end;
    }
    // Whitespace (`c0` is `Space`).
    let WhitespaceRun {
        end,
        last,
        after_newline,
    } = whitespace_run(t, bytes, s, CharClass::Space);
    if end == n {
        return n; // `\s++$`
    }
    if let Some(e) = after_newline {
        return e; // `\s*[\r\n]`
    }
    if last > s {
        return last; // `\s+(?!\S)`
    }
    end // `\s`
}

/// A whitespace run, as the patterns with newline rules see it.
pub(super) struct WhitespaceRun {
    /// Where it ends.
    pub end: usize,
    /// Where its last character starts.
    pub last: usize,
    /// Where its last `\r` or `\n` ends, if it has one.
    pub after_newline: Option<usize>,
}

/// The whitespace run (characters of class `space`) from `s`.
#[inline(always)]
pub(super) fn whitespace_run<C: Copy + Default + Eq + std::hash::Hash>(
    t: &ClassTable<C>,
    bytes: &[u8],
    s: usize,
    space: C,
) -> WhitespaceRun {
    let (mut end, mut last, mut after_newline) = (s, s, None);
    while end < bytes.len() {
        let (c, len) = t.at(bytes, end);
        if c != space {
            break;
        }
        if matches!(bytes[end], b'\r' | b'\n') {
            after_newline = Some(end + 1);
        }
        last = end;
        end += len;
    }
    WhitespaceRun {
        end,
        last,
        after_newline,
    }
}

/// The end of `\p{N}{1,3}` whose first number ends at `i` (`number` is the table's class
/// of numbers).
#[inline(always)]
pub(super) fn numbers_end<C: Copy + Default + Eq + std::hash::Hash>(
    t: &ClassTable<C>,
    bytes: &[u8],
    mut i: usize,
    number: C,
) -> usize {
    for _ in 0..2 {
        if i >= bytes.len() {
            break;
        }
        let (c, len) = t.at(bytes, i);
        if c != number {
            break;
        }
        i += len;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_against_regex, split_with};
    use super::super::Pattern;

    fn split(text: &str) -> Vec<&str> {
        split_with(&Pattern::Cl100k, text)
    }

    #[test]
    fn words_numbers_punctuation() {
        assert_eq!(
            split("Hello world, it's 2024!!"),
            ["Hello", " world", ",", " it", "'s", " ", "202", "4", "!!"]
        );
        assert_eq!(split("1234567"), ["123", "456", "7"]);
        assert_eq!(split(".word \tword"), [".word", " ", "\tword"]);
        assert_eq!(split("a.\n\nb"), ["a", ".\n\n", "b"]);
        assert_eq!(
            split("IT'S WE'LL x'Ve"),
            ["IT", "'S", " WE", "'LL", " x", "'Ve"]
        );
        assert_eq!(split("x'ſ"), ["x", "'ſ"]);
    }

    #[test]
    fn whitespace() {
        assert_eq!(split("a\n  "), ["a", "\n  "]);
        assert_eq!(split("a \n b"), ["a", " \n", " b"]);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a\r\n\r\nb"), ["a", "\r\n\r\n", "b"]);
        assert_eq!(split("\nword"), ["\n", "word"]);
    }

    #[test]
    fn agrees_with_the_regex_engine() {
        check_against_regex(&Pattern::Cl100k, super::super::CL100K_REGEX);
    }
}
