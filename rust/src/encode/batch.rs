//! Encoding many texts in one call: when to go parallel, and how the texts are shared out
//! between threads.
//!
//! Short texts are grouped into work units of up to `SPLIT_BYTES`, and a UTF-8 text longer
//! than that is cut at safe points (`chunk_ranges`, exact by construction) into pieces of
//! about that size, so one huge text also keeps every thread busy. A text of code units is
//! one piece, made UTF-8 as it is encoded (`Units::for_each_safe_piece`), except one long
//! enough to unbalance the threads as a single unit: those are made UTF-8 first, on the
//! call's threads, so that they can be cut like the others.

use std::ops::Range;

use rayon::prelude::*;

use super::{memory, ordered, Encoder, Text};
use crate::corpus::chunk_ranges;
use crate::error::{BpeError, Result};
use crate::pool;
use crate::transcode::Units;
use crate::TokenId;

/// UTF-8 texts longer than this are cut into pieces encoded in parallel, and shorter ones
/// are grouped into work units of up to this size. Smaller units even out the threads' last
/// ones: 512 KB measured 2-3% faster at 2 threads than 1 MB.
pub const SPLIT_BYTES: usize = 1 << 19;

/// One work unit's result: its ids, the id count of each of its pieces, or why it failed.
#[derive(Default)]
struct UnitPart {
    ids: Vec<TokenId>,
    lens: Vec<usize>,
    error: Option<BpeError>,
}

impl Encoder {
    /// Encodes each text on `num_threads` threads (`None`: one per CPU; see `pool::threads`)
    /// into one array: returns the ids of all texts concatenated and `offsets` (one more than
    /// the texts), text `i` being `ids[offsets[i]..offsets[i + 1]]`.
    pub fn encode_batch_flat(
        &self,
        texts: &[&str],
        num_threads: Option<usize>,
    ) -> Result<(Vec<TokenId>, Vec<u64>)> {
        let texts: Vec<Text<'_>> = texts.iter().map(|t| Text::Utf8(t)).collect();
        self.encode_texts_flat(&texts, num_threads)
    }

    /// `encode_batch_flat` of texts given as UTF-8 or as code units; a text holding a lone
    /// surrogate fails the call (`BpeError::NotUnicode`, naming the text).
    pub fn encode_texts_flat(
        &self,
        texts: &[Text<'_>],
        num_threads: Option<usize>,
    ) -> Result<(Vec<TokenId>, Vec<u64>)> {
        let threads = pool::threads(num_threads)?;
        let total: usize = texts.iter().map(Text::size).sum();
        let mut counts = vec![0u64; texts.len()];
        let ids = if threads == 1 {
            self.encode_serial(texts, total, &mut counts)?
        } else {
            let pool = pool::get(threads)?;
            let mut utf8 = Vec::new();
            let texts = transcode_long(texts, threads, total, &pool, &mut utf8)?;
            let units = self.flat_units(&texts, total, threads);
            if units.len() <= 1 {
                self.encode_serial(&texts, total, &mut counts)?
            } else {
                self.encode_parallel(&texts, &units, total, &pool, &mut counts)?
            }
        };
        let mut offsets = Vec::with_capacity(texts.len() + 1);
        offsets.push(0u64);
        let mut end = 0u64;
        for n in counts {
            end += n;
            offsets.push(end);
        }
        Ok((ids, offsets))
    }

    /// The tokens of one text, given as UTF-8 or as code units, on this thread: what
    /// `encode_texts_flat` gives for `[text]` on one thread, without the offsets and the
    /// buffers a batch needs (a short call's cost is mostly such setting up).
    pub fn encode_text(&self, text: &Text<'_>) -> Result<Vec<TokenId>> {
        self.reserve_cache(text.size());
        let mut ids = memory::id_buffer(ids_reserved(text))?;
        self.encode_text_into(0, text, &mut Vec::new(), &mut ids)?;
        Ok(ids)
    }

    /// `encode_text` into `ids` (emptied first), with `utf8` as room for code units made
    /// UTF-8: for a caller keeping both from call to call (their allocations were 2-3% of a
    /// call on a few hundred bytes).
    pub fn encode_text_reusing(
        &self,
        text: &Text<'_>,
        ids: &mut Vec<TokenId>,
        utf8: &mut Vec<u8>,
    ) -> Result<()> {
        self.reserve_cache(text.size());
        ids.clear();
        crate::alloc::try_reserve(ids, ids_reserved(text), "token ids")?;
        self.encode_text_into(0, text, utf8, ids)
    }

    /// Encodes `texts` on this thread, whose cache is already warm (rather than a pool's),
    /// straight into the output (no parts to join); `counts[i]` gets text `i`'s id count.
    fn encode_serial(
        &self,
        texts: &[Text<'_>],
        total: usize,
        counts: &mut [u64],
    ) -> Result<Vec<TokenId>> {
        self.reserve_cache(total);
        let mut ids = memory::id_buffer(total / 3 + 16)?;
        let mut buf = Vec::new();
        for (i, (text, count)) in texts.iter().zip(counts).enumerate() {
            let before = ids.len();
            self.encode_text_into(i, text, &mut buf, &mut ids)?;
            *count = (ids.len() - before) as u64;
        }
        Ok(ids)
    }

    /// Encodes the work `units` of `texts` on the threads of `pool`, appended to the output
    /// in order on this thread as they come (`run_ordered`), their buffers recycled while
    /// still in cache, rather than all kept and then joined.
    fn encode_parallel(
        &self,
        texts: &[Text<'_>],
        units: &[Vec<(usize, Range<usize>)>],
        total: usize,
        pool: &rayon::ThreadPool,
        counts: &mut [u64],
    ) -> Result<Vec<TokenId>> {
        let threads = pool.current_num_threads();
        let mut ids = memory::id_buffer(total / 3 + 16)?;
        ordered::run_ordered(
            pool,
            units.len(),
            4 * threads,
            || {
                // Room for this thread's share of the new words in one growth: grown unit
                // by unit, the cache would be rehashed more than once.
                self.reserve_cache(total / threads);
                Vec::new()
            },
            |i, utf8: &mut Vec<u8>, part: &mut UnitPart| {
                self.encode_unit(texts, &units[i], utf8, part);
                Ok(())
            },
            |i, part| {
                if let Some(e) = part.error.take() {
                    return Err(e);
                }
                crate::alloc::try_reserve(&mut ids, part.ids.len(), "token ids")?;
                ids.extend_from_slice(&part.ids);
                for ((t, _), &n) in units[i].iter().zip(&part.lens) {
                    counts[*t] += n as u64;
                }
                Ok(())
            },
        )?;
        Ok(ids)
    }

    /// Appends the tokens of `text` (the call's text `index`) to `out`, `buf` holding the
    /// UTF-8 of code units while they are encoded.
    fn encode_text_into(
        &self,
        index: usize,
        text: &Text<'_>,
        buf: &mut Vec<u8>,
        out: &mut Vec<TokenId>,
    ) -> Result<()> {
        match text {
            Text::Utf8(t) => self.encode_into(t, out)?,
            Text::Units(units) => {
                let mut failed = None;
                units.for_each_safe_piece(index, &self.specials, &self.pattern, buf, |piece| {
                    if failed.is_none() {
                        failed = self.encode_into(piece, out).err();
                    }
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Encodes one work unit of `encode_texts_flat` into `part`, `utf8` holding the UTF-8
    /// of code units while they are encoded.
    fn encode_unit(
        &self,
        texts: &[Text<'_>],
        unit: &[(usize, Range<usize>)],
        utf8: &mut Vec<u8>,
        part: &mut UnitPart,
    ) {
        part.ids.clear();
        part.lens.clear();
        for (i, range) in unit {
            let before = part.ids.len();
            let text = match texts[*i] {
                Text::Utf8(t) => Text::Utf8(&t[range.clone()]),
                // Whole: `flat_units` never cuts code units.
                whole => whole,
            };
            if let Err(e) = self.encode_text_into(*i, &text, utf8, &mut part.ids) {
                part.error = Some(e);
                return;
            }
            part.lens.push(part.ids.len() - before);
        }
    }

    /// Cuts `texts` into work units, in order: each a list of `(text index, byte range)`.
    /// A text over `SPLIT_BYTES` is cut into pieces of one unit each; shorter texts are
    /// grouped, each unit small enough that there are several per thread.
    fn flat_units(
        &self,
        texts: &[Text<'_>],
        total: usize,
        threads: usize,
    ) -> Vec<Vec<(usize, Range<usize>)>> {
        let group_bytes = (total / (threads * 8)).clamp(1, SPLIT_BYTES);
        let mut units = Vec::new();
        let mut current: Vec<(usize, Range<usize>)> = Vec::new();
        let mut current_bytes = 0;
        for (i, text) in texts.iter().enumerate() {
            let size = text.size();
            if let (Text::Utf8(text), true) = (text, size > SPLIT_BYTES) {
                if !current.is_empty() {
                    units.push(std::mem::take(&mut current));
                    current_bytes = 0;
                }
                for range in chunk_ranges(text, &self.specials, &self.pattern, SPLIT_BYTES) {
                    units.push(vec![(i, range)]);
                }
                continue;
            }
            current.push((i, 0..size));
            current_bytes += size;
            if current_bytes >= group_bytes {
                units.push(std::mem::take(&mut current));
                current_bytes = 0;
            }
        }
        if !current.is_empty() {
            units.push(current);
        }
        units
    }
}

/// The ids `encode_text` reserves for `text`: room for what `encode_into` reserves up front
/// for the text's UTF-8, so that its reservation finds the room there. For code units made
/// UTF-8 in one piece, room for the most UTF-8 they can make (counted from the units, a
/// text with a character beyond ASCII reallocated here, copying the buffer: 2% of encoding
/// o200k one web document a call); for longer texts, for mostly one-byte characters.
fn ids_reserved(text: &Text<'_>) -> usize {
    let utf8_bound = match text {
        Text::Units(units) if units.len() <= crate::transcode::PIECE_UNITS => units.max_utf8_len(),
        _ => text.size(),
    };
    super::ids_estimate(utf8_bound)
}

/// `texts` with those of code units long enough to leave a thread alone with them at the
/// end of the call (over a quarter of a thread's share of `total`, and over one work unit)
/// made UTF-8 in `buf`, side by side, on the threads of `pool`. A text holding a lone
/// surrogate fails the call (`BpeError::NotUnicode`).
fn transcode_long<'a>(
    texts: &[Text<'a>],
    threads: usize,
    total: usize,
    pool: &rayon::ThreadPool,
    buf: &'a mut Vec<u8>,
) -> Result<Vec<Text<'a>>> {
    let long_units = SPLIT_BYTES.max(total / (4 * threads));
    let long: Vec<(usize, Units<'a>, usize)> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, text)| match *text {
            Text::Units(u) if u.len() > long_units => Some((i, u, u.utf8_len())),
            _ => None,
        })
        .collect();
    let mut texts = texts.to_vec();
    if long.is_empty() {
        return Ok(texts);
    }
    // One buffer for all: a dozen page faults in huge pages rather than one per 4 KB.
    *buf = memory::zeroed_bytes(long.iter().map(|&(_, _, len)| len).sum())?;
    let mut rest = buf.as_mut_slice();
    let mut work = Vec::with_capacity(long.len());
    for &(i, units, len) in &long {
        let (region, tail) = std::mem::take(&mut rest).split_at_mut(len);
        work.push((i, units, region));
        rest = tail;
    }
    let write = |(i, units, region): &mut (usize, Units<'_>, &mut [u8])| {
        units.write_utf8(region).err().map(|_| *i)
    };
    let failed = if work.len() == 1 {
        work.iter_mut().find_map(write)
    } else {
        pool.install(|| work.par_iter_mut().filter_map(write).min())
    };
    if let Some(text) = failed {
        return Err(BpeError::NotUnicode { text, unit: 0 });
    }
    for (i, _, region) in work {
        // SAFETY: `write_utf8` filled `region` with the UTF-8 of scalar values.
        texts[i] = Text::Utf8(unsafe { std::str::from_utf8_unchecked(region) });
    }
    Ok(texts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::tiny;
    use super::*;

    #[test]
    fn batch_flat_matches_batch_with_long_and_empty_texts() {
        let e = tiny();
        // Over SPLIT_BYTES, so it is cut into pieces; specials and odd spacing throughout.
        let long: String = (0..SPLIT_BYTES / 4)
            .map(|i| match i % 5 {
                0 => "hello <|eot|>".to_string(),
                1 => format!(" hel{i}lo  "),
                2 => "\n\n  x".to_string(),
                _ => " héllo wörld".to_string(),
            })
            .collect();
        assert!(long.len() > 2 * SPLIT_BYTES);
        let cut = (0..=1000)
            .rev()
            .find(|&i| long.is_char_boundary(i))
            .unwrap();
        let texts = ["", "hello", &long, "", "<|eot|>hello", &long[..cut], ""];
        let lists: Vec<Vec<TokenId>> = texts.iter().map(|t| e.encode(t).unwrap()).collect();
        for threads in [Some(1), Some(2), Some(3), None] {
            let (ids, offsets) = e.encode_batch_flat(&texts, threads).unwrap();
            assert_eq!(offsets.len(), texts.len() + 1);
            assert_eq!(*offsets.last().unwrap() as usize, ids.len());
            for (i, want) in lists.iter().enumerate() {
                let got = &ids[offsets[i] as usize..offsets[i + 1] as usize];
                assert_eq!(got, &want[..], "text {i}, threads {threads:?}");
            }
        }
        let (ids, offsets) = e.encode_batch_flat(&[], Some(2)).unwrap();
        assert!(ids.is_empty());
        assert_eq!(offsets, vec![0]);
    }

    #[test]
    fn long_texts_of_code_units_are_transcoded_and_shared_out() {
        let e = tiny();
        let line: Vec<u16> = " héllo wörld <|eot|> € hel".encode_utf16().collect();
        let long: Vec<u16> = line.repeat(SPLIT_BYTES / line.len() + 10);
        let short: Vec<u16> = line.clone();
        let mut bad = long.clone();
        bad[long.len() / 2] = 0xD800;
        let utf8 = String::from_utf16(&long).unwrap();
        let want_long = e.encode(&utf8).unwrap();
        let want_short = e.encode(&String::from_utf16(&short).unwrap()).unwrap();
        for threads in [Some(1), Some(2), Some(3)] {
            let texts = [
                Text::Units(Units::Ucs2(&long)),
                Text::Units(Units::Ucs2(&short)),
                Text::Units(Units::Ucs2(&long)),
            ];
            let (ids, offsets) = e.encode_texts_flat(&texts, threads).unwrap();
            let o: Vec<usize> = offsets.iter().map(|&x| x as usize).collect();
            assert_eq!(&ids[o[0]..o[1]], &want_long[..], "{threads:?}");
            assert_eq!(&ids[o[1]..o[2]], &want_short[..], "{threads:?}");
            assert_eq!(&ids[o[2]..o[3]], &want_long[..], "{threads:?}");
            let texts = [
                Text::Units(Units::Ucs2(&short)),
                Text::Units(Units::Ucs2(&bad)),
            ];
            let err = e.encode_texts_flat(&texts, threads).unwrap_err();
            assert!(matches!(err, BpeError::NotUnicode { text: 1, .. }), "{err}");
        }
    }

    #[test]
    fn zero_threads_is_refused() {
        let err = tiny().encode_batch_flat(&["a"], Some(0)).unwrap_err();
        assert!(err.to_string().contains("num_threads"), "{err}");
    }
}
