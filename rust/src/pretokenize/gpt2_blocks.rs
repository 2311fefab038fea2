//! The pretokenizer's fast path: 64 bytes at a time, pretoken starts found with bit masks.
//!
//! Each block of 64 bytes is classified into bit masks (bit `i` for byte `i`): letters,
//! numbers, whitespace, U+0020 and apostrophes, from SIMD compares on ASCII. A non-ASCII
//! character gives each of its bytes its class ("painting"), so the rules below compare
//! characters, not bytes. Where a pretoken starts then depends only on a few neighbours:
//!
//! * a run of letters, numbers or others starts where the class changes, unless the
//!   character before is U+0020, which joins the run (` ?\p{L}+` and its siblings);
//! * a whitespace run starts where whitespace begins, and its last character starts a
//!   pretoken of its own when the run has two or more characters and text follows it
//!   (`\s+(?!\S)` gives that character back);
//! * an apostrophe that starts a pretoken and is followed by `s`, `d`, `m`, `t`, `ll`, `ve`
//!   or `re` is a contraction, which ends after those letters.
//!
//! The last character of a whitespace run is found bytewise, which is right for one-byte
//! whitespace only, so a block holding multi-byte whitespace (U+00A0, U+3000, ...) is cut by
//! the scalar scanner instead. The unit tests check the two scanners against each other.

use std::marker::PhantomData;

use super::blocks::{BlockScanner, Rules};
use super::classes::{letter_table, CharClass, ClassTable};
use super::gpt2::{contraction_len, pretoken_end};
use super::simd::{Baseline, ByteMasks};

/// Bit masks of one 64-byte block, bit `i` for byte `i`; bytes past the text's end count as
/// U+0020 spaces (so a whitespace run reaching the end stays whole).
#[derive(Clone, Copy, Default)]
pub struct Masks {
    pub(super) letter: u64,
    pub(super) number: u64,
    /// `\s`, one-byte or not.
    pub(super) space: u64,
    /// Neither a letter, a number nor whitespace.
    pub(super) other: u64,
    /// U+0020, the one character that joins the run after it.
    pub(super) blank: u64,
    pub(super) apostrophe: u64,
    /// Bytes of multi-byte whitespace characters.
    pub(super) wide_space: u64,
    /// Bytes of non-ASCII characters (any class).
    pub(super) high: u64,
}

impl Masks {
    /// What the text's start looks like to its first block: a newline, which is whitespace
    /// (so the first character starts a run) but not U+0020 (so it joins nothing).
    pub(super) fn before_text() -> Masks {
        Masks {
            space: u64::MAX,
            ..Masks::default()
        }
    }

    /// What follows the last block: spaces.
    pub(super) fn after_text() -> Masks {
        Masks {
            space: u64::MAX,
            blank: u64::MAX,
            ..Masks::default()
        }
    }
}

/// GPT-2's rules for the block scanner: the starts of `starts_in` and contractions; a
/// block holding multi-byte whitespace goes to the scalar scanner. `M` makes the masks.
pub struct Gpt2Rules<M = Baseline> {
    /// Starts that a contraction ending in the next block clears and sets there.
    carry_clear: u64,
    carry_set: u64,
    masks: PhantomData<M>,
}

impl<M> Default for Gpt2Rules<M> {
    fn default() -> Self {
        Gpt2Rules {
            carry_clear: 0,
            carry_set: 0,
            masks: PhantomData,
        }
    }
}

/// Cuts a text into GPT-2 pretokens a block at a time.
pub type Scanner<'a, M = Baseline> = BlockScanner<'a, Gpt2Rules<M>>;

impl<M: ByteMasks> Rules for Gpt2Rules<M> {
    type Block = Masks;

    fn before_text() -> Masks {
        Masks::before_text()
    }

    fn after_text() -> Masks {
        Masks::after_text()
    }

    #[inline(always)]
    fn classify(bytes: &[u8], base: usize, prev: &Masks) -> Masks {
        classify::<M>(letter_table(), bytes, base, prev)
    }

    #[inline(always)]
    fn starts(
        &mut self,
        bytes: &[u8],
        base: usize,
        _pending: usize,
        prev: &Masks,
        cur: &Masks,
        next: &Masks,
    ) -> Option<u64> {
        if cur.wide_space != 0 {
            return None;
        }
        let mut starts = (starts_in(prev, cur, next) & !self.carry_clear) | self.carry_set;
        (self.carry_clear, self.carry_set) = (0, 0);
        let mut candidates = cur.apostrophe & starts;
        while candidates != 0 {
            let j = candidates.trailing_zeros();
            candidates &= candidates - 1;
            let len = contraction_len(bytes, base + j as usize) as u32;
            if len > 0 {
                // Wide enough for a contraction running into the next block.
                let clear = ((1u128 << (len - 1)) - 1) << (j + 1);
                let set = 1u128 << (j + len);
                let wide = (u128::from(starts) & !clear) | set;
                starts = wide as u64;
                self.carry_clear = (clear >> 64) as u64;
                self.carry_set = (set >> 64) as u64;
            }
        }
        Some(starts)
    }

    fn after_scalar(&mut self) {
        // The scalar scan took any contraction whole.
        (self.carry_clear, self.carry_set) = (0, 0);
    }

    #[inline(always)]
    fn scalar_end(bytes: &[u8], s: usize) -> usize {
        pretoken_end(letter_table(), bytes, s)
    }
}

/// Calls `f(start, end)` on the byte range of each pretoken of `text`, in order, with the
/// masks made by `M`.
#[cfg(test)]
fn for_each_span<M: ByteMasks>(text: &str, mut f: impl FnMut(usize, usize)) {
    use super::ends::{Ends, MAX_ENDS};
    let mut scanner = Scanner::new(Gpt2Rules::<M>::default(), text);
    let mut ends = [0usize; MAX_ENDS];
    let mut start = 0;
    while let Some(count) = scanner.next_ends(&mut ends) {
        for &end in &ends[..count] {
            f(start, end);
            start = end;
        }
    }
}

/// Where pretokens start in `cur` (before contractions), given the blocks around it.
#[inline(always)]
fn starts_in(prev: &Masks, cur: &Masks, next: &Masks) -> u64 {
    let before = |x: u64, p: u64| (x << 1) | (p >> 63);
    let after = |x: u64, q: u64| (x >> 1) | (q << 63);
    let space = cur.space;
    let space_before = before(space, prev.space);
    let space_after = after(space, next.space);
    let runs = (cur.letter & !before(cur.letter, prev.letter))
        | (cur.number & !before(cur.number, prev.number))
        | (cur.other & !before(cur.other, prev.other));
    let joined = before(cur.blank, prev.blank) & !space;
    let run_starts = space & !space_before;
    let last_of_long_runs = space & space_before & !space_after;
    (runs & !joined) | run_starts | last_of_long_runs
}

/// The masks of the 64 bytes from `base` (padded with spaces past the end of `bytes`).
#[inline(always)]
fn classify<M: ByteMasks>(
    t: &ClassTable<CharClass>,
    bytes: &[u8],
    base: usize,
    prev: &Masks,
) -> Masks {
    match bytes
        .get(base..base + 64)
        .and_then(|b| <&[u8; 64]>::try_from(b).ok())
    {
        Some(block) => classify_block::<M>(t, bytes, base, block, prev),
        None => {
            let mut padded = [b' '; 64];
            let rest = &bytes[base..];
            padded[..rest.len()].copy_from_slice(rest);
            classify_block::<M>(t, bytes, base, &padded, prev)
        }
    }
}

/// `classify` of the 64 bytes `block`, which start at `base` in `bytes`.
#[inline(always)]
pub(super) fn classify_block<M: ByteMasks>(
    t: &ClassTable<CharClass>,
    bytes: &[u8],
    base: usize,
    block: &[u8; 64],
    prev: &Masks,
) -> Masks {
    let (mut m, high) = M::ascii(block);
    if high != 0 {
        paint(t, bytes, base, block, high, prev, &mut m);
    }
    m.other = !(m.letter | m.number | m.space);
    m.high = high;
    m
}

/// Gives the bytes of each non-ASCII character in the block (bits `high`) its class.
#[inline(never)]
fn paint(
    t: &ClassTable<CharClass>,
    bytes: &[u8],
    base: usize,
    block: &[u8; 64],
    mut high: u64,
    prev: &Masks,
    m: &mut Masks,
) {
    while high != 0 {
        let j = high.trailing_zeros();
        let (class, len) = if block[j as usize] & 0xC0 == 0x80 {
            // The rest of a character that began in the previous block (only at the start
            // of a block: a character's own continuation bytes are painted with it).
            let class = if prev.letter >> 63 != 0 {
                CharClass::Letter
            } else if prev.number >> 63 != 0 {
                CharClass::Number
            } else if prev.space >> 63 != 0 {
                CharClass::Space
            } else {
                CharClass::Other
            };
            (class, 1)
        } else {
            let (class, len) = t.at_non_ascii(bytes, base + j as usize);
            (class, len as u32)
        };
        let bits = if j + len >= 64 {
            u64::MAX << j
        } else {
            ((1u64 << len) - 1) << j
        };
        match class {
            CharClass::Letter => m.letter |= bits,
            CharClass::Number => m.number |= bits,
            CharClass::Space => {
                m.space |= bits;
                m.wide_space |= bits;
            }
            CharClass::Other => {}
        }
        high &= !bits;
    }
}

#[cfg(test)]
mod tests {
    use super::super::gpt2::for_each_pretoken_scalar;
    use super::*;

    /// The block scanner's spans of `text`, checked the same with AVX2's masks where the
    /// processor has them.
    fn spans(text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for_each_span::<Baseline>(text, |s, e| out.push((s, e)));
        #[cfg(target_arch = "x86_64")]
        if super::super::simd::wide_available() {
            let mut wide = Vec::new();
            for_each_span::<super::super::simd::Avx2>(text, |s, e| wide.push((s, e)));
            assert_eq!(wide, out, "AVX2 masks {text:?}");
        }
        out
    }

    fn scalar_spans(text: &str) -> Vec<(usize, usize)> {
        let base = text.as_ptr() as usize;
        let mut out = Vec::new();
        for_each_pretoken_scalar(text, |p| {
            let s = p.as_ptr() as usize - base;
            out.push((s, s + p.len()));
        });
        out
    }

    /// Texts from a small alphabet that hits every rule, at lengths and offsets that put
    /// each rule across block boundaries.
    #[test]
    fn agrees_with_the_scalar_scanner() {
        let alphabet: Vec<&str> = vec![
            "a", "Z", "9", " ", " ", "  ", "'", "'", "s", "l", "ll", "ve", "re", "d", "\n", "\t",
            "\r\n", ".", ",", "é", "中", "😀", "\u{a0}", "\u{3000}", "\u{301}", "٣", "\u{85}",
            "\x1c", "’", "—", "x",
        ];
        let mut lcg = super::super::testing::Lcg::new(11);
        let mut rand = |k: usize| lcg.below(k);
        for round in 0..4000 {
            let len = rand(if round % 4 == 0 { 400 } else { 90 });
            // Some rounds without wide spaces, so long stretches take the fast path.
            let pool = if round % 3 == 0 {
                alphabet.len() - 9
            } else {
                alphabet.len()
            };
            let text: String = (0..len).map(|_| alphabet[rand(pool)]).collect();
            assert_eq!(spans(&text), scalar_spans(&text), "{text:?}");
        }
    }

    #[test]
    fn rules_at_every_block_offset() {
        let pieces = [
            "don't",
            "we'll",
            "'s",
            "''s",
            " 's",
            "\n's",
            "'sss",
            "'ll'",
            "a  b",
            "a   b",
            "a \n b",
            "x\u{a0}y",
            "x \u{3000}  y",
            "é'é",
            "’s",
            "12ab",
            "  ",
            "\n\n\n",
            " !?",
            "'",
        ];
        for piece in pieces {
            for pad in 0..70 {
                for tail in ["", "x", " ", "  ", "\n"] {
                    let text = format!("{}{piece}{tail}", "q".repeat(pad));
                    assert_eq!(spans(&text), scalar_spans(&text), "{text:?}");
                    let text = format!("{}{piece}{tail}", "é".repeat(pad / 2 + 1));
                    assert_eq!(spans(&text), scalar_spans(&text), "{text:?}");
                }
            }
        }
    }

    /// Blocks with every count of pretoken starts from 0 to 64, mixed in the blocks that one
    /// call of the block scanner cuts (it writes a block's ends eight at a time, past the
    /// real ones): four blocks of 64 one-byte pretokens fill a call's buffer.
    #[test]
    fn blocks_with_any_count_of_starts() {
        // `k` one-byte pretokens ("a" and "." in turn), then a word to the block's end.
        let block = |k: usize| -> String {
            let mut s: String = (0..k).map(|i| if i % 2 == 0 { 'a' } else { '.' }).collect();
            s.push_str(&"x".repeat(64 - k));
            s
        };
        for k in 0..=64 {
            let counts = [k, 64, 64 - k, k / 2, 64, 64, 64, 64, 0, k, 1];
            let text: String = counts.iter().map(|&j| block(j)).collect();
            assert_eq!(spans(&text), scalar_spans(&text), "{k}");
            let text = format!("{}{}", block(64).repeat(4), block(k));
            assert_eq!(spans(&text), scalar_spans(&text), "{k}");
        }
    }

    #[test]
    fn empty_and_tiny_texts() {
        assert!(spans("").is_empty());
        assert_eq!(spans("a"), [(0, 1)]);
        assert_eq!(spans(" "), [(0, 1)]);
        assert_eq!(spans("  a"), [(0, 1), (1, 3)]);
        assert_eq!(spans("'s"), [(0, 2)]);
    }
}
