//! The merge lookup: (left id, right id) -> rank and merged id.
//!
//! The encoder asks this for every adjacent pair it forms, mostly pairs that do not merge,
//! and on fresh text the table is not in cache. So it is a perfect hash table ("hash and
//! displace", `Displaced`): a lookup reads one entry of a small displacement table, which
//! stays in cache, then one 8-byte slot, and compares one key, with no probing and no
//! branch. GPT-2's 50,000 merges take 512 KiB of slots and 16 KiB of displacements.
//!
//! Narrow vocabularies (all byte and merge ids and ranks below `0xFFFF`, GPT-2's among
//! them) key a pair by the two ids in a `u32` and give it the value `rank << 16 | merged`,
//! so one lookup yields both. Others give the rank: keyed, with the rank, in one `u64` slot
//! while ids and ranks stay below `MID_LIMIT` (cl100k's and o200k's do), else by a `u64` in
//! a slot of 16 bytes. The slots are what a cold pass over text misses the processor's
//! caches on, a merge after another, so their size is the table's speed: o200k's 200,000
//! merges take 2 MiB of 8-byte slots. Either way a value orders like the rank and
//! `NO_VALUE` (above all) means no merge.
//!
//! The id a merge makes then comes from its rank: by adding the first merge's id where
//! each merge makes the next id (`InOrder`: tiktoken's vocabularies, and any trained one
//! that numbers its tokens as it makes them), else from a table by rank (`Listed`). The
//! addition takes a load off each merge's chain of dependent loads (made id, then the
//! pairs it forms), which on a cold pass waits on memory: cold cl100k and o200k passes
//! 3-10% faster.
//!
//! `BytePairs` holds the values of all pairs of single bytes.

use crate::TokenId;

/// The rank of a pair that does not merge.
pub(crate) const NO_RANK: u32 = u32::MAX;

/// The value of a pair that does not merge.
pub(crate) const NO_VALUE: u32 = u32::MAX;

/// (left, right) -> rank and merged id of their merge.
#[derive(Debug, Clone)]
pub(crate) struct PairTable {
    layout: Layout,
    /// The merged id of each rank.
    merged: Vec<TokenId>,
    /// Set where each merge makes the next id.
    in_order: Option<InOrder>,
}

#[derive(Debug, Clone)]
enum Layout {
    Narrow(Displaced<NarrowKey>),
    Mid(Displaced<MidKey>),
    Wide(Displaced<WideKey>),
}

/// The value of a pair and what it says, for the encoder's inner loop, which is built once
/// for each form (`PairTable::values`).
pub(crate) trait MergeValues {
    /// An id of no token, which merges with nothing and needs no clamping in `value`.
    const DEAD: TokenId;
    /// The value of merging `left` then `right`: orders like the rank; `NO_VALUE` if none.
    /// Each id must be `DEAD` or a byte's or merge's (a narrow key holds them unclamped).
    fn value(&self, left: TokenId, right: TokenId) -> u32;
    /// The id a merge makes, from its value (not `NO_VALUE`).
    fn merged(&self, value: u32) -> TokenId;
}

/// `PairTable`'s four forms, to choose between once per word.
pub(crate) enum Values<'a> {
    Narrow(NarrowValues<'a>),
    Mid(WideValues<'a, MidKey, InOrder>),
    MidListed(WideValues<'a, MidKey, Listed<'a>>),
    Wide(WideValues<'a, WideKey, Listed<'a>>),
}

pub(crate) struct NarrowValues<'a>(&'a Displaced<NarrowKey>);

/// The forms whose value is the rank, with `M` to find the id a merge makes.
pub(crate) struct WideValues<'a, K: PairKey, M: MergedIds> {
    table: &'a Displaced<K>,
    merged: M,
}

/// The id that the merge of a rank makes.
pub(crate) trait MergedIds {
    fn of(&self, rank: u32) -> TokenId;
}

/// Merges that each make the next id: the merge of rank `r` makes id `first + r`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InOrder(TokenId);

impl MergedIds for InOrder {
    #[inline(always)]
    fn of(&self, rank: u32) -> TokenId {
        self.0 + rank
    }
}

/// The id each merge makes, by rank.
pub(crate) struct Listed<'a>(&'a [TokenId]);

impl MergedIds for Listed<'_> {
    #[inline(always)]
    fn of(&self, rank: u32) -> TokenId {
        self.0[rank as usize]
    }
}

/// `InOrder(first)` where the merges make the ids `first`, `first + 1`, ... in rank order.
fn in_order(merges: &[[TokenId; 3]]) -> Option<InOrder> {
    let first = merges.first().map_or(0, |m| m[2]);
    merges
        .iter()
        .zip(0u32..)
        .all(|(&[_, _, m], rank)| first.checked_add(rank) == Some(m))
        .then_some(InOrder(first))
}

impl MergeValues for NarrowValues<'_> {
    const DEAD: TokenId = NARROW_LIMIT;

    #[inline(always)]
    fn value(&self, left: TokenId, right: TokenId) -> u32 {
        debug_assert!(left <= NARROW_LIMIT && right <= NARROW_LIMIT);
        let live = left.max(right) < NARROW_LIMIT;
        self.0.value_of_live(NarrowKey((left << 16) | right), live)
    }

    #[inline(always)]
    fn merged(&self, value: u32) -> TokenId {
        value & 0xFFFF
    }
}

impl<K: PairKey, M: MergedIds> MergeValues for WideValues<'_, K, M> {
    const DEAD: TokenId = TokenId::MAX;

    #[inline(always)]
    fn value(&self, left: TokenId, right: TokenId) -> u32 {
        self.table.value(left, right)
    }

    #[inline(always)]
    fn merged(&self, value: u32) -> TokenId {
        self.merged.of(value)
    }
}

impl PairTable {
    /// The table of `merges`: `(left, right, merged)` in rank order, no pair twice, in a
    /// vocabulary whose single bytes are `byte_ids`.
    pub(crate) fn new(merges: &[[TokenId; 3]], byte_ids: &[TokenId; 256]) -> Self {
        let narrow = merges.len() < NARROW_LIMIT as usize
            && byte_ids.iter().all(|&b| b < NARROW_LIMIT)
            && merges.iter().flatten().all(|&id| id < NARROW_LIMIT);
        let mid = merges.len() < MID_LIMIT as usize
            && byte_ids.iter().all(|&b| b < MID_LIMIT)
            && merges.iter().flatten().all(|&id| id < MID_LIMIT);
        let layout = if narrow {
            let values = merges
                .iter()
                .zip(0u32..)
                .map(|(&[_, _, m], rank)| (rank << 16) | m);
            Layout::Narrow(Displaced::new(merges, values))
        } else if mid {
            Layout::Mid(Displaced::new(merges, 0u32..))
        } else {
            Layout::Wide(Displaced::new(merges, 0u32..))
        };
        let merged = merges.iter().map(|&[_, _, m]| m).collect();
        PairTable {
            layout,
            merged,
            in_order: in_order(merges),
        }
    }

    /// The four forms, for code built for each.
    #[inline(always)]
    pub(crate) fn values(&self) -> Values<'_> {
        match &self.layout {
            Layout::Narrow(table) => Values::Narrow(NarrowValues(table)),
            Layout::Mid(table) => match self.in_order {
                Some(merged) => Values::Mid(WideValues { table, merged }),
                None => Values::MidListed(WideValues {
                    table,
                    merged: Listed(&self.merged),
                }),
            },
            Layout::Wide(table) => Values::Wide(WideValues {
                table,
                merged: Listed(&self.merged),
            }),
        }
    }

    /// The value of merging `left` then `right`, any ids.
    #[inline(always)]
    fn value(&self, left: TokenId, right: TokenId) -> u32 {
        match &self.layout {
            Layout::Narrow(table) => table.value(left, right),
            Layout::Mid(table) => table.value(left, right),
            Layout::Wide(table) => table.value(left, right),
        }
    }

    /// The rank a value stands for (`NO_RANK` for `NO_VALUE`).
    #[inline(always)]
    fn rank_of_value(&self, value: u32) -> u32 {
        rank_of_value(matches!(self.layout, Layout::Narrow(_)), value)
    }

    /// The rank of merging `left` then `right`, or `NO_RANK`.
    #[inline(always)]
    pub(crate) fn rank(&self, left: TokenId, right: TokenId) -> u32 {
        self.rank_of_value(self.value(left, right))
    }

    /// The id made by the merge of rank `rank`, which must exist.
    #[inline(always)]
    pub(crate) fn merged(&self, rank: u32) -> TokenId {
        self.merged[rank as usize]
    }

    /// `(rank, merged id)` of the merge of `left` then `right`.
    #[inline]
    pub(crate) fn get(&self, left: TokenId, right: TokenId) -> Option<(u32, TokenId)> {
        let rank = self.rank(left, right);
        (rank != NO_RANK).then(|| (rank, self.merged(rank)))
    }

    /// The values of every pair of single bytes, whose ids are `byte_ids`.
    pub(crate) fn byte_pairs(&self, byte_ids: &[TokenId; 256]) -> BytePairs {
        let mut values: Box<[u32; 1 << 16]> = Box::new([NO_VALUE; 1 << 16]);
        for (a, &left) in byte_ids.iter().enumerate() {
            for (b, &right) in byte_ids.iter().enumerate() {
                values[(a << 8) | b] = self.value(left, right);
            }
        }
        BytePairs {
            values,
            narrow: matches!(self.layout, Layout::Narrow(_)),
        }
    }
}

#[inline(always)]
fn rank_of_value(narrow: bool, value: u32) -> u32 {
    if narrow && value != NO_VALUE {
        value >> 16
    } else {
        value
    }
}

/// The value (in `PairTable`'s form) of merging each pair of single bytes: a dense table,
/// as every word starts with a lookup for each of its byte pairs.
#[derive(Debug, Clone)]
pub(crate) struct BytePairs {
    /// Indexed by `first << 8 | second`.
    values: Box<[u32; 1 << 16]>,
    narrow: bool,
}

impl BytePairs {
    #[inline(always)]
    pub(crate) fn value(&self, first: u8, second: u8) -> u32 {
        self.values[(usize::from(first) << 8) | usize::from(second)]
    }

    /// The rank of merging the single bytes `first` then `second` (`NO_RANK`: none).
    #[inline(always)]
    pub(crate) fn rank(&self, first: u8, second: u8) -> u32 {
        rank_of_value(self.narrow, self.value(first, second))
    }
}

/// How a form keys a pair and packs a key with its value in a slot.
pub(crate) trait PairKey: Copy + Eq {
    type Slot: Copy;
    /// The slot of no key; its value is `NO_VALUE`.
    const EMPTY: Self::Slot;
    /// The key of a pair. Ids that no merge uses may give a key shared by other such pairs,
    /// or the key of `EMPTY` (whose value is `NO_VALUE` anyway), never one that merges.
    fn of(left: TokenId, right: TokenId) -> Self;
    fn bits(self) -> u64;
    fn slot(self, value: u32) -> Self::Slot;
    fn slot_key(slot: Self::Slot) -> Self;
    fn slot_value(slot: Self::Slot) -> u32;
}

/// Narrow vocabularies have byte and merge ids and ranks below this. Ids from it up do not
/// fit a narrow key; clamped to it, they match nothing.
const NARROW_LIMIT: TokenId = 0xFFFF;

/// `left << 16 | right`, in a slot `key << 32 | value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NarrowKey(u32);

impl PairKey for NarrowKey {
    type Slot = u64;
    const EMPTY: u64 = u64::MAX;

    #[inline(always)]
    fn of(left: TokenId, right: TokenId) -> Self {
        NarrowKey((left.min(NARROW_LIMIT) << 16) | right.min(NARROW_LIMIT))
    }

    #[inline(always)]
    fn bits(self) -> u64 {
        u64::from(self.0)
    }

    fn slot(self, value: u32) -> u64 {
        (u64::from(self.0) << 32) | u64::from(value)
    }

    #[inline(always)]
    fn slot_key(slot: u64) -> Self {
        NarrowKey((slot >> 32) as u32)
    }

    #[inline(always)]
    fn slot_value(slot: u64) -> u32 {
        slot as u32
    }
}

/// Mid vocabularies have byte and merge ids and ranks below this (21 bits). Ids from it up
/// do not fit a mid key; clamped to it, they match nothing.
const MID_LIMIT: TokenId = (1 << MID_BITS) - 1;
const MID_BITS: u32 = 21;

/// `left << 21 | right`, in a slot `key << 21 | rank` (63 bits). A rank field of all ones
/// (`MID_LIMIT`, which no rank reaches) is no merge: `EMPTY` holds it, whatever key a
/// lookup brings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MidKey(u64);

impl PairKey for MidKey {
    type Slot = u64;
    const EMPTY: u64 = u64::MAX;

    #[inline(always)]
    fn of(left: TokenId, right: TokenId) -> Self {
        let (l, r) = (
            u64::from(left.min(MID_LIMIT)),
            u64::from(right.min(MID_LIMIT)),
        );
        MidKey((l << MID_BITS) | r)
    }

    #[inline(always)]
    fn bits(self) -> u64 {
        self.0
    }

    fn slot(self, value: u32) -> u64 {
        debug_assert!(value < MID_LIMIT);
        (self.0 << MID_BITS) | u64::from(value)
    }

    #[inline(always)]
    fn slot_key(slot: u64) -> Self {
        MidKey((slot >> MID_BITS) & ((1 << (2 * MID_BITS)) - 1))
    }

    #[inline(always)]
    fn slot_value(slot: u64) -> u32 {
        let rank = slot as u32 & MID_LIMIT;
        // All ones (`EMPTY`'s) becomes `NO_VALUE`, without a branch.
        rank | u32::from(rank == MID_LIMIT).wrapping_neg()
    }
}

/// `left << 32 | right`. Ids stop below `u32::MAX`, so no merge has the key of `EMPTY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WideKey(u64);

impl PairKey for WideKey {
    type Slot = (u64, u32);
    const EMPTY: (u64, u32) = (u64::MAX, NO_VALUE);

    #[inline(always)]
    fn of(left: TokenId, right: TokenId) -> Self {
        WideKey((u64::from(left) << 32) | u64::from(right))
    }

    #[inline(always)]
    fn bits(self) -> u64 {
        self.0
    }

    fn slot(self, value: u32) -> (u64, u32) {
        (self.0, value)
    }

    #[inline(always)]
    fn slot_key(slot: (u64, u32)) -> Self {
        WideKey(slot.0)
    }

    #[inline(always)]
    fn slot_value(slot: (u64, u32)) -> u32 {
        slot.1
    }
}

/// The table has at least this many slots per 100 keys: fewer make it smaller but slower
/// to build.
const SLOTS_PER_100_KEYS: usize = 125;

/// Keys per group, on average: bigger groups make a smaller displacement table (this one
/// fits in the first-level cache for GPT-2) but take longer to place (16: 30 times longer).
const GROUP_KEYS: usize = 8;

/// Hashes to try in turn if some group finds no displacement (not seen so far).
const MULTIPLIERS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0xD6E8_FEB8_6659_FD93,
];

/// A perfect hash table ("hash and displace"). The top bits of a key's hash pick its group;
/// the group's displacement, chosen when the table is built, sends each of the group's keys
/// to a slot of its own, and every other key to some slot, whose key then differs.
#[derive(Debug, Clone)]
pub(crate) struct Displaced<K: PairKey> {
    /// By group: `d` in `slot = top bits of (low hash + d * (high hash | 1))`.
    displacements: Vec<u16>,
    /// A power of two of them.
    slots: Vec<K::Slot>,
    /// Odd, so that `hash = bits * multiplier` differs for any two keys.
    multiplier: u64,
    /// `64 - log2(groups)`.
    group_shift: u32,
    /// `32 - log2(slots)`.
    slot_shift: u32,
}

impl<K: PairKey> Displaced<K> {
    /// The table of `merges` with `values`, one for each.
    fn new(merges: &[[TokenId; 3]], values: impl Iterator<Item = u32>) -> Self {
        let entries: Vec<(K, u32)> = merges
            .iter()
            .zip(values)
            .map(|(&[l, r, _], value)| (K::of(l, r), value))
            .collect();
        let wanted = entries.len() * SLOTS_PER_100_KEYS / 100 + 1;
        Displaced::with_room(&entries, wanted.next_power_of_two().max(2))
    }

    /// The table of `entries` in `n_slots` slots (a power of two), or more if need be.
    fn with_room(entries: &[(K, u32)], mut n_slots: usize) -> Self {
        loop {
            for multiplier in MULTIPLIERS {
                if let Some(table) = Displaced::place(entries, n_slots, multiplier) {
                    return table;
                }
            }
            // Room makes placing easier.
            n_slots *= 2;
        }
    }

    /// The table of `entries` in `n_slots` slots with hash `multiplier`, if every group
    /// finds a displacement.
    fn place(entries: &[(K, u32)], n_slots: usize, multiplier: u64) -> Option<Self> {
        if entries.len() > n_slots || n_slots > 1 << 31 {
            return None;
        }
        let n_groups = (entries.len() / GROUP_KEYS).next_power_of_two().max(2);
        let mut table = Displaced {
            displacements: vec![0; n_groups],
            slots: vec![K::EMPTY; n_slots],
            multiplier,
            group_shift: 64 - n_groups.trailing_zeros(),
            slot_shift: 32 - n_slots.trailing_zeros(),
        };
        let mut groups: Vec<Vec<(K, u32)>> = vec![Vec::new(); n_groups];
        for &(key, value) in entries {
            groups[table.group(table.hash(key))].push((key, value));
        }
        // The biggest groups first, while the table is emptiest.
        let mut order: Vec<usize> = (0..n_groups).collect();
        order.sort_by_key(|&g| std::cmp::Reverse(groups[g].len()));
        let mut taken = vec![false; n_slots];
        let mut picked = Vec::new();
        for g in order {
            let group = &groups[g];
            let fits = |d: u16, picked: &mut Vec<usize>| {
                picked.clear();
                for &(key, _) in group {
                    let slot = table.slot_of(table.hash(key), d);
                    if taken[slot] || picked.contains(&slot) {
                        return false;
                    }
                    picked.push(slot);
                }
                true
            };
            table.displacements[g] = (0..=u16::MAX).find(|&d| fits(d, &mut picked))?;
            for (&slot, &(key, value)) in picked.iter().zip(group) {
                taken[slot] = true;
                table.slots[slot] = key.slot(value);
            }
        }
        Some(table)
    }

    #[inline(always)]
    fn hash(&self, key: K) -> u64 {
        key.bits().wrapping_mul(self.multiplier)
    }

    #[inline(always)]
    fn group(&self, hash: u64) -> usize {
        (hash >> self.group_shift) as usize
    }

    #[inline(always)]
    fn slot_of(&self, hash: u64, displacement: u16) -> usize {
        let step = (hash >> 32) as u32 | 1;
        let mixed = (hash as u32).wrapping_add(u32::from(displacement).wrapping_mul(step));
        (mixed >> self.slot_shift) as usize
    }

    #[inline(always)]
    fn value(&self, left: TokenId, right: TokenId) -> u32 {
        self.value_of(K::of(left, right))
    }

    /// `value_of`, where a key that is not `live` (one with the encoder's empty part, a
    /// quarter of its lookups) reads slot 0, which then stays in cache, rather than a slot
    /// anywhere in the table; no merge has such a key, so slot 0 never matches it.
    #[inline(always)]
    fn value_of_live(&self, key: K, live: bool) -> u32 {
        let hash = self.hash(key);
        let displacement = self.displacements[self.group(hash)];
        let at = self.slot_of(hash, displacement) & usize::from(live).wrapping_neg();
        self.compare(self.slots[at], key)
    }

    #[inline(always)]
    fn value_of(&self, key: K) -> u32 {
        let hash = self.hash(key);
        let displacement = self.displacements[self.group(hash)];
        self.compare(self.slots[self.slot_of(hash, displacement)], key)
    }

    /// The value of `slot` if it holds `key`, else `NO_VALUE`.
    #[inline(always)]
    fn compare(&self, slot: K::Slot, key: K) -> u32 {
        // Whether a pair merges is not predictable: no branch.
        std::hint::select_unpredictable(K::slot_key(slot) == key, K::slot_value(slot), NO_VALUE)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustc_hash::{FxHashMap, FxHashSet};

    /// Byte ids for tests where bytes do not matter.
    const BYTES: [TokenId; 256] = [0; 256];

    /// `n` distinct pairs over ids below `max_id`, with merged ids below `0xFFFF`.
    fn random_merges(n: usize, max_id: u32, seed: u64) -> Vec<[TokenId; 3]> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut seen = FxHashSet::default();
        let mut merges = Vec::new();
        while merges.len() < n {
            let l = (next() % u64::from(max_id)) as u32;
            let r = (next() % u64::from(max_id)) as u32;
            if seen.insert((l, r)) {
                merges.push([l, r, (merges.len() as u32 * 7 + 3) % 0xFFFF]);
            }
        }
        merges
    }

    /// Every merge is found with its rank and merged id; pairs absent from `merges`
    /// (swapped, with a merged id, ids out of range, a grid over `0..max_id`) are absent.
    fn check(table: &PairTable, merges: &[[TokenId; 3]], max_id: u32) {
        let known: FxHashMap<(u32, u32), u32> = merges
            .iter()
            .zip(0u32..)
            .map(|(&[l, r, _], rank)| ((l, r), rank))
            .collect();
        let want = |a, b| known.get(&(a, b)).copied().unwrap_or(NO_RANK);
        for (&[l, r, m], rank) in merges.iter().zip(0u32..) {
            assert_eq!(table.get(l, r), Some((rank, m)), "pair {l} {r}");
        }
        for &[l, r, m] in merges {
            for (a, b) in [(r, l), (l, m), (m, r), (l, u32::MAX), (u32::MAX, r)] {
                assert_eq!(table.rank(a, b), want(a, b), "pair {a} {b}");
            }
        }
        let step = (max_id as usize / 300).max(1);
        for a in (0..max_id).step_by(step) {
            for b in (0..max_id).step_by(step + 1) {
                assert_eq!(table.rank(a, b), want(a, b), "pair {a} {b}");
            }
        }
        for (a, b) in [(u32::MAX, u32::MAX), (0xFFFF, 0xFFFF), (u32::MAX - 1, 0)] {
            assert_eq!(table.rank(a, b), want(a, b), "pair {a} {b}");
        }
    }

    fn is_narrow(table: &PairTable) -> bool {
        matches!(table.layout, Layout::Narrow(_))
    }

    #[test]
    fn every_merge_is_found_and_absent_pairs_are_not() {
        for (n, max_id) in [(0, 256), (1, 256), (7, 3), (1000, 300), (50_000, 50_000)] {
            let merges = random_merges(n, max_id, 0x1234_5678 + n as u64);
            let table = PairTable::new(&merges, &BYTES);
            assert!(is_narrow(&table));
            check(&table, &merges, max_id);
        }
        // Ids from 0xFFFF up need mid keys, from 2^21 - 1 up wide ones.
        for (n, max_id, mid) in [
            (3, 1 << 30, false),
            (1000, 3_000_000, false),
            (1000, 300_000, true),
            (20_000, 200_000, true),
            (1000, MID_LIMIT, true),
        ] {
            let merges = random_merges(n, max_id, 99 + n as u64);
            let table = PairTable::new(&merges, &BYTES);
            assert!(!is_narrow(&table));
            assert_eq!(matches!(table.layout, Layout::Mid(_)), mid, "{n} {max_id}");
            check(&table, &merges, max_id);
        }
    }

    #[test]
    fn the_widest_ids_are_told_apart() {
        let narrowest = vec![[0xFFFE, 0xFFFE, 3], [0, 0xFFFE, 4]];
        let table = PairTable::new(&narrowest, &BYTES);
        assert!(is_narrow(&table));
        check(&table, &narrowest, 8);
        assert_eq!(table.rank(0xFFFE, 0xFFFE), 0);
        assert_eq!(table.rank(0xFFFF, 0xFFFE), NO_RANK);
        assert_eq!(table.rank(0x1_FFFE, 0xFFFE), NO_RANK);
        // The widest mid ids, and ids one past them, which clamp to the same key.
        let m = MID_LIMIT - 1;
        let mid = vec![[m, m, 3], [0, m, 4], [m, 0, 5]];
        let table = PairTable::new(&mid, &BYTES);
        assert!(matches!(table.layout, Layout::Mid(_)));
        check(&table, &mid, 8);
        assert_eq!(table.rank(m, m), 0);
        for (a, b) in [
            (m + 1, m),
            (m, m + 1),
            (MID_LIMIT, MID_LIMIT),
            (u32::MAX, u32::MAX),
        ] {
            assert_eq!(table.rank(a, b), NO_RANK, "{a} {b}");
        }
        let widest = vec![[u32::MAX - 1, u32::MAX - 1, 3], [0, 0xFFFF, 4], [5, 0, 6]];
        let table = PairTable::new(&widest, &BYTES);
        assert!(!is_narrow(&table));
        check(&table, &widest, 8);
        assert_eq!(table.rank(u32::MAX - 1, u32::MAX - 1), 0);
        assert_eq!(table.rank(0, 0xFFFF), 1);
        assert_eq!(table.rank(0xFFFF, 0), NO_RANK);
        // A byte, a merged id or a rank that does not fit makes the table wide.
        let mut bytes = BYTES;
        bytes[7] = 0xFFFF;
        assert!(!is_narrow(&PairTable::new(&narrowest, &bytes)));
        assert!(!is_narrow(&PairTable::new(&[[1, 2, 0xFFFF]], &BYTES)));
        let many = random_merges(0xFFFF, 1000, 3);
        assert!(!is_narrow(&PairTable::new(&many, &BYTES)));
    }

    #[test]
    fn values_give_the_rank_order_and_the_merged_id() {
        fn values_of(v: &impl MergeValues, merges: &[[TokenId; 3]]) -> Vec<u32> {
            let values: Vec<u32> = merges.iter().map(|&[l, r, _]| v.value(l, r)).collect();
            for (&value, &[_, _, m]) in values.iter().zip(merges) {
                assert_eq!(v.merged(value), m);
            }
            values
        }
        for (merges, form) in [
            (random_merges(500, 300, 5), "narrow"),
            (vec![[1 << 20, 2, 7], [4, 5, 8], [7, 8, 9]], "mid"),
            (vec![[1 << 20, 2, 3], [4, 5, MID_LIMIT - 1]], "mid listed"),
            (vec![[1 << 20, 2, 3], [4, 5, 2]], "mid listed"),
            (vec![[1 << 20, 2, 3], [4, 5, MID_LIMIT]], "wide"),
        ] {
            let table = PairTable::new(&merges, &BYTES);
            let values = match table.values() {
                Values::Narrow(v) => {
                    assert_eq!(form, "narrow");
                    assert_eq!(v.value(NarrowValues::DEAD, merges[0][1]), NO_VALUE);
                    values_of(&v, &merges)
                }
                Values::Mid(v) => {
                    assert_eq!(form, "mid");
                    assert_eq!(v.value(TokenId::MAX, merges[0][1]), NO_VALUE);
                    values_of(&v, &merges)
                }
                Values::MidListed(v) => {
                    assert_eq!(form, "mid listed");
                    assert_eq!(v.value(TokenId::MAX, merges[0][1]), NO_VALUE);
                    values_of(&v, &merges)
                }
                Values::Wide(v) => {
                    assert_eq!(form, "wide");
                    assert_eq!(v.value(TokenId::MAX, merges[0][1]), NO_VALUE);
                    values_of(&v, &merges)
                }
            };
            assert!(values.windows(2).all(|w| w[0] < w[1] && w[1] != NO_VALUE));
        }
    }

    #[test]
    fn pairs_with_the_dead_id_find_nothing() {
        let merges = random_merges(2000, 0xFFFF, 4);
        let table = PairTable::new(&merges, &BYTES);
        let Values::Narrow(v) = table.values() else {
            panic!("expected narrow keys");
        };
        let dead = NarrowValues::DEAD;
        for &[l, r, m] in &merges {
            assert_eq!(v.value(l, r) >> 16, table.rank(l, r));
            for (a, b) in [(dead, r), (l, dead), (dead, m), (dead, dead)] {
                assert_eq!(v.value(a, b), NO_VALUE);
            }
        }
    }

    #[test]
    fn byte_pairs_agree_with_the_table() {
        // Bytes as ids 300..556 (not 0..256), merges among them and beyond.
        let byte_ids: [TokenId; 256] = std::array::from_fn(|b| 300 + b as TokenId);
        let merges = random_merges(3000, 900, 8);
        let wide: Vec<[TokenId; 3]> = merges.iter().map(|&[l, r, m]| [l, r, m + 70_000]).collect();
        for table in [
            PairTable::new(&merges, &byte_ids),
            PairTable::new(&wide, &byte_ids),
        ] {
            let pairs = table.byte_pairs(&byte_ids);
            let mut found = 0;
            for a in 0..=255u8 {
                for b in 0..=255u8 {
                    let (l, r) = (byte_ids[usize::from(a)], byte_ids[usize::from(b)]);
                    assert_eq!(pairs.rank(a, b), table.rank(l, r));
                    assert_eq!(pairs.value(a, b), table.value(l, r));
                    found += usize::from(pairs.rank(a, b) != NO_RANK);
                }
            }
            assert!(found > 100, "{found}");
        }
    }

    #[test]
    fn a_table_too_small_grows() {
        let entries: Vec<(NarrowKey, u32)> = (0..40).map(|i| (NarrowKey(i * 977), i)).collect();
        assert!(Displaced::place(&entries, 32, MULTIPLIERS[0]).is_none());
        // With room for all keys but hardly any spare, placing may fail; growing does not.
        let table = Displaced::with_room(&entries, 32);
        assert!(table.slots.len() >= 64);
        let full = Displaced::with_room(&entries, 64);
        for &(key, value) in &entries {
            assert_eq!(table.value_of(key), value);
            assert_eq!(full.value_of(key), value);
        }
        assert_eq!(table.value_of(NarrowKey(5)), NO_VALUE);
    }

    #[test]
    fn gpt2_sized_tables_stay_small() {
        let merges = random_merges(50_000, 50_000, 77);
        let Layout::Narrow(table) = &PairTable::new(&merges, &BYTES).layout else {
            panic!("expected narrow keys");
        };
        assert_eq!(table.slots.len(), 1 << 16);
        assert_eq!(table.displacements.len(), 1 << 13);
        let filled = table
            .slots
            .iter()
            .filter(|&&s| s != NarrowKey::EMPTY)
            .count();
        assert_eq!(filled, merges.len());
    }
}
