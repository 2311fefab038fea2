//! Counting pretokens in parallel: the text is cut into safe chunks, each worker counts its
//! chunks into its own hash maps, and the maps are merged. A stream (a compressed file) is
//! counted a window at a time into totals that own their long keys.
//!
//! Most pretokens are short, so they are keyed by value, packed into a `u128` (bytes, zero
//! padding, length in the last byte): looking one up then compares two integers instead of
//! following a pointer back into the text, which was most of the counting time. Longer ones
//! are keyed by the slice of the text.
//!
//! The maps grow fallibly (`alloc::try_entry`): a worker that runs out of memory, or sees
//! the call cancelled, stops at the end of its chunk and ends the other workers' loops too.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::word::Words;
use crate::alloc;
use crate::cancel::Stop;
use crate::corpus::chunk_ranges;
use crate::error::{BpeError, Result};
use crate::pretokenize::Pattern;
use crate::special::{Segment, SpecialTokens};
use crate::stream::Stream;

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

const WHAT: &str = "pretoken counts";

/// Adds `n` to `key`'s count, growing `map` fallibly.
#[inline]
fn bump<K: Eq + Hash>(map: &mut FxHashMap<K, u64>, key: K, n: u64) -> Result<()> {
    *alloc::try_entry(map, key, WHAT)?.or_insert(0) += n;
    Ok(())
}

/// Pretoken counts: of one worker, keyed by slices of the text being counted (`L = &str`),
/// or the totals of a stream's windows so far, which outlive each window (`L = Box<str>`).
struct Counts<L> {
    short: FxHashMap<u128, u64>,
    long: FxHashMap<L, u64>,
    /// Why a count was lost (the map could not grow); `add` cannot return it.
    failed: Option<BpeError>,
}

impl<L> Default for Counts<L> {
    fn default() -> Self {
        Counts {
            short: FxHashMap::default(),
            long: FxHashMap::default(),
            failed: None,
        }
    }
}

impl<'a> Counts<&'a str> {
    #[inline]
    fn add(&mut self, token: &'a str) {
        let added = if token.len() < SHORT {
            bump(&mut self.short, pack(token.as_bytes()), 1)
        } else {
            bump(&mut self.long, token, 1)
        };
        if let Err(e) = added {
            self.failed.get_or_insert(e);
        }
    }
}

impl<L: Eq + Hash + Borrow<str>> Counts<L> {
    fn absorb<M: Into<L>>(&mut self, other: Counts<M>) -> Result<()> {
        for (k, n) in other.short {
            bump(&mut self.short, k, n)?;
        }
        for (k, n) in other.long {
            bump(&mut self.long, k.into(), n)?;
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    fn into_words(self) -> Result<Words> {
        let ids = self.short.keys().map(|key| unpack(key).1).sum::<usize>()
            + self
                .long
                .keys()
                .map(|token| token.borrow().len())
                .sum::<usize>();
        let mut words = Words::with_capacity(self.len(), ids)?;
        for (key, n) in &self.short {
            let (buf, len) = unpack(key);
            words.push(&buf[..len], *n)?;
        }
        for (token, n) in &self.long {
            words.push(token.borrow().as_bytes(), *n)?;
        }
        Ok(words)
    }
}

/// The distinct pretokens (by `pattern`) of `text` outside special tokens, with their
/// counts; stops between chunks once `stop` is raised. A custom pattern's regex engine
/// giving up on the text is an error too.
pub fn count_words(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    bar: &ProgressBar,
    stop: &Stop,
) -> Result<Words> {
    count_text(text, specials, pattern, &|n| bar.inc(n as u64), stop)?.into_words()
}

/// Like `count_words`, for a stream read a window of about `window_bytes` at a time; the
/// bar follows `Stream::bar`'s units.
pub fn count_stream(
    stream: Stream,
    window_bytes: usize,
    specials: &SpecialTokens,
    pattern: &Pattern,
    bar: &ProgressBar,
    stop: &Stop,
) -> Result<Words> {
    let mut total = Counts::<Box<str>>::default();
    stream.for_each_window(specials, pattern, window_bytes, |window| {
        let done = AtomicUsize::new(0);
        let counted = count_text(
            window.text,
            specials,
            pattern,
            &|n| {
                let done = done.fetch_add(n, Ordering::Relaxed) + n;
                bar.set_position(window.progress_at(done));
            },
            stop,
        )?;
        total.absorb(counted)
    })?;
    total.into_words()
}

/// The counts of `text`, on the threads of the current pool; `counted(bytes)` after each
/// chunk.
fn count_text<'a>(
    text: &'a str,
    specials: &'a SpecialTokens,
    pattern: &Pattern,
    counted: &(dyn Fn(usize) + Sync),
    stop: &Stop,
) -> Result<Counts<&'a str>> {
    let ranges = chunk_ranges(text, specials, pattern, CHUNK_BYTES);
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(ranges.len()).max(1);
    // One map per worker (not per chunk), so that merging stays cheap.
    let all: Result<Vec<Counts<&str>>> = (0..workers)
        .into_par_iter()
        .map(|_| {
            let mut counts = Counts::default();
            while let Some(range) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) {
                let chunk = &text[range.clone()];
                let mut scanned = Ok(());
                for segment in specials.segments(chunk) {
                    if let Segment::Text(piece) = segment {
                        scanned = pattern.for_each_pretoken(piece, |token| counts.add(token));
                        if scanned.is_err() {
                            break;
                        }
                    }
                }
                counted(chunk.len());
                let ended = match (counts.failed.take(), scanned) {
                    (Some(err), _) | (None, Err(err)) => Err(err),
                    (None, Ok(())) => stop.check(),
                };
                if let Err(err) = ended {
                    // No chunk is left for the other workers either.
                    next.store(ranges.len(), Ordering::Relaxed);
                    return Err(err);
                }
            }
            Ok(counts)
        })
        .collect();
    let mut all = all?;
    all.sort_by_key(|c| std::cmp::Reverse(c.len()));
    let mut all = all.into_iter();
    let mut total = all.next().unwrap_or_default();
    for counts in all {
        total.absorb(counts)?;
    }
    Ok(total)
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

    #[test]
    fn counts_and_stops_when_told() {
        let specials = SpecialTokens::new(&["<s>".to_string()]).expect("valid");
        let text = "the cat<s>the hat and an incomprehensibility";
        let words = count_words(
            text,
            &specials,
            &Pattern::Gpt2,
            &ProgressBar::hidden(),
            &Stop::new(),
        )
        .expect("counts");
        let mut got: Vec<(String, u64)> = (0..words.len())
            .map(|w| {
                let bytes: Vec<u8> = words.tokens(w).iter().map(|&t| t as u8).collect();
                (String::from_utf8(bytes).expect("utf-8"), words.count(w))
            })
            .collect();
        got.sort();
        let want = [" an", " and", " cat", " hat", " incomprehensibility", "the"];
        let want: Vec<(String, u64)> = want
            .iter()
            .map(|s| (s.to_string(), if *s == "the" { 2 } else { 1 }))
            .collect();
        assert_eq!(got, want);

        let stop = Stop::new();
        stop.raise();
        let err = count_words(
            text,
            &specials,
            &Pattern::Gpt2,
            &ProgressBar::hidden(),
            &stop,
        );
        assert!(matches!(err, Err(BpeError::Interrupted)));
    }
}
