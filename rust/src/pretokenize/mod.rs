//! GPT-2 pretokenization: a hand-written scanner equivalent to the pattern
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

use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

mod blocks;

pub use blocks::{Scanner, MAX_ENDS};

/// The four classes the pattern distinguishes. Every code point is in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
enum CharClass {
    /// Neither whitespace, letter nor number: `[^\s\p{L}\p{N}]`.
    Other = 0,
    Letter = 1,
    Number = 2,
    Space = 3,
}

/// Code points per second-level block of the class table.
const BLOCK_BITS: u32 = 8;
const BLOCK: usize = 1 << BLOCK_BITS;
const N_CODE_POINTS: usize = 0x11_0000;

/// The class of every code point: a 128-entry table for ASCII, and for the rest a two-level
/// table (block index, then deduplicated blocks of 256 classes).
struct ClassTable {
    ascii: [CharClass; 128],
    block_of: Vec<u16>,
    blocks: Vec<CharClass>,
}

/// The inclusive code point ranges of a one-class pattern such as `\p{L}`.
fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::Parser::new().parse(pattern);
    match hir.as_ref().map(|h| h.kind()) {
        Ok(HirKind::Class(Class::Unicode(class))) => class
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        // The patterns are constants; the unit tests check that each yields a Unicode class.
        _ => {
            debug_assert!(false, "{pattern} did not parse to a Unicode class");
            Vec::new()
        }
    }
}

impl ClassTable {
    fn build() -> ClassTable {
        let mut all = vec![CharClass::Other; N_CODE_POINTS];
        for (pattern, class) in [
            (r"\p{L}", CharClass::Letter),
            (r"\p{N}", CharClass::Number),
            (r"\s", CharClass::Space),
        ] {
            for (start, end) in class_ranges(pattern) {
                all[start as usize..=end as usize].fill(class);
            }
        }
        let mut ascii = [CharClass::Other; 128];
        ascii.copy_from_slice(&all[..128]);

        let mut block_of = Vec::with_capacity(N_CODE_POINTS / BLOCK);
        let mut blocks: Vec<CharClass> = Vec::new();
        let mut seen: std::collections::HashMap<&[CharClass], u16> = Default::default();
        for chunk in all.chunks(BLOCK) {
            let next = seen.len() as u16;
            let index = *seen.entry(chunk).or_insert_with(|| {
                blocks.extend_from_slice(chunk);
                next
            });
            block_of.push(index);
        }
        ClassTable {
            ascii,
            block_of,
            blocks,
        }
    }

    #[inline]
    fn of_code_point(&self, cp: u32) -> CharClass {
        let block = self.block_of[(cp >> BLOCK_BITS) as usize] as usize;
        self.blocks[block * BLOCK + (cp as usize & (BLOCK - 1))]
    }

    /// The class and UTF-8 length of the character starting at `bytes[i]` (a char boundary
    /// of valid UTF-8).
    #[inline(always)]
    fn at(&self, bytes: &[u8], i: usize) -> (CharClass, usize) {
        let b0 = bytes[i];
        if b0 < 0x80 {
            return (self.ascii[b0 as usize], 1);
        }
        self.at_non_ascii(bytes, i)
    }

    #[inline(never)]
    fn at_non_ascii(&self, bytes: &[u8], i: usize) -> (CharClass, usize) {
        let b0 = u32::from(bytes[i]);
        let cont = |k: usize| u32::from(bytes[i + k] & 0x3F);
        let (cp, len) = if b0 < 0xE0 {
            (((b0 & 0x1F) << 6) | cont(1), 2)
        } else if b0 < 0xF0 {
            (((b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3)
        } else {
            (
                ((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3),
                4,
            )
        };
        (self.of_code_point(cp), len)
    }
}

/// Builds the character class table now rather than on the first pretokenization.
pub fn prepare() {
    table();
}

fn table() -> &'static ClassTable {
    static TABLE: OnceLock<ClassTable> = OnceLock::new();
    TABLE.get_or_init(ClassTable::build)
}

fn class_of(c: char) -> CharClass {
    let cp = u32::from(c);
    if cp < 128 {
        table().ascii[cp as usize]
    } else {
        table().of_code_point(cp)
    }
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
fn contraction_len(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i + 1) {
        Some(b's' | b'd' | b'm' | b't') => 2,
        Some(b'l') if bytes.get(i + 2) == Some(&b'l') => 3,
        Some(b'v' | b'r') if bytes.get(i + 2) == Some(&b'e') => 3,
        _ => 0,
    }
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

const fn splat(b: u8) -> u64 {
    (b as u64) * 0x0101_0101_0101_0101
}

/// The high bit of each byte of `x` set where that byte is ASCII and in `lo..=hi`.
#[inline(always)]
fn ascii_in_range(x: u64, lo: u8, hi: u8) -> u64 {
    // Clearing the high bits first keeps the additions from carrying between bytes.
    let low7 = x & !HIGH_BITS;
    let at_least_lo = low7 + splat(0x80 - lo);
    let above_hi = low7 + splat(0x7F - hi);
    at_least_lo & !above_hi & !x & HIGH_BITS
}

/// How many of the 8 bytes at `bytes[i..]` (from the first) are ASCII members of `class`,
/// or `None` where fewer than 8 bytes remain or the class has no word-at-a-time test.
#[inline(always)]
fn ascii_run_in_word(bytes: &[u8], i: usize, class: CharClass) -> Option<usize> {
    let word: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    let x = u64::from_le_bytes(word);
    let members = match class {
        CharClass::Letter => ascii_in_range(x | splat(0x20), b'a', b'z'),
        CharClass::Number => ascii_in_range(x, b'0', b'9'),
        _ => return None,
    };
    Some(((!members & HIGH_BITS).trailing_zeros() / 8) as usize)
}

/// The end of the run of `class` characters starting at `i`.
#[inline(always)]
fn run_end(t: &ClassTable, bytes: &[u8], mut i: usize, class: CharClass) -> usize {
    // Eight ASCII bytes at a time while the run lasts: most words end inside the first word.
    while let Some(k) = ascii_run_in_word(bytes, i, class) {
        i += k;
        if k < 8 {
            break;
        }
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
fn pretoken_end(t: &ClassTable, bytes: &[u8], start: usize) -> usize {
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

/// Calls `f` on each GPT-2 pretoken of `text`, in order. This is the fastest way to scan
/// (64 bytes at a time, see `blocks`).
#[inline]
pub fn for_each_pretoken<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    blocks::for_each_span(table(), text, |start, end| {
        debug_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
        // SAFETY: the scanner cuts only between characters: where the class changes (every
        // byte of a character has the character's class), after ASCII contraction letters,
        // at the scalar scanner's ends and at the text's end (the tests check each span).
        f(unsafe { text.get_unchecked(start..end) })
    });
}

/// A scanner over `text` that gives its pretokens' ends a block at a time (the fastest
/// way to consume them: see `Scanner::next_ends`).
pub fn scanner(text: &str) -> Scanner<'_> {
    Scanner::new(table(), text)
}

/// `for_each_pretoken` one pretoken at a time: the reference for the block scanner.
#[cfg(test)]
fn for_each_pretoken_scalar<'a>(text: &'a str, mut f: impl FnMut(&'a str)) {
    let t = table();
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = pretoken_end(t, bytes, start);
        f(&text[start..end]);
        start = end;
    }
}

/// The GPT-2 pretokens of `text` collected into a vector.
pub fn pretokenize(text: &str) -> Vec<&str> {
    let mut out = Vec::with_capacity(text.len() / 4 + 1);
    for_each_pretoken(text, |p| out.push(p));
    out
}

/// The GPT-2 pretokens of a text, in order; together they cover the text exactly.
pub struct Pretokens<'a> {
    text: &'a str,
    pos: usize,
    table: &'static ClassTable,
}

/// Iterates over the pretokens of `text`.
pub fn pretokens(text: &str) -> Pretokens<'_> {
    Pretokens {
        text,
        pos: 0,
        table: table(),
    }
}

impl<'a> Iterator for Pretokens<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        let start = self.pos;
        self.pos = pretoken_end(self.table, bytes, start);
        Some(&self.text[start..self.pos])
    }
}

impl std::iter::FusedIterator for Pretokens<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<&str> {
        let v = pretokenize(s);
        assert_eq!(v.concat(), s);
        assert_eq!(pretokens(s).collect::<Vec<_>>(), v);
        assert!(v.iter().all(|p| !p.is_empty()));
        v
    }

    #[test]
    fn class_patterns_parse_to_unicode_classes() {
        for pattern in [r"\p{L}", r"\p{N}", r"\s"] {
            assert!(!class_ranges(pattern).is_empty(), "{pattern}");
        }
        // The classes are disjoint, so one table holds them.
        let letters = class_ranges(r"\p{L}");
        for (s, e) in class_ranges(r"\s")
            .into_iter()
            .chain(class_ranges(r"\p{N}"))
        {
            assert!(letters.iter().all(|&(ls, le)| e < ls || le < s));
        }
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
        let mut state = 7u64;
        for len in 0..2000 {
            let s: String = (0..len % 60)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
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

    /// On-CPU time of this thread (Linux), so that other busy processes on a shared machine
    /// distort the measurement less than wall time; wall time elsewhere.
    fn thread_seconds(wall: std::time::Instant) -> f64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(|| wall.elapsed().as_secs_f64(), |ns| ns / 1e9)
    }

    /// Throughput on English text; run with
    /// `BPELM_BENCH_TEXT=file cargo test --release -- --ignored --nocapture pretokenize_throughput`.
    #[test]
    #[ignore]
    fn pretokenize_throughput() {
        let path = std::env::var("BPELM_BENCH_TEXT").unwrap_or_default();
        let text = if path.is_empty() {
            "The quick brown fox jumps over the lazy dog. It's 2024, isn't it?\n".repeat(200_000)
        } else {
            std::fs::read_to_string(&path).expect("BPELM_BENCH_TEXT names a UTF-8 file")
        };
        let mut count = 0usize;
        for_each_pretoken(&text, |_| count += 1); // warm-up and table build
        let wall = std::time::Instant::now();
        // Best of several runs: the least disturbed by other processes.
        let (mut best_for_each, mut best_iter) = (f64::MAX, f64::MAX);
        for _ in 0..7 {
            let start = thread_seconds(wall);
            let mut n = 0usize;
            for_each_pretoken(&text, |p| n += p.len());
            let mid = thread_seconds(wall);
            let m: usize = pretokens(&text).map(str::len).sum();
            let end = thread_seconds(wall);
            best_for_each = best_for_each.min(mid - start);
            best_iter = best_iter.min(end - mid);
            assert_eq!((n, m), (text.len(), text.len()));
        }
        let mb = text.len() as f64 / 1e6;
        println!(
            "{mb:.1} MB, {count} pretokens, best of 7 (thread CPU time): \
             for_each {:.0} MB/s, iterator {:.0} MB/s",
            mb / best_for_each,
            mb / best_iter
        );
    }
}
