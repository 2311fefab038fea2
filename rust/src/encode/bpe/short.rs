//! BPE of short words in fixed arrays of slots, one slot per byte.
//!
//! A part stays in the slot of its first byte; a merge empties the right part's slot and
//! links around it, so nothing shifts. Every step (setting up, finding the lowest rank,
//! reading out) works on a fixed number of slots, chosen by the word's length, without
//! branching on the word: a word pays for no mispredicted branch but the one that ends its
//! merges. Words of up to 31 bytes come here (99% of those that need merges in web text).
//!
//! The pair starting at each slot has an order key: the pair's merge value (which orders
//! like the rank and, for narrow vocabularies, holds the merged id), then the slots of the
//! next two parts, then its own slot. So the lowest key is the leftmost pair of lowest rank
//! and says, with no further lookup, what it merges into and which slots it touches.

#[cfg(test)]
use crate::vocab::Values;
use crate::vocab::{MergeValues, Vocab, NO_VALUE};
use crate::TokenId;

/// Appends the BPE of `word`, of 2 to 31 bytes, to `out`.
#[inline(always)]
pub(super) fn encode_short_word<V: MergeValues>(
    vocab: &Vocab,
    values: &V,
    word: &[u8],
    out: &mut Vec<TokenId>,
) {
    // Slots for the bytes and at least one spare, and the pair lanes to scan, by length.
    match word.len() {
        ..=5 => encode_short::<8, 4, V>(vocab, values, word, out),
        6..=7 => encode_short::<8, 6, V>(vocab, values, word, out),
        8..=9 => encode_short::<16, 8, V>(vocab, values, word, out),
        10..=13 => encode_short::<16, 12, V>(vocab, values, word, out),
        14..=15 => encode_short::<16, 14, V>(vocab, values, word, out),
        _ => encode_short::<32, 30, V>(vocab, values, word, out),
    }
}

/// `encode_short` with `S` slots and `L` lanes whatever the word's length (2 to
/// `min(S - 1, L + 1)` bytes), for tests.
#[cfg(test)]
pub(super) fn encode_in_slots<const S: usize, const L: usize>(
    vocab: &Vocab,
    word: &[u8],
    out: &mut Vec<TokenId>,
) {
    match vocab.pairs().values() {
        Values::Narrow(values) => encode_short::<S, L, _>(vocab, &values, word, out),
        Values::Mid(values) => encode_short::<S, L, _>(vocab, &values, word, out),
        Values::MidListed(values) => encode_short::<S, L, _>(vocab, &values, word, out),
        Values::Wide(values) => encode_short::<S, L, _>(vocab, &values, word, out),
    }
}

/// Appends the BPE of `word` to `out`, in `S` slots of which the first `L` may start a pair:
/// `word` has 2 to `S - 1` bytes and at most `L + 1`. The last slot is always empty: it
/// stands in for the neighbour before the first part.
#[inline(always)]
fn encode_short<const S: usize, const L: usize, V: MergeValues>(
    vocab: &Vocab,
    values: &V,
    word: &[u8],
    out: &mut Vec<TokenId>,
) {
    let mut word = ShortWord::<S, L, V>::new(vocab, word);
    while word.merge(values) {}
    word.append_to(out);
}

/// Appends the BPE of each of `words` (at most `K`, of 2 to 15 bytes each) to `out`, one
/// after the other, and how many ids each has to `lens`; their merges interleaved: each
/// merge waits on memory (a merged id, then the slots of the two pairs it forms), and the
/// merges of different words do not wait on each other, so the processor overlaps them.
#[inline(always)]
pub(super) fn encode_short_words<const K: usize, V: MergeValues>(
    vocab: &Vocab,
    values: &V,
    words: &[&[u8]],
    out: &mut Vec<TokenId>,
    lens: &mut [usize; K],
) {
    debug_assert!(words.len() <= K);
    let mut states: [Option<ShortWord<16, 14, V>>; K] =
        std::array::from_fn(|i| words.get(i).map(|w| ShortWord::new(vocab, w)));
    let mut active = [true; K];
    loop {
        let mut any = false;
        for (state, live) in states.iter_mut().zip(active.iter_mut()) {
            if let (Some(state), true) = (state, *live) {
                *live = state.merge(values);
                any |= *live;
            }
        }
        if !any {
            break;
        }
    }
    for (state, len) in states.iter().flatten().zip(lens.iter_mut()) {
        let start = out.len();
        state.append_to(out);
        *len = out.len() - start;
    }
}

/// One word being merged in `S` slots of which the first `L` may start a pair.
struct ShortWord<const S: usize, const L: usize, V: MergeValues> {
    parts: [TokenId; S],
    next: [u8; S],
    prev: [u8; S],
    order: [u64; S],
    values: std::marker::PhantomData<V>,
}

impl<const S: usize, const L: usize, V: MergeValues> ShortWord<S, L, V> {
    /// `word` (2 to `S - 1` bytes and at most `L + 1`) as single bytes, with the values of
    /// their pairs.
    #[inline(always)]
    fn new(vocab: &Vocab, word: &[u8]) -> Self {
        const { assert!(S.is_power_of_two() && S <= 256 && L < S) };
        let n = word.len();
        debug_assert!(n >= 2 && n < S && n <= L + 1);
        let byte_pairs = &vocab.merge_tables().byte_pairs;
        let last = n - 1;
        let mut bytes = [0u8; S];
        for (i, b) in bytes.iter_mut().enumerate().take(L + 1) {
            *b = word[i.min(last)];
        }
        let mut parts = [V::DEAD; S];
        for (i, (p, &b)) in parts.iter_mut().zip(&bytes).enumerate().take(L + 1) {
            *p = std::hint::select_unpredictable(i < n, vocab.byte_id(b), V::DEAD);
        }
        // Live slots, linked: slot n (empty) follows the last part, slot S - 1 (empty)
        // precedes the first. Indices are masked to S - 1, which they never exceed, to
        // spare bounds checks.
        let mut next = [0u8; S];
        let mut prev = [0u8; S];
        for i in 0..S {
            next[i] = (i + 1).min(S - 1) as u8;
            prev[i] = i.wrapping_sub(1).min(S - 1) as u8;
        }
        // The first pass sees only single bytes: a dense table, not the merge table.
        let mut order = [order_key(NO_VALUE, 0, 0, 0); S];
        for (i, o) in order.iter_mut().enumerate().take(L) {
            let value = byte_pairs.value(bytes[i], bytes[i + 1]);
            let value = if i < last { value } else { NO_VALUE };
            *o = order_key(value, i, i + 1, i + 2);
        }
        ShortWord {
            parts,
            next,
            prev,
            order,
            values: std::marker::PhantomData,
        }
    }

    /// Makes the word's next merge; false when no pair of it merges.
    #[inline(always)]
    fn merge(&mut self, values: &V) -> bool {
        let key = lowest::<L, S>(&self.order);
        let value = (key >> 24) as u32;
        if value == NO_VALUE {
            return false;
        }
        let slot = |shift: u32| (key >> shift) as usize & (S - 1);
        let (at, right, after) = (slot(0), slot(8), slot(16));
        let merged = values.merged(value);
        let before = usize::from(self.prev[at]) & (S - 1);
        let beyond = usize::from(self.next[after]) & (S - 1);
        self.parts[at] = merged;
        self.parts[right] = V::DEAD;
        self.order[right] = order_key(NO_VALUE, right, 0, 0);
        self.next[at] = after as u8;
        self.prev[after] = at as u8;
        let (left, after_part) = (self.parts[before], self.parts[after]);
        self.order[at] = order_key(values.value(merged, after_part), at, after, beyond);
        self.order[before] = order_key(values.value(left, merged), before, at, after);
        true
    }

    /// Appends the word's parts to `out`: all `L + 1` are gathered to the front and
    /// appended (a copy of fixed size, done inline), and the tail cut off.
    #[inline(always)]
    fn append_to(&self, out: &mut Vec<TokenId>) {
        let mut live = [0; S];
        let mut k = 0;
        for &p in self.parts.iter().take(L + 1) {
            live[k & (S - 1)] = p;
            k += usize::from(p != V::DEAD);
        }
        let start = out.len();
        out.extend_from_slice(&live[..=L]);
        out.truncate(start + k);
    }
}

/// The order key of the pair at `slot`, whose right part is at `right` and the part after
/// it at `after`. Pairs of equal value are the same merge, and then the slots order them
/// left to right (the later slots grow with `slot`).
#[inline(always)]
fn order_key(value: u32, slot: usize, right: usize, after: usize) -> u64 {
    debug_assert!(slot.max(right).max(after) <= 0xFF);
    (u64::from(value) << 24) | ((after as u64) << 16) | ((right as u64) << 8) | slot as u64
}

/// The lowest of the first `L` keys, by halving: a chain of `log2(L)` comparisons rather
/// than `L`.
#[inline(always)]
fn lowest<const L: usize, const S: usize>(keys: &[u64; S]) -> u64 {
    const { assert!(L <= S) };
    let mut level: [u64; L] = std::array::from_fn(|i| keys[i]);
    let mut width = L;
    while width > 1 {
        let half = width.div_ceil(2);
        for i in 0..width / 2 {
            level[i] = level[i].min(level[i + half]);
        }
        width = half;
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_is_the_leftmost_lowest_value() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..500 {
            // Few distinct ranks, so the lowest repeats; no rank at all included.
            let values = [0, 1, 2, 1 << 31, NO_VALUE - 1, NO_VALUE];
            let mut value = || values[(next() % 6) as usize];
            let keys: [u64; 16] = std::array::from_fn(|i| order_key(value(), i, i + 1, i + 2));
            let best = keys.iter().map(|k| k >> 24).min().unwrap_or(0);
            let first = keys.iter().position(|k| k >> 24 == best).unwrap_or(0);
            assert_eq!(
                lowest::<16, 16>(&keys),
                order_key(best as u32, first, first + 1, first + 2)
            );
            let best = keys[..7].iter().map(|k| k >> 24).min().unwrap_or(0);
            let first = keys.iter().position(|k| k >> 24 == best).unwrap_or(0);
            assert_eq!(
                lowest::<7, 16>(&keys),
                order_key(best as u32, first, first + 1, first + 2)
            );
        }
        let mut keys: [u64; 128] = std::array::from_fn(|i| order_key(NO_VALUE, i, 0, 0));
        assert_eq!(lowest::<128, 128>(&keys), order_key(NO_VALUE, 0, 0, 0));
        keys[126] = order_key(5, 126, 0, 0);
        assert_eq!(lowest::<127, 128>(&keys), order_key(5, 126, 0, 0));
        assert_eq!(lowest::<126, 128>(&keys), order_key(NO_VALUE, 0, 0, 0));
    }
}
