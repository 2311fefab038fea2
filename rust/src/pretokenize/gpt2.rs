//! GPT-2's split pattern: a hand-written scanner equivalent to the pattern
//! `'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
//!
//! The pattern is applied as tiktoken applies it (fancy-regex: leftmost-first alternation,
//! greedy repetition). At each position the scanner decides which alternative matches:
//!
//! * `'` followed by `s`, `d`, `m`, `t`, `ll`, `ve` or `re` (case-sensitive) is a contraction;
//! * otherwise a run of letters, of numbers or of "other" characters (neither whitespace,
//!   letter nor number), optionally preceded by one U+0020 space;
//! * otherwise a whitespace run: taken whole when it reaches the end of the text, and
//!   otherwise without its last character (that character then starts the next pretoken, as
//!   `\s+(?!\S)` backtracks by one); a single whitespace character before a non-space is
//!   taken alone (the final `\s+`).
//!
//! The character classes are read from `regex-syntax`'s Unicode tables, the ones fancy-regex
//! (and so tiktoken) compiles `\p{L}`, `\p{N}` and `\s` to. Every byte is looked at a bounded
//! number of times, so the scan is linear on any input.

use super::ascii::{ascii_run, AsciiSet};
use super::classes::{letter_table, CharClass, ClassTable};

pub use super::gpt2_blocks::{Gpt2Rules, Scanner};
use super::simd::ByteMasks;

/// GPT-2's and cl100k's class table.
fn table() -> &'static ClassTable<CharClass> {
    letter_table()
}

fn class_of(c: char) -> CharClass {
    table().of_char(c)
}

/// Whether `c` is in the pattern's `\s` (Unicode White_Space, as regex-syntax defines it;
/// note this differs from Python's `str.isspace`, e.g. for U+001C..U+001F).
pub fn is_space(c: char) -> bool {
    class_of(c) == CharClass::Space
}

/// Whether `c` is in `\p{L}`.
pub fn is_letter(c: char) -> bool {
    class_of(c) == CharClass::Letter
}

/// Whether `c` is in `\p{N}`.
pub fn is_number(c: char) -> bool {
    class_of(c) == CharClass::Number
}

/// The length of a contraction (`'s`, `'d`, `'m`, `'t`, `'ll`, `'ve`, `'re`) starting at
/// `bytes[i] == b'\''`, or 0.
#[inline]
pub(super) fn contraction_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i + 1) {
        Some(b's' | b'd' | b'm' | b't') => 2,
        Some(b'l') if bytes.get(i + 2) == Some(&b'l') => 3,
        Some(b'v' | b'r') if bytes.get(i + 2) == Some(&b'e') => 3,
        _ => 0,
    }
}

/// The end of the run of `class` characters starting at `i` (GPT-2's and cl100k's).
#[inline(always)]
pub(super) fn run_end(
    t: &ClassTable<CharClass>,
    bytes: &[u8],
    mut i: usize,
    class: CharClass,
) -> usize {
    match class {
        CharClass::Letter => i = ascii_run(bytes, i, AsciiSet::Letters),
        CharClass::Number => i = ascii_run(bytes, i, AsciiSet::Digits),
        _ => {}
    }
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            if t.ascii[b as usize] != class {
                break;
            }
            i += 1;
        } else {
            let (c, len) = t.at_non_ascii(bytes, i);
            if c != class {
                break;
            }
            i += len;
        }
    }
    i
}

/// The end of the pretoken starting at `start < bytes.len()`.
#[inline(always)]
pub(super) fn pretoken_end(t: &ClassTable<CharClass>, bytes: &[u8], start: usize) -> usize {
    let n = bytes.len();
    let b0 = bytes[start];
    if b0 == b'\'' {
        let len = contraction_len(bytes, start);
        if len > 0 {
            return start + len;
        }
    }
    let (mut class, len0) = t.at(bytes, start);
    let mut i = start + len0;
    if b0 == b' ' && i < n {
        // ` ?X+`: a space joins the run of letters, numbers or others that follows it.
        let (next, len1) = t.at(bytes, i);
        if next != CharClass::Space {
            class = next;
            i += len1;
        }
    }
    if class != CharClass::Space {
        return run_end(t, bytes, i, class);
    }
    // A whitespace run from `start`; `last` is where its last character starts.
    let mut last = start;
    while i < n {
        let (c, len) = t.at(bytes, i);
        if c != CharClass::Space {
            // `\s+(?!\S)` leaves the last character for the next pretoken, and a lone
            // character falls to the final `\s+`.
            return if last > start { last } else { i };
        }
        last = i;
        i += len;
    }
    n
}

/// A scanner over `text` that gives its pretokens' ends a block at a time (the fastest
/// way to consume them), its masks made by `M`.
pub(super) fn scanner<M: ByteMasks>(text: &str) -> Scanner<'_, M> {
    Scanner::new(Gpt2Rules::default(), text)
}

/// `for_each_pretoken` one pretoken at a time: the reference for the block scanner.
#[cfg(test)]
pub(super) fn for_each_pretoken_scalar<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let t = table();
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = pretoken_end(t, bytes, start);
        f(&text[start..end]);
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::super::classes::class_ranges;
    use super::super::testing::split_with;
    use super::super::Pattern;
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        let v = split_with(&Pattern::Gpt2, s);
        let mut scalar = Vec::new();
        for_each_pretoken_scalar(s, |p| scalar.push(p));
        assert_eq!(scalar, v);
        v
    }

    #[test]
    fn classes_of_sample_characters() {
        for c in ['a', 'Z', 'é', 'ß', 'Ж', '中', 'ー', 'ǅ'] {
            assert!(is_letter(c), "{c:?}");
        }
        for c in ['0', '9', '²', '½', 'Ⅻ', '٣'] {
            assert!(is_number(c), "{c:?}");
        }
        for c in [
            ' ', '\t', '\n', '\x0b', '\x0c', '\r', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
            '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
        ] {
            assert!(is_space(c), "{c:?}");
        }
        // Python's str.isspace says yes to these; White_Space does not.
        for c in [
            '\x1c', '\x1d', '\x1e', '\x1f', '\u{200b}', '\u{feff}', '\u{180e}',
        ] {
            assert!(!is_space(c) && !is_letter(c) && !is_number(c), "{c:?}");
        }
        // A combining mark is not a letter.
        assert!(!is_letter('\u{301}'));
        // Every character of each UTF-8 length decodes to the class its char has.
        let t = table();
        for c in [
            'a',
            'é',
            '中',
            '😀',
            '\u{10ffff}',
            '\u{80}',
            '\u{7ff}',
            '\u{800}',
            '\u{ffff}',
        ] {
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            assert_eq!(t.at(s.as_bytes(), 0), (class_of(c), s.len()), "{c:?}");
        }
    }

    /// The code points where Python's `regex` module (Unicode 17.0) classifies differently
    /// from regex-syntax 0.8 (Unicode 16.0, as in tiktoken's build), shared with
    /// tests/test_pretokenize.py, which checks the `regex` side.
    fn unicode_17_additions() -> Vec<(u32, u32)> {
        include_str!("../../../tests/data/unicode17_additions.txt")
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let mut ends = line.split_whitespace().map(|x| {
                    u32::from_str_radix(x.trim_start_matches("0x"), 16).expect("a hex code point")
                });
                let first = ends.next().expect("a first code point");
                (first, ends.next().expect("a last code point"))
            })
            .collect()
    }

    #[test]
    fn version_differences_are_code_points_unassigned_in_our_tables() {
        let unassigned = class_ranges(r"\p{Cn}");
        for (start, end) in unicode_17_additions() {
            assert!(
                unassigned.iter().any(|&(s, e)| s <= start && end <= e),
                "{start:#X}..={end:#X} is assigned in regex-syntax's tables"
            );
            for cp in start..=end {
                let c = char::from_u32(cp).expect("a scalar value");
                assert_eq!(class_of(c), CharClass::Other, "{c:?}");
            }
        }
    }

    #[test]
    fn empty_text_has_no_pretokens() {
        assert!(split("").is_empty());
    }

    #[test]
    fn words_numbers_punctuation() {
        assert_eq!(
            split("Hello world, it's 2024!!"),
            ["Hello", " world", ",", " it", "'s", " 2024", "!!"]
        );
        assert_eq!(split("a1b2"), ["a", "1", "b", "2"]);
        assert_eq!(
            split("x = (y+1)*2;"),
            ["x", " =", " (", "y", "+", "1", ")*", "2", ";"]
        );
        assert_eq!(split(" ...!?"), [" ...!?"]);
        assert_eq!(split("½²3"), ["½²3"]);
    }

    #[test]
    fn contractions() {
        assert_eq!(split("don't"), ["don", "'t"]);
        assert_eq!(
            split("I'm we'll they've you're he'd"),
            ["I", "'m", " we", "'ll", " they", "'ve", " you", "'re", " he", "'d"]
        );
        // Case-sensitive: 'S is punctuation then a letter.
        assert_eq!(split("IT'S"), ["IT", "'", "S"]);
        // An apostrophe run is one "other" run, so the contraction cannot start inside it.
        assert_eq!(split("'''s"), ["'''", "s"]);
        assert_eq!(split("'s"), ["'s"]);
        assert_eq!(split("'"), ["'"]);
        assert_eq!(split("'l"), ["'", "l"]);
        assert_eq!(split("'lla"), ["'ll", "a"]);
        assert_eq!(split(" 's"), [" '", "s"]);
        assert_eq!(split("?'s"), ["?'", "s"]);
        assert_eq!(split("x'vex"), ["x", "'ve", "x"]);
    }

    #[test]
    fn whitespace_runs() {
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a   b"), ["a", "  ", " b"]);
        assert_eq!(split("a\tb"), ["a", "\t", "b"]);
        assert_eq!(split("a \t\nb"), ["a", " \t", "\n", "b"]);
        assert_eq!(split("a\n\n\nb"), ["a", "\n\n", "\n", "b"]);
        assert_eq!(split("a  "), ["a", "  "]);
        assert_eq!(split("a \n "), ["a", " \n "]);
        assert_eq!(split(" "), [" "]);
        assert_eq!(split("   "), ["   "]);
        assert_eq!(split(" a"), [" a"]);
        assert_eq!(split("  a"), [" ", " a"]);
        assert_eq!(split("\n a"), ["\n", " a"]);
        assert_eq!(split(" \n!"), [" ", "\n", "!"]);
        assert_eq!(split("  1"), [" ", " 1"]);
        assert_eq!(split("\r\n\r\nx"), ["\r\n\r", "\n", "x"]);
    }

    #[test]
    fn unicode_spaces() {
        // Only U+0020 is the optional prefix; other spaces stand alone.
        assert_eq!(split("a\u{a0}b"), ["a", "\u{a0}", "b"]);
        assert_eq!(split("a\u{a0} b"), ["a", "\u{a0}", " b"]);
        assert_eq!(split("a \u{a0}b"), ["a", " ", "\u{a0}", "b"]);
        assert_eq!(
            split("a\u{3000}\u{3000}b"),
            ["a", "\u{3000}", "\u{3000}", "b"]
        );
        assert_eq!(split("a\u{85}b"), ["a", "\u{85}", "b"]);
        // U+001C..U+001F are not \s: they are "other" characters.
        assert_eq!(split("a \x1c\x1fb"), ["a", " \x1c\x1f", "b"]);
        assert_eq!(split("\u{2028}"), ["\u{2028}"]);
    }

    #[test]
    fn non_latin_scripts() {
        assert_eq!(split("日本語のテキスト"), ["日本語のテキスト"]);
        assert_eq!(split("Привет, мир"), ["Привет", ",", " мир"]);
        // Combining marks are not letters: they split a word.
        assert_eq!(split("cafe\u{301} x"), ["cafe", "\u{301}", " x"]);
        assert_eq!(split("hi 😀😀 there"), ["hi", " 😀😀", " there"]);
        assert_eq!(split("٣٤ abc"), ["٣٤", " abc"]);
    }

    /// A direct transcription of the pattern, char by char, without the byte tricks.
    fn reference_split(s: &str) -> Vec<&str> {
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let at = |k: usize| chars.get(k).map(|&(_, c)| c);
        let offset = |k: usize| chars.get(k).map_or(s.len(), |&(o, _)| o);
        let mut out = Vec::new();
        let mut k = 0;
        while k < chars.len() {
            let start = k;
            let c = chars[k].1;
            let rest: String = chars[k..].iter().take(3).map(|&(_, c)| c).collect();
            let contraction = ["'s", "'d", "'m", "'t", "'ll", "'ve", "'re"]
                .iter()
                .find(|p| rest.starts_with(*p));
            if let Some(p) = contraction {
                k += p.chars().count();
            } else {
                let j = if c == ' ' && at(k + 1).is_some_and(|d| !is_space(d)) {
                    k + 1
                } else {
                    k
                };
                let class = class_of(chars[j].1);
                if class != CharClass::Space {
                    k = j;
                    while at(k).is_some_and(|d| class_of(d) == class) {
                        k += 1;
                    }
                } else {
                    let mut end = k;
                    while at(end).is_some_and(is_space) {
                        end += 1;
                    }
                    k = if end == chars.len() || end - k == 1 {
                        end
                    } else {
                        end - 1
                    };
                }
            }
            out.push(&s[offset(start)..offset(k)]);
        }
        out
    }

    #[test]
    fn agrees_with_a_char_by_char_reference() {
        let alphabet: Vec<char> = "aZ9 '  \n\tsdmtlvre.,!é中😀\u{a0}\u{301}٣\u{85}\x1c\u{3000}"
            .chars()
            .collect();
        let mut lcg = super::super::testing::Lcg::new(7);
        for len in 0..2000 {
            let s: String = (0..len % 60)
                .map(|_| alphabet[lcg.below(alphabet.len())])
                .collect();
            assert_eq!(split(&s), reference_split(&s), "{s:?}");
        }
        // Long ASCII runs cross the eight-byte word boundaries of the fast path.
        for s in [
            "abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ@[`{",
            "aaaaaaaé",
            "1234567½8",
        ] {
            assert_eq!(split(s), reference_split(s), "{s:?}");
        }
    }

    #[test]
    fn pathological_inputs_are_linear() {
        // Each is 1 MB; a quadratic scanner would take minutes, this takes milliseconds.
        let n = 1 << 20;
        let spaces = " ".repeat(n);
        assert_eq!(split(&spaces), [spaces.as_str()]);
        let newlines = "\n".repeat(n);
        assert_eq!(split(&newlines).len(), 1);
        let letters = "a".repeat(n);
        assert_eq!(split(&letters).len(), 1);
        let digits = "7".repeat(n);
        assert_eq!(split(&digits).len(), 1);
        let cjk = "中".repeat(n / 3);
        assert_eq!(split(&cjk).len(), 1);
        let mut spaces_then_word = " ".repeat(n);
        spaces_then_word.push('x');
        assert_eq!(split(&spaces_then_word).len(), 2);
        let alternating = " \n".repeat(n / 2) + "x";
        assert_eq!(split(&alternating).len(), 3);
        // Pseudo-random Latin-1 text.
        let mut state = 12345u32;
        let latin1: String = (0..n / 2)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                char::from_u32((state >> 16) % 256).unwrap_or(' ')
            })
            .collect();
        split(&latin1);
    }
}
