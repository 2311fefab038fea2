//! Counting pretokens in parallel: the text is cut into safe chunks, each worker counts its
//! chunks into its own hash maps, and the maps are merged.
//!
//! Most pretokens are short, so they are keyed by value, packed into a `u128` (bytes, zero
//! padding, length in the last byte): looking one up then compares two integers instead of
//! following a pointer back into the text, which was most of the counting time. Longer ones
//! are keyed by the slice of the text.

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::word::Words;
use crate::corpus::chunk_ranges;
use crate::error::Result;
use crate::pretokenize::Pattern;
use crate::special::{Segment, SpecialTokens};

/// Chunks are small enough to balance the workers and move the progress bar, large enough
/// that cutting them costs nothing.
const CHUNK_BYTES: usize = 1 << 20;

/// Pretokens shorter than this are packed into a `u128` key.
const SHORT: usize = 16;

fn pack(bytes: &[u8]) -> u128 {
    let mut buf = [0u8; SHORT];
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[SHORT - 1] = bytes.len() as u8;
    u128::from_le_bytes(buf)
}

fn unpack(key: &u128) -> ([u8; SHORT], usize) {
    let buf = key.to_le_bytes();
    let len = buf[SHORT - 1] as usize;
    (buf, len)
}

/// Pretoken counts of one worker.
#[derive(Default)]
struct Counts<'a> {
    short: FxHashMap<u128, u64>,
    long: FxHashMap<&'a str, u64>,
}

impl<'a> Counts<'a> {
    #[inline]
    fn add(&mut self, token: &'a str) {
        if token.len() < SHORT {
            *self.short.entry(pack(token.as_bytes())).or_insert(0) += 1;
        } else {
            *self.long.entry(token).or_insert(0) += 1;
        }
    }

    fn absorb(&mut self, other: Counts<'a>) {
        for (k, n) in other.short {
            *self.short.entry(k).or_insert(0) += n;
        }
        for (k, n) in other.long {
            *self.long.entry(k).or_insert(0) += n;
        }
    }

    fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

/// The distinct pretokens (by `pattern`) of `text` outside special tokens, with their
/// counts. Errors only where a custom pattern's regex engine gives up on the text.
pub fn count_words(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    bar: &ProgressBar,
) -> Result<Words> {
    let ranges = chunk_ranges(text, specials, pattern, CHUNK_BYTES);
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(ranges.len()).max(1);
    // One map per worker (not per chunk), so that merging stays cheap.
    let mut all: Vec<Counts> = (0..workers)
        .into_par_iter()
        .map(|_| {
            let mut counts = Counts::default();
            while let Some(range) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                let chunk = &text[range.clone()];
                for segment in specials.segments(chunk) {
                    if let Segment::Text(piece) = segment {
                        pattern.for_each_pretoken(piece, |token| counts.add(token))?;
                    }
                }
                bar.inc(chunk.len() as u64);
            }
            Ok(counts)
        })
        .collect::<Result<_>>()?;
    all.sort_by_key(|c| std::cmp::Reverse(c.len()));
    let mut all = all.into_iter();
    let mut total = all.next().unwrap_or_default();
    for counts in all {
        total.absorb(counts);
    }

    let mut words = Words::new();
    for (key, n) in &total.short {
        let (buf, len) = unpack(key);
        words.push(&buf[..len], *n);
    }
    for (token, n) in &total.long {
        words.push(token.as_bytes(), *n);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_keeps_lengths_apart() {
        for s in ["", "a", "a\0", " hello", "exactly15bytes!"] {
            let (buf, len) = unpack(&pack(s.as_bytes()));
            assert_eq!(&buf[..len], s.as_bytes());
        }
        assert_ne!(pack(b"a"), pack(b"a\0"));
    }
}
