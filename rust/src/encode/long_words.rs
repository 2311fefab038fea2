//! The word cache's table of long words: pretokens of more than `INLINE_KEY` bytes (too
//! long for an inline key) and at most `MAX_CACHED_WORD`.
//!
//! They are a few in a thousand pretokens of web text, yet in a hash map keyed by boxed
//! bytes each lookup waited on three fetches from memory one after another (the map's
//! control bytes, its bucket, the key's bytes): 5% of a warm pass. Here a word's hash is
//! made when it is cut, like a short word's, so its slot is prefetched with theirs; the slot
//! holds the hash and length, and one record holds the word's bytes and then its ids, so a
//! hit waits on at most that one record.

use crate::TokenId;

/// One word's slot: its hash (0: an empty slot), its length in bytes, where its record
/// starts in `records`, and how many ids it has.
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct LongSlot {
    hash: u32,
    len: u32,
    at: u32,
    ids: u32,
}

/// Slots of an empty table; it doubles when three quarters full.
const MIN_SLOTS: usize = 64;

/// The hash of the `n` bytes (at least 8) of `bytes` from `start`, never 0: every byte
/// counts (a hash of the ends alone lets words that differ in the middle share a walk).
#[inline]
pub(crate) fn long_hash(bytes: &[u8], start: usize, n: usize) -> u32 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let word = &bytes[start..start + n];
    let load = |b: &[u8]| {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&b[..8]);
        u64::from_le_bytes(buf)
    };
    let mut x = (n as u64).wrapping_mul(K);
    let chunks = word.chunks_exact(8);
    let tail = chunks.remainder().len();
    for c in chunks {
        x = (x.rotate_left(5) ^ load(c)).wrapping_mul(K);
    }
    if tail > 0 {
        x = (x.rotate_left(5) ^ load(&word[n - 8..])).wrapping_mul(K);
    }
    ((x >> 32) as u32) | 1
}

/// Long words and their ids; see the module's notes.
pub(crate) struct LongWords {
    /// A power of two of them, linear probing.
    slots: Vec<LongSlot>,
    /// Each word's bytes packed into ids' worth (the last one padded with zeros), then its
    /// ids.
    records: Vec<TokenId>,
    len: usize,
}

/// The table borrowed for prefetches: its slots and mask in registers.
#[derive(Clone, Copy)]
pub(crate) struct LongView {
    slots: *const LongSlot,
    mask: usize,
}

impl LongView {
    /// Asks the processor to start fetching the first slot of the word whose hash is `h`.
    #[inline(always)]
    pub(crate) fn prefetch(&self, h: u32) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `h & mask` is a slot of the table; and a prefetch has no effect but on
        // caches.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.add(h as usize & self.mask).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }
}

/// How many ids hold `n` bytes.
fn packed_len(n: usize) -> usize {
    n.div_ceil(4)
}

impl LongWords {
    pub(crate) fn new() -> Self {
        LongWords {
            slots: vec![LongSlot::default(); MIN_SLOTS],
            records: Vec::new(),
            len: 0,
        }
    }

    /// How many words it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes its records take.
    pub(crate) fn record_bytes(&self) -> usize {
        self.records.len() * std::mem::size_of::<TokenId>()
    }

    /// Forgets every word (keeping the memory).
    pub(crate) fn clear(&mut self) {
        self.slots.fill(LongSlot::default());
        self.records.clear();
        self.len = 0;
    }

    pub(crate) fn view(&self) -> LongView {
        LongView {
            slots: self.slots.as_ptr(),
            mask: self.slots.len() - 1,
        }
    }

    /// The ids of `word` (hash `h`, from `long_hash`), if it is cached.
    #[inline]
    pub(crate) fn get(&self, word: &[u8], h: u32) -> Option<&[TokenId]> {
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.hash == 0 {
                return None;
            }
            if slot.hash == h && slot.len as usize == word.len() {
                let at = slot.at as usize;
                let key = packed_len(word.len());
                let record = &self.records[at..at + key + slot.ids as usize];
                if key_bytes(&record[..key], word.len()) == word {
                    return Some(&record[key..]);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Caches `word` (hash `h`, not cached yet) with its `ids`; false, leaving it out, when
    /// there is no memory for it.
    pub(crate) fn insert(&mut self, word: &[u8], h: u32, ids: &[TokenId]) -> bool {
        if (self.len + 1) * 4 > self.slots.len() * 3 && !self.grow() {
            return false;
        }
        let at = self.records.len();
        let key = packed_len(word.len());
        if self.records.try_reserve(key + ids.len()).is_err() {
            return false;
        }
        self.records.extend(word.chunks(4).map(|c| {
            let mut buf = [0u8; 4];
            buf[..c.len()].copy_from_slice(c);
            TokenId::from_ne_bytes(buf)
        }));
        self.records.extend_from_slice(ids);
        // Records stay under `MAX_LONG_BYTES` and a word under `MAX_CACHED_WORD` bytes.
        self.put(LongSlot {
            hash: h,
            len: word.len() as u32,
            at: at as u32,
            ids: ids.len() as u32,
        });
        self.len += 1;
        true
    }

    /// Puts `slot` into the first empty slot of its walk.
    fn put(&mut self, slot: LongSlot) {
        let mask = self.slots.len() - 1;
        let mut i = slot.hash as usize & mask;
        while self.slots[i].hash != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Doubles the slots; false when there is no memory for them.
    #[cold]
    fn grow(&mut self) -> bool {
        let mut slots = Vec::new();
        if slots.try_reserve_exact(self.slots.len() * 2).is_err() {
            return false;
        }
        slots.resize(self.slots.len() * 2, LongSlot::default());
        let old = std::mem::replace(&mut self.slots, slots);
        for slot in old.into_iter().filter(|s| s.hash != 0) {
            self.put(slot);
        }
        true
    }
}

/// The first `n` bytes of the ids `packed` (a word's bytes, packed by `insert`).
fn key_bytes(packed: &[TokenId], n: usize) -> &[u8] {
    // SAFETY: `packed` is `4 * packed.len()` initialized bytes, at least `n` of them, and
    // bytes need no alignment.
    unsafe { std::slice::from_raw_parts(packed.as_ptr().cast::<u8>(), n) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Words inserted are found with their ids through any number of doublings, words of
    /// one length sharing a hash (forced) are told apart by their bytes, and absent words
    /// are not found; a cleared table finds none.
    #[test]
    fn words_are_found_by_their_bytes_through_growth() {
        let words: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("{i:0>9}-{}", "x".repeat(i / 2 % 40)).into_bytes())
            .collect();
        // In each four, the first two words take the first one's hash: they share a walk.
        let hash = |i: usize| {
            let w = &words[if i % 4 < 2 { i - i % 2 } else { i }];
            long_hash(w, 0, w.len())
        };
        let ids = |i: usize| -> Vec<TokenId> {
            (0..=(i % 7) as TokenId).map(|k| k + i as TokenId).collect()
        };
        let mut table = LongWords::new();
        for (i, w) in words.iter().enumerate() {
            assert!(table.insert(w, hash(i), &ids(i)));
        }
        assert_eq!(table.len(), words.len());
        assert!(table.slots.len() >= 4096);
        for (i, w) in words.iter().enumerate() {
            assert_eq!(table.get(w, hash(i)), Some(&ids(i)[..]), "{i}");
        }
        let absent = b"000000001-xx".to_vec();
        assert_eq!(
            table.get(&absent, long_hash(&absent, 0, absent.len())),
            None
        );
        table.clear();
        assert_eq!(
            table.get(&words[5], long_hash(&words[5], 0, words[5].len())),
            None
        );
        assert_eq!(table.record_bytes(), 0);
    }

    /// The hash reads every byte and the length: words differing in one byte anywhere, or
    /// by a trailing zero byte, hash apart (for these words), and a word's hash is the same
    /// wherever it lies in a text.
    #[test]
    fn hashes_cover_every_byte_and_the_length() {
        let word: Vec<u8> = (0..40u8).map(|b| b'a' + b % 26).collect();
        let h = long_hash(&word, 0, word.len());
        for i in 0..word.len() {
            let mut other = word.clone();
            other[i] ^= 1;
            assert_ne!(long_hash(&other, 0, other.len()), h, "byte {i}");
        }
        let mut longer = word.clone();
        longer.push(0);
        assert_ne!(long_hash(&longer, 0, longer.len()), h);
        let text = [b"xyz".as_slice(), &word, b"!"].concat();
        assert_eq!(long_hash(&text, 3, word.len()), h);
    }
}
