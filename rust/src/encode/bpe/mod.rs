//! Byte-pair encoding of one pretoken: repeatedly merge the adjacent pair of lowest rank,
//! leftmost first among equal ranks, until no adjacent pair is a merge.
//!
//! Short words (the vast majority) use fixed arrays of slots, one per byte, without
//! branching on the word (`short`); long words use a linked list so that a megabyte of one
//! repeated character stays O(n log n) rather than quadratic. With monotone merges (see
//! `MergeTables`) very long words take the merges rank by rank from buckets of positions and
//! other long words a heap of packed `(rank, position)` keys; otherwise a heap of candidate
//! merges checked by lookup.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::vocab::{MergeTables, Values, Vocab, NO_RANK};
use crate::TokenId;

mod short;

use short::{encode_short_word, encode_short_words};

/// Words longer than this (in bytes) take the heap path, which measured faster from about
/// 32 bytes on (GPT-2's vocabulary, words of web text).
const SHORT_WORD: usize = 31;

/// With monotone merges, words at least this long (in bytes) take the rank-by-rank sweep;
/// shorter ones a packed heap, which measured faster below roughly 10-20 KB of random letters
/// (the `long_word_timing` measurement below).
const SWEEP_WORD: usize = 16 * 1024;

/// Appends the tokens of `word` to `out`.
pub(crate) fn encode_word(vocab: &Vocab, word: &[u8], out: &mut Vec<TokenId>) {
    match word.len() {
        0 => {}
        1 => out.push(vocab.byte_id(word[0])),
        // The short-word loop is built for each form of the merge table, chosen here once.
        2..=SHORT_WORD => match vocab.pairs().values() {
            Values::Narrow(values) => encode_short_word(vocab, &values, word, out),
            Values::Mid(values) => encode_short_word(vocab, &values, word, out),
            Values::MidListed(values) => encode_short_word(vocab, &values, word, out),
            Values::Wide(values) => encode_short_word(vocab, &values, word, out),
        },
        _ => encode_long(vocab, word, out),
    }
}

/// How many words `encode_short_batch` merges together at most.
pub(crate) const BATCH_WORDS: usize = 8;

/// Appends the tokens of each of `words` (at most `BATCH_WORDS`, of 2 to 15 bytes each)
/// to `out`, one after the other, and how many each has to `lens`: the same as
/// `encode_word` on each in turn, the merges of the words interleaved.
pub(crate) fn encode_short_batch(
    vocab: &Vocab,
    words: &[&[u8]],
    out: &mut Vec<TokenId>,
    lens: &mut [usize; BATCH_WORDS],
) {
    match vocab.pairs().values() {
        Values::Narrow(values) => encode_short_words(vocab, &values, words, out, lens),
        Values::Mid(values) => encode_short_words(vocab, &values, words, out, lens),
        Values::MidListed(values) => encode_short_words(vocab, &values, words, out, lens),
        Values::Wide(values) => encode_short_words(vocab, &values, words, out, lens),
    }
}

/// The rank of merging `left` then `right`, or `NO_RANK`.
#[inline]
fn rank_of(vocab: &Vocab, left: TokenId, right: TokenId) -> u32 {
    vocab.pairs().rank(left, right)
}

fn encode_long(vocab: &Vocab, word: &[u8], out: &mut Vec<TokenId>) {
    let tables = vocab.merge_tables();
    if tables.monotone {
        if word.len() >= SWEEP_WORD {
            encode_long_monotone(vocab, tables, word, out);
        } else {
            encode_long_packed(vocab, tables, word, out);
        }
    } else {
        encode_long_heap(vocab, word, out);
    }
}

const NONE: u32 = u32::MAX;

/// Pending merges: for each rank, the left positions of pairs that had that rank when they
/// formed, and a min-heap holding each pending rank once.
#[derive(Default)]
struct RankQueue {
    ranks: BinaryHeap<Reverse<u32>>,
    buckets: FxHashMap<u32, Vec<u32>>,
    spare: Vec<Vec<u32>>,
}

impl RankQueue {
    #[inline]
    fn push(&mut self, rank: u32, left: u32) {
        match self.buckets.entry(rank) {
            Entry::Occupied(e) => e.into_mut().push(left),
            Entry::Vacant(e) => {
                let mut bucket = self.spare.pop().unwrap_or_default();
                bucket.push(left);
                e.insert(bucket);
                self.ranks.push(Reverse(rank));
            }
        }
    }

    /// The lowest pending rank and its positions, sorted.
    fn pop(&mut self) -> Option<(u32, Vec<u32>)> {
        let Reverse(rank) = self.ranks.pop()?;
        let mut bucket = self.buckets.remove(&rank).unwrap_or_default();
        if !bucket.is_sorted() {
            bucket.sort_unstable();
        }
        Some((rank, bucket))
    }

    fn recycle(&mut self, mut bucket: Vec<u32>) {
        bucket.clear();
        self.spare.push(bucket);
    }
}

/// Exact BPE for monotone merges: merging a pair of rank r only creates pairs of higher rank,
/// so the lowest pending rank never decreases and the pairs of one rank can be merged in a
/// single left-to-right sweep over its bucket (merges of one rank never create pairs of that
/// rank, they can only break overlapping ones, as in "aaa"). A bucket entry is applied only
/// if its position still holds that merge's pair; a dead position holds `NONE`.
fn encode_long_monotone(vocab: &Vocab, tables: &MergeTables, word: &[u8], out: &mut Vec<TokenId>) {
    let mut nodes = word_nodes(vocab, word);
    let mut queue = RankQueue::default();
    for_each_byte_pair(tables, word, |rank, left| queue.push(rank, left));
    while let Some((rank, bucket)) = queue.pop() {
        let merge = vocab.merge_at(rank);
        for (k, &left) in bucket.iter().enumerate() {
            // The positions ahead are known: fetch their nodes while this one merges.
            if let Some(&ahead) = bucket.get(k + PREFETCH_AHEAD) {
                prefetch(&nodes, ahead as usize);
            }
            apply_merge(vocab, &mut nodes, left, merge, |rk, at| queue.push(rk, at));
        }
        queue.recycle(bucket);
    }
    read_nodes(&nodes, out);
}

/// Monotone merges, for long words of modest length: one min-heap of `rank << 32 | left`
/// instead of buckets, which costs less when most ranks occur only a few times. Each popped
/// entry is checked against that rank's pair, so no rank lookup is needed to validate it.
fn encode_long_packed(vocab: &Vocab, tables: &MergeTables, word: &[u8], out: &mut Vec<TokenId>) {
    let packed = |rank: u32, left: u32| Reverse((u64::from(rank) << 32) | u64::from(left));
    let mut nodes = word_nodes(vocab, word);
    let mut heap: Vec<Reverse<u64>> = Vec::with_capacity(word.len());
    for_each_byte_pair(tables, word, |rank, left| heap.push(packed(rank, left)));
    let mut heap = BinaryHeap::from(heap);
    while let Some(Reverse(key)) = heap.pop() {
        let (rank, left) = ((key >> 32) as u32, key as u32);
        let merge = vocab.merge_at(rank);
        apply_merge(vocab, &mut nodes, left, merge, |rk, at| {
            heap.push(packed(rk, at))
        });
    }
    read_nodes(&nodes, out);
}

/// One node per byte of `word`, linked in order.
fn word_nodes(vocab: &Vocab, word: &[u8]) -> Vec<Node> {
    let n = word.len() as u32;
    word.iter()
        .zip(0u32..)
        .map(|(&b, i)| Node {
            id: vocab.byte_id(b),
            prev: i.wrapping_sub(1),
            next: if i + 1 < n { i + 1 } else { NONE },
        })
        .collect()
}

/// Calls `push(rank, left position)` for every adjacent byte pair of `word` that merges.
#[inline(always)]
fn for_each_byte_pair(tables: &MergeTables, word: &[u8], mut push: impl FnMut(u32, u32)) {
    for (i, pair) in word.windows(2).enumerate() {
        let rank = tables.byte_pair_rank(pair[0], pair[1]);
        if rank != NO_RANK {
            push(rank, i as u32);
        }
    }
}

/// Applies the merge `[a, b, merged]` at `left` if that position still holds the pair
/// `(a, b)`, and calls `push(rank, left position)` for each mergeable pair it creates with
/// its neighbours. A stale entry (a part already merged away or changed) does nothing.
#[inline(always)]
fn apply_merge(
    vocab: &Vocab,
    nodes: &mut [Node],
    left: u32,
    [a, b, merged]: [TokenId; 3],
    mut push: impl FnMut(u32, u32),
) {
    let Node {
        id,
        next: right,
        prev: before,
    } = nodes[left as usize];
    if id != a || right == NONE {
        return;
    }
    let Node {
        id: right_id,
        next: after,
        ..
    } = nodes[right as usize];
    if right_id != b {
        return;
    }
    nodes[left as usize].id = merged;
    nodes[left as usize].next = after;
    nodes[right as usize].id = NONE;
    if after != NONE {
        let node = &mut nodes[after as usize];
        node.prev = left;
        let rank = rank_of(vocab, merged, node.id);
        if rank != NO_RANK {
            push(rank, left);
        }
    }
    if before != NONE {
        let rank = rank_of(vocab, nodes[before as usize].id, merged);
        if rank != NO_RANK {
            push(rank, before);
        }
    }
}

/// Appends the ids of the live nodes, in order.
fn read_nodes(nodes: &[Node], out: &mut Vec<TokenId>) {
    let mut i = 0u32;
    while i != NONE {
        out.push(nodes[i as usize].id);
        i = nodes[i as usize].next;
    }
}

/// How many bucket entries ahead `encode_long_monotone` prefetches.
const PREFETCH_AHEAD: usize = 16;

/// Asks the CPU to start loading `slice[i]` (if in bounds) into cache; a hint only.
#[inline(always)]
fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(x) = slice.get(i) {
        // SAFETY: a prefetch never faults and never changes memory; the address is in bounds.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}

/// A part of a long word, at the position of its first byte; `id` is `NONE` once merged
/// into the part on its left.
#[derive(Clone, Copy)]
struct Node {
    id: TokenId,
    prev: u32,
    next: u32,
}

/// Linked list over byte positions plus a min-heap of candidate merges `(rank, left
/// position, right position)`. Entries go stale when a neighbour merges; a popped entry
/// is applied only if its two parts are still adjacent and still form that merge.
fn encode_long_heap(vocab: &Vocab, word: &[u8], out: &mut Vec<TokenId>) {
    let n = word.len();
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
        let Some((current, merged)) = vocab.pairs().get(ids[l], ids[r]) else {
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
        let a = encode_all_ways(v, word.as_bytes());
        a.iter().map(|&id| v.token(id).unwrap().to_vec()).collect()
    }

    /// The ids from every path that applies to `word`, checked to agree.
    fn encode_all_ways(v: &Vocab, word: &[u8]) -> Vec<TokenId> {
        let mut heap = Vec::new();
        encode_long_heap(v, word, &mut heap);
        let mut long = Vec::new();
        encode_long(v, word, &mut long);
        assert_eq!(long, heap, "long and heap paths disagree on {word:?}");
        if v.merge_tables().monotone {
            let mut mono = Vec::new();
            encode_long_monotone(v, v.merge_tables(), word, &mut mono);
            assert_eq!(mono, heap, "monotone and heap paths disagree on {word:?}");
            let mut packed = Vec::new();
            encode_long_packed(v, v.merge_tables(), word, &mut packed);
            assert_eq!(packed, heap, "packed and heap paths disagree on {word:?}");
        }
        let mut shorts = Vec::new();
        let n = word.len();
        // Every shape of slots that fits the word.
        let mut try_shape = |fits: bool, f: fn(&Vocab, &[u8], &mut Vec<TokenId>)| {
            if n >= 2 && fits {
                shorts.push(with(|out| f(v, word, out)));
            }
        };
        try_shape(n <= 5, short::encode_in_slots::<8, 4>);
        try_shape(n <= 7, short::encode_in_slots::<8, 6>);
        try_shape(n <= 7, short::encode_in_slots::<8, 7>);
        try_shape(n <= 9, short::encode_in_slots::<16, 8>);
        try_shape(n <= 15, short::encode_in_slots::<16, 14>);
        try_shape(n <= 31, short::encode_in_slots::<32, 30>);
        for short in shorts {
            assert_eq!(short, heap, "short and heap paths disagree on {word:?}");
        }
        assert_eq!(with(|out| encode_word(v, word, out)), heap);
        heap
    }

    fn with(f: impl FnOnce(&mut Vec<TokenId>)) -> Vec<TokenId> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    /// xorshift64*: deterministic test data without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A vocabulary in the way training makes one: each merge joins two tokens that already
    /// exist (over `alphabet` only). Unless `allow_remake`, each token is made by one merge,
    /// which makes the merges monotone; a token made again by a later merge, after an earlier
    /// merge used it, breaks that.
    fn random_trained_vocab(
        rng: &mut Rng,
        alphabet: &[u8],
        n_merges: usize,
        allow_remake: bool,
    ) -> Vocab {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut usable: Vec<Vec<u8>> = alphabet.iter().map(|&b| vec![b]).collect();
        let mut merges: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut tries = 0;
        while merges.len() < n_merges && tries < 100 * n_merges {
            tries += 1;
            // Favour short parts, as real merge lists do.
            let pick = |rng: &mut Rng| {
                let k = rng.below(usable.len()).min(rng.below(usable.len()));
                usable[k].clone()
            };
            let (l, r) = (pick(rng), pick(rng));
            if merges.iter().any(|(a, b)| *a == l && *b == r) {
                continue;
            }
            let joined = [l.as_slice(), r.as_slice()].concat();
            if !tokens.contains(&joined) {
                tokens.push(joined.clone());
                usable.push(joined);
            } else if !allow_remake {
                continue;
            }
            merges.push((l, r));
        }
        Vocab::new(tokens, &merges).unwrap()
    }

    fn random_word(rng: &mut Rng, alphabet: &[u8], len: usize) -> Vec<u8> {
        // Runs of one character as well as mixed text.
        let mut word = Vec::with_capacity(len);
        while word.len() < len {
            let c = alphabet[rng.below(alphabet.len())];
            let run = if rng.below(4) == 0 {
                1 + rng.below(12)
            } else {
                1
            };
            word.extend(std::iter::repeat_n(c, run.min(len - word.len())));
        }
        word
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
    fn long_word_is_not_quadratic_and_agrees() {
        let v = vocab_with(&[("a", "a"), ("aa", "aa"), ("aaaa", "aaaa")]);
        let word = "a".repeat(1 << 20);
        let mut out = Vec::new();
        encode_word(&v, word.as_bytes(), &mut out);
        assert_eq!(out.len(), 1 << 17);
        assert!(out.iter().all(|&id| v.token(id) == Some(&b"aaaaaaaa"[..])));
        // Odd lengths where the paths must agree on the leftover.
        for n in [3, 5, 13, 15, 16, 31, 32, 100, 127, 128] {
            encode_both(&v, &"a".repeat(n));
        }
    }

    #[test]
    fn monotone_flag_follows_the_merge_order() {
        let v = vocab_with(&[("a", "b"), ("ab", "c"), ("c", "ab")]);
        assert!(v.merge_tables().monotone);
        // "ab" + "c" at rank 0 uses "ab", which only rank 1 makes.
        let v = vocab_with(&[("b", "c"), ("ab", "c"), ("a", "b")]);
        assert!(!v.merge_tables().monotone);
        let t = v.merge_tables();
        assert_eq!(t.byte_pair_rank(b'b', b'c'), 0);
        assert_eq!(t.byte_pair_rank(b'a', b'b'), 2);
        assert_eq!(t.byte_pair_rank(b'c', b'b'), NO_RANK);
    }

    #[test]
    fn non_monotone_vocab_falls_back_to_the_heap() {
        let v = vocab_with(&[("b", "c"), ("ab", "c"), ("a", "b"), ("abc", "abc")]);
        assert!(!v.merge_tables().monotone);
        let mut rng = Rng(7);
        for len in [2, 3, 10, 129, 500] {
            for _ in 0..50 {
                let w = random_word(&mut rng, b"abcd", len);
                encode_all_ways(&v, &w);
            }
        }
        // Here the rank-by-rank sweep would be wrong: after b+c (rank 2) merges, bc+b
        // (rank 1) must go before the next b+c, giving [bcb, c], not [bc, bc].
        let v = vocab_with(&[("x", "y"), ("bc", "b"), ("b", "c")]);
        assert!(!v.merge_tables().monotone);
        let w = "bcbc".repeat(50);
        let mut sweep = Vec::new();
        encode_long_monotone(&v, v.merge_tables(), w.as_bytes(), &mut sweep);
        let mut out = Vec::new();
        encode_long(&v, w.as_bytes(), &mut out);
        assert_ne!(sweep, out);
        assert_eq!(out, encode_all_ways(&v, w.as_bytes()));
        assert_eq!(v.token(out[0]), Some(&b"bcb"[..]));
    }

    #[test]
    fn monotone_path_agrees_on_random_words() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut monotone = 0;
        for (alphabet, n_merges) in [
            (&b"ab"[..], 12),
            (&b"abc"[..], 40),
            (&b"a"[..], 6),
            (&b"0123456789"[..], 200),
            (&b"ab \n"[..], 60),
        ] {
            for k in 0..8 {
                let v = random_trained_vocab(&mut rng, alphabet, n_merges, k % 2 == 1);
                assert!(k % 2 == 1 || v.merge_tables().monotone);
                monotone += usize::from(v.merge_tables().monotone);
                for _ in 0..60 {
                    let len = 2 + rng.below(300);
                    let w = random_word(&mut rng, alphabet, len);
                    encode_all_ways(&v, &w);
                }
            }
        }
        // Both kinds were exercised: remade tokens sometimes keep the order, sometimes not.
        assert!(
            (20..40).contains(&monotone),
            "{monotone} of 40 vocabularies were monotone"
        );
    }

    #[test]
    fn tokens_made_by_two_merges_still_agree() {
        // Monotone vocabularies where some token is made by two merges: a bucket may then
        // fill out of position order (the middle of "x x x" made last pushes its right pair
        // before its left one), which the sort in `RankQueue::pop` guards against. (No
        // random case here has needed it so far; the test checks agreement, not the sort.)
        let mut rng = Rng(11);
        let mut checked = 0;
        for _ in 0..400 {
            let v = random_trained_vocab(&mut rng, b"ab", 12, true);
            if !v.merge_tables().monotone {
                continue;
            }
            checked += 1;
            for _ in 0..20 {
                let len = 2 + rng.below(200);
                encode_all_ways(&v, &random_word(&mut rng, b"ab", len));
            }
        }
        assert!(checked > 100, "only {checked} monotone vocabularies");
    }

    #[test]
    fn monotone_path_agrees_on_a_megabyte() {
        let mut rng = Rng(42);
        let v = random_trained_vocab(&mut rng, b"0123456789", 300, false);
        let digits = random_word(&mut rng, b"0123456789", 1 << 20);
        encode_all_ways(&v, &digits);
        let v = random_trained_vocab(&mut rng, b"a", 8, false);
        encode_all_ways(&v, &vec![b'a'; 1 << 20]);
    }

    /// `v` with `extra` filler tokens between the single bytes and the merged tokens, so
    /// that the merged ids no longer fit the narrow form of the merge table.
    fn with_fillers(v: &Vocab, extra: u32) -> Vocab {
        let mut tokens: Vec<Vec<u8>> = v.tokens()[..256].to_vec();
        tokens.extend((0..extra).map(|i| [&b"\xff\xfe"[..], &i.to_le_bytes()].concat()));
        tokens.extend(v.tokens()[256..].iter().cloned());
        let merges: Vec<(Vec<u8>, Vec<u8>)> =
            v.merges().map(|(l, r)| (l.to_vec(), r.to_vec())).collect();
        Vocab::new(tokens, &merges).unwrap()
    }

    /// `with_fillers(v, extra)` with a filler after each merged token too, so that the
    /// merges no longer make their ids in order (the listed mid form).
    fn with_spread_ids(v: &Vocab, extra: u32) -> Vocab {
        let filler = |i: usize| [&b"\xff\xfd"[..], &i.to_le_bytes()].concat();
        let mut tokens: Vec<Vec<u8>> = v.tokens()[..256].to_vec();
        tokens.extend((0..extra).map(|i| [&b"\xff\xfe"[..], &i.to_le_bytes()].concat()));
        for (i, token) in v.tokens()[256..].iter().enumerate() {
            tokens.push(token.clone());
            tokens.push(filler(i));
        }
        let merges: Vec<(Vec<u8>, Vec<u8>)> =
            v.merges().map(|(l, r)| (l.to_vec(), r.to_vec())).collect();
        Vocab::new(tokens, &merges).unwrap()
    }

    #[test]
    fn wide_merge_tables_agree_with_narrow_ones() {
        let mut rng = Rng(21);
        for (alphabet, n_merges, remake) in [(&b"ab"[..], 12, false), (b"abc \n", 80, true)] {
            let narrow = random_trained_vocab(&mut rng, alphabet, n_merges, remake);
            // Merged ids past 0xFFFF, then past what a mid key holds.
            let mid = with_fillers(&narrow, 70_000);
            let listed = with_spread_ids(&narrow, 70_000);
            let wide = with_fillers(&narrow, 1 << 21);
            assert!(matches!(narrow.pairs().values(), Values::Narrow(_)));
            // A merge that makes a token again makes no new id: the ids are then listed.
            match mid.pairs().values() {
                Values::Mid(_) => {}
                Values::MidListed(_) => assert!(remake),
                _ => panic!("expected a mid form"),
            }
            assert!(matches!(listed.pairs().values(), Values::MidListed(_)));
            assert!(matches!(wide.pairs().values(), Values::Wide(_)));
            let bytes_of = |v: &Vocab, ids: &[TokenId]| -> Vec<Vec<u8>> {
                ids.iter()
                    .map(|&id| v.token(id).unwrap().to_vec())
                    .collect()
            };
            for _ in 0..300 {
                let len = 2 + rng.below(60);
                let w = random_word(&mut rng, alphabet, len);
                let want = bytes_of(&narrow, &encode_all_ways(&narrow, &w));
                for v in [&mid, &listed, &wide] {
                    assert_eq!(bytes_of(v, &encode_all_ways(v, &w)), want);
                }
            }
        }
    }

    /// Words merged side by side (`encode_short_batch`, the merges interleaved) get the ids
    /// each gets alone, in every form of merge table, whatever the batch's size.
    #[test]
    fn words_merged_together_agree_with_words_merged_alone() {
        let mut rng = Rng(5);
        let narrow = random_trained_vocab(&mut rng, b"abc \n", 80, true);
        for v in [
            &narrow,
            &with_fillers(&narrow, 70_000),
            &with_spread_ids(&narrow, 70_000),
            &with_fillers(&narrow, 1 << 21),
        ] {
            for _ in 0..300 {
                let n = 1 + rng.below(BATCH_WORDS);
                let words: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let len = 2 + rng.below(14);
                        random_word(&mut rng, b"abc \n", len)
                    })
                    .collect();
                let refs: Vec<&[u8]> = words.iter().map(|w| &w[..]).collect();
                let mut got = Vec::new();
                let mut lens = [0; BATCH_WORDS];
                encode_short_batch(v, &refs, &mut got, &mut lens);
                let mut want = Vec::new();
                let mut want_lens = [0; BATCH_WORDS];
                for (w, len) in words.iter().zip(&mut want_lens) {
                    let start = want.len();
                    encode_word(v, w, &mut want);
                    *len = want.len() - start;
                }
                assert_eq!((got, lens), (want, want_lens));
            }
        }
    }

    #[test]
    fn gpt2_vocab_agrees_on_long_runs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gpt2");
        if !dir.join("vocab.json").exists() {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        }
        let v = Vocab::read_gpt2(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
        assert!(v.merge_tables().monotone);
        let mut rng = Rng(3);
        encode_all_ways(&v, &random_word(&mut rng, b"0123456789", 1 << 18));
        encode_all_ways(&v, &vec![b'a'; 1 << 18]);
        encode_all_ways(&v, &vec![b'\n'; 1 << 18]);
        for _ in 0..200 {
            let len = 2 + rng.below(400);
            encode_all_ways(&v, &random_word(&mut rng, b"abe \nxyz019", len));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod timing {
    use super::*;

    /// Prints the time per byte of both long-word paths on GPT-2's vocab, for words of a few
    /// lengths. A measurement, not a test: `cargo test --release long_word_timing -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn long_word_timing() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gpt2");
        let v = Vocab::read_gpt2(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
        let tables = v.merge_tables();
        let mut seed = 1u64;
        let mut letter = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b"etaoinshrdlucmfwypvbgkqjxz"[((seed >> 33) % 26) as usize]
        };
        for len in [129, 500, 2000, 8000, 30_000, 100_000] {
            let words: Vec<Vec<u8>> = (0..(2_000_000 / len).max(3))
                .map(|_| (0..len).map(|_| letter()).collect())
                .collect();
            let mut out = Vec::new();
            let t = std::time::Instant::now();
            for w in &words {
                out.clear();
                encode_long_heap(&v, w, &mut out);
            }
            let heap = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            for w in &words {
                out.clear();
                encode_long_monotone(&v, tables, w, &mut out);
            }
            let sweep = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            for w in &words {
                out.clear();
                encode_long_packed(&v, tables, w, &mut out);
            }
            let packed = t.elapsed().as_secs_f64();
            let mb = (words.len() * len) as f64 / 1e6;
            println!(
                "len {len:>6}: heap {:6.1} ms/MB, sweep {:6.1} ms/MB, packed heap {:6.1} ms/MB",
                heap * 1e3 / mb,
                sweep * 1e3 / mb,
                packed * 1e3 / mb
            );
        }
    }
}
