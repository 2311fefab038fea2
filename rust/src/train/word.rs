//! The distinct pretokens being trained on, as token sequences in one flat buffer, which
//! grows fallibly (`alloc`).

use crate::alloc;
use crate::error::Result;
use crate::TokenId;

/// A pair of adjacent tokens packed into one `u64` (left in the high half) for cheap hashing.
pub type PairKey = u64;

pub fn pair_key(left: TokenId, right: TokenId) -> PairKey {
    (u64::from(left) << 32) | u64::from(right)
}

pub fn unpack_pair(key: PairKey) -> (TokenId, TokenId) {
    ((key >> 32) as TokenId, key as TokenId)
}

/// Every distinct word with its count. Word `w` occupies `ids[start[w]..start[w] + len[w]]`;
/// merging only ever shortens a word, so it is rewritten in place.
#[derive(Debug, Default, Clone)]
pub struct Words {
    ids: Vec<TokenId>,
    start: Vec<usize>,
    len: Vec<u32>,
    counts: Vec<u64>,
}

impl Words {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `words` words of `ids` tokens in all.
    pub fn with_capacity(words: usize, ids: usize) -> Result<Self> {
        Ok(Words {
            ids: alloc::try_with_capacity(ids, WHAT)?,
            start: alloc::try_with_capacity(words, WHAT)?,
            len: alloc::try_with_capacity(words, WHAT)?,
            counts: alloc::try_with_capacity(words, WHAT)?,
        })
    }

    /// Adds a word of single-byte tokens that occurs `count` times.
    pub fn push(&mut self, bytes: &[u8], count: u64) -> Result<()> {
        alloc::try_reserve(&mut self.ids, bytes.len(), WHAT)?;
        alloc::try_reserve(&mut self.start, 1, WHAT)?;
        alloc::try_reserve(&mut self.len, 1, WHAT)?;
        alloc::try_reserve(&mut self.counts, 1, WHAT)?;
        self.start.push(self.ids.len());
        self.ids.extend(bytes.iter().map(|&b| TokenId::from(b)));
        // Pretokens are slices of one file, far shorter than 4 GiB.
        self.len.push(bytes.len() as u32);
        self.counts.push(count);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn count(&self, w: usize) -> u64 {
        self.counts[w]
    }

    /// The most merges these words can make: each merge shortens at least one word.
    pub fn max_merges(&self) -> usize {
        self.len
            .iter()
            .map(|&n| (n as usize).saturating_sub(1))
            .sum()
    }

    pub fn tokens(&self, w: usize) -> &[TokenId] {
        let start = self.start[w];
        &self.ids[start..start + self.len[w] as usize]
    }

    /// Asks the CPU to start loading word `w`'s bookkeeping (start, length, count). The merge
    /// loop visits scattered words, so without this it mostly waits on cache misses.
    pub(crate) fn prefetch_meta(&self, w: usize) {
        prefetch(self.start.as_ptr().wrapping_add(w));
        prefetch(self.len.as_ptr().wrapping_add(w));
        prefetch(self.counts.as_ptr().wrapping_add(w));
    }

    /// Asks the CPU to start loading word `w`'s tokens (best after `prefetch_meta(w)`).
    pub(crate) fn prefetch_tokens(&self, w: usize) {
        prefetch(self.ids.as_ptr().wrapping_add(self.start[w]));
    }

    /// Replaces the non-overlapping occurrences of `(left, right)` in word `w`, scanning left
    /// to right, by `new`, and calls `seen(prev, next)` for each replaced occurrence with the
    /// tokens beside it (an error of `seen` ends the call, the word half rewritten). Collapsing `prev left right next` into `prev new next` removes the
    /// pairs `(prev, left)`, `(left, right)`, `(right, next)` and adds `(prev, new)`,
    /// `(new, next)`; `prev` is the already rewritten token (possibly `new` itself), so these
    /// changes add up to exactly the difference between counting the word's adjacent pairs
    /// before and after.
    pub(crate) fn merge(
        &mut self,
        w: usize,
        left: TokenId,
        right: TokenId,
        new: TokenId,
        mut seen: impl FnMut(Option<TokenId>, Option<TokenId>) -> Result<()>,
    ) -> Result<()> {
        let start = self.start[w];
        let n = self.len[w] as usize;
        let s = &mut self.ids[start..start + n];
        let (mut i, mut j) = (0usize, 0usize);
        while i < n {
            if i + 1 < n && s[i] == left && s[i + 1] == right {
                let prev = j.checked_sub(1).map(|p| s[p]);
                seen(prev, s.get(i + 2).copied())?;
                s[j] = new;
                i += 2;
            } else {
                s[j] = s[i];
                i += 1;
            }
            j += 1;
        }
        self.len[w] = j as u32;
        Ok(())
    }
}

const WHAT: &str = "training words";

/// A prefetch hint; never faults, so any address is fine.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it reads nothing and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pair_counts(tokens: &[TokenId]) -> BTreeMap<PairKey, i32> {
        let mut m = BTreeMap::new();
        for p in tokens.windows(2) {
            *m.entry(pair_key(p[0], p[1])).or_insert(0) += 1;
        }
        m
    }

    /// Merges and checks the reported deltas against recounting from scratch.
    fn check(bytes: &[u8], left: TokenId, right: TokenId, expect: &[TokenId]) {
        let mut words = Words::new();
        words.push(bytes, 1).expect("room");
        let mut counts = pair_counts(words.tokens(0));
        let mut add = |l, r, d| *counts.entry(pair_key(l, r)).or_insert(0) += d;
        words
            .merge(0, left, right, 999, |prev, next| {
                add(left, right, -1);
                if let Some(p) = prev {
                    add(p, left, -1);
                    add(p, 999, 1);
                }
                if let Some(x) = next {
                    add(right, x, -1);
                    add(999, x, 1);
                }
                Ok(())
            })
            .expect("merges");
        assert_eq!(words.tokens(0), expect);
        counts.retain(|_, c| *c != 0);
        assert_eq!(counts, pair_counts(expect));
    }

    #[test]
    fn merges_left_to_right_without_overlap() {
        let (a, b) = (TokenId::from(b'a'), TokenId::from(b'b'));
        check(b"aaa", a, a, &[999, a]);
        check(b"aaaa", a, a, &[999, 999]);
        check(b"abab", a, b, &[999, 999]);
        check(b"babab", a, b, &[b, 999, 999]);
        check(b"xaby", a, b, &[120, 999, 121]);
        check(b"ba", a, b, &[b, a]);
        check(b"a", a, a, &[a]);
        check(b"", a, a, &[]);
    }

    #[test]
    fn pair_keys_round_trip() {
        assert_eq!(unpack_pair(pair_key(7, u32::MAX)), (7, u32::MAX));
        assert!(pair_key(1, 0) > pair_key(0, u32::MAX));
    }
}
