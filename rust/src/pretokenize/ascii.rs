//! Runs of ASCII letters or digits, eight bytes at a time: most words end inside the first
//! eight bytes, and a byte-at-a-time class lookup per letter was most of a scanner's time.

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

/// Which ASCII bytes a run is made of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AsciiSet {
    /// `a-z` and `A-Z`.
    Letters,
    /// `a-z`.
    Lower,
    /// `A-Z`.
    Upper,
    /// `0-9`.
    Digits,
}

/// How many of the 8 bytes at `bytes[i..]` (from the first) are in `set`, or `None` where
/// fewer than 8 bytes remain.
#[inline(always)]
fn run_in_word(bytes: &[u8], i: usize, set: AsciiSet) -> Option<usize> {
    let word: [u8; 8] = bytes.get(i..i + 8)?.try_into().ok()?;
    let x = u64::from_le_bytes(word);
    let members = match set {
        AsciiSet::Letters => ascii_in_range(x | splat(0x20), b'a', b'z'),
        AsciiSet::Lower => ascii_in_range(x, b'a', b'z'),
        AsciiSet::Upper => ascii_in_range(x, b'A', b'Z'),
        AsciiSet::Digits => ascii_in_range(x, b'0', b'9'),
    };
    Some(((!members & HIGH_BITS).trailing_zeros() / 8) as usize)
}

/// The end of the run of `set` bytes from `i`, as far as eight-byte words reach (the
/// caller goes on byte by byte, where the run may continue with non-ASCII characters or
/// fewer than eight bytes remain).
#[inline(always)]
pub fn ascii_run(bytes: &[u8], mut i: usize, set: AsciiSet) -> usize {
    while let Some(k) = run_in_word(bytes, i, set) {
        i += k;
        if k < 8 {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_agree_with_a_byte_by_byte_check() {
        let sets = [
            (
                AsciiSet::Letters,
                u8::is_ascii_alphabetic as fn(&u8) -> bool,
            ),
            (AsciiSet::Lower, u8::is_ascii_lowercase),
            (AsciiSet::Upper, u8::is_ascii_uppercase),
            (AsciiSet::Digits, u8::is_ascii_digit),
        ];
        let mut lcg = super::super::testing::Lcg::new(3);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..24)
                .map(|_| {
                    // Mostly letters and digits, with every byte value now and then.
                    let r = lcg.below(256) as u8;
                    if r.is_multiple_of(5) {
                        r
                    } else {
                        b"aZ9mQ0z@[`{/:"[r as usize % 13]
                    }
                })
                .collect();
            for (set, member) in sets {
                let end = ascii_run(&bytes, 0, set);
                let full = bytes.iter().take_while(|b| member(b)).count();
                // Exact as far as whole words reach, and never past the run.
                assert!(end <= full, "{bytes:?} {set:?}");
                assert!(end == full || bytes.len() - end < 8, "{bytes:?} {set:?}");
            }
        }
    }
}
