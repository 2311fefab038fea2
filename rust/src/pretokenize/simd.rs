//! The byte compares that classify a 64-byte block for the block scanners, in two builds:
//! `Baseline` (SSE2 on x86-64, 16 bytes a compare, what every x86-64 processor has; plain
//! code elsewhere) and `Avx2` (32 bytes a compare).
//!
//! The wheel is built for baseline x86-64, so the wider build is chosen at run time:
//! `Pattern::scan` runs a scanner and the caller's code with it in one function compiled for
//! AVX2, BMI and LZCNT (x86-64-v3's, every x86-64 processor since 2013-2015), where the
//! processor has them. That function holds the whole encode loop, so the bit loops of the
//! rules and the encoder also compile to `tzcnt`/`blsr`. Measured on an AMD EPYC (warm
//! passes over 1 MB of web text, one thread, `encode_stages`): cutting GPT-2's pretokens
//! 0.57 -> 0.44 ms/MB, cl100k's 0.83 -> 0.68, o200k's 0.98 -> 0.83; whole passes about 5%
//! faster, and the same at 10 MB, where the word cache's lookups wait on memory. AVX-512BW
//! (one compare for the 64 bytes) cut no faster than AVX2 there, so there is no third build.
//! `BPELM_NO_AVX2=1` in the environment keeps the baseline build (for comparisons, and for
//! tests of that build on a machine that has AVX2).

use super::gpt2_blocks::Masks;

/// Byte compares over a 64-byte block, bit `i` for byte `i`.
pub(super) trait ByteMasks {
    /// GPT-2's ASCII classes (letters, digits, `\s`, U+0020 and apostrophes; `other` left
    /// empty) and the mask of non-ASCII bytes.
    fn ascii(block: &[u8; 64]) -> (Masks, u64);
    /// The bytes in `lo..=hi` (`lo <= hi`, and not all 256 values).
    fn range(block: &[u8; 64], lo: u8, hi: u8) -> u64;
    /// The bytes equal to `a` or `b`.
    fn equal(block: &[u8; 64], a: u8, b: u8) -> u64;
}

/// What every processor of the target has.
pub(super) struct Baseline;

#[cfg(target_arch = "x86_64")]
impl ByteMasks for Baseline {
    #[inline(always)]
    fn ascii(block: &[u8; 64]) -> (Masks, u64) {
        use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_or_si128, _mm_set1_epi8};
        let mut m = Masks::default();
        let mut high = 0u64;
        for c in 0..4 {
            let v = chunk(block, c);
            // SAFETY: SSE2 is part of x86_64's baseline.
            let (letter, number, space, blank, apostrophe, non_ascii) = unsafe {
                let blank = _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8));
                let lowered: __m128i = _mm_or_si128(v, _mm_set1_epi8(0x20));
                (
                    bits(in_range(lowered, b'a', b'z')),
                    bits(in_range(v, b'0', b'9')),
                    bits(_mm_or_si128(blank, in_range(v, b'\t', b'\r'))),
                    bits(blank),
                    bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\'' as i8))),
                    bits(v),
                )
            };
            let shift = 16 * c;
            m.letter |= letter << shift;
            m.number |= number << shift;
            m.space |= space << shift;
            m.blank |= blank << shift;
            m.apostrophe |= apostrophe << shift;
            high |= non_ascii << shift;
        }
        (m, high)
    }

    #[inline(always)]
    fn range(block: &[u8; 64], lo: u8, hi: u8) -> u64 {
        (0..4).fold(0, |out, c| {
            out | bits(in_range(chunk(block, c), lo, hi)) << (16 * c)
        })
    }

    #[inline(always)]
    fn equal(block: &[u8; 64], a: u8, b: u8) -> u64 {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_or_si128, _mm_set1_epi8};
        (0..4).fold(0, |out, c| {
            let v = chunk(block, c);
            // SAFETY: SSE2 is part of x86_64's baseline.
            let eq = unsafe {
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(a as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)),
                )
            };
            out | bits(eq) << (16 * c)
        })
    }
}

/// The `c`-th 16 bytes of `block` (`c < 4`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn chunk(block: &[u8; 64], c: usize) -> std::arch::x86_64::__m128i {
    // SAFETY: SSE2 is part of x86_64's baseline, and the 16 bytes from `16 * c` are in
    // `block` for `c < 4` (the callers' loops).
    unsafe { std::arch::x86_64::_mm_loadu_si128(block[16 * c..16 * c + 16].as_ptr().cast()) }
}

/// The top bit of each byte of `v`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn bits(v: std::arch::x86_64::__m128i) -> u64 {
    // SAFETY: SSE2 is part of x86_64's baseline.
    u64::from(unsafe { std::arch::x86_64::_mm_movemask_epi8(v) } as u16)
}

/// The bytes of `v` in `lo..=hi`, all ones, as one signed compare: adding `128 - lo` moves
/// the range to the bottom of i8.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn in_range(v: std::arch::x86_64::__m128i, lo: u8, hi: u8) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::{_mm_add_epi8, _mm_cmplt_epi8, _mm_set1_epi8};
    let k = hi - lo + 1;
    // SAFETY: SSE2 is part of x86_64's baseline.
    unsafe {
        let shifted = _mm_add_epi8(v, _mm_set1_epi8(128u8.wrapping_sub(lo) as i8));
        _mm_cmplt_epi8(shifted, _mm_set1_epi8(k.wrapping_sub(128) as i8))
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl ByteMasks for Baseline {
    #[inline(always)]
    fn ascii(block: &[u8; 64]) -> (Masks, u64) {
        let mut m = Masks::default();
        let mut high = 0u64;
        for (i, &b) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match b {
                b'a'..=b'z' | b'A'..=b'Z' => m.letter |= bit,
                b'0'..=b'9' => m.number |= bit,
                b'\t'..=b'\r' => m.space |= bit,
                b' ' => {
                    m.space |= bit;
                    m.blank |= bit;
                }
                b'\'' => m.apostrophe |= bit,
                0x80.. => high |= bit,
                _ => {}
            }
        }
        (m, high)
    }

    #[inline(always)]
    fn range(block: &[u8; 64], lo: u8, hi: u8) -> u64 {
        block.iter().enumerate().fold(0u64, |m, (i, &x)| {
            m | u64::from((lo..=hi).contains(&x)) << i
        })
    }

    #[inline(always)]
    fn equal(block: &[u8; 64], a: u8, b: u8) -> u64 {
        block
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &x)| m | u64::from(x == a || x == b) << i)
    }
}

/// AVX2: one compare for each 32 bytes. Its methods may only run where `wide_available()`
/// holds (they are reached through `Pattern::scan`'s check, or in tests after it).
#[cfg(target_arch = "x86_64")]
pub(super) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl ByteMasks for Avx2 {
    #[inline(always)]
    fn ascii(block: &[u8; 64]) -> (Masks, u64) {
        // SAFETY: only called where the processor has AVX2 (see the type's doc).
        unsafe { wide::ascii(block) }
    }

    #[inline(always)]
    fn range(block: &[u8; 64], lo: u8, hi: u8) -> u64 {
        // SAFETY: as above.
        unsafe { wide::range(block, lo, hi) }
    }

    #[inline(always)]
    fn equal(block: &[u8; 64], a: u8, b: u8) -> u64 {
        // SAFETY: as above.
        unsafe { wide::equal(block, a, b) }
    }
}

/// `Avx2`'s compares, compiled for AVX2 (inlined into the wide scan function, which is
/// compiled for it too).
#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi8, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
    };

    use super::Masks;

    /// The `h`-th 32 bytes of `block` (`h < 2`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn half(block: &[u8; 64], h: usize) -> __m256i {
        // SAFETY: the 32 bytes read are in `block`.
        unsafe { _mm256_loadu_si256(block[32 * h..32 * h + 32].as_ptr().cast()) }
    }

    /// The top bit of each byte of `v`, moved to the `h`-th 32 bits.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bits(v: __m256i, h: usize) -> u64 {
        u64::from(_mm256_movemask_epi8(v) as u32) << (32 * h)
    }

    /// The bytes of `v` in `lo..=hi`, all ones, as one signed compare (see the baseline's
    /// `in_range`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn in_range(v: __m256i, lo: u8, hi: u8) -> __m256i {
        let k = hi - lo + 1;
        let shifted = _mm256_add_epi8(v, _mm256_set1_epi8(128u8.wrapping_sub(lo) as i8));
        _mm256_cmpgt_epi8(_mm256_set1_epi8(k.wrapping_sub(128) as i8), shifted)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn ascii(block: &[u8; 64]) -> (Masks, u64) {
        let mut m = Masks::default();
        let mut high = 0u64;
        for h in 0..2 {
            let v = half(block, h);
            let blank = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b' ' as i8));
            let lowered = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
            m.letter |= bits(in_range(lowered, b'a', b'z'), h);
            m.number |= bits(in_range(v, b'0', b'9'), h);
            m.space |= bits(_mm256_or_si256(blank, in_range(v, b'\t', b'\r')), h);
            m.blank |= bits(blank, h);
            m.apostrophe |= bits(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\'' as i8)), h);
            high |= bits(v, h);
        }
        (m, high)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn range(block: &[u8; 64], lo: u8, hi: u8) -> u64 {
        bits(in_range(half(block, 0), lo, hi), 0) | bits(in_range(half(block, 1), lo, hi), 1)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn equal(block: &[u8; 64], a: u8, b: u8) -> u64 {
        let mut out = 0;
        for h in 0..2 {
            let v = half(block, h);
            let eq = _mm256_or_si256(
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(a as i8)),
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b as i8)),
            );
            out |= bits(eq, h);
        }
        out
    }
}

/// Whether the wide build may run here: the processor has every feature it is compiled
/// for, and `BPELM_NO_AVX2` is not set. Found once per process.
#[cfg(target_arch = "x86_64")]
pub(super) fn wide_available() -> bool {
    use std::sync::OnceLock;
    static WIDE: OnceLock<bool> = OnceLock::new();
    *WIDE.get_or_init(|| {
        std::env::var_os("BPELM_NO_AVX2").is_none_or(|v| v.is_empty() || v == "0")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("lzcnt")
            && std::is_x86_feature_detected!("popcnt")
    })
}

#[cfg(test)]
mod tests {
    use super::super::classes::{letter_table, CharClass};
    use super::*;

    fn agree_with_the_class_table<M: ByteMasks>() {
        let t = letter_table();
        for b in 0..=255u8 {
            let mut block = [b'x'; 64];
            block[5] = b;
            block[63] = b;
            let (m, high) = M::ascii(&block);
            for i in [5, 63] {
                let bit = |x: u64| x >> i & 1 == 1;
                assert_eq!(bit(high), b >= 0x80, "{b:#x}");
                if b < 0x80 {
                    let class = t.ascii[b as usize];
                    assert_eq!(bit(m.letter), class == CharClass::Letter, "{b:#x}");
                    assert_eq!(bit(m.number), class == CharClass::Number, "{b:#x}");
                    assert_eq!(bit(m.space), class == CharClass::Space, "{b:#x}");
                }
                assert_eq!(bit(m.blank), b == b' ', "{b:#x}");
                assert_eq!(bit(m.apostrophe), b == b'\'', "{b:#x}");
            }
            assert_eq!(high & !(1 << 5 | 1 << 63), 0);
            for (lo, hi) in [(b'a', b'z'), (0x80, 0xBF), (0, 0x7F), (0x80, 0xFF), (7, 7)] {
                assert_eq!(
                    M::range(&block, lo, hi) >> 5 & 1 == 1,
                    (lo..=hi).contains(&b)
                );
            }
            assert_eq!(M::equal(&block, b'\n', b) >> 63, 1);
            assert_eq!(M::equal(&block, b, b) >> 5 & 1, 1);
            assert_eq!(
                M::equal(&block, b'\n', b'\r') >> 5 & 1 == 1,
                b == b'\n' || b == b'\r'
            );
        }
        let (_, high) = M::ascii(&[0x80; 64]);
        assert_eq!(high, u64::MAX);
    }

    #[test]
    fn baseline_masks_agree_with_the_class_table() {
        agree_with_the_class_table::<Baseline>();
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn wide_masks_agree_with_the_class_table() {
        if !wide_available() {
            eprintln!("no AVX2 here (or BPELM_NO_AVX2 set): the wide build is not run");
            return;
        }
        agree_with_the_class_table::<Avx2>();
    }
}
