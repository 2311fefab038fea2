//! Pretoken ends a few blocks at a time: the interface the encoder consumes pretokens
//! through, and its implementation for scanners that find one pretoken at a time.

/// Blocks of 64 bytes a block scanner cuts in one `next_ends` call. The encoder loops over
/// each call's ends twice (making keys, then looking them up), and the processor mispredicts
/// the end of such a loop about once a call: at one block a call, those and the scanner's
/// own loop over a block's starts were three mispredictions every 64 bytes of text, a tenth
/// of a warm pass on an Intel Xeon (`benches/RESULTS.md`).
pub const BLOCKS_PER_CALL: usize = 4;
/// Most pretoken ends one `next_ends` call gives: 64 a block, and the text's end.
pub const MAX_ENDS: usize = 64 * BLOCKS_PER_CALL + 2;

/// Cuts a text into pretokens, giving their end offsets a few blocks at a time (each
/// pretoken starts where the one before it ended, the first at 0).
pub trait Ends {
    /// Writes the ends of the next pretokens to `ends` (in order, at least one while any
    /// text is left) and returns how many; `None` once the text is done.
    fn next_ends(&mut self, ends: &mut [usize; MAX_ENDS]) -> Option<usize>;
}

impl<E: Ends + ?Sized> Ends for &mut E {
    #[inline(always)]
    fn next_ends(&mut self, ends: &mut [usize; MAX_ENDS]) -> Option<usize> {
        (**self).next_ends(ends)
    }
}

/// `Ends` from a function that gives the end of the pretoken starting at a given offset
/// (`end_at(bytes, start)`, for `start < bytes.len()`; greater than `start`): the scalar
/// scanners as references for the block scanners.
#[cfg(test)]
pub struct ScalarEnds<'a, F> {
    bytes: &'a [u8],
    pos: usize,
    end_at: F,
}

#[cfg(test)]
impl<'a, F: Fn(&[u8], usize) -> usize> ScalarEnds<'a, F> {
    pub fn new(text: &'a str, end_at: F) -> Self {
        ScalarEnds {
            bytes: text.as_bytes(),
            pos: 0,
            end_at,
        }
    }
}

#[cfg(test)]
impl<F: Fn(&[u8], usize) -> usize> Ends for ScalarEnds<'_, F> {
    #[inline(always)]
    fn next_ends(&mut self, ends: &mut [usize; MAX_ENDS]) -> Option<usize> {
        let n = self.bytes.len();
        if self.pos >= n {
            return None;
        }
        let mut count = 0;
        while count < 64 && self.pos < n {
            self.pos = (self.end_at)(self.bytes, self.pos);
            ends[count] = self.pos;
            count += 1;
        }
        Some(count)
    }
}

/// Calls `f` on each pretoken that `ends` cuts `text` into.
#[inline(always)]
pub fn for_each<'a>(text: &'a str, mut ends: impl Ends, mut f: impl FnMut(&'a str)) {
    let mut buf = [0usize; MAX_ENDS];
    let mut start = 0;
    while let Some(count) = ends.next_ends(&mut buf) {
        for &end in &buf[..count] {
            debug_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
            // SAFETY: every scanner cuts only between characters (each module's tests check
            // its spans against a char-by-char reference), and the ends increase up to
            // `text.len()`.
            f(unsafe { text.get_unchecked(start..end) });
            start = end;
        }
    }
}
