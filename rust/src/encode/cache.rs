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
/// Entries kept before the cache is cleared.
const MAX_ENTRIES: usize = 1 << 17;

pub(crate) struct WordCache {
    owner: u64,
    /// Value: `x << 8 | n` with `n` tokens; `x` is the token itself when `n == 1`, else the
    /// start of the tokens in `arena`.
    map: FxHashMap<Box<[u8]>, u64>,
    arena: Vec<TokenId>,
}

impl WordCache {
    fn new() -> Self {
        WordCache {
            owner: u64::MAX,
            map: FxHashMap::default(),
            arena: Vec::new(),
        }
    }

    /// Appends the cached tokens of `word` to `out`; false when `word` is not cached.
    #[inline]
    pub(crate) fn extend(&self, word: &[u8], out: &mut Vec<TokenId>) -> bool {
        match self.map.get(word) {
            Some(&v) => {
                let n = (v & 0xFF) as usize;
                let x = (v >> 8) as usize;
                if n == 1 {
                    out.push(x as TokenId);
                } else {
                    out.extend_from_slice(&self.arena[x..x + n]);
                }
                true
            }
            None => false,
        }
    }

    /// Remembers that `word` encodes to `tokens` (1 to `MAX_CACHED_WORD` of them).
    #[inline]
    pub(crate) fn insert(&mut self, word: &[u8], tokens: &[TokenId]) {
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
            self.arena.clear();
        }
        let v = if tokens.len() == 1 {
            (u64::from(tokens[0]) << 8) | 1
        } else {
            let start = self.arena.len() as u64;
            self.arena.extend_from_slice(tokens);
            (start << 8) | tokens.len() as u64
        };
        self.map.insert(word.into(), v);
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
                cache.map.clear();
                cache.arena.clear();
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
