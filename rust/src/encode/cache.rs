//! A per-thread cache from pretoken bytes to its tokens.
//!
//! Most text repeats a small set of pretokens, so remembering each pretoken's tokens skips
//! the merge loop for nearly every word. Each thread keeps one cache, tagged with the
//! encoder that filled it; using another encoder on the thread starts it afresh. The cache
//! is cleared when it grows past a bound, so memory stays flat on any input.

use std::cell::RefCell;

use rustc_hash::FxHashMap;

use crate::TokenId;

/// Pretokens longer than this are not cached (rare, and they would bloat the arena).
pub(crate) const MAX_CACHED_WORD: usize = 64;
/// Entries kept before the cache is cleared (a web text of 20 MB has about 150k distinct
/// pretokens; about 24 bytes an entry for short words).
const MAX_ENTRIES: usize = 1 << 19;
/// Words up to this many bytes are keyed by one `u128` (bytes, then the length in the last
/// byte), which hashes and compares without touching memory elsewhere.
const INLINE_KEY: usize = 15;

/// Slots of the direct-mapped front cache (16384 slots, 512 KiB: near the core, where the
/// large map does not; most pretokens are among a few thousand frequent words).
const FRONT_BITS: u32 = 14;

pub(crate) struct WordCache {
    owner: u64,
    /// Direct-mapped `(key, value)` by hash of the key, for short words; key 0 is empty
    /// (a key always holds a non-zero length byte).
    front: Vec<(u128, u64)>,
    /// Value: `x << 8 | n` with `n` tokens; `x` is the token itself when `n == 1`, else the
    /// start of the tokens in `arena`.
    short: FxHashMap<u128, u64>,
    long: FxHashMap<Box<[u8]>, u64>,
    arena: Vec<TokenId>,
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
fn inline_key(word: &[u8]) -> u128 {
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

#[inline]
fn front_slot(key: u128) -> usize {
    let mixed = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FRONT_BITS)) as usize
}

#[inline]
fn push_value(v: u64, arena: &[TokenId], out: &mut Vec<TokenId>) {
    let n = (v & 0xFF) as usize;
    let x = (v >> 8) as usize;
    if n == 1 {
        out.push(x as TokenId);
    } else {
        out.extend_from_slice(&arena[x..x + n]);
    }
}

impl WordCache {
    fn new() -> Self {
        WordCache {
            owner: u64::MAX,
            front: vec![(0, 0); 1 << FRONT_BITS],
            short: FxHashMap::default(),
            long: FxHashMap::default(),
            arena: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.front.iter_mut().for_each(|slot| *slot = (0, 0));
        self.short.clear();
        self.long.clear();
        self.arena.clear();
    }

    /// Appends the cached tokens of `word` to `out`; false when `word` is not cached.
    #[inline]
    pub(crate) fn extend(&mut self, word: &[u8], out: &mut Vec<TokenId>) -> bool {
        if word.len() <= INLINE_KEY {
            let key = inline_key(word);
            let slot = front_slot(key);
            let (k, v) = self.front[slot];
            if k == key {
                push_value(v, &self.arena, out);
                return true;
            }
            match self.short.get(&key) {
                Some(&v) => {
                    self.front[slot] = (key, v);
                    push_value(v, &self.arena, out);
                    true
                }
                None => false,
            }
        } else {
            match self.long.get(word) {
                Some(&v) => {
                    push_value(v, &self.arena, out);
                    true
                }
                None => false,
            }
        }
    }

    /// Remembers that `word` encodes to `tokens` (1 to `MAX_CACHED_WORD` of them).
    #[inline]
    pub(crate) fn insert(&mut self, word: &[u8], tokens: &[TokenId]) {
        if self.short.len() + self.long.len() >= MAX_ENTRIES {
            self.clear();
        }
        let v = if tokens.len() == 1 {
            (u64::from(tokens[0]) << 8) | 1
        } else {
            let start = self.arena.len() as u64;
            self.arena.extend_from_slice(tokens);
            (start << 8) | tokens.len() as u64
        };
        if word.len() <= INLINE_KEY {
            let key = inline_key(word);
            self.front[front_slot(key)] = (key, v);
            self.short.insert(key, v);
        } else {
            self.long.insert(word.into(), v);
        }
    }
}

thread_local! {
    static CACHE: RefCell<WordCache> = RefCell::new(WordCache::new());
}

/// Runs `f` with this thread's cache, emptied first if another encoder (`owner`) filled it.
pub(crate) fn with_cache<R>(owner: u64, f: impl FnOnce(&mut WordCache) -> R) -> R {
    CACHE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut cache) => {
            if cache.owner != owner {
                cache.clear();
                cache.owner = owner;
            }
            f(&mut cache)
        }
        // Only reachable by re-entrance on this thread; a private cache keeps it correct.
        Err(_) => {
            let mut cache = WordCache::new();
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
        let text = b"abcdefghijklmno\x00\xff";
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
    }
}
