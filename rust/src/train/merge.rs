//! The merge loop: pair counts kept up to date incrementally, a max-heap of candidate pairs
//! with lazy invalidation, and an index from each pair to the words that may hold it.
//!
//! Every structure here grows with the input, so all of them grow fallibly (`alloc`): out of
//! memory, the loop ends with `OutOfMemory` (and once the call is cancelled, `Interrupted`,
//! checked before each merge).

use std::cmp::Ordering;

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::word::{pair_key, unpack_pair, PairKey, Words};
use super::Trained;
use crate::alloc::{self, try_entry, try_push, try_room};
use crate::cancel::Stop;
use crate::error::Result;
use crate::TokenId;

const HEAP: &str = "the heap of candidate merges";
const COUNTS: &str = "pair counts";
const INDEX: &str = "the words of each pair";
const VOCAB: &str = "vocabulary";

/// The merges room is made for before the first: more than GPT-2's 50,000.
const MERGES_UP_FRONT: usize = 1 << 16;

/// A candidate merge as it was when pushed: its count may since have dropped.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    count: i64,
    pair: PairKey,
}

/// A binary max-heap ordered by count, ties by the pair's `(left_bytes, right_bytes)`.
/// `std::collections::BinaryHeap` needs `Ord` on the items alone, but the tie-break needs the
/// growing table of token bytes, so the comparison takes it as an argument.
#[derive(Default)]
struct PairHeap {
    items: Vec<Candidate>,
}

// The heap's operations are the merge loop's innermost code: inlined into it always, which
// the compiler stops doing by itself once the loop holds its error paths.
#[inline(always)]
fn cmp_candidates(x: &Candidate, y: &Candidate, token_bytes: &[Vec<u8>]) -> Ordering {
    match x.count.cmp(&y.count) {
        Ordering::Equal => {
            let (xl, xr) = unpack_pair(x.pair);
            let (yl, yr) = unpack_pair(y.pair);
            let (xl, xr) = (&token_bytes[xl as usize], &token_bytes[xr as usize]);
            let (yl, yr) = (&token_bytes[yl as usize], &token_bytes[yr as usize]);
            (xl, xr).cmp(&(yl, yr))
        }
        unequal => unequal,
    }
}

impl PairHeap {
    fn from_vec(items: Vec<Candidate>, token_bytes: &[Vec<u8>]) -> Self {
        let mut heap = PairHeap { items };
        for i in (0..heap.items.len() / 2).rev() {
            heap.sift_down(i, token_bytes);
        }
        heap
    }

    #[inline(always)]
    fn push(&mut self, item: Candidate, token_bytes: &[Vec<u8>]) -> Result<()> {
        try_push(&mut self.items, item, HEAP)?;
        let mut i = self.items.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if cmp_candidates(&self.items[i], &self.items[parent], token_bytes) != Ordering::Greater
            {
                break;
            }
            self.items.swap(i, parent);
            i = parent;
        }
        Ok(())
    }

    #[inline(always)]
    fn pop(&mut self, token_bytes: &[Vec<u8>]) -> Option<Candidate> {
        let last = self.items.len().checked_sub(1)?;
        self.items.swap(0, last);
        let top = self.items.pop();
        self.sift_down(0, token_bytes);
        top
    }

    #[inline(always)]
    fn sift_down(&mut self, mut i: usize, token_bytes: &[Vec<u8>]) {
        let n = self.items.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < n
                && cmp_candidates(&self.items[l], &self.items[best], token_bytes)
                    == Ordering::Greater
            {
                best = l;
            }
            if r < n
                && cmp_candidates(&self.items[r], &self.items[best], token_bytes)
                    == Ordering::Greater
            {
                best = r;
            }
            if best == i {
                return;
            }
            self.items.swap(i, best);
            i = best;
        }
    }
}

/// Pair counts (weighted by word counts) and, per pair, the words holding it (ascending).
struct PairStats {
    counts: FxHashMap<PairKey, i64>,
    index: FxHashMap<PairKey, Vec<u32>>,
}

/// Counts every adjacent pair of every word (all single bytes still, so the pairs fit a dense
/// 256 x 256 table), in parallel over ranges of words.
fn count_byte_pairs(words: &Words) -> Result<PairStats> {
    const N: usize = 256 * 256;
    let n = words.len();
    let tasks = 4 * rayon::current_num_threads();
    let per_task = n.div_ceil(tasks).max(1);
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(per_task)
        .map(|lo| (lo, (lo + per_task).min(n)))
        .collect();
    let partial: Vec<(Vec<i64>, Vec<Vec<u32>>)> = ranges
        .par_iter()
        .map(|&(lo, hi)| {
            let mut counts = alloc::try_filled(N, 0i64, COUNTS)?;
            let mut lists: Vec<Vec<u32>> = alloc::try_filled(N, Vec::new(), INDEX)?;
            for w in lo..hi {
                let count = words.count(w) as i64;
                for p in words.tokens(w).windows(2) {
                    let k = (p[0] as usize) << 8 | p[1] as usize;
                    counts[k] += count;
                    let list = &mut lists[k];
                    if list.last() != Some(&(w as u32)) {
                        try_push(list, w as u32, INDEX)?;
                    }
                }
            }
            Ok((counts, lists))
        })
        .collect::<Result<_>>()?;
    let mut counts = FxHashMap::default();
    let mut index = FxHashMap::default();
    for k in 0..N {
        let total: i64 = partial.iter().map(|(c, _)| c[k]).sum();
        if total == 0 {
            continue;
        }
        let len = partial.iter().map(|(_, l)| l[k].len()).sum();
        let mut list = alloc::try_with_capacity(len, INDEX)?;
        for (_, lists) in &partial {
            list.extend_from_slice(&lists[k]);
        }
        let key = pair_key((k >> 8) as TokenId, (k & 0xff) as TokenId);
        try_room(&mut counts, COUNTS)?;
        counts.insert(key, total);
        try_room(&mut index, INDEX)?;
        index.insert(key, list);
    }
    Ok(PairStats { counts, index })
}

/// Learns up to `n_merges` merges on `words` (words of single bytes, as `Words::push` makes
/// them). Merge `i` makes token `256 + i`; stops early when no pair is left, and with
/// `Interrupted` once `stop` is raised.
pub fn learn_merges(
    mut words: Words,
    n_merges: usize,
    bar: &ProgressBar,
    stop: &Stop,
) -> Result<Trained> {
    // The bytes of each token: 256 small allocations, so fallible too (see `alloc`).
    let mut token_bytes: Vec<Vec<u8>> = alloc::try_with_capacity(256, VOCAB)?;
    for b in 0..=255u8 {
        token_bytes.push(alloc::try_to_vec(&[b], VOCAB)?);
    }
    let PairStats {
        mut counts,
        mut index,
    } = count_byte_pairs(&words)?;
    let mut initial = alloc::try_with_capacity(counts.len(), HEAP)?;
    initial.extend(
        counts
            .iter()
            .map(|(&pair, &count)| Candidate { count, pair }),
    );
    let mut heap = PairHeap::from_vec(initial, &token_bytes);

    // `n_merges` comes from the caller and may be far more than the words can make, or than
    // memory holds (`max_merges` is about the corpus's size): room for at most
    // `MERGES_UP_FRONT` now, more as they come.
    let up_front = n_merges.min(words.max_merges()).min(MERGES_UP_FRONT);
    let mut merges = alloc::try_with_capacity(up_front, VOCAB)?;
    let mut step = Neighbours::default();
    let mut new_pairs: Vec<PairKey> = Vec::new();
    while merges.len() < n_merges {
        stop.check()?;
        let Some(best) = pop_current(&mut heap, &counts, &token_bytes)? else {
            break;
        };
        let (left, right) = unpack_pair(best);
        let new = token_bytes.len() as TokenId;
        let (l, r) = (&token_bytes[left as usize], &token_bytes[right as usize]);
        let mut bytes = alloc::try_with_capacity(l.len() + r.len(), VOCAB)?;
        bytes.extend_from_slice(l);
        bytes.extend_from_slice(r);
        try_push(&mut token_bytes, bytes, VOCAB)?;
        try_push(&mut merges, (left, right), VOCAB)?;
        step.grow(token_bytes.len())?;

        // Tally the replaced occurrences by their neighbours, per neighbour token (dense
        // arrays, no hashing per occurrence); the pair counts are updated once per neighbour.
        let affected = index.remove(&best).unwrap_or_default();
        for (k, &w) in affected.iter().enumerate() {
            if let Some(&ahead) = affected.get(k + 16) {
                words.prefetch_meta(ahead as usize);
            }
            if let Some(&ahead) = affected.get(k + 8) {
                words.prefetch_tokens(ahead as usize);
            }
            let count = words.count(w as usize) as i64;
            words.merge(w as usize, left, right, new, |prev, next| {
                if let Some(p) = prev {
                    step.before.add(p, count, w)?;
                }
                if let Some(x) = next {
                    step.after.add(x, count, w)?;
                }
                Ok(())
            })?;
        }
        // (p, left) becomes (p, new) and (right, x) becomes (new, x). The new pairs are all
        // born in this step; pairs of old tokens were only lowered (`pop_current` notices).
        for (p, n, ws) in step.before.drain() {
            lower(&mut counts, &mut index, pair_key(p, left), n)?;
            let pair = pair_key(p, new);
            *try_entry(&mut counts, pair, COUNTS)?.or_insert(0) += n;
            try_room(&mut index, INDEX)?;
            index.insert(pair, ws);
            try_push(&mut new_pairs, pair, HEAP)?;
        }
        for (x, n, ws) in step.after.drain() {
            lower(&mut counts, &mut index, pair_key(right, x), n)?;
            let pair = pair_key(new, x);
            *try_entry(&mut counts, pair, COUNTS)?.or_insert(0) += n;
            try_room(&mut index, INDEX)?;
            index.insert(pair, ws);
            try_push(&mut new_pairs, pair, HEAP)?;
        }
        // Its own count was never lowered per occurrence (every one of them is gone).
        counts.remove(&best);
        for pair in new_pairs.drain(..) {
            match counts.get(&pair) {
                Some(&count) if count > 0 => {
                    heap.push(Candidate { count, pair }, &token_bytes)?;
                }
                _ => {
                    counts.remove(&pair);
                    index.remove(&pair);
                }
            }
        }
        bar.inc(1);
    }
    Ok(Trained {
        vocab: token_bytes,
        merges,
    })
}

/// Lowers a pair's count by `n`, forgetting the pair once it is gone. The count of `(new,
/// left)` can dip below zero for a moment (lowered before it is raised), so only exactly zero
/// means gone.
fn lower(
    counts: &mut FxHashMap<PairKey, i64>,
    index: &mut FxHashMap<PairKey, Vec<u32>>,
    pair: PairKey,
    n: i64,
) -> Result<()> {
    let c = try_entry(counts, pair, COUNTS)?.or_insert(0);
    *c -= n;
    if *c == 0 {
        counts.remove(&pair);
        index.remove(&pair);
    }
    Ok(())
}

/// Per-step tallies of the tokens found just before (or just after) the replaced
/// occurrences: total word count and the words, indexed densely by token id.
#[derive(Default)]
struct Tally {
    count: Vec<i64>,
    words: Vec<Vec<u32>>,
    touched: Vec<TokenId>,
}

impl Tally {
    fn grow(&mut self, n_tokens: usize) -> Result<()> {
        let more = n_tokens.saturating_sub(self.count.len());
        alloc::try_reserve(&mut self.count, more, INDEX)?;
        alloc::try_reserve(&mut self.words, more, INDEX)?;
        self.count.resize(n_tokens, 0);
        self.words.resize_with(n_tokens, Vec::new);
        Ok(())
    }

    #[inline(always)]
    fn add(&mut self, token: TokenId, count: i64, w: u32) -> Result<()> {
        let t = token as usize;
        if self.words[t].is_empty() {
            try_push(&mut self.touched, token, INDEX)?;
        }
        self.count[t] += count;
        if self.words[t].last() != Some(&w) {
            try_push(&mut self.words[t], w, INDEX)?;
        }
        Ok(())
    }

    /// Each touched token with its total and its words, leaving the tally empty.
    fn drain(&mut self) -> impl Iterator<Item = (TokenId, i64, Vec<u32>)> + '_ {
        self.touched.drain(..).map(|t| {
            let n = std::mem::take(&mut self.count[t as usize]);
            (t, n, std::mem::take(&mut self.words[t as usize]))
        })
    }
}

#[derive(Default)]
struct Neighbours {
    before: Tally,
    after: Tally,
}

impl Neighbours {
    fn grow(&mut self, n_tokens: usize) -> Result<()> {
        self.before.grow(n_tokens)?;
        self.after.grow(n_tokens)
    }
}

/// Pops the best pair whose stored count is still its current count; stale entries are
/// pushed back with their current count (counts only ever drop, so this finds the maximum).
fn pop_current(
    heap: &mut PairHeap,
    counts: &FxHashMap<PairKey, i64>,
    token_bytes: &[Vec<u8>],
) -> Result<Option<PairKey>> {
    loop {
        let Some(top) = heap.pop(token_bytes) else {
            return Ok(None);
        };
        match counts.get(&top.pair) {
            Some(&c) if c == top.count => return Ok(Some(top.pair)),
            Some(&c) if c > 0 => heap.push(
                Candidate {
                    count: c,
                    pair: top.pair,
                },
                token_bytes,
            )?,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn byte_tokens() -> Vec<Vec<u8>> {
        (0..=255u8).map(|b| vec![b]).collect()
    }

    fn train(words: &[(&str, u64)], n_merges: usize) -> Vec<(String, String)> {
        let mut ws = Words::new();
        for (w, c) in words {
            ws.push(w.as_bytes(), *c).expect("room");
        }
        let trained =
            learn_merges(ws, n_merges, &ProgressBar::hidden(), &Stop::new()).expect("trains");
        let s = |id: TokenId| String::from_utf8_lossy(&trained.vocab[id as usize]).into_owned();
        trained
            .merges
            .into_iter()
            .map(|(l, r)| (s(l), s(r)))
            .collect()
    }

    fn pairs(expect: &[(&str, &str)]) -> Vec<(String, String)> {
        expect
            .iter()
            .map(|(l, r)| (l.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn most_frequent_pair_first() {
        // "low" x5, "lower" x2, "newest" x6, "widest" x3 (Sennrich et al.'s example).
        let got = train(&[("low", 5), ("lower", 2), ("newest", 6), ("widest", 3)], 6);
        let want = pairs(&[
            ("s", "t"),
            ("e", "st"),
            ("o", "w"),
            ("l", "ow"),
            ("w", "est"),
            ("n", "e"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn ties_go_to_the_greatest_byte_pair() {
        // ab, cd and ef all occur twice; (e, f) is the greatest, then (c, d), then (a, b).
        let got = train(&[("ab", 2), ("cd", 2), ("ef", 2)], 3);
        assert_eq!(got, pairs(&[("e", "f"), ("c", "d"), ("a", "b")]));
        // Left bytes are compared first: (z, a) > (b, c) > (a, b), all counting 1.
        let got = train(&[("abc", 1), ("za", 1)], 3);
        assert_eq!(got, pairs(&[("z", "a"), ("b", "c"), ("a", "bc")]));
    }

    #[test]
    fn overlapping_occurrences_count_naively() {
        // (a, a) occurs twice in "aaa", tying (b, c) from "bc" x2, and (b, c) > (a, a).
        // After merging (a, a), "aaa" is [aa, a], so (aa, a) counts 1.
        let got = train(&[("aaa", 1), ("bc", 2)], 3);
        assert_eq!(got, pairs(&[("b", "c"), ("a", "a"), ("aa", "a")]));
        let got = train(&[("aaaa", 1)], 5);
        assert_eq!(got, pairs(&[("a", "a"), ("aa", "aa")]));
    }

    #[test]
    fn stops_when_no_pair_is_left() {
        assert_eq!(train(&[("ab", 1), ("c", 9)], 10), pairs(&[("a", "b")]));
        assert!(train(&[], 10).is_empty());
    }

    #[test]
    fn a_raised_stop_ends_the_merges() {
        let mut ws = Words::new();
        ws.push(b"abab", 3).expect("room");
        let stop = Stop::new();
        stop.raise();
        let result = learn_merges(ws, 2, &ProgressBar::hidden(), &stop);
        assert!(matches!(result, Err(crate::BpeError::Interrupted)));
    }

    #[test]
    fn heap_orders_by_count_then_bytes() {
        let tokens = byte_tokens();
        let items = [
            (3, b'a', b'b'),
            (5, b'a', b'a'),
            (3, b'b', b'a'),
            (1, b'z', b'z'),
        ]
        .iter()
        .map(|&(count, l, r)| Candidate {
            count,
            pair: pair_key(l.into(), r.into()),
        })
        .collect();
        let mut heap = PairHeap::from_vec(items, &tokens);
        heap.push(
            Candidate {
                count: 3,
                pair: pair_key(b'b'.into(), b'b'.into()),
            },
            &tokens,
        )
        .expect("room");
        let mut order = Vec::new();
        while let Some(c) = heap.pop(&tokens) {
            let (l, r) = unpack_pair(c.pair);
            order.push((c.count, l as u8, r as u8));
        }
        assert_eq!(
            order,
            [
                (5, b'a', b'a'),
                (3, b'b', b'b'),
                (3, b'b', b'a'),
                (3, b'a', b'b'),
                (1, b'z', b'z')
            ]
        );
    }
}
