//! What the block scanners share: walking a text 64 bytes at a time, each block classified
//! while the one before it is cut, and the pretoken ends of each block given as the set
//! bits of a mask of starts. Each pattern brings its `Rules`: the masks of a block, the
//! starts they imply, and the scalar scanner that cuts a block the masks do not decide.

use super::ends::{Ends, BLOCKS_PER_CALL, MAX_ENDS};

/// One pattern's rules for cutting blocks.
pub(super) trait Rules {
    /// The masks of one 64-byte block.
    type Block: Copy;
    /// What the text's start looks like to its first block.
    fn before_text() -> Self::Block;
    /// What follows the last block.
    fn after_text() -> Self::Block;
    /// The masks of the 64 bytes from `base` (past the text's end: spaces).
    fn classify(bytes: &[u8], base: usize, prev: &Self::Block) -> Self::Block;
    /// The pretoken starts in `cur`, the block at `base`, given the blocks around it and
    /// the start of the pretoken not ended yet (`pending`); `None` where the scalar scanner
    /// must cut the block. May keep what the next block needs.
    #[allow(clippy::too_many_arguments)]
    fn starts(
        &mut self,
        bytes: &[u8],
        base: usize,
        pending: usize,
        prev: &Self::Block,
        cur: &Self::Block,
        next: &Self::Block,
    ) -> Option<u64>;
    /// Called after the scalar scanner cut a block: what `starts` kept no longer holds.
    fn after_scalar(&mut self);
    /// The end of the pretoken starting at `s`, by the scalar scanner.
    fn scalar_end(bytes: &[u8], s: usize) -> usize;
}

/// Cuts a text into pretokens a block at a time by `R`: each call of `next_ends` gives the
/// ends of the pretokens completed in the next `BLOCKS_PER_CALL` blocks.
pub struct BlockScanner<'a, R: Rules> {
    rules: R,
    bytes: &'a [u8],
    /// Index of the next block.
    k: usize,
    blocks: usize,
    prev: R::Block,
    cur: R::Block,
    /// Start of the pretoken whose end is not given yet.
    pending: usize,
}

impl<'a, R: Rules> BlockScanner<'a, R> {
    pub(super) fn new(rules: R, text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let prev = R::before_text();
        let cur = if bytes.is_empty() {
            R::after_text()
        } else {
            R::classify(bytes, 0, &prev)
        };
        BlockScanner {
            rules,
            bytes,
            k: 0,
            blocks: bytes.len().div_ceil(64),
            prev,
            cur,
            pending: 0,
        }
    }
}

impl<R: Rules> Ends for BlockScanner<'_, R> {
    #[inline(always)]
    fn next_ends(&mut self, ends: &mut [usize; MAX_ENDS]) -> Option<usize> {
        if self.k >= self.blocks {
            return None;
        }
        let mut count = 0;
        for _ in 0..BLOCKS_PER_CALL {
            if self.k >= self.blocks {
                break;
            }
            count = self.next_block(ends, count);
        }
        Some(count)
    }
}

impl<R: Rules> BlockScanner<'_, R> {
    /// Cuts the next block, writing the ends it completes to `ends` from `count` on;
    /// returns the new count.
    #[inline(always)]
    fn next_block(&mut self, ends: &mut [usize; MAX_ENDS], mut count: usize) -> usize {
        let bytes = self.bytes;
        let n = bytes.len();
        let base = self.k * 64;
        self.k += 1;
        let next = if self.k < self.blocks {
            R::classify(bytes, base + 64, &self.cur)
        } else {
            R::after_text()
        };
        let starts = self
            .rules
            .starts(bytes, base, self.pending, &self.prev, &self.cur, &next);
        match starts {
            Some(mut starts) => {
                // Only starts after the pending one (a scalar scan may have run past them),
                // and none past the text's end.
                if self.pending >= base {
                    let after = self.pending - base;
                    starts &= if after < 64 {
                        (u64::MAX << after) << 1
                    } else {
                        0
                    };
                }
                if n - base < 64 {
                    starts &= (1u64 << (n - base)) - 1;
                }
                // Eight ends at a time, whether or not the block has that many more: the
                // loop then ends after a number of rounds that seldom changes from block to
                // block, where ending after each block's own count of starts was a branch
                // mispredicted about once a block. Writes past the real ends stay within
                // the block's 64 places in `ends`, and are written over or never read.
                let found = starts.count_ones() as usize;
                let mut written = 0;
                while written < found {
                    let group = &mut ends[count + written..count + written + 8];
                    for end in group {
                        *end = base + starts.trailing_zeros() as usize;
                        starts &= starts.wrapping_sub(1);
                    }
                    written += 8;
                }
                count += found;
                if count > 0 {
                    self.pending = ends[count - 1];
                }
            }
            None => {
                let end = (base + 64).min(n);
                while self.pending < end {
                    self.pending = R::scalar_end(bytes, self.pending);
                    ends[count] = self.pending;
                    count += 1;
                }
                self.rules.after_scalar();
            }
        }
        if self.k == self.blocks && self.pending < n {
            ends[count] = n;
            count += 1;
            self.pending = n;
        }
        self.prev = self.cur;
        self.cur = next;
        count
    }
}
