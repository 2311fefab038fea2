//! The merge loop: pair counts kept up to date incrementally, a max-heap of candidate pairs
//! with lazy invalidation, and an index from each pair to the words that may hold it.

use std::cmp::Ordering;

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::word::{pair_key, unpack_pair, PairKey, Words};
use crate::TokenId;

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

fn cmp_candidates(x: &Candidate, y: &Candidate, token_bytes: &[Vec<u8>]) -> Ordering {
    x.count.cmp(&y.count).then_with(|| {
        let (xl, xr) = unpack_pair(x.pair);
        let (yl, yr) = unpack_pair(y.pair);
        let (xl, xr) = (&token_bytes[xl as usize], &token_bytes[xr as usize]);
        let (yl, yr) = (&token_bytes[yl as usize], &token_bytes[yr as usize]);
        (xl, xr).cmp(&(yl, yr))
    })
}

impl PairHeap {
    fn from_vec(items: Vec<Candidate>, token_bytes: &[Vec<u8>]) -> Self {
        let mut heap = PairHeap { items };
        for i in (0..heap.items.len() / 2).rev() {
            heap.sift_down(i, token_bytes);
        }
        heap
    }

    fn push(&mut self, item: Candidate, token_bytes: &[Vec<u8>]) {
        self.items.push(item);
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
    }

    fn pop(&mut self, token_bytes: &[Vec<u8>]) -> Option<Candidate> {
        let last = self.items.len().checked_sub(1)?;
        self.items.swap(0, last);
        let top = self.items.pop();
        self.sift_down(0, token_bytes);
        top
    }

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

/// Counts every adjacent pair of every word, in parallel over ranges of words.
fn count_pairs(words: &Words) -> PairStats {
    const WORDS_PER_TASK: usize = 1 << 16;
    let n = words.len();
    let tasks: Vec<(usize, usize)> = (0..n)
        .step_by(WORDS_PER_TASK)
        .map(|lo| (lo, (lo + WORDS_PER_TASK).min(n)))
        .collect();
    let partial = |&(lo, hi): &(usize, usize)| {
        let mut m: FxHashMap<PairKey, (i64, Vec<u32>)> = FxHashMap::default();
        for w in lo..hi {
            let count = words.count(w) as i64;
            for p in words.tokens(w).windows(2) {
                let e = m.entry(pair_key(p[0], p[1])).or_default();
                e.0 += count;
                if e.1.last() != Some(&(w as u32)) {
                    e.1.push(w as u32);
                }
            }
        }
        m
    };
    // Reducing keeps the word ranges in order, so every index list stays ascending.
    let merged = tasks
        .par_iter()
        .map(partial)
        .reduce(FxHashMap::default, |mut a, mut b| {
            let swap = b.len() > a.len();
            if swap {
                std::mem::swap(&mut a, &mut b);
            }
            for (k, (c, mut ws)) in b {
                let e = a.entry(k).or_default();
                e.0 += c;
                if swap {
                    ws.append(&mut e.1);
                    e.1 = ws;
                } else {
                    e.1.append(&mut ws);
                }
            }
            a
        });
    let mut counts = FxHashMap::with_capacity_and_hasher(merged.len(), Default::default());
    let mut index = FxHashMap::with_capacity_and_hasher(merged.len(), Default::default());
    for (k, (c, ws)) in merged {
        counts.insert(k, c);
        index.insert(k, ws);
    }
    PairStats { counts, index }
}

/// Learns up to `n_merges` merges on `words`. `token_bytes` holds the bytes of every token
/// (the 256 single bytes to begin with) and gains one entry per merge; the merges come back in
/// creation order, merge `i` making token `token_bytes.len()` as it was before, i.e. id
/// `256 + i` when starting from the bytes. Stops early when no pair is left.
pub fn learn_merges(
    words: &mut Words,
    token_bytes: &mut Vec<Vec<u8>>,
    n_merges: usize,
    bar: &ProgressBar,
) -> Vec<(TokenId, TokenId)> {
    let PairStats {
        mut counts,
        mut index,
    } = count_pairs(words);
    let initial = counts
        .iter()
        .filter(|&(_, &c)| c > 0)
        .map(|(&pair, &count)| Candidate { count, pair })
        .collect();
    let mut heap = PairHeap::from_vec(initial, token_bytes);

    let mut merges = Vec::with_capacity(n_merges);
    let mut deltas: FxHashMap<PairKey, i64> = FxHashMap::default();
    while merges.len() < n_merges {
        let Some(best) = pop_current(&mut heap, &counts, token_bytes) else {
            break;
        };
        let (left, right) = unpack_pair(best);
        let new = token_bytes.len() as TokenId;
        let mut bytes = token_bytes[left as usize].clone();
        bytes.extend_from_slice(&token_bytes[right as usize]);
        token_bytes.push(bytes);
        merges.push((left, right));

        let affected = index.remove(&best).unwrap_or_default();
        for &w in &affected {
            let count = words.count(w as usize) as i64;
            words.merge(w as usize, left, right, new, |pair, d| {
                *deltas.entry(pair).or_insert(0) += i64::from(d) * count;
                if d > 0 {
                    let ws = index.entry(pair).or_default();
                    if ws.last() != Some(&w) {
                        ws.push(w);
                    }
                }
            });
        }
        for (pair, d) in deltas.drain() {
            let c = counts.entry(pair).or_insert(0);
            *c += d;
            let c = *c;
            if c <= 0 {
                counts.remove(&pair);
                index.remove(&pair);
                continue;
            }
            // Only pairs with the new token can have grown; all others were only lowered,
            // which `pop_current` notices lazily.
            let (l, r) = unpack_pair(pair);
            if l == new || r == new {
                heap.push(Candidate { count: c, pair }, token_bytes);
            }
        }
        bar.inc(1);
    }
    merges
}

/// Pops the best pair whose stored count is still its current count; stale entries are
/// pushed back with their current count (counts only ever drop, so this finds the maximum).
fn pop_current(
    heap: &mut PairHeap,
    counts: &FxHashMap<PairKey, i64>,
    token_bytes: &[Vec<u8>],
) -> Option<PairKey> {
    loop {
        let top = heap.pop(token_bytes)?;
        match counts.get(&top.pair) {
            Some(&c) if c == top.count => return Some(top.pair),
            Some(&c) if c > 0 => heap.push(
                Candidate {
                    count: c,
                    pair: top.pair,
                },
                token_bytes,
            ),
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
            ws.push(w.as_bytes(), *c);
        }
        let mut tokens = byte_tokens();
        let merges = learn_merges(&mut ws, &mut tokens, n_merges, &ProgressBar::hidden());
        let s = |id: TokenId| String::from_utf8_lossy(&tokens[id as usize]).into_owned();
        merges.into_iter().map(|(l, r)| (s(l), s(r))).collect()
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
        );
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
