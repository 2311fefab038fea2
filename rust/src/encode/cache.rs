//! A per-thread cache from pretoken bytes to its tokens.
//!
//! Most text repeats a small set of pretokens, so remembering each pretoken's tokens skips
//! the merge loop for nearly every word. Each thread keeps one cache, tagged with the
//! encoder that filled it; using another encoder on the thread starts it afresh. A fresh
//! cache holds every short vocabulary token already (a pretoken that is a token encodes to
//! that token), so only words needing merges are ever added. The cache
//! is cleared when it grows past a bound, so memory stays flat on any input.

use std::cell::RefCell;
use std::sync::{Mutex, OnceLock};

use super::long_words::{long_hash, LongView, LongWords};
use super::memory::ZeroedArray;
use crate::TokenId;

/// Pretokens longer than this are not cached (rare, and they would bloat the arena). Up to
/// 64 bytes, the bound before, the 94 longer pretokens of 8 MB of web text (rules of `-`
/// and `=`, runs of punctuation) were merged again on every pass: 3.6% of a warm one.
pub(crate) const MAX_CACHED_WORD: usize = 1024;
/// Bytes of long words (over `INLINE_KEY`) and their ids cached before the cache is
/// cleared, which bounds their memory however many distinct long words a text brings; web
/// text reaches `MAX_ENTRIES` first.
const MAX_LONG_BYTES: usize = 32 << 20;
/// Entries kept before the cache is cleared: 32 MB of table at most. 128 MB of web text
/// brings about 390k distinct words needing merges (beside GPT-2's 50k seeded tokens); at
/// half this bound the cache was cleared every ~50 MB there, and each time refilled.
const MAX_ENTRIES: usize = 1 << 19;
/// How many distinct words needing merges `bytes` of text bring, about: they grow like
/// `bytes^0.75` (Heaps' law; web text: 30k in 4 MB, 93k in 16 MB, 155k in 32 MB, 390k in
/// 128 MB), so the cache makes room for that many up front rather than doubling on the way.
fn new_words(bytes: usize) -> usize {
    (0.365 * (bytes as f64).powf(0.75)) as usize
}
/// Texts shorter than this make no room for their new words up front (`reserve_for_text`).
const SMALL_TEXT: usize = 1 << 16;
/// Words up to this many bytes are keyed by one `u128` (bytes, then the length in the last
/// byte), which hashes and compares without touching memory elsewhere.
pub(crate) const INLINE_KEY: usize = 15;
/// Slots of a fresh table; it doubles while `crowded`, up to `2 * MAX_ENTRIES`.
const MIN_SLOTS: usize = 1 << 10;

/// Whether `words` words crowd a table of `slots` slots: more than three quarters full,
/// when it grows. (Half full, the bound before, made o200k's table of 512k slots, seeded
/// with 195k tokens, double to 32 MB once 10 MB of web text had been encoded: the next call
/// then paid for rehashing 262k words into fresh memory, 30-50 ms on a virtual machine,
/// with no lookup measurably faster for it.) A seed is laid out half full (`fill`):
/// short texts look up mostly its tokens.
#[inline(always)]
const fn crowded(words: usize, slots: usize) -> bool {
    4 * words > 3 * slots
}

/// The most slots a table has: enough for `MAX_ENTRIES` words. Every table reserves the
/// address space for this many (32 MB), so that it doubles in place (`try_resize`).
const MAX_SLOTS: usize = table_slots(MAX_ENTRIES);

/// One slot of the open-addressing table: the inline key (`hi == 0`: empty, as a key always
/// holds a non-zero length byte) and the word's tokens. 32 bytes, aligned, so a slot never
/// straddles two cache lines.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    lo: u64,
    hi: u64,
    value: Value,
}

impl Slot {
    /// The inline key the slot holds (`split_key` taken back).
    fn key(&self) -> u128 {
        u128::from(self.lo) | (u128::from(self.hi) << 64)
    }
}

/// A cached word's tokens: `count` (1 to `INLINE_IDS`) ids inline, laid out so that one
/// 16-byte copy writes them (see `push_value`); or `count == 0` and the ids are
/// `arena[ids[0]..ids[0] + ids[1]]`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Value {
    ids: [TokenId; INLINE_IDS],
    count: u32,
}

pub(crate) struct WordCache {
    owner: u64,
    /// Short words, linear probing. Seeded with every vocabulary token of up to
    /// `INLINE_KEY` bytes, so common words hit at once and the hit branch is nearly always
    /// taken (the processor can then run ahead over the next pretokens while a slot is
    /// still being fetched). Values as `pack` makes them.
    table: ZeroedArray<Slot>,
    len: usize,
    /// `len` right after the last reset: what `reserve` counts a text's new words from.
    seeded: usize,
    long: LongWords,
    arena: Vec<TokenId>,
    /// Why the encode using the cache now must fail (no memory to merge a long pretoken):
    /// set deep in the per-word path, which returns nothing, and taken by `encode_into`.
    failed: Option<crate::error::BpeError>,
}

/// The short-word table borrowed for lookups: its slots and mask stay in registers over a
/// run of lookups, where the cache's own fields would be loaded again for each one.
pub(crate) struct Probe<'c> {
    /// The table's `mask + 1` slots, borrowed mutably (`find` may swap two).
    slots: *mut Slot,
    mask: usize,
    arena: &'c [TokenId],
    /// The long words' table, for prefetches.
    long: LongView,
    table: std::marker::PhantomData<&'c mut [Slot]>,
}

/// A cached word's ids as `Probe::inline_ids` gives them: up to `INLINE_IDS` ids, then
/// how many of them are real (1 to `INLINE_IDS`). Written whole (one 16-byte store),
/// after which the output's length moves past the real ones only.
pub(crate) type InlineIds = [TokenId; INLINE_IDS + 1];

impl Probe<'_> {
    #[inline(always)]
    fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i <= self.mask);
        // SAFETY: `i <= mask` and the table has `mask + 1` slots (a power of two).
        unsafe { &*self.slots.add(i) }
    }

    /// Asks the processor to start fetching the first slot of the key whose hash is `h`.
    #[inline(always)]
    pub(crate) fn prefetch(&self, h: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let slot: *const Slot = self.slot(h as usize & self.mask);
            // SAFETY: a prefetch has no effect but on caches.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(slot.cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    /// Asks the processor to start fetching the first slot of the long word whose
    /// `long_hash` is `h`.
    #[inline(always)]
    pub(crate) fn prefetch_long(&self, h: u32) {
        self.long.prefetch(h);
    }

    /// The value of the short word with inline key `key` (hash `h`), if it is cached.
    ///
    /// A word found past the first slot of its walk changes places with the word before
    /// it, so that the text's frequent words come to their first slots, where a lookup
    /// needs no second probe. (Both stay reachable: the word moved back is still past its
    /// own first slot, the one moved on is still in one unbroken run from its first slot.)
    #[inline(always)]
    fn find(&mut self, key: u128, h: u32) -> Option<Value> {
        let (lo, hi) = split_key(key);
        let mut i = h as usize & self.mask;
        let first = self.slot(i);
        if first.lo == lo && first.hi == hi {
            return Some(first.value);
        }
        if first.hi == 0 {
            return None;
        }
        loop {
            let before = i;
            i = (i + 1) & self.mask;
            let slot = *self.slot(i);
            if slot.lo == lo && slot.hi == hi {
                // SAFETY: both indices are at most `mask`, and the probe borrows the table
                // mutably.
                unsafe {
                    *self.slots.add(i) = *self.slots.add(before);
                    *self.slots.add(before) = slot;
                }
                return Some(slot.value);
            }
            if slot.hi == 0 {
                return None;
            }
        }
    }

    /// The cached ids of the short word with inline key `key` (hash `h`), if it is cached
    /// and has at most `INLINE_IDS` of them.
    #[inline(always)]
    pub(crate) fn inline_ids(&mut self, key: u128, h: u32) -> Option<InlineIds> {
        let v = self.find(key, h)?;
        (v.count != 0).then_some([v.ids[0], v.ids[1], v.ids[2], v.count])
    }

    /// Appends the cached tokens of the short word with inline key `key` to `out`; false
    /// when it is not cached.
    #[inline]
    pub(crate) fn extend_short(&mut self, key: u128, out: &mut Vec<TokenId>) -> bool {
        match self.find(key, key_hash(key)) {
            Some(v) => {
                push_value(&v, self.arena, out);
                true
            }
            None => false,
        }
    }
}

#[inline]
fn load_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

#[inline]
fn load_u32(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[..4]);
    u64::from(u32::from_le_bytes(buf))
}

/// The bytes of a word of 1 to 15 bytes, little-endian, with its length in the top byte.
/// Built from two overlapping fixed-size loads rather than a variable-length copy.
#[inline]
pub(crate) fn inline_key(word: &[u8]) -> u128 {
    let n = word.len();
    let (lo, hi) = if n >= 8 {
        let tail = load_u64(&word[n - 8..]);
        (
            load_u64(word),
            if n == 8 { 0 } else { tail >> (8 * (16 - n)) },
        )
    } else if n >= 4 {
        let tail = load_u32(&word[n - 4..]);
        let rest = if n == 4 { 0 } else { tail >> (8 * (8 - n)) };
        (load_u32(word) | (rest << 32), 0)
    } else {
        let mut x = 0u64;
        for (i, &b) in word.iter().enumerate() {
            x |= u64::from(b) << (8 * i);
        }
        (x, 0)
    };
    u128::from(lo) | (u128::from(hi) << 64) | ((n as u128) << 120)
}

/// `inline_key(&bytes[start..start + n])` (`1 <= n <= INLINE_KEY`), from one 16-byte load
/// and a mask where 16 bytes remain from `start`: no branch on the length.
#[inline(always)]
pub(crate) fn key_at(bytes: &[u8], start: usize, n: usize) -> u128 {
    match bytes.get(start..start + 16) {
        Some(sixteen) => {
            let mut buf = [0u8; 16];
            buf.copy_from_slice(sixteen);
            (u128::from_le_bytes(buf) & KEY_MASKS[n & 15]) | ((n as u128) << 120)
        }
        None => inline_key(&bytes[start..start + n]),
    }
}

/// `KEY_MASKS[n]` keeps the low `n` bytes: a table is cheaper than a 128-bit shift.
static KEY_MASKS: [u128; 16] = {
    let mut masks = [0u128; 16];
    let mut n = 1;
    while n < 16 {
        masks[n] = (1u128 << (8 * n)) - 1;
        n += 1;
    }
    masks
};

/// Whether `key` is an inline key (a word of 1 to `INLINE_KEY` bytes): its length byte is
/// not zero.
#[inline(always)]
pub(crate) fn is_short_key(key: u128) -> bool {
    key_len(key) != 0
}

/// The length of the word whose inline key is `key` (its top byte; 0 for no inline key).
#[inline(always)]
pub(crate) fn key_len(key: u128) -> usize {
    (key >> 120) as usize
}

/// The bytes of the word whose inline key is `key`, and how many there are.
#[inline]
pub(crate) fn key_bytes(key: u128) -> ([u8; 16], usize) {
    ((key & !(0xFF << 120)).to_le_bytes(), key_len(key))
}

#[inline]
fn split_key(key: u128) -> (u64, u64) {
    (key as u64, (key >> 64) as u64)
}

/// The slots of a table for `words` words (at most `MAX_ENTRIES`), not `crowded`.
const fn table_slots(words: usize) -> usize {
    let words = if words < MAX_ENTRIES {
        words
    } else {
        MAX_ENTRIES
    };
    let mut slots = MIN_SLOTS;
    while crowded(words, slots) {
        slots *= 2;
    }
    slots
}

/// The hash of an inline key; its first slot in a table of any size is `hash & mask`.
#[inline(always)]
pub(crate) fn key_hash(key: u128) -> u32 {
    let (lo, hi) = split_key(key);
    ((lo ^ hi.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
}

const INLINE_IDS: usize = 3;
/// Ids copied at once from the arena for a word of up to this many (any short word's).
const SHORT_WORD_IDS: usize = INLINE_KEY + 1;

#[inline]
fn pack(tokens: &[TokenId], arena: &mut Vec<TokenId>) -> Option<Value> {
    let mut ids = [0; INLINE_IDS];
    if tokens.len() <= INLINE_IDS {
        ids[..tokens.len()].copy_from_slice(tokens);
        return Some(Value {
            ids,
            count: tokens.len() as u32,
        });
    }
    // `None` when the arena cannot grow: the caller then leaves the word out.
    arena.try_reserve(tokens.len()).ok()?;
    // The arena holds short words' ids only: under MAX_ENTRIES * INLINE_KEY, far below u32::MAX.
    ids[0] = arena.len() as u32;
    ids[1] = tokens.len() as u32;
    arena.extend_from_slice(tokens);
    Some(Value { ids, count: 0 })
}

/// Appends the tokens of `v` to `out`.
#[inline(always)]
fn push_value(v: &Value, arena: &[TokenId], out: &mut Vec<TokenId>) {
    let n = v.count as usize;
    if n == 0 {
        let (start, len) = (v.ids[0] as usize, v.ids[1] as usize);
        match arena.get(start..start + SHORT_WORD_IDS) {
            // A short word's ids (at most 15) copied as 16 and `len` set after: a call to
            // `memmove` for a few ids was 1.2% of a warm pass over web text.
            Some(ids) if len <= SHORT_WORD_IDS => {
                out.reserve(SHORT_WORD_IDS);
                let at = out.len();
                // SAFETY: the reserve above makes room for 16 ids after `at`, and the
                // first `len` of those copied are the word's, which `set_len` covers.
                unsafe {
                    out.as_mut_ptr()
                        .add(at)
                        .cast::<[TokenId; SHORT_WORD_IDS]>()
                        .write_unaligned(ids.try_into().unwrap_or([0; SHORT_WORD_IDS]));
                    out.set_len(at + len);
                }
            }
            _ => out.extend_from_slice(&arena[start..start + len]),
        }
        return;
    }
    // The value is written whole, count included, whatever the count: one 16-byte store
    // and no branch on it; `len` then moves past the real ids only.
    out.reserve(INLINE_IDS + 1);
    let len = out.len();
    // SAFETY: the reserve above makes room for 4 ids after `len`, and `n` of them (at most
    // INLINE_IDS) are real ids, written before `len` covers them.
    unsafe {
        let dst = out
            .as_mut_ptr()
            .add(len)
            .cast::<[TokenId; INLINE_IDS + 1]>();
        dst.write_unaligned([v.ids[0], v.ids[1], v.ids[2], v.count]);
        out.set_len(len + n);
    }
}

/// What a fresh cache holds, built once per encoder: its words, and their table laid out
/// (copying a table is much cheaper than filling it entry by entry, which a thread would
/// otherwise do on its first call).
///
/// The table laid out when the encoder is made is handed whole to the first cache that
/// wants a table of its size: that memory has been touched already, and a copy would
/// take as much again, fresh (16 MB for o200k: 13 ms of page faults on a virtual machine,
/// a sixth of a cold 10 MB pass). A cache that comes after copies a table laid out again
/// once, the first time one is wanted.
pub(crate) struct Seed {
    /// `(inline key, id)` of the words, in the order they are put in.
    pairs: Vec<(u128, TokenId)>,
    /// The table's length.
    slots: usize,
    /// The table laid out with the encoder, until a cache takes it.
    first: Mutex<Option<ZeroedArray<Slot>>>,
    /// The table copies are made from, laid out the first time one is wanted.
    copied: OnceLock<ZeroedArray<Slot>>,
}

impl Seed {
    /// A cache holding `pairs`: `(inline key, id)` of distinct words, put in in this order.
    pub(crate) fn new(pairs: &[(u128, TokenId)]) -> Seed {
        let table = Seed::lay_out(pairs);
        Seed {
            pairs: pairs.to_vec(),
            slots: table.len(),
            first: Mutex::new(Some(table)),
            copied: OnceLock::new(),
        }
    }

    /// A table holding `pairs`, half full.
    fn lay_out(pairs: &[(u128, TokenId)]) -> ZeroedArray<Slot> {
        let mut cache = WordCache::new();
        cache.fill(pairs);
        cache.table
    }

    /// How many words the seed holds.
    fn len(&self) -> usize {
        self.pairs.len()
    }

    /// The table laid out with the encoder, if no cache has taken it yet.
    fn take_first(&self) -> Option<ZeroedArray<Slot>> {
        // A poisoned lock (a panic while it was held, which nothing here does) only costs
        // the table: copies are laid out anew.
        self.first.lock().ok()?.take()
    }

    /// Copies the seed's table into `table` (of the seed's length).
    fn copy_into(&self, table: &mut [Slot]) {
        if let Ok(first) = self.first.lock() {
            if let Some(first) = first.as_ref() {
                table.copy_from_slice(first);
                return;
            }
        }
        table.copy_from_slice(self.copied.get_or_init(|| Seed::lay_out(&self.pairs)));
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seed({} words)", self.len())
    }
}

impl WordCache {
    fn new() -> Self {
        WordCache {
            owner: u64::MAX,
            table: ZeroedArray::with_room(MIN_SLOTS, MAX_SLOTS),
            len: 0,
            seeded: 0,
            long: LongWords::new(),
            arena: Vec::new(),
            failed: None,
        }
    }

    /// Records why the current encode must fail (the first reason is kept).
    pub(crate) fn fail(&mut self, error: crate::error::BpeError) {
        self.failed.get_or_insert(error);
    }

    /// The failure recorded since the last call, if any.
    pub(crate) fn take_failure(&mut self) -> Option<crate::error::BpeError> {
        self.failed.take()
    }

    /// Empties the cache, then puts in the `(inline key, id)` pairs of `pairs`.
    fn fill(&mut self, pairs: &[(u128, TokenId)]) {
        let mut slots = MIN_SLOTS;
        while slots < 2 * pairs.len() + 2 {
            slots *= 2;
        }
        self.table = ZeroedArray::with_room(slots, MAX_SLOTS);
        self.long.clear();
        self.arena.clear();
        self.put_pairs(pairs);
        self.seeded = self.len;
    }

    /// Empties the cache down to `seed`'s contents, with room for `additional` more words.
    /// In the memory it has where that is large enough: memory already touched costs no
    /// page faults, and a table that has grown stays grown (a long text that filled it would
    /// only grow it again, rehashing on the way). Otherwise straight into a table of the size
    /// wanted, rather than a copy of the seed's that is grown right after; or, where the
    /// seed's size is wanted, the seed's first table if no cache has taken it (see `Seed`).
    ///
    /// The room for `additional` words is a speed-up only: when its memory cannot be had,
    /// the table is the seed's size and grows (or stops caching) later.
    fn reset(&mut self, seed: &Seed, additional: usize) {
        let mut slots = table_slots(seed.len() + additional).max(seed.slots);
        let old = self.table.len();
        let mut fresh = None;
        if slots > old && slots > seed.slots && !self.table.grow_in_place(slots) {
            fresh = ZeroedArray::try_with_room(slots, MAX_SLOTS);
            if fresh.is_none() {
                slots = seed.slots;
            }
        }
        self.arena.clear();
        self.long.clear();
        if let Some(table) = fresh {
            self.table = table;
            self.put_pairs(&seed.pairs);
        } else if self.table.len() == slots && slots == seed.slots {
            seed.copy_into(&mut self.table);
            self.len = seed.len();
        } else if self.table.len() >= slots {
            // Past its old length, a table grown in place is zero already.
            self.table[..old].fill(Slot::default());
            self.put_pairs(&seed.pairs);
        } else {
            // Here `slots == seed.slots`: a table of the vocabulary's size, which the
            // tokenizer itself already holds one of (not sized by the input).
            self.table = match seed.take_first() {
                Some(table) => table,
                None => {
                    let mut table = ZeroedArray::with_room(slots, MAX_SLOTS);
                    seed.copy_into(&mut table);
                    table
                }
            };
            self.len = seed.len();
        }
        self.seeded = self.len;
    }

    /// Puts the `(inline key, id)` pairs `pairs` into the (empty) table, in their order.
    fn put_pairs(&mut self, pairs: &[(u128, TokenId)]) {
        self.len = 0;
        for &(key, id) in pairs {
            // One id is always packed inline: `pack` allocates nothing for it.
            if let Some(v) = pack(&[id], &mut self.arena) {
                self.put(key, v);
            }
        }
    }

    /// Sets the value of `key` (which must not be in the table yet).
    #[inline]
    fn put(&mut self, key: u128, value: Value) {
        let (lo, hi) = split_key(key);
        let mask = self.table.len() - 1;
        let mut i = key_hash(key) as usize & mask;
        while self.table[i].hi != 0 {
            i = (i + 1) & mask;
        }
        self.table[i] = Slot { lo, hi, value };
        self.len += 1;
    }

    /// Makes room for the new words of `bytes` of text about to be encoded, in one step:
    /// growing the table rehashes every entry into fresh memory, so one large growth
    /// before a long text costs much less than the doublings it replaces.
    pub(crate) fn reserve_for_text(&mut self, bytes: usize) {
        // A short text's few new words fit the room doubling leaves, and working out how
        // many there are (a `powf`) was a tenth of encoding a sentence.
        if bytes >= SMALL_TEXT {
            self.reserve(new_words(bytes));
        }
    }

    /// Makes room for `additional` words beyond the seed (up to the cache's bound) in one
    /// step. Counted from the seed, not from what the cache holds now: a text encoded again,
    /// or the next chunk of one, brings few words the cache has not seen.
    fn reserve(&mut self, additional: usize) {
        let slots = table_slots((self.seeded + additional).max(self.len));
        if slots > self.table.len() {
            // Without the memory, the table grows step by step later, or stops caching.
            self.try_resize(slots);
        }
    }

    /// Moves every entry to a table of `slots` slots (a power of two, larger than the
    /// table, and at least twice the entries); false, and nothing changed, when the memory
    /// for it cannot be had.
    ///
    /// In place where the table's reserved room holds the larger table: only the slots
    /// added are fresh memory, where a new table would be fresh throughout. (Fresh memory
    /// costs page faults: doubling cl100k's table of 8 MB into a new one took 41 ms on a
    /// virtual machine, 38 of them faults, and the rehash 2-3.)
    fn try_resize(&mut self, slots: usize) -> bool {
        let old = self.table.len();
        let mut moved = Vec::new();
        if moved.try_reserve_exact(slots.div_ceil(64)).is_ok() && self.table.grow_in_place(slots) {
            moved.resize(slots.div_ceil(64), 0u64);
            self.rehash_in_place(old, &mut moved);
            return true;
        }
        let Some(table) = ZeroedArray::try_with_room(slots, MAX_SLOTS) else {
            return false;
        };
        let old = std::mem::replace(&mut self.table, table);
        self.len = 0;
        self.put_slots(&old);
        true
    }

    /// Moves the words of the table's first `old` slots (the whole table before it was
    /// lengthened in place) to where the lengthened table wants them; `moved` is a bit per
    /// slot, all clear. Each word goes to the first slot of its walk that is empty or holds
    /// a word not moved yet, trading places with that word, which is moved next. A word
    /// moved passes over moved words only, and moved words stay put, so at the end every
    /// word lies in one unbroken run from its first slot, as `put` would leave it.
    fn rehash_in_place(&mut self, old: usize, moved: &mut [u64]) {
        let mask = self.table.len() - 1;
        let is_moved = |moved: &[u64], i: usize| (moved[i / 64] >> (i % 64)) & 1 != 0;
        for at in 0..old {
            if self.table[at].hi == 0 || is_moved(moved, at) {
                continue;
            }
            let mut word = std::mem::take(&mut self.table[at]);
            loop {
                let mut i = key_hash(word.key()) as usize & mask;
                while self.table[i].hi != 0 && is_moved(moved, i) {
                    i = (i + 1) & mask;
                }
                moved[i / 64] |= 1 << (i % 64);
                let there = std::mem::replace(&mut self.table[i], word);
                if there.hi == 0 {
                    break;
                }
                word = there;
            }
        }
    }

    /// Puts the entries of the filled ones of `slots` (another table's) into this table.
    fn put_slots(&mut self, slots: &[Slot]) {
        for slot in slots.iter().filter(|s| s.hi != 0) {
            self.put(slot.key(), slot.value);
        }
    }

    /// Lookups of short words, for a run of them during which no word is added (a lookup
    /// may move a word within its walk, see `Probe::find`).
    #[inline(always)]
    pub(crate) fn probe(&mut self) -> Probe<'_> {
        Probe {
            slots: self.table.as_mut_ptr(),
            mask: self.table.len() - 1,
            arena: &self.arena,
            long: self.long.view(),
            table: std::marker::PhantomData,
        }
    }

    /// Appends the cached tokens of `word` (longer than `INLINE_KEY`; `h` its `long_hash`)
    /// to `out`; false when it is not cached.
    #[inline]
    pub(crate) fn extend_long(&self, word: &[u8], h: u32, out: &mut Vec<TokenId>) -> bool {
        match self.long.get(word, h) {
            Some(ids) => {
                out.extend_from_slice(ids);
                true
            }
            None => false,
        }
    }

    /// Remembers that `word` (not cached yet) encodes to `tokens` (1 to `MAX_CACHED_WORD`
    /// of them); `seed` refills the cache when it is full.
    #[inline]
    pub(crate) fn insert(&mut self, word: &[u8], tokens: &[TokenId], seed: &Seed) {
        let record = word.len() + std::mem::size_of_val(tokens);
        if self.len + self.long.len() >= MAX_ENTRIES
            || (word.len() > INLINE_KEY && self.long.record_bytes() + record > MAX_LONG_BYTES)
        {
            self.reset(seed, 0);
        }
        // Caching is a speed-up only: a word for which no memory can be had is left out
        // (and encoded again when it comes back) rather than failing the encode.
        if word.len() <= INLINE_KEY {
            if crowded(self.len + 1, self.table.len()) && !self.try_resize(self.table.len() * 2) {
                return;
            }
            if let Some(v) = pack(tokens, &mut self.arena) {
                self.put(inline_key(word), v);
            }
        } else {
            self.long
                .insert(word, long_hash(word, 0, word.len()), tokens);
        }
    }
}

thread_local! {
    static CACHE: RefCell<WordCache> = RefCell::new(WordCache::new());
}

/// Runs `f` with this thread's cache, reset to `seed` first (with room for the new words of
/// `text_bytes` of text) if another encoder (`owner`) filled it.
pub(crate) fn with_cache<R>(
    owner: u64,
    seed: &Seed,
    text_bytes: usize,
    f: impl FnOnce(&mut WordCache) -> R,
) -> R {
    CACHE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cache) => {
            if cache.owner != owner {
                cache.reset(seed, new_words(text_bytes));
                cache.owner = owner;
            }
            f(&mut cache)
        }
        // Only reachable by re-entrance on this thread; a private cache keeps it correct.
        Err(_) => {
            let mut cache = WordCache::new();
            cache.reset(seed, new_words(text_bytes));
            cache.owner = owner;
            f(&mut cache)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn inline_keys_are_the_bytes_and_length() {
        let text = b"abcdefghijklmno\x00\xffpqrstuvwxyz\x80";
        for start in 0..3 {
            for n in 1..=INLINE_KEY {
                let word = &text[start..start + n];
                let mut buf = [0u8; 16];
                buf[..n].copy_from_slice(word);
                buf[15] = n as u8;
                assert_eq!(inline_key(word), u128::from_le_bytes(buf), "{word:?}");
            }
        }
        assert_ne!(inline_key(b"a"), inline_key(b"a\0"));
        for start in 0..text.len() {
            for n in 1..=INLINE_KEY.min(text.len() - start) {
                let want = inline_key(&text[start..start + n]);
                assert_eq!(key_at(text, start, n), want, "{start} {n}");
            }
        }
    }

    /// Where the word with inline key `key` sits in the table, counted from the first
    /// slot of its walk.
    fn distance(cache: &WordCache, key: u128) -> usize {
        let mask = cache.table.len() - 1;
        let (lo, hi) = split_key(key);
        let home = key_hash(key) as usize & mask;
        (0..=mask)
            .find(|d| {
                let s = &cache.table[(home + d) & mask];
                s.lo == lo && s.hi == hi
            })
            .unwrap()
    }

    /// `(inline key, id)` of the words `{prefix}0` to `{prefix}{n - 1}`, id `i` for word `i`.
    fn numbered_pairs(prefix: &str, n: u32) -> Vec<(u128, TokenId)> {
        (0..n)
            .map(|i| (inline_key(format!("{prefix}{i}").as_bytes()), i))
            .collect()
    }

    /// Whether `word` (a long one) is cached, its ids appended to `out` if so.
    fn find_long(cache: &WordCache, word: &[u8], out: &mut Vec<TokenId>) -> bool {
        cache.extend_long(word, long_hash(word, 0, word.len()), out)
    }

    /// A cache started from `seed`, and the words `w0` to `w{n - 1}`.
    fn seeded_cache(seed: &Seed, n: usize) -> (WordCache, Vec<String>) {
        let mut cache = WordCache::new();
        cache.reset(seed, 0);
        (cache, (0..n).map(|i| format!("w{i}")).collect())
    }

    /// A word found past its first slot moves back one slot a lookup, to its first slot
    /// in the end, and every word stays found with its ids, however the lookups go.
    #[test]
    fn lookups_move_words_toward_their_first_slot_and_lose_none() {
        let pairs = numbered_pairs("s", 400);
        let mut cache = WordCache::new();
        cache.fill(&pairs);
        assert_eq!(cache.table.len(), MIN_SLOTS);
        let found_all = |cache: &mut WordCache| {
            pairs.iter().all(|&(key, id)| {
                let ids = cache.probe().inline_ids(key, key_hash(key));
                ids == Some([id, 0, 0, 1])
            })
        };
        let (far, _) = *pairs
            .iter()
            .max_by_key(|(key, _)| distance(&cache, *key))
            .unwrap();
        let start = distance(&cache, far);
        assert!(start >= 2, "{start}");
        for step in 1..=start {
            assert!(cache.probe().inline_ids(far, key_hash(far)).is_some());
            assert_eq!(distance(&cache, far), start - step);
            assert!(found_all(&mut cache));
        }
        // Lookups in any order, many times over: nothing is lost, absent words stay absent.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (key, id) = pairs[(state % pairs.len() as u64) as usize];
            assert_eq!(
                cache.probe().inline_ids(key, key_hash(key)),
                Some([id, 0, 0, 1])
            );
        }
        assert!(found_all(&mut cache));
        assert_eq!(cache.len, pairs.len());
        let absent = inline_key(b"absent");
        assert_eq!(cache.probe().inline_ids(absent, key_hash(absent)), None);
    }

    /// The first cache takes the table laid out with the seed; the next ones copy one laid
    /// out again; a cache reset after growing, or into a table larger than the seed's,
    /// puts the words in itself. Each way holds every seed word with its id, nothing else,
    /// and the two laid-out tables are the same.
    #[test]
    fn every_way_of_starting_from_a_seed_holds_its_words() {
        let pairs = numbered_pairs("t", 700);
        let seed = Seed::new(&pairs);
        let holds_the_seed = |cache: &mut WordCache| {
            assert_eq!(cache.len, pairs.len());
            assert_eq!(
                cache.table.iter().filter(|s| s.hi != 0).count(),
                pairs.len()
            );
            for &(key, id) in &pairs {
                assert_eq!(
                    cache.probe().inline_ids(key, key_hash(key)),
                    Some([id, 0, 0, 1])
                );
            }
        };
        let mut first = WordCache::new();
        first.reset(&seed, 0);
        holds_the_seed(&mut first);
        assert!(
            seed.take_first().is_none(),
            "the first cache took the laid-out table"
        );
        let mut second = WordCache::new();
        second.reset(&seed, 0);
        holds_the_seed(&mut second);
        // Laid out again the same way: the same slots.
        let same = |a: &[Slot], b: &[Slot]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x.lo, x.hi) == (y.lo, y.hi))
        };
        assert!(same(&first.table, &second.table));
        // Grown past the seed's size, then reset: the words are put in again.
        for i in 0..3000 {
            first.insert(format!("w{i}").as_bytes(), &[i], &seed);
        }
        assert!(first.table.len() > seed.slots);
        first.reset(&seed, 0);
        holds_the_seed(&mut first);
        // A fresh table larger than the seed's, for a long text's words.
        let mut third = WordCache::new();
        third.reset(&seed, 10_000);
        assert!(third.table.len() > seed.slots);
        holds_the_seed(&mut third);
    }

    #[test]
    fn tables_doubled_in_place_hold_every_word_in_an_unbroken_run() {
        // Enough words that the table passes 2 MB, where it is mapped with room and from
        // then on doubles in place (twice here).
        let pairs = numbered_pairs("s", 20_000);
        let seed = Seed::new(&pairs);
        let (mut cache, words) = seeded_cache(&seed, 150_000);
        let mut grew_in_place = 0;
        for (i, w) in words.iter().enumerate() {
            let (slots, at) = (cache.table.len(), cache.table.as_ptr());
            cache.insert(w.as_bytes(), &[i as TokenId, 7], &seed);
            if cache.table.len() > slots && cache.table.as_ptr() == at {
                grew_in_place += 1;
            }
        }
        assert!(grew_in_place >= 2, "{grew_in_place}");
        let check = |cache: &mut WordCache, words: &[String]| {
            assert_eq!(cache.len, pairs.len() + words.len());
            assert_eq!(cache.table.iter().filter(|s| s.hi != 0).count(), cache.len);
            let mask = cache.table.len() - 1;
            let all = pairs.iter().copied().chain(
                words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (inline_key(w.as_bytes()), i as TokenId)),
            );
            for (key, id) in all {
                // No empty slot between the word's first slot and its own.
                let mut i = key_hash(key) as usize & mask;
                while (cache.table[i].lo, cache.table[i].hi) != split_key(key) {
                    assert!(cache.table[i].hi != 0, "a gap before {key:x}");
                    i = (i + 1) & mask;
                }
                let ids = cache.probe().inline_ids(key, key_hash(key)).unwrap();
                assert_eq!(ids[0], id);
            }
        };
        check(&mut cache, &words);
        // Room made for a long text: a fourfold growth in one step, in place too.
        let (mut other, _) = seeded_cache(&seed, 0);
        let some = &words[..60_000];
        for (i, w) in some.iter().enumerate() {
            other.insert(w.as_bytes(), &[i as TokenId, 7], &seed);
        }
        let (slots, at) = (other.table.len(), other.table.as_ptr());
        other.reserve(3 * slots / 2);
        assert_eq!((other.table.len(), other.table.as_ptr()), (4 * slots, at));
        check(&mut other, some);
        // A reset into a larger table grows it in place too: the seed's words only.
        let slots = cache.table.len();
        cache.reset(&seed, 600_000);
        assert!(cache.table.len() > slots);
        let mut out = Vec::new();
        assert!(cache.probe().extend_short(pairs[5].0, &mut out));
        assert!(!cache.probe().extend_short(inline_key(b"w5"), &mut out));
        assert_eq!(out, [5]);
        assert_eq!(
            cache.table.iter().filter(|s| s.hi != 0).count(),
            pairs.len()
        );
    }

    /// Long words are cached up to `MAX_CACHED_WORD` bytes, and the cache is cleared (the
    /// seed kept) before their records (bytes and ids) pass `MAX_LONG_BYTES`, so that many
    /// distinct long words cannot take memory without bound.
    #[test]
    fn long_words_bytes_bound_the_cache() {
        let pairs = numbered_pairs("s", 300);
        let seed = Seed::new(&pairs);
        let (mut cache, _) = seeded_cache(&seed, 0);
        let word = |i: usize| {
            let mut w = format!("{i:0>8}").into_bytes();
            w.resize(MAX_CACHED_WORD, b'x');
            w
        };
        let record = MAX_CACHED_WORD + 4 * std::mem::size_of::<TokenId>();
        let fits = MAX_LONG_BYTES / record;
        let mut out = Vec::new();
        for i in 0..fits {
            cache.insert(&word(i), &[i as TokenId, 7, 8, 9], &seed);
        }
        assert!(find_long(&cache, &word(0), &mut out));
        assert!(find_long(&cache, &word(fits - 1), &mut out));
        assert_eq!(out, [0, 7, 8, 9, (fits - 1) as TokenId, 7, 8, 9]);
        assert_eq!(cache.long.record_bytes(), fits * record);
        cache.insert(&word(fits), &[1], &seed);
        assert!(!find_long(&cache, &word(0), &mut out));
        assert!(find_long(&cache, &word(fits), &mut out));
        assert_eq!(cache.long.record_bytes(), MAX_CACHED_WORD + 4);
        assert!(cache.probe().extend_short(pairs[3].0, &mut out));
    }

    #[test]
    fn seeded_entries_and_inserts_survive_growth() {
        let pairs = numbered_pairs("s", 300);
        let seed = Seed::new(&pairs);
        let (mut cache, words) = seeded_cache(&seed, 5000);
        let long: Vec<String> = (0..50).map(|i| format!("{i:0>20}")).collect();
        for (i, w) in words.iter().enumerate() {
            let ids: Vec<TokenId> = (0..=(i % 3) as TokenId).map(|k| k + i as TokenId).collect();
            cache.insert(w.as_bytes(), &ids, &seed);
        }
        for (i, w) in long.iter().enumerate() {
            cache.insert(w.as_bytes(), &[i as TokenId], &seed);
        }
        assert!(!crowded(cache.len, cache.table.len()));
        let mut out = Vec::new();
        for (key, id) in &pairs {
            out.clear();
            assert!(cache.probe().extend_short(*key, &mut out));
            assert_eq!(out, [*id]);
        }
        for (i, w) in words.iter().enumerate() {
            out.clear();
            let key = inline_key(w.as_bytes());
            assert!(cache.probe().extend_short(key, &mut out), "{w}");
            out.clear();
            let ids = cache.probe().inline_ids(key, key_hash(key)).unwrap();
            out.extend_from_slice(&ids[..ids[3] as usize]);
            let want: Vec<TokenId> = (0..=(i % 3) as TokenId).map(|k| k + i as TokenId).collect();
            assert_eq!(out, want);
        }
        for (i, w) in long.iter().enumerate() {
            out.clear();
            assert!(find_long(&cache, w.as_bytes(), &mut out));
            assert_eq!(out, [i as TokenId]);
        }
        out.clear();
        assert!(!cache.probe().extend_short(inline_key(b"absent"), &mut out));
        assert!(!find_long(&cache, b"absent but longer than 15", &mut out));
        assert!(out.is_empty());
        // Reset keeps only the seed.
        cache.reset(&seed, 0);
        assert!(!cache.probe().extend_short(inline_key(b"w1"), &mut out));
        assert!(cache.probe().extend_short(inline_key(b"s1"), &mut out));
    }
}
