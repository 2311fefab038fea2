//! Encoding and decoding with a trained vocabulary.
//!
//! `encode` splits the text at special tokens, cuts each piece into GPT-2 pretokens and
//! byte-pair encodes each pretoken (`bpe`), looking it up first in a per-thread cache
//! (`cache`, which starts out holding every short token of the vocabulary; long pretokens
//! are also looked up in the vocabulary). `file` encodes whole files to `.npy` / `.bin`.

mod bpe;
mod cache;
pub mod file;
pub(crate) mod memory;
mod ordered;
pub(crate) mod pool;

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::corpus::chunk_ranges;
use crate::error::{BpeError, Result};
use crate::pretokenize;
use crate::special::{Segment, SpecialTokens};
use crate::transcode::Units;
use crate::vocab::Vocab;
use crate::TokenId;

pub use file::{encode_file, Dtype, EncodeFileOptions, EncodeFileStats};

/// `encode_texts_flat` cuts UTF-8 texts longer than this into pieces encoded in parallel,
/// and groups shorter ones into work units of up to this size. Smaller units even out the
/// threads' last ones: 512 KB measured 2-3% faster at 2 threads than 1 MB.
pub const SPLIT_BYTES: usize = 1 << 19;

/// How many blocks of pretokens `encode_ordinary` cuts (and prefetches the table slots
/// of) before it looks them up.
const LOOKAHEAD: usize = 2;

/// Tells the per-thread caches of different encoders apart.
static NEXT_UID: AtomicU64 = AtomicU64::new(0);

/// `encode_ordinary`'s stand-in for a pretoken too long for an inline key: its start and
/// length, with a zero length byte (which no inline key has).
#[inline(always)]
fn long_word(start: usize, n: usize) -> u128 {
    start as u128 | ((n as u128) << 64)
}

/// One work unit's result: its ids, the id count of each of its pieces, or why it failed.
#[derive(Default)]
struct UnitPart {
    ids: Vec<TokenId>,
    lens: Vec<usize>,
    error: Option<BpeError>,
}

/// A text for `Encoder::encode_texts_flat`: UTF-8, or code units (made UTF-8 piece by
/// piece as they are encoded, never all at once).
#[derive(Clone, Copy, Debug)]
pub enum Text<'a> {
    Utf8(&'a str),
    Units(Units<'a>),
}

impl Text<'_> {
    /// Its UTF-8 bytes, or its code units (no more than its UTF-8 bytes).
    pub fn size(&self) -> usize {
        match self {
            Text::Utf8(t) => t.len(),
            Text::Units(u) => u.len(),
        }
    }
}

/// A vocabulary with its special tokens, ready to encode and decode.
#[derive(Debug)]
pub struct Encoder {
    vocab: Vocab,
    specials: SpecialTokens,
    special_ids: Vec<TokenId>,
    /// What a fresh per-thread cache starts with: every token of up to
    /// `cache::INLINE_KEY` bytes.
    seed: cache::Seed,
    uid: u64,
}

impl Encoder {
    /// Wraps `vocab` with `special_tokens`; a special token whose bytes are not a token yet
    /// is appended to the vocabulary with the next id.
    pub fn new(mut vocab: Vocab, special_tokens: &[String]) -> Result<Self> {
        for (i, s) in special_tokens.iter().enumerate() {
            if s.is_empty() {
                return Err(BpeError::InvalidArgument(
                    "a special token may not be empty".into(),
                ));
            }
            if special_tokens[..i].contains(s) {
                return Err(BpeError::InvalidArgument(format!(
                    "special token {s:?} is given twice"
                )));
            }
        }
        let specials = SpecialTokens::new(special_tokens)?;
        let special_ids = special_tokens
            .iter()
            .map(|s| vocab.add_token(s.as_bytes()))
            .collect();
        let short_tokens: Vec<(u128, TokenId)> = vocab
            .tokens()
            .iter()
            .filter(|t| !t.is_empty() && t.len() <= cache::INLINE_KEY)
            .filter_map(|t| Some((cache::inline_key(t), vocab.id(t)?)))
            .collect::<rustc_hash::FxHashMap<_, _>>()
            .into_iter()
            .collect();
        let seed = cache::Seed::new(&short_tokens);
        // Built here so the first encode pays nothing for them.
        vocab.merge_tables();
        crate::pretokenize::prepare();
        Ok(Encoder {
            vocab,
            specials,
            special_ids,
            seed,
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Loads GPT-2 style `vocab.json` + `merges.txt`.
    pub fn from_files(
        vocab_path: &Path,
        merges_path: &Path,
        special_tokens: &[String],
    ) -> Result<Self> {
        Encoder::new(Vocab::read_gpt2(vocab_path, merges_path)?, special_tokens)
    }

    /// Writes GPT-2 style `vocab.json` + `merges.txt` (special tokens included as tokens).
    pub fn save(&self, vocab_path: &Path, merges_path: &Path) -> Result<()> {
        self.vocab.write_gpt2(vocab_path, merges_path)
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.specials
    }

    /// Ids of the special tokens, in the order they were given.
    pub fn special_ids(&self) -> &[TokenId] {
        &self.special_ids
    }

    /// The tokens of `text`.
    pub fn encode(&self, text: &str) -> Vec<TokenId> {
        let mut out = memory::id_buffer(text.len() / 3 + 16);
        self.encode_into(text, &mut out);
        out
    }

    /// Appends the tokens of `text` to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<TokenId>) {
        cache::with_cache(self.uid, &self.seed, text.len(), |cache| {
            cache.reserve_for_text(text.len());
            if self.specials.is_empty() {
                self.encode_ordinary(text, cache, out);
                return;
            }
            for segment in self.specials.segments(text) {
                match segment {
                    Segment::Text(piece) => self.encode_ordinary(piece, cache, out),
                    Segment::Special(i) => out.push(self.special_ids[i]),
                }
            }
        })
    }

    /// Makes room in this thread's cache for the new words of `bytes` of text about to be
    /// encoded (in one or many calls).
    pub(crate) fn reserve_cache(&self, bytes: usize) {
        cache::with_cache(self.uid, &self.seed, bytes, |cache| {
            cache.reserve_for_text(bytes)
        });
    }

    /// Encodes text that holds no special tokens.
    ///
    /// The pretokens of each 64-byte block are looked up while the next block is cut: a
    /// pretoken's table slot is prefetched when it is cut, so that slots missing from the
    /// processor's caches are fetched several at a time rather than one after another.
    #[inline]
    fn encode_ordinary(&self, text: &str, cache: &mut cache::WordCache, out: &mut Vec<TokenId>) {
        let bytes = text.as_bytes();
        let mut scanner = pretokenize::scanner(text);
        let mut ends = [0usize; pretokenize::MAX_ENDS];
        // The previous block's pretokens, as `cache::key_at` keys (or `long_word` for
        // pretokens too long for one), and the keys' hashes.
        let mut keys = [[0u128; pretokenize::MAX_ENDS]; LOOKAHEAD];
        let mut hashes = [[0u32; pretokenize::MAX_ENDS]; LOOKAHEAD];
        let mut counts = [0usize; LOOKAHEAD];
        let mut start = 0;
        let mut k = 0;
        while let Some(count) = scanner.next_ends(&mut ends) {
            let (keys, hashes, n) = (&mut keys[k], &mut hashes[k], &mut counts[k]);
            self.encode_keys(bytes, &keys[..*n], &hashes[..*n], cache, out);
            let probe = cache.probe();
            for ((key, h), &end) in keys.iter_mut().zip(hashes.iter_mut()).zip(&ends[..count]) {
                let n = end - start;
                *key = if n <= cache::INLINE_KEY {
                    let key = cache::key_at(bytes, start, n);
                    *h = cache::key_hash(key);
                    probe.prefetch(*h);
                    key
                } else {
                    long_word(start, n)
                };
                start = end;
            }
            *n = count;
            k = (k + 1) % LOOKAHEAD;
        }
        for _ in 0..LOOKAHEAD {
            let n = counts[k];
            self.encode_keys(bytes, &keys[k][..n], &hashes[k][..n], cache, out);
            k = (k + 1) % LOOKAHEAD;
        }
    }

    /// Encodes the pretokens of `bytes` that `keys` stand for (see `encode_ordinary`).
    ///
    /// Runs of short words cached with few ids, nearly all pretokens, are written through
    /// a raw pointer with the table and the output's length in registers; any other
    /// pretoken ends the run and takes `encode_pretoken`.
    #[inline(always)]
    fn encode_keys(
        &self,
        bytes: &[u8],
        keys: &[u128],
        hashes: &[u32],
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        const WRITE: usize = std::mem::size_of::<cache::InlineIds>() / 4;
        let mut i = 0;
        while i < keys.len() {
            out.reserve(WRITE * (keys.len() - i));
            let dst = out.as_mut_ptr();
            let mut len = out.len();
            let probe = cache.probe();
            while let (Some(&key), Some(&h)) = (keys.get(i), hashes.get(i)) {
                if !cache::is_short_key(key) {
                    break;
                }
                let Some(ids) = probe.inline_ids(key, h) else {
                    break;
                };
                // SAFETY: the reserve above left room for `WRITE` ids per key from `i` on,
                // and `len` grows by at most that per key; the first `ids[WRITE - 1]` ids
                // written are real ids, which `set_len` covers below.
                unsafe { dst.add(len).cast::<cache::InlineIds>().write_unaligned(ids) };
                len += ids[WRITE - 1] as usize;
                i += 1;
            }
            // SAFETY: the first `len` ids are written (see above).
            unsafe { out.set_len(len) };
            if let Some(&key) = keys.get(i) {
                self.encode_pretoken(bytes, key, cache, out);
                i += 1;
            }
        }
    }

    /// Encodes the pretoken of `bytes` that `key` stands for (see `encode_ordinary`).
    #[inline(always)]
    fn encode_pretoken(
        &self,
        bytes: &[u8],
        key: u128,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        if cache::is_short_key(key) {
            if !cache.probe().extend_short(key, out) {
                let (buf, n) = cache::key_bytes(key);
                self.encode_uncached(&buf[..n], cache, out);
            }
        } else {
            let (start, n) = (key as usize, (key >> 64) as usize);
            let word = &bytes[start..start + n];
            if !cache.extend_long(word, out) {
                self.encode_uncached(word, cache, out);
            }
        }
    }

    /// Encodes a pretoken missing from the cache, and caches it.
    #[inline(never)]
    fn encode_uncached(&self, word: &[u8], cache: &mut cache::WordCache, out: &mut Vec<TokenId>) {
        let start = out.len();
        // Short tokens are in the cache from the start, so a short miss needs merges.
        let whole = if word.len() > cache::INLINE_KEY {
            self.vocab.id(word)
        } else {
            None
        };
        match whole {
            Some(id) => out.push(id),
            None => bpe::encode_word(&self.vocab, word, out),
        }
        if word.len() <= cache::MAX_CACHED_WORD {
            cache.insert(word, &out[start..], &self.seed);
        }
    }

    /// Encodes each text on `num_threads` threads (`None`: all cores) into one array:
    /// returns the ids of all texts concatenated and `offsets` (one more than the texts),
    /// text `i` being `ids[offsets[i]..offsets[i + 1]]`.
    pub fn encode_batch_flat(
        &self,
        texts: &[&str],
        num_threads: Option<usize>,
    ) -> Result<(Vec<TokenId>, Vec<u64>)> {
        let texts: Vec<Text<'_>> = texts.iter().map(|t| Text::Utf8(t)).collect();
        self.encode_texts_flat(&texts, num_threads)
    }

    /// `encode_batch_flat` of texts given as UTF-8 or as code units; a text holding a lone
    /// surrogate fails the call (`BpeError::NotUnicode`).
    ///
    /// Short texts are grouped into work units of up to `SPLIT_BYTES`, and a UTF-8 text longer
    /// than that is cut at safe points (`chunk_ranges`, exact by construction) into pieces of
    /// about that size, so one huge text also keeps every thread busy. A text of code units
    /// is one piece, made UTF-8 as it is encoded (`Units::for_each_safe_piece`); the caller
    /// gives long ones as UTF-8 for them to be shared out.
    pub fn encode_texts_flat(
        &self,
        texts: &[Text<'_>],
        num_threads: Option<usize>,
    ) -> Result<(Vec<TokenId>, Vec<u64>)> {
        let total: usize = texts.iter().map(Text::size).sum();
        let mut counts = vec![0u64; texts.len()];
        let units = self.flat_units(texts, total, num_threads);
        let ids = if num_threads == Some(1) || units.len() <= 1 {
            // One thread: on this one, whose cache is already warm, rather than a pool,
            // and straight into the output (no parts to join).
            self.reserve_cache(total);
            let mut ids = memory::id_buffer(total / 3 + 16);
            let mut buf = Vec::new();
            for (i, (text, count)) in texts.iter().zip(&mut counts).enumerate() {
                let before = ids.len();
                self.encode_text_into(i, text, &mut buf, &mut ids)?;
                *count = (ids.len() - before) as u64;
            }
            ids
        } else {
            // Units are encoded on the pool's threads and appended to the output in order
            // on this one as they come (`run_ordered`), their buffers recycled while still
            // in cache, rather than all kept and then joined.
            let threads = pool::threads(num_threads);
            let mut ids = memory::id_buffer(total / 3 + 16);
            ordered::run_ordered(
                &*pool::get(threads)?,
                units.len(),
                4 * threads,
                || {
                    // Room for this thread's share of the new words in one growth: grown
                    // unit by unit, the cache would be rehashed more than once.
                    self.reserve_cache(total / threads);
                    Vec::new()
                },
                |i, utf8: &mut Vec<u8>, part: &mut UnitPart| {
                    self.encode_unit(texts, &units[i], utf8, part);
                },
                |i, part| {
                    if let Some(e) = part.error.take() {
                        return Err(e);
                    }
                    ids.extend_from_slice(&part.ids);
                    for ((t, _), &n) in units[i].iter().zip(&part.lens) {
                        counts[*t] += n as u64;
                    }
                    Ok(())
                },
            )?;
            ids
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
            Text::Utf8(t) => self.encode_into(t, out),
            Text::Units(units) => units
                .for_each_safe_piece(&self.specials, buf, |piece| self.encode_into(piece, out))
                .map_err(|unit| BpeError::NotUnicode { text: index, unit })?,
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
        num_threads: Option<usize>,
    ) -> Vec<Vec<(usize, Range<usize>)>> {
        let threads = pool::threads(num_threads);
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
                for range in chunk_ranges(text, &self.specials, SPLIT_BYTES) {
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

    /// The bytes of `ids`, concatenated.
    pub fn decode_bytes(&self, ids: &[TokenId]) -> Result<Vec<u8>> {
        let tokens = self.vocab.tokens();
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match tokens.get(id as usize) {
                Some(bytes) => out.extend_from_slice(bytes),
                None => {
                    return Err(BpeError::UnknownId {
                        id: u64::from(id),
                        vocab_size: tokens.len(),
                    })
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tiny() -> Encoder {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let merges: Vec<(Vec<u8>, Vec<u8>)> = [("h", "e"), ("he", "l"), ("hel", "lo"), ("l", "o")]
            .iter()
            .map(|(l, r)| (l.as_bytes().to_vec(), r.as_bytes().to_vec()))
            .collect();
        for m in ["he", "hel", "lo"] {
            tokens.push(m.as_bytes().to_vec());
        }
        tokens.push(b"hello".to_vec());
        let vocab = Vocab::new(tokens, &merges).unwrap();
        Encoder::new(vocab, &["<|eot|>".to_string()]).unwrap()
    }

    #[test]
    fn special_missing_from_vocab_is_appended() {
        let e = tiny();
        assert_eq!(e.vocab().len(), 261);
        assert_eq!(e.special_ids(), &[260]);
        assert_eq!(e.decode_bytes(&[260]).unwrap(), b"<|eot|>");
    }

    #[test]
    fn decode_rejects_unknown_ids() {
        let e = tiny();
        let err = e.decode_bytes(&[104, 261]).unwrap_err();
        assert!(
            matches!(
                err,
                BpeError::UnknownId {
                    id: 261,
                    vocab_size: 261
                }
            ),
            "{err}"
        );
        assert_eq!(e.decode_bytes(&[259, 32]).unwrap(), b"hello ");
    }

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
        let lists: Vec<Vec<TokenId>> = texts.iter().map(|t| e.encode(t)).collect();
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
    fn bad_specials_are_refused() {
        let v = tiny().vocab().clone();
        assert!(Encoder::new(v.clone(), &[String::new()]).is_err());
        assert!(Encoder::new(v, &["x".to_string(), "x".to_string()]).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod timing {
    use super::*;
    use crate::pretokenize::for_each_pretoken;

    /// A pass over text seen before; a function of its own so that a profiler can be told
    /// to count it alone (`valgrind --tool=callgrind --toggle-collect='*warm_pass*'`).
    #[inline(never)]
    fn warm_pass(e: &Encoder, text: &str) -> Vec<TokenId> {
        e.encode(text)
    }

    /// Cold (first pass, fresh caches) and warm (second pass) single-thread encode rates of a
    /// file with GPT-2's vocab, beside the pretokenizer alone. A measurement, not a test:
    /// `BPELM_BENCH_TEXT=file cargo test --release encode_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn encode_throughput() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/gpt2");
        let path = std::env::var("BPELM_BENCH_TEXT").expect("set BPELM_BENCH_TEXT to a file");
        let raw = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let eot = "<|endoftext|>".to_string();
        let e =
            Encoder::from_files(&dir.join("vocab.json"), &dir.join("merges.txt"), &[eot]).unwrap();
        let mb = text.len() as f64 / 1e6;
        // BPELM_BENCH_PASSES=0: the cold pass only.
        let passes = std::env::var("BPELM_BENCH_PASSES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3usize);
        let t = std::time::Instant::now();
        let ids = e.encode(&text);
        let cold = t.elapsed().as_secs_f64();
        let mut warm = f64::MAX;
        for _ in 0..passes {
            let t = std::time::Instant::now();
            let again = warm_pass(&e, &text);
            warm = warm.min(t.elapsed().as_secs_f64());
            assert_eq!(again.len(), ids.len());
        }
        if passes == 0 {
            // The cold pass alone, for a profiler.
            println!("{mb:.1} MB, {} ids: cold {:.0} MB/s", ids.len(), mb / cold);
            return;
        }
        let mut pretok = f64::MAX;
        for _ in 0..passes {
            let t = std::time::Instant::now();
            let mut n = 0usize;
            for_each_pretoken(&text, |p| n += p.len());
            pretok = pretok.min(t.elapsed().as_secs_f64());
            assert_eq!(n, text.len());
        }
        // The words a cold pass must merge: distinct pretokens that are not one token.
        let mut distinct = rustc_hash::FxHashSet::default();
        for_each_pretoken(&text, |p| {
            if e.vocab().id(p.as_bytes()).is_none() {
                distinct.insert(p.as_bytes());
            }
        });
        let words: Vec<&[u8]> = distinct.into_iter().collect();
        let t = std::time::Instant::now();
        let mut out = Vec::new();
        for w in &words {
            bpe::encode_word(e.vocab(), w, &mut out);
        }
        let merge = t.elapsed().as_secs_f64();
        println!(
            "{} distinct pretokens need merges: {:.0} ns each, {:.1} ms in all",
            words.len(),
            merge * 1e9 / words.len() as f64,
            merge * 1e3
        );
        println!(
            "{mb:.1} MB, {} ids: cold {:.0} MB/s, warm {:.0} MB/s, pretokenize alone {:.0} MB/s",
            ids.len(),
            mb / cold,
            mb / warm,
            mb / pretok
        );
    }
}
