//! The merge loop: pair counts kept up to date incrementally, a max-heap of candidate pairs
//! with lazy invalidation, and an index from each pair to the words that may hold it.

use std::cmp::Ordering;

use indicatif::ProgressBar;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::word::{pair_key, unpack_pair, PairKey, Words};
use super::Trained;
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

/// Counts every adjacent pair of every word (all single bytes still, so the pairs fit a dense
/// 256 x 256 table), in parallel over ranges of words.
fn count_byte_pairs(words: &Words) -> PairStats {
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
            let mut counts = vec![0i64; N];
            let mut lists: Vec<Vec<u32>> = vec![Vec::new(); N];
            for w in lo..hi {
                let count = words.count(w) as i64;
                for p in words.tokens(w).windows(2) {
                    let k = (p[0] as usize) << 8 | p[1] as usize;
                    counts[k] += count;
                    let list = &mut lists[k];
                    if list.last() != Some(&(w as u32)) {
                        list.push(w as u32);
                    }
                }
            }
            (counts, lists)
        })
        .collect();
    let mut counts = FxHashMap::default();
    let mut index = FxHashMap::default();
    for k in 0..N {
        let total: i64 = partial.iter().map(|(c, _)| c[k]).sum();
        if total == 0 {
            continue;
        }
        let len = partial.iter().map(|(_, l)| l[k].len()).sum();
        let mut list = Vec::with_capacity(len);
        for (_, lists) in &partial {
            list.extend_from_slice(&lists[k]);
        }
        let key = pair_key((k >> 8) as TokenId, (k & 0xff) as TokenId);
        counts.insert(key, total);
        index.insert(key, list);
    }
    PairStats { counts, index }
}

/// Learns up to `n_merges` merges on `words` (words of single bytes, as `Words::push` makes
/// them). Merge `i` makes token `256 + i`; stops early when no pair is left.
pub fn learn_merges(mut words: Words, n_merges: usize, bar: &ProgressBar) -> Trained {
    let mut token_bytes: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    let PairStats {
        mut counts,
        mut index,
    } = count_byte_pairs(&words);
    let initial = counts
        .iter()
        .map(|(&pair, &count)| Candidate { count, pair })
        .collect();
    let mut heap = PairHeap::from_vec(initial, &token_bytes);

    let mut merges = Vec::with_capacity(n_merges);
    let mut new_pairs: Vec<PairKey> = Vec::new();
    while merges.len() < n_merges {
        let Some(best) = pop_current(&mut heap, &counts, &token_bytes) else {
            break;
        };
        let (left, right) = unpack_pair(best);
        let new = token_bytes.len() as TokenId;
        let mut bytes = token_bytes[left as usize].clone();
        bytes.extend_from_slice(&token_bytes[right as usize]);
        token_bytes.push(bytes);
        merges.push((left, right));

        // Counts change in place. Pairs with the new token are all born in this step: the
        // first word to make one registers it for the heap.
        let affected = index.remove(&best).unwrap_or_default();
        for &w in &affected {
            let count = words.count(w as usize) as i64;
            words.merge(w as usize, left, right, new, |pair, d| {
                *counts.entry(pair).or_insert(0) += i64::from(d) * count;
                if d > 0 {
                    let ws = index.entry(pair).or_default();
                    if ws.is_empty() {
                        new_pairs.push(pair);
                    }
                    if ws.last() != Some(&w) {
                        ws.push(w);
                    }
                }
            });
        }
        counts.remove(&best);
        // Pairs of old tokens were only lowered, which `pop_current` notices lazily.
        for pair in new_pairs.drain(..) {
            match counts.get(&pair) {
                Some(&count) if count > 0 => heap.push(Candidate { count, pair }, &token_bytes),
                _ => {
                    counts.remove(&pair);
                    index.remove(&pair);
                }
            }
        }
        bar.inc(1);
    }
    Trained {
        vocab: token_bytes,
        merges,
    }
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
        let trained = learn_merges(ws, n_merges, &ProgressBar::hidden());
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
