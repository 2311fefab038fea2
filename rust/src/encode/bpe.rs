//! Byte-pair encoding of one pretoken: repeatedly merge the adjacent pair of lowest rank,
//! leftmost first among equal ranks, until no adjacent pair is a merge.
//!
//! Short words (the vast majority) use a flat array of parts with their pair ranks cached
//! beside them; long words use a linked list and per-rank queues so that a megabyte of one
//! repeated character stays O(n log n) rather than quadratic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::vocab::Vocab;
use crate::TokenId;

/// Words longer than this (in bytes) take the heap path.
const SHORT_WORD: usize = 128;

const NO_RANK: u32 = u32::MAX;

/// The rank of merging the tokens of bytes `a` then `b`, at `a * 256 + b` (`NO_RANK`: none).
/// A dense 256 KiB table: the first pass over a word looks up only byte pairs, and the
/// merge map is large enough to miss the processor's caches on a fresh text.
pub(crate) fn byte_pair_ranks(vocab: &Vocab) -> Vec<u32> {
    let mut ranks = vec![NO_RANK; 256 * 256];
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            ranks[usize::from(a) * 256 + usize::from(b)] =
                rank_of(vocab, vocab.byte_id(a), vocab.byte_id(b));
        }
    }
    ranks
}

#[inline(always)]
fn byte_rank(byte_ranks: &[u32], a: u8, b: u8) -> u32 {
    byte_ranks[usize::from(a) * 256 + usize::from(b)]
}

/// Appends the tokens of `word` to `out`; `byte_ranks` is `byte_pair_ranks(vocab)`.
pub(crate) fn encode_word(vocab: &Vocab, byte_ranks: &[u32], word: &[u8], out: &mut Vec<TokenId>) {
    match word.len() {
        0 => {}
        1 => out.push(vocab.byte_id(word[0])),
        n if n <= SHORT_WORD => encode_short(vocab, byte_ranks, word, out),
        _ => {
            if !encode_long(vocab, byte_ranks, word, out) {
                encode_long_heap(vocab, word, out);
            }
        }
    }
}

#[inline]
fn rank_of(vocab: &Vocab, left: TokenId, right: TokenId) -> u32 {
    vocab
        .merge_of(left, right)
        .map_or(NO_RANK, |(rank, _)| rank)
}

fn encode_short(vocab: &Vocab, byte_ranks: &[u32], word: &[u8], out: &mut Vec<TokenId>) {
    let n = word.len();
    let mut parts = [0 as TokenId; SHORT_WORD];
    // ranks[i] is the rank of merging parts[i] with parts[i + 1].
    let mut ranks = [NO_RANK; SHORT_WORD];
    for (p, &b) in parts.iter_mut().zip(word) {
        *p = vocab.byte_id(b);
    }
    let mut len = n;
    for i in 0..len - 1 {
        ranks[i] = byte_rank(byte_ranks, word[i], word[i + 1]);
    }
    loop {
        // The leftmost pair of lowest rank.
        let mut best = NO_RANK;
        let mut at = 0;
        for (i, &r) in ranks[..len - 1].iter().enumerate() {
            if r < best {
                best = r;
                at = i;
            }
        }
        if best == NO_RANK {
            break;
        }
        let Some((_, merged)) = vocab.merge_of(parts[at], parts[at + 1]) else {
            break;
        };
        parts[at] = merged;
        parts.copy_within(at + 2..len, at + 1);
        if at + 2 < len - 1 {
            ranks.copy_within(at + 2..len - 1, at + 1);
        }
        len -= 1;
        if at + 1 < len {
            ranks[at] = rank_of(vocab, parts[at], parts[at + 1]);
        }
        if at > 0 {
            ranks[at - 1] = rank_of(vocab, parts[at - 1], parts[at]);
        }
        if len == 1 {
            break;
        }
    }
    out.extend_from_slice(&parts[..len]);
}

/// Linked list over byte positions, with the pending merges grouped by rank.
///
/// A merge of rank `r` makes a token that only merges of higher rank can use, so the lowest
/// pending rank never goes down: ranks are taken in increasing order (a small heap of the
/// distinct ranks pending), and all pairs of one rank are applied left to right (its
/// positions sorted). A position is re-checked when taken (still alive, and its pair with
/// the next part still of that rank), so stale entries are skipped. Sorting each rank's
/// positions, mostly already in order, keeps memory access sequential: a megabyte of one
/// character takes milliseconds, where a heap of every pair missed the cache on each pop.
///
/// Returns false, with `out` untouched, if a merge makes a pair of lower rank than its own
/// (a merge list not in training order), where this order would be wrong.
fn encode_long(vocab: &Vocab, byte_ranks: &[u32], word: &[u8], out: &mut Vec<TokenId>) -> bool {
    let n = word.len();
    const NONE: u32 = u32::MAX;
    let mut ids: Vec<TokenId> = word.iter().map(|&b| vocab.byte_id(b)).collect();
    let mut next: Vec<u32> = (1..=n as u32).collect();
    next[n - 1] = NONE;
    let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut alive = vec![true; n];
    let mut pending: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    let mut ranks: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    let add = |pending: &mut FxHashMap<u32, Vec<u32>>,
               ranks: &mut BinaryHeap<Reverse<u32>>,
               rank: u32,
               left: u32| {
        pending
            .entry(rank)
            .or_insert_with(|| {
                ranks.push(Reverse(rank));
                Vec::new()
            })
            .push(left);
    };
    for i in 0..n - 1 {
        let r = byte_rank(byte_ranks, word[i], word[i + 1]);
        if r != NO_RANK {
            add(&mut pending, &mut ranks, r, i as u32);
        }
    }
    while let Some(Reverse(rank)) = ranks.pop() {
        let Some(mut lefts) = pending.remove(&rank) else {
            continue;
        };
        lefts.sort_unstable();
        lefts.dedup();
        for left in lefts {
            let l = left as usize;
            let right = next[l];
            if !alive[l] || right == NONE {
                continue;
            }
            let r = right as usize;
            let Some((current, merged)) = vocab.merge_of(ids[l], ids[r]) else {
                continue;
            };
            if current != rank {
                continue;
            }
            ids[l] = merged;
            alive[r] = false;
            let after = next[r];
            next[l] = after;
            if after != NONE {
                prev[after as usize] = left;
                let rk = rank_of(vocab, merged, ids[after as usize]);
                if rk < rank {
                    return false;
                }
                if rk != NO_RANK {
                    add(&mut pending, &mut ranks, rk, left);
                }
            }
            let before = prev[l];
            if before != NONE {
                let rk = rank_of(vocab, ids[before as usize], merged);
                if rk < rank {
                    return false;
                }
                if rk != NO_RANK {
                    add(&mut pending, &mut ranks, rk, before);
                }
            }
        }
    }
    let mut i = 0u32;
    while i != NONE {
        out.push(ids[i as usize]);
        i = next[i as usize];
    }
    true
}

/// Linked list over byte positions plus a min-heap of candidate merges `(rank, left
/// position, right position)`. Entries go stale when a neighbour merges; a popped entry
/// is applied only if its two parts are still adjacent and still form that merge. Exact for
/// any merge list; used where a merge list breaks the order `encode_long` relies on.
fn encode_long_heap(vocab: &Vocab, word: &[u8], out: &mut Vec<TokenId>) {
    let n = word.len();
    const NONE: u32 = u32::MAX;
    let mut ids: Vec<TokenId> = word.iter().map(|&b| vocab.byte_id(b)).collect();
    let mut next: Vec<u32> = (1..=n as u32).collect();
    next[n - 1] = NONE;
    let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
    prev[0] = NONE;
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::with_capacity(n);
    for i in 0..n - 1 {
        let r = rank_of(vocab, ids[i], ids[i + 1]);
        if r != NO_RANK {
            heap.push(Reverse((r, i as u32, i as u32 + 1)));
        }
    }
    while let Some(Reverse((rank, left, right))) = heap.pop() {
        let (l, r) = (left as usize, right as usize);
        if !alive[l] || !alive[r] || next[l] != right {
            continue;
        }
        let Some((current, merged)) = vocab.merge_of(ids[l], ids[r]) else {
            continue;
        };
        if current != rank {
            continue;
        }
        ids[l] = merged;
        alive[r] = false;
        let after = next[r];
        next[l] = after;
        if after != NONE {
            prev[after as usize] = left;
            let rk = rank_of(vocab, merged, ids[after as usize]);
            if rk != NO_RANK {
                heap.push(Reverse((rk, left, after)));
            }
        }
        let before = prev[l];
        if before != NONE {
            let rk = rank_of(vocab, ids[before as usize], merged);
            if rk != NO_RANK {
                heap.push(Reverse((rk, before, left)));
            }
        }
    }
    let mut i = 0u32;
    while i != NONE {
        out.push(ids[i as usize]);
        i = next[i as usize];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Bytes plus the merges given as (left, right) strings, tokens added in merge order.
    fn vocab_with(merges: &[(&str, &str)]) -> Vocab {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = merges
            .iter()
            .map(|(l, r)| (l.as_bytes().to_vec(), r.as_bytes().to_vec()))
            .collect();
        for (l, r) in &pairs {
            tokens.push([l.as_slice(), r.as_slice()].concat());
        }
        Vocab::new(tokens, &pairs).unwrap()
    }

    fn encode_both(v: &Vocab, word: &str) -> Vec<Vec<u8>> {
        let mut a = Vec::new();
        let br = byte_pair_ranks(v);
        encode_short(v, &br, word.as_bytes(), &mut a);
        let mut b = Vec::new();
        assert!(encode_long(v, &br, word.as_bytes(), &mut b));
        assert_eq!(a, b, "short and long paths disagree on {word:?}");
        let mut c = Vec::new();
        encode_long_heap(v, word.as_bytes(), &mut c);
        assert_eq!(a, c, "short and heap paths disagree on {word:?}");
        a.iter().map(|&id| v.token(id).unwrap().to_vec()).collect()
    }

    fn strs(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn lowest_rank_merges_first() {
        // "abcd" with merges b+c (rank 0), a+b (rank 1), bc+d (rank 2): b+c wins over a+b,
        // then bc+d; a stays alone.
        let v = vocab_with(&[("b", "c"), ("a", "b"), ("bc", "d")]);
        assert_eq!(encode_both(&v, "abcd"), strs(&["a", "bcd"]));
        assert_eq!(encode_both(&v, "abd"), strs(&["ab", "d"]));
        assert_eq!(encode_both(&v, "xyz"), strs(&["x", "y", "z"]));
    }

    #[test]
    fn equal_ranks_merge_leftmost_first() {
        let v = vocab_with(&[("a", "a"), ("aa", "a")]);
        // aaa: a+a at 0 first -> [aa, a] -> aa+a.
        assert_eq!(encode_both(&v, "aaa"), strs(&["aaa"]));
        // aaaa: [aa, a, a] -> the a+a (rank 0) beats aa+a (rank 1) -> [aa, aa].
        assert_eq!(encode_both(&v, "aaaa"), strs(&["aa", "aa"]));
        assert_eq!(encode_both(&v, "aaaaa"), strs(&["aa", "aaa"]));
        let v = vocab_with(&[("a", "a"), ("aa", "aa")]);
        assert_eq!(encode_both(&v, "aaaaaaa"), strs(&["aaaa", "aa", "a"]));
    }

    #[test]
    fn hand_computed_word() {
        // " lower": merges in this order give " low" + "er".
        let v = vocab_with(&[
            ("e", "r"),
            (" ", "l"),
            (" l", "o"),
            (" lo", "w"),
            ("w", "er"),
        ]);
        assert_eq!(encode_both(&v, " lower"), strs(&[" low", "er"]));
    }

    #[test]
    fn merges_out_of_training_order_fall_back_exactly() {
        // "abc": a+b (rank 1) makes "ab", whose merge with c has rank 0, lower than its own.
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        tokens.push(b"ab".to_vec());
        tokens.push(b"abc".to_vec());
        let pairs = vec![
            (b"ab".to_vec(), b"c".to_vec()),
            (b"a".to_vec(), b"b".to_vec()),
        ];
        let v = Vocab::new(tokens, &pairs).unwrap();
        let word = "abcab".repeat(40);
        let mut long = Vec::new();
        let br = byte_pair_ranks(&v);
        assert!(!encode_long(&v, &br, word.as_bytes(), &mut long));
        assert!(long.is_empty());
        let mut whole = Vec::new();
        encode_word(&v, &br, word.as_bytes(), &mut whole);
        let mut heap = Vec::new();
        encode_long_heap(&v, word.as_bytes(), &mut heap);
        assert_eq!(whole, heap);
        let abc = v.id(b"abc").unwrap();
        assert_eq!(whole.iter().filter(|&&id| id == abc).count(), 40);
    }

    #[test]
    fn rank_queues_agree_with_the_heap_on_random_words() {
        let v = vocab_with(&[
            ("a", "b"),
            ("b", "a"),
            ("a", "a"),
            ("ab", "a"),
            ("ba", "b"),
            ("aa", "ab"),
            ("ab", "ab"),
            ("b", "b"),
            ("aba", "bb"),
            ("abab", "abab"),
        ]);
        let mut seed = 12345u64;
        for len in (130..600).step_by(7) {
            let word: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if (seed >> 33).is_multiple_of(3) {
                        b'b'
                    } else {
                        b'a'
                    }
                })
                .collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(encode_long(&v, &byte_pair_ranks(&v), &word, &mut a));
            encode_long_heap(&v, &word, &mut b);
            assert_eq!(a, b, "{}", String::from_utf8_lossy(&word));
        }
    }

    #[test]
    fn long_word_is_not_quadratic_and_agrees() {
        let v = vocab_with(&[("a", "a"), ("aa", "aa"), ("aaaa", "aaaa")]);
        let word = "a".repeat(1 << 20);
        let mut out = Vec::new();
        encode_word(&v, &byte_pair_ranks(&v), word.as_bytes(), &mut out);
        assert_eq!(out.len(), 1 << 17);
        assert!(out.iter().all(|&id| v.token(id) == Some(&b"aaaaaaaa"[..])));
        // Odd lengths where the paths must agree on the leftover.
        for n in [3, 5, 13, 100, 127, 128] {
            encode_both(&v, &"a".repeat(n));
        }
    }
}
