//! Character classes of the split patterns, looked up by code point.
//!
//! Every pattern distinguishes a handful of classes (GPT-2 and cl100k: letters, numbers,
//! whitespace, the rest; o200k also splits letters by case and keeps marks apart). Each
//! pattern's classes are disjoint, so one table per pattern gives a character's class in
//! one or two loads. The code point sets come from `regex-syntax`'s Unicode tables (Unicode
//! 16.0 in regex-syntax 0.8), the ones fancy-regex, and so tiktoken, compiles `\p{..}` and
//! `\s` to: the scanners classify exactly as the reference regex engine does.

use std::collections::HashMap;
use std::hash::Hash;

use regex_syntax::hir::{Class, HirKind};

/// The Unicode version of the tables (regex-syntax 0.8's).
pub const UNICODE_VERSION: &str = "16.0";

/// Code points per second-level block of a class table.
const BLOCK_BITS: u32 = 8;
const BLOCK: usize = 1 << BLOCK_BITS;
const N_CODE_POINTS: usize = 0x11_0000;

/// The class of every code point: a 128-entry table for ASCII, and for the rest a two-level
/// table (block index, then deduplicated blocks of 256 classes).
pub struct ClassTable<C> {
    pub ascii: [C; 128],
    block_of: Vec<u16>,
    blocks: Vec<C>,
}

/// The inclusive code point ranges of a one-class pattern such as `\p{L}`.
pub fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
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

impl<C: Copy + Eq + Hash + Default> ClassTable<C> {
    /// The table that gives each code point in `pattern`'s class its `C` (later pairs win
    /// where classes overlap), and `C::default()` to the rest.
    pub fn build(classes: &[(&str, C)]) -> ClassTable<C> {
        let mut all: Vec<C> = std::iter::repeat_n(C::default(), N_CODE_POINTS).collect();
        for &(pattern, class) in classes {
            for (start, end) in class_ranges(pattern) {
                all[start as usize..=end as usize].fill(class);
            }
        }
        let mut ascii = [C::default(); 128];
        ascii.copy_from_slice(&all[..128]);

        let mut block_of = Vec::with_capacity(N_CODE_POINTS / BLOCK);
        let mut blocks: Vec<C> = Vec::new();
        let mut seen: HashMap<&[C], u16> = HashMap::new();
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
    pub fn of_code_point(&self, cp: u32) -> C {
        let block = self.block_of[(cp >> BLOCK_BITS) as usize] as usize;
        self.blocks[block * BLOCK + (cp as usize & (BLOCK - 1))]
    }

    pub fn of_char(&self, c: char) -> C {
        let cp = u32::from(c);
        if cp < 128 {
            self.ascii[cp as usize]
        } else {
            self.of_code_point(cp)
        }
    }

    /// The class and UTF-8 length of the character starting at `bytes[i]` (a char boundary
    /// of valid UTF-8).
    #[inline(always)]
    pub fn at(&self, bytes: &[u8], i: usize) -> (C, usize) {
        let b0 = bytes[i];
        if b0 < 0x80 {
            return (self.ascii[b0 as usize], 1);
        }
        self.at_non_ascii(bytes, i)
    }

    #[inline(never)]
    pub fn at_non_ascii(&self, bytes: &[u8], i: usize) -> (C, usize) {
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

/// The four classes GPT-2's and cl100k's patterns distinguish. Every code point is in
/// exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum CharClass {
    /// Neither whitespace, letter nor number: `[^\s\p{L}\p{N}]`.
    #[default]
    Other = 0,
    Letter = 1,
    Number = 2,
    Space = 3,
}

/// The classes of o200k's pattern, which tells letters apart by case and keeps marks
/// (`\p{M}`, in both of its letter sets and in its "other" set) apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum CaseClass {
    /// Neither whitespace, letter, mark nor number.
    #[default]
    Other = 0,
    /// `\p{Lu}` and `\p{Lt}`: only in the first letter set.
    Upper = 1,
    /// `\p{Ll}`: only in the second letter set.
    Lower = 2,
    /// `\p{Lm}` and `\p{Lo}`: in both letter sets.
    Caseless = 3,
    /// `\p{M}`: in both letter sets, and not a letter (so also "other").
    Mark = 4,
    Number = 5,
    Space = 6,
}

impl CaseClass {
    /// As a bit, for sets of classes.
    #[inline(always)]
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The GPT-2 / cl100k table (`CharClass`).
pub fn letter_table() -> &'static ClassTable<CharClass> {
    static TABLE: std::sync::OnceLock<ClassTable<CharClass>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        ClassTable::build(&[
            (r"\p{L}", CharClass::Letter),
            (r"\p{N}", CharClass::Number),
            (r"\s", CharClass::Space),
        ])
    })
}

/// The o200k table (`CaseClass`).
pub fn case_table() -> &'static ClassTable<CaseClass> {
    static TABLE: std::sync::OnceLock<ClassTable<CaseClass>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        ClassTable::build(&[
            (r"[\p{Lu}\p{Lt}]", CaseClass::Upper),
            (r"\p{Ll}", CaseClass::Lower),
            (r"[\p{Lm}\p{Lo}]", CaseClass::Caseless),
            (r"\p{M}", CaseClass::Mark),
            (r"\p{N}", CaseClass::Number),
            (r"\s", CaseClass::Space),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_patterns_parse_to_unicode_classes() {
        for pattern in [
            r"\p{L}",
            r"\p{N}",
            r"\s",
            r"[\p{Lu}\p{Lt}]",
            r"\p{Ll}",
            r"[\p{Lm}\p{Lo}]",
            r"\p{M}",
        ] {
            assert!(!class_ranges(pattern).is_empty(), "{pattern}");
        }
    }

    fn disjoint(a: &[(u32, u32)], b: &[(u32, u32)]) -> bool {
        a.iter()
            .all(|&(s, e)| b.iter().all(|&(bs, be)| e < bs || be < s))
    }

    #[test]
    fn each_tables_classes_are_disjoint() {
        let letters = class_ranges(r"\p{L}");
        let numbers = class_ranges(r"\p{N}");
        let spaces = class_ranges(r"\s");
        let marks = class_ranges(r"\p{M}");
        assert!(disjoint(&letters, &numbers) && disjoint(&letters, &spaces));
        assert!(disjoint(&numbers, &spaces));
        for other in [&letters, &numbers, &spaces] {
            assert!(disjoint(&marks, other));
        }
        let parts = [r"[\p{Lu}\p{Lt}]", r"\p{Ll}", r"[\p{Lm}\p{Lo}]"].map(class_ranges);
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert!(disjoint(a, b));
            }
        }
    }

    #[test]
    fn the_case_table_refines_the_letter_table() {
        let (coarse, fine) = (letter_table(), case_table());
        for cp in (0..0x11_0000u32)
            .step_by(7)
            .chain([0x1C5, 0x2B0, 0x301, 0x5D0])
        {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let expected = match fine.of_char(c) {
                CaseClass::Upper | CaseClass::Lower | CaseClass::Caseless => CharClass::Letter,
                CaseClass::Mark | CaseClass::Other => CharClass::Other,
                CaseClass::Number => CharClass::Number,
                CaseClass::Space => CharClass::Space,
            };
            assert_eq!(coarse.of_char(c), expected, "{c:?}");
        }
        assert_eq!(fine.of_char('ǅ'), CaseClass::Upper); // Lt
        assert_eq!(fine.of_char('ʰ'), CaseClass::Caseless); // Lm
        assert_eq!(fine.of_char('א'), CaseClass::Caseless); // Lo
        assert_eq!(fine.of_char('\u{301}'), CaseClass::Mark);
        assert_eq!(fine.of_char('ß'), CaseClass::Lower);
    }
}
