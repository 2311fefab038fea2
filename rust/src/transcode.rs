//! UTF-8 from fixed-width code units: Latin-1 (one byte per character), UCS-2 (the Basic
//! Multilingual Plane, two bytes) and UCS-4 (four bytes), the three forms in which CPython
//! stores a `str`.
//!
//! The Python bindings read a `str`'s own storage and encode it here, outside the GIL and in
//! parallel, rather than ask CPython for its UTF-8 copy (made under the GIL, at about half
//! the speed, and kept alive with the string). `Units::utf8_len` gives the exact size first,
//! so that many texts can be written side by side into one buffer; runs of ASCII, the bulk
//! of most text, are copied eight characters at a time.

use std::mem::MaybeUninit;

use crate::corpus::safe_split_between;
use crate::pretokenize::Pattern;
use crate::special::SpecialTokens;

/// A text's code units, in one of CPython's three widths.
#[derive(Clone, Copy, Debug)]
pub enum Units<'a> {
    Latin1(&'a [u8]),
    Ucs2(&'a [u16]),
    Ucs4(&'a [u32]),
}

/// Code units transcoded per step by `for_each_safe_piece`: the UTF-8 of one step (64 to
/// 192 KB) is still in the processor's caches when the encoder reads it.
pub(crate) const PIECE_UNITS: usize = 1 << 16;

impl<'a> Units<'a> {
    /// How many code units (characters) the text has.
    pub fn len(&self) -> usize {
        match *self {
            Units::Latin1(u) => u.len(),
            Units::Ucs2(u) => u.len(),
            Units::Ucs4(u) => u.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The code units in `range` (whole characters: no width splits one).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Units<'a> {
        match *self {
            Units::Latin1(u) => Units::Latin1(&u[range]),
            Units::Ucs2(u) => Units::Ucs2(&u[range]),
            Units::Ucs4(u) => Units::Ucs4(&u[range]),
        }
    }

    /// Calls `f` on consecutive pieces of the text's UTF-8, which make up the whole text and
    /// are cut only where `corpus::safe_split_between` allows, so that encoding the pieces
    /// one after another gives the tokens of the whole. The UTF-8 is made a step at a time
    /// in `buf`, which stays small (unless the text has no safe cut for long), instead of
    /// in one buffer as large as the text: fresh memory costs page faults, and the encoder
    /// reads each piece while it is still in cache. Fails, after the pieces before it,
    /// with `NotUnicode` (`text` is the caller's index of this text) at the first code unit
    /// with no UTF-8 (see `write_utf8`), or `OutOfMemory` when `buf` cannot grow.
    pub fn for_each_safe_piece(
        &self,
        text: usize,
        specials: &SpecialTokens,
        pattern: &Pattern,
        buf: &mut Vec<u8>,
        mut f: impl FnMut(&str),
    ) -> crate::error::Result<()> {
        buf.clear();
        let n = self.len();
        let mut at = 0;
        while at < n {
            let end = (at + PIECE_UNITS).min(n);
            let step = self.slice(at..end);
            // Room for the most UTF-8 the step can make, rather than a pass to count it; left
            // unfilled (zeroing three times the step's units cost 2% of encoding web text).
            let old = buf.len();
            let room = step.max_utf8_len();
            crate::alloc::try_reserve(buf, room, "a text made UTF-8")?;
            let written = step
                .write_utf8_prefix(&mut buf.spare_capacity_mut()[..room])
                .map_err(|i| crate::error::BpeError::NotUnicode { text, unit: at + i })?;
            // SAFETY: `write_utf8_prefix` wrote the `written` bytes after `old`.
            unsafe { buf.set_len(old + written) };
            at = end;
            if at == n {
                break;
            }
            // SAFETY: `buf` holds the UTF-8 of whole characters (written above).
            let utf8 = unsafe { std::str::from_utf8_unchecked(buf) };
            let lo = old.saturating_sub(specials.max_len() + 4);
            if let Some(cut) = safe_split_between(utf8, specials, pattern, lo, utf8.len()) {
                f(&utf8[..cut]);
                buf.drain(..cut);
            }
        }
        if !buf.is_empty() {
            // SAFETY: as above.
            f(unsafe { std::str::from_utf8_unchecked(buf) });
        }
        Ok(())
    }

    /// The length of the text's UTF-8 (a surrogate counted as the 3 bytes it would take).
    pub fn utf8_len(&self) -> usize {
        match *self {
            Units::Latin1(u) => u.len() + simd::non_ascii_u8(u),
            Units::Ucs2(u) => u.len() + simd::extra_utf8_u16(u),
            Units::Ucs4(u) => simd::utf8_len_u32(u),
        }
    }

    /// Writes the text's UTF-8 to `out`, which must be exactly `utf8_len()` bytes long; or
    /// returns the index of the first code unit with no UTF-8 (a lone surrogate, or above
    /// U+10FFFF), leaving `out` partly written.
    pub fn write_utf8(&self, out: &mut [u8]) -> Result<(), usize> {
        // SAFETY: the writer stores only initialized bytes, so `out` stays initialized.
        let room = unsafe { &mut *(std::ptr::from_mut(out) as *mut [MaybeUninit<u8>]) };
        let written = self.write_utf8_prefix(room)?;
        debug_assert_eq!(written, out.len(), "out must be exactly utf8_len() long");
        Ok(())
    }

    /// The most UTF-8 bytes the text can make (its length in bytes as UTF-8 is at most
    /// this), without reading it.
    pub fn max_utf8_len(&self) -> usize {
        self.len().saturating_mul(self.max_utf8_per_unit())
    }

    /// The most UTF-8 bytes a code unit of this width makes.
    fn max_utf8_per_unit(&self) -> usize {
        match self {
            Units::Latin1(_) => 2,
            Units::Ucs2(_) => 3,
            Units::Ucs4(_) => 4,
        }
    }

    /// Writes the text's UTF-8 to the start of `out`, which must have room for it (at least
    /// `utf8_len()` bytes), and returns its length (the bytes written, which are then
    /// initialized); errors as `write_utf8`.
    fn write_utf8_prefix(&self, out: &mut [MaybeUninit<u8>]) -> Result<usize, usize> {
        let mut w = Writer { out, at: 0 };
        match *self {
            Units::Latin1(u) => {
                let mut i = 0;
                while i < u.len() {
                    i += w.ascii_run_u8(&u[i..]);
                    if let Some(&c) = u.get(i) {
                        w.char(u32::from(c));
                        i += 1;
                    }
                }
            }
            Units::Ucs2(u) => {
                let mut i = 0;
                while i < u.len() {
                    i += w.ascii_run_u16(&u[i..]);
                    if let Some(&c) = u.get(i) {
                        if (0xD800..0xE000).contains(&c) {
                            return Err(i);
                        }
                        w.char(u32::from(c));
                        i += 1;
                    }
                }
            }
            Units::Ucs4(u) => {
                let mut i = 0;
                while i < u.len() {
                    i += w.ascii_run_u32(&u[i..]);
                    if let Some(&c) = u.get(i) {
                        if char::from_u32(c).is_none() {
                            return Err(i);
                        }
                        w.char(c);
                        i += 1;
                    }
                }
            }
        }
        Ok(w.at)
    }
}

/// The UTF-8 length of code point `c` (3 for a surrogate, 4 above U+FFFF).
#[inline]
fn utf8_width(c: u32) -> usize {
    1 + usize::from(c >= 0x80) + usize::from(c >= 0x800) + usize::from(c >= 0x1_0000)
}

/// Writes UTF-8 into a slice sized for it, which need not be initialized.
struct Writer<'a> {
    out: &'a mut [MaybeUninit<u8>],
    at: usize,
}

impl Writer<'_> {
    /// Writes code point `c` (a scalar value, or a surrogate in a count-only position).
    #[inline]
    fn char(&mut self, c: u32) {
        let at = self.at;
        match utf8_width(c) {
            1 => _ = self.out[at].write(c as u8),
            2 => _ = self.out[at..at + 2].write_copy_of_slice(&[0xC0 | (c >> 6) as u8, cont(c)]),
            3 => {
                _ = self.out[at..at + 3].write_copy_of_slice(&[
                    0xE0 | (c >> 12) as u8,
                    cont(c >> 6),
                    cont(c),
                ])
            }
            _ => {
                _ = self.out[at..at + 4].write_copy_of_slice(&[
                    0xF0 | (c >> 18) as u8,
                    cont(c >> 12),
                    cont(c >> 6),
                    cont(c),
                ])
            }
        }
        self.at += utf8_width(c);
    }

    /// Copies the ASCII prefix of `units`, sixteen at a time; returns its length.
    #[inline]
    fn ascii_run_u8(&mut self, units: &[u8]) -> usize {
        let n = simd::ascii_prefix_u8(units);
        self.out[self.at..self.at + n].write_copy_of_slice(&units[..n]);
        self.at += n;
        n
    }

    /// Copies the ASCII prefix of `units`, sixteen at a time; returns its length.
    #[inline]
    fn ascii_run_u16(&mut self, units: &[u16]) -> usize {
        self.ascii_run(units, simd::ascii16_u16)
    }

    /// Copies the ASCII prefix of `units`, sixteen at a time; returns its length. A text
    /// stored as UCS-4 (one character above U+FFFF anywhere, an emoji) is mostly ASCII too:
    /// one character at a time, its UTF-8 came at a quarter of UCS-2's speed.
    #[inline]
    fn ascii_run_u32(&mut self, units: &[u32]) -> usize {
        self.ascii_run(units, simd::ascii16_u32)
    }

    /// Copies the ASCII prefix of `units`, sixteen at a time by `ascii16`, then one at a
    /// time; returns its length. (Eight at a time, web text stored as UCS-2 made UTF-8 at
    /// 5-8 GB/s, a tenth of encoding it in calls of 10 KB. Writing a chunk that holds a
    /// non-ASCII unit whole and keeping its ASCII prefix measured 2-4 times slower.)
    #[inline(always)]
    fn ascii_run<T: Copy + Into<u32>>(
        &mut self,
        units: &[T],
        ascii16: impl Fn(&[T]) -> Option<[u8; 16]>,
    ) -> usize {
        let mut n = 0;
        while let (Some(chunk), Some(out)) = (
            units.get(n..n + 16),
            self.out.get_mut(self.at..self.at + 16),
        ) {
            let Some(bytes) = ascii16(chunk) else {
                break;
            };
            out.write_copy_of_slice(&bytes);
            self.at += 16;
            n += 16;
        }
        self.ascii_tail(units, n)
    }

    /// Copies the ASCII units of `units` from `n` one at a time; returns where they end.
    #[inline]
    fn ascii_tail<T: Copy + Into<u32>>(&mut self, units: &[T], mut n: usize) -> usize {
        while let Some(&u) = units.get(n) {
            let c: u32 = u.into();
            if c >= 0x80 {
                break;
            }
            self.out[self.at].write(c as u8);
            self.at += 1;
            n += 1;
        }
        n
    }
}

/// The data-parallel parts: SSE2 (part of every x86-64) or plain loops elsewhere.
mod simd {
    /// How many bytes beyond one each unit of `units` takes in UTF-8: one for each unit
    /// from 0x80, one more for each from 0x800.
    pub(super) fn extra_utf8_u16(units: &[u16]) -> usize {
        let chunks = units.chunks_exact(8);
        let rest: usize = chunks
            .remainder()
            .iter()
            .map(|&u| usize::from(u >= 0x80) + usize::from(u >= 0x800))
            .sum();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let mut small = 0usize;
            let whole = units.len() - units.len() % 8;
            // SAFETY: SSE2 is part of x86_64's baseline; each load reads one 8-unit chunk.
            unsafe {
                let (below_80, below_800) = (_mm_set1_epi16(0x7F), _mm_set1_epi16(0x7FF));
                let zero = _mm_setzero_si128();
                // Lanes count down by one per unit below 0x80 and one per unit below 0x800;
                // summed out every 8192 chunks, before a 16-bit lane could wrap.
                for group in units[..whole].chunks(8 * 8192) {
                    let mut acc = zero;
                    for chunk in group.chunks_exact(8) {
                        let v = _mm_loadu_si128(chunk.as_ptr().cast());
                        let a = _mm_cmpeq_epi16(_mm_subs_epu16(v, below_80), zero);
                        let b = _mm_cmpeq_epi16(_mm_subs_epu16(v, below_800), zero);
                        acc = _mm_add_epi16(acc, _mm_add_epi16(a, b));
                    }
                    let sums = _mm_madd_epi16(acc, _mm_set1_epi16(-1));
                    let mut lanes = [0i32; 4];
                    _mm_storeu_si128(lanes.as_mut_ptr().cast(), sums);
                    small += lanes.iter().sum::<i32>() as usize;
                }
            }
            2 * whole - small + rest
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            chunks
                .flatten()
                .map(|&u| usize::from(u >= 0x80) + usize::from(u >= 0x800))
                .sum::<usize>()
                + rest
        }
    }

    /// How many of `units` are not ASCII.
    pub(super) fn non_ascii_u8(units: &[u8]) -> usize {
        let chunks = units.chunks_exact(16);
        let rest = chunks.remainder().iter().filter(|&&u| u >= 0x80).count();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let mut n = 0u64;
            // SAFETY: SSE2 is part of x86_64's baseline; each load reads one 16-byte chunk.
            unsafe {
                let zero = _mm_setzero_si128();
                // Byte lanes count non-ASCII bytes, summed out every 255 chunks.
                let whole = units.len() - units.len() % 16;
                for group in units[..whole].chunks(16 * 255) {
                    let mut acc = zero;
                    for chunk in group.chunks_exact(16) {
                        let v = _mm_loadu_si128(chunk.as_ptr().cast());
                        acc = _mm_sub_epi8(acc, _mm_cmplt_epi8(v, zero));
                    }
                    let sums = _mm_sad_epu8(acc, zero);
                    let mut halves = [0u64; 2];
                    _mm_storeu_si128(halves.as_mut_ptr().cast(), sums);
                    n += halves[0] + halves[1];
                }
            }
            n as usize + rest
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            chunks.flatten().filter(|&&u| u >= 0x80).count() + rest
        }
    }

    /// The length of the ASCII prefix of `units`.
    pub(super) fn ascii_prefix_u8(units: &[u8]) -> usize {
        let mut n = 0;
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            while let Some(chunk) = units.get(n..n + 16) {
                // SAFETY: SSE2 is part of x86_64's baseline; the load reads `chunk`.
                let high = unsafe { _mm_movemask_epi8(_mm_loadu_si128(chunk.as_ptr().cast())) };
                if high != 0 {
                    return n + high.trailing_zeros() as usize;
                }
                n += 16;
            }
        }
        n + units[n..].iter().take_while(|&&b| b < 0x80).count()
    }

    /// The UTF-8 length of UCS-4 `units`, each counted as `utf8_width` counts it.
    pub(super) fn utf8_len_u32(units: &[u32]) -> usize {
        let chunks = units.chunks_exact(4);
        let rest: usize = chunks
            .remainder()
            .iter()
            .map(|&c| super::utf8_width(c))
            .sum();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let whole = units.len() - units.len() % 4;
            let mut extra = 0usize;
            // SAFETY: SSE2 is part of x86_64's baseline; each load reads one 4-unit chunk.
            unsafe {
                // Unsigned comparisons as signed ones, with the top bit flipped.
                let flip = _mm_set1_epi32(i32::MIN);
                let bound = |b: u32| _mm_set1_epi32((b ^ 0x8000_0000) as i32);
                let (b1, b2, b3) = (bound(0x7F), bound(0x7FF), bound(0xFFFF));
                // Lanes count down by one per bound a unit is above; summed out every 2^20
                // chunks, long before a 32-bit lane could wrap.
                for group in units[..whole].chunks(4 << 20) {
                    let mut acc = _mm_setzero_si128();
                    for chunk in group.chunks_exact(4) {
                        let v = _mm_xor_si128(_mm_loadu_si128(chunk.as_ptr().cast()), flip);
                        acc = _mm_add_epi32(acc, _mm_cmpgt_epi32(v, b1));
                        acc = _mm_add_epi32(acc, _mm_cmpgt_epi32(v, b2));
                        acc = _mm_add_epi32(acc, _mm_cmpgt_epi32(v, b3));
                    }
                    let mut lanes = [0i32; 4];
                    _mm_storeu_si128(lanes.as_mut_ptr().cast(), acc);
                    extra += lanes
                        .iter()
                        .map(|&l| l.unsigned_abs() as usize)
                        .sum::<usize>();
                }
            }
            whole + extra + rest
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            chunks
                .flatten()
                .map(|&c| super::utf8_width(c))
                .sum::<usize>()
                + rest
        }
    }

    /// The sixteen units of `chunk` as bytes, if all are ASCII.
    #[inline(always)]
    pub(super) fn ascii16_u32(chunk: &[u32]) -> Option<[u8; 16]> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            assert!(chunk.len() >= 16);
            // SAFETY: SSE2 is part of x86_64's baseline; the loads read 16 units of `chunk`.
            unsafe {
                let load = |i: usize| _mm_loadu_si128(chunk[i..].as_ptr().cast());
                let (v0, v1, v2, v3) = (load(0), load(4), load(8), load(12));
                let all = _mm_or_si128(_mm_or_si128(v0, v1), _mm_or_si128(v2, v3));
                let high = _mm_and_si128(all, _mm_set1_epi32(!0x7F));
                if _mm_movemask_epi8(_mm_cmpeq_epi32(high, _mm_setzero_si128())) != 0xFFFF {
                    return None;
                }
                // Every unit is below 0x80, so no pack saturates.
                let packed = _mm_packus_epi16(_mm_packs_epi32(v0, v1), _mm_packs_epi32(v2, v3));
                let mut bytes = [0u8; 16];
                _mm_storeu_si128(bytes.as_mut_ptr().cast(), packed);
                Some(bytes)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ascii16_scalar(chunk)
        }
    }

    /// The sixteen units of `chunk` as bytes, if all are ASCII: one at a time.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    fn ascii16_scalar<T: Copy + Into<u32>>(chunk: &[T]) -> Option<[u8; 16]> {
        let mut bytes = [0u8; 16];
        for (b, &u) in bytes.iter_mut().zip(chunk) {
            let u: u32 = u.into();
            if u >= 0x80 {
                return None;
            }
            *b = u as u8;
        }
        Some(bytes)
    }

    /// The sixteen units of `chunk` as bytes, if all are ASCII.
    #[inline(always)]
    pub(super) fn ascii16_u16(chunk: &[u16]) -> Option<[u8; 16]> {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            assert!(chunk.len() >= 16);
            // SAFETY: SSE2 is part of x86_64's baseline; the loads read 16 units of `chunk`.
            unsafe {
                let v0 = _mm_loadu_si128(chunk.as_ptr().cast());
                let v1 = _mm_loadu_si128(chunk[8..].as_ptr().cast());
                let high = _mm_and_si128(_mm_or_si128(v0, v1), _mm_set1_epi16(!0x7F));
                if _mm_movemask_epi8(_mm_cmpeq_epi16(high, _mm_setzero_si128())) != 0xFFFF {
                    return None;
                }
                let mut bytes = [0u8; 16];
                _mm_storeu_si128(bytes.as_mut_ptr().cast(), _mm_packus_epi16(v0, v1));
                Some(bytes)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ascii16_scalar(chunk)
        }
    }
}

/// A UTF-8 continuation byte holding the low six bits of `c`.
#[inline]
fn cont(c: u32) -> u8 {
    0x80 | (c & 0x3F) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn samples() -> Vec<String> {
        let mut out: Vec<String> = [
            "",
            "a",
            "plain ASCII text of some length, longer than eight",
            "café, naïve, Ærø",
            "\u{80}\u{ff}\u{100}\u{7ff}\u{800}\u{ffff}",
            "日本語のテキスト and some ASCII after it",
            "emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{10ffff}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every alignment of a non-ASCII character in a run of ASCII, in the first and the
        // second chunk of sixteen, and two of them a few characters apart.
        for pad in 0..40 {
            for c in ['é', '€', '😀'] {
                out.push(format!("{}{c}{}", "x".repeat(pad), "y".repeat(39 - pad)));
                out.push(format!(
                    "{}{c}ab{c}{}",
                    "x".repeat(pad),
                    "y".repeat(39 - pad)
                ));
            }
        }
        out
    }

    fn utf8(units: Units<'_>) -> Result<Vec<u8>, usize> {
        let mut out = vec![0u8; units.utf8_len()];
        units.write_utf8(&mut out).map(|()| out)
    }

    #[test]
    fn each_width_gives_the_same_utf8_as_rust() {
        for s in samples() {
            let chars: Vec<u32> = s.chars().map(u32::from).collect();
            assert_eq!(utf8(Units::Ucs4(&chars)).unwrap(), s.as_bytes(), "{s:?}");
            if chars.iter().all(|&c| c <= 0xFFFF) {
                let units: Vec<u16> = chars.iter().map(|&c| c as u16).collect();
                assert_eq!(utf8(Units::Ucs2(&units)).unwrap(), s.as_bytes(), "{s:?}");
            }
            if chars.iter().all(|&c| c <= 0xFF) {
                let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).collect();
                assert_eq!(utf8(Units::Latin1(&bytes)).unwrap(), s.as_bytes(), "{s:?}");
            }
        }
    }

    /// The pieces joined are the text, and each is cut where a cut is safe.
    #[test]
    fn safe_pieces_make_up_the_text_at_safe_cuts() {
        let specials = SpecialTokens::new(&["<|eot|>".to_string()]).unwrap();
        let line = "Ünïcode line, some words \u{1F600}\n";
        let mut text = String::new();
        while text.chars().count() < 3 * PIECE_UNITS {
            text.push_str(line);
            if text.len().is_multiple_of(7) {
                text.push_str("<|eot|>");
            }
        }
        // One long line, with no safe cut at all, at the end.
        text.push_str(&"x y ".repeat(PIECE_UNITS));
        let chars: Vec<u32> = text.chars().map(u32::from).collect();
        let mut pieces = Vec::new();
        let mut buf = Vec::new();
        Units::Ucs4(&chars)
            .for_each_safe_piece(0, &specials, &Pattern::Gpt2, &mut buf, |p| {
                pieces.push(p.to_string())
            })
            .unwrap();
        assert!(pieces.len() > 2);
        assert_eq!(pieces.concat(), text);
        let mut at = 0;
        for p in &pieces[..pieces.len() - 1] {
            at += p.len();
            assert!(
                crate::corpus::is_safe_cut(&text, &specials, &Pattern::Gpt2, at),
                "{at}"
            );
        }
        let mut bad: Vec<u16> = "ab\ncd".encode_utf16().collect();
        bad.resize(PIECE_UNITS + 10, u16::from(b'z'));
        bad.push(0xD800);
        let mut seen = 0;
        let got =
            Units::Ucs2(&bad)
                .for_each_safe_piece(3, &specials, &Pattern::Gpt2, &mut buf, |p| seen += p.len());
        assert!(matches!(
            got,
            Err(crate::error::BpeError::NotUnicode { text: 3, unit }) if unit == PIECE_UNITS + 10
        ));
        assert_eq!(seen, 3);
    }

    #[test]
    fn surrogates_and_out_of_range_units_are_refused_at_their_index() {
        let units: Vec<u16> = "abcdefghij".encode_utf16().chain([0xD800, 0x41]).collect();
        assert_eq!(utf8(Units::Ucs2(&units)), Err(10));
        assert_eq!(utf8(Units::Ucs2(&[0x41, 0xDFFF])), Err(1));
        assert_eq!(utf8(Units::Ucs4(&[0x41, 0x42, 0xDC00])), Err(2));
        assert_eq!(utf8(Units::Ucs4(&[0x11_0000])), Err(0));
        // At every place in and after a run that the eight-at-a-time copy takes.
        for bad in [0xD800, 0xDFFF, 0x11_0000, 0x8000_0000, u32::MAX] {
            for at in 0..20 {
                let mut units = vec![0x61u32; 20];
                units[at] = bad;
                assert_eq!(utf8(Units::Ucs4(&units)), Err(at), "{bad:#x} at {at}");
            }
        }
    }

    /// The UCS-4 length counts each unit as `utf8_width` does, at every boundary of the
    /// widths and for units that are not characters.
    #[test]
    fn ucs4_length_counts_every_width() {
        let edges = [
            0,
            0x41,
            0x7F,
            0x80,
            0x7FF,
            0x800,
            0xD800,
            0xFFFF,
            0x1_0000,
            0x10_FFFF,
            0x11_0000,
            0x7FFF_FFFF,
            0x8000_0000,
            u32::MAX,
        ];
        for n in 0..edges.len() * 3 {
            let units: Vec<u32> = (0..n).map(|i| edges[(i * 7) % edges.len()]).collect();
            let want: usize = units.iter().map(|&c| utf8_width(c)).sum();
            assert_eq!(Units::Ucs4(&units).utf8_len(), want, "{units:x?}");
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// UTF-8 throughput from UCS-2 (the file's BMP text) and UCS-4 (all of it); a
    /// measurement, not a test:
    /// `BPELM_BENCH_TEXT=file cargo test --release transcode_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn transcode_throughput() {
        let path = std::env::var("BPELM_BENCH_TEXT").expect("set BPELM_BENCH_TEXT to a file");
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("a file")).into_owned();
        let ucs2: Vec<u16> = text
            .chars()
            .filter(|&c| (c as u32) < 0x1_0000)
            .map(|c| c as u16)
            .collect();
        let ucs4: Vec<u32> = text.chars().map(|c| c as u32).collect();
        for (name, units) in [("UCS-2", Units::Ucs2(&ucs2)), ("UCS-4", Units::Ucs4(&ucs4))] {
            let mut out = vec![0u8; units.utf8_len()];
            let (mut count, mut write) = (f64::MAX, f64::MAX);
            for _ in 0..5 {
                let t = std::time::Instant::now();
                let n = units.utf8_len();
                count = count.min(t.elapsed().as_secs_f64());
                let t = std::time::Instant::now();
                units.write_utf8(&mut out).expect("no surrogates");
                write = write.min(t.elapsed().as_secs_f64());
                assert_eq!(n, out.len());
            }
            let mb = out.len() as f64 / 1e6;
            println!(
                "{name}: {mb:.1} MB of UTF-8: length {:.0} MB/s, write {:.0} MB/s",
                mb / count,
                mb / write
            );
        }
    }
}
