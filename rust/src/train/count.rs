//! Counting pretokens in parallel: the text is cut into safe chunks, each worker counts its
//! chunks into its own hash map of slices borrowed from the text, and the maps are merged.

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use crate::corpus::chunk_ranges;
use crate::pretokenize::pretokens;
use crate::special::{Segment, SpecialTokens};

/// Chunks are small enough to balance the workers and move the progress bar, large enough
/// that cutting them costs nothing.
const CHUNK_BYTES: usize = 1 << 20;

/// How often each pretoken occurs in `text` outside special tokens.
pub fn count_pretokens<'a>(
    text: &'a str,
    specials: &'a SpecialTokens,
    bar: &ProgressBar,
) -> FxHashMap<&'a str, u64> {
    let ranges = chunk_ranges(text, specials, CHUNK_BYTES);
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(ranges.len()).max(1);
    // One map per worker (not per chunk), so that merging stays cheap.
    let mut maps: Vec<FxHashMap<&'a str, u64>> = (0..workers)
        .into_par_iter()
        .map(|_| {
            let mut counts: FxHashMap<&'a str, u64> = FxHashMap::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(range) = ranges.get(i) else {
                    return counts;
                };
                let chunk = &text[range.clone()];
                for segment in specials.segments(chunk) {
                    if let Segment::Text(piece) = segment {
                        for token in pretokens(piece) {
                            *counts.entry(token).or_insert(0) += 1;
                        }
                    }
                }
                bar.inc(chunk.len() as u64);
            }
        })
        .collect();
    maps.sort_by_key(|m| std::cmp::Reverse(m.len()));
    let mut maps = maps.into_iter();
    let mut total = maps.next().unwrap_or_default();
    for m in maps {
        for (token, n) in m {
            *total.entry(token).or_insert(0) += n;
        }
    }
    total
}
