//! Encoding and decoding with a trained vocabulary.
//!
//! `encode` splits the text at special tokens, cuts each piece into pretokens (by the
//! encoder's split pattern, `pretokenize::Pattern`) and
//! byte-pair encodes each pretoken (`bpe`), looking it up first in a per-thread cache
//! (`cache`, which starts out holding every short token of the vocabulary; long pretokens
//! are also looked up in the vocabulary). `batch` shares many texts out between threads, and
//! `file` encodes whole files to `.npy` / `.bin`.

mod batch;
mod bpe;
mod cache;
pub mod file;
mod long_words;
pub(crate) mod memory;
mod ordered;
mod stale;

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::corpus::safe_split_before;
use crate::error::{BpeError, Result};
use crate::pretokenize::{self, Ends, Pattern, WithEnds};
use crate::special::{Segment, SpecialTokens};
use crate::transcode::Units;
use crate::vocab::Vocab;
use crate::TokenId;

pub use batch::SPLIT_BYTES;
pub use file::{encode_file, Dtype, EncodeFileOptions, EncodeFileStats};

/// How many blocks of pretokens (one scanner call's each, `pretokenize::BLOCKS_PER_CALL`
/// blocks of 64 bytes) `encode_ordinary` cuts, and prefetches the table slots of, before it
/// looks them up.
const LOOKAHEAD: usize = 2;

/// Pretokens from this many bytes on are merged only once their scratch memory is known to
/// be there (`encode_uncached`): BPE's own buffers for one pretoken are not fallible.
const PROBED_WORD: usize = 1 << 16;

/// Bytes of scratch that merging a long pretoken takes per byte of it, at most: ids, links
/// both ways, liveness and the heap's packed keys (`bpe::encode_long`), with room to spare.
const LONG_WORD_SCRATCH: usize = 48;

/// Tells the per-thread caches of different encoders apart.
static NEXT_UID: AtomicU64 = AtomicU64::new(0);

/// `encode_ordinary`'s stand-in for a pretoken too long for an inline key: its start and
/// length, with a zero length byte (which no inline key has).
#[inline(always)]
fn long_word(start: usize, n: usize) -> u128 {
    start as u128 | ((n as u128) << 64)
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

/// The ids `bytes` bytes of text are reserved for up front: a third of the bytes covers
/// natural text of any script in one allocation (English takes a quarter to a fifth), and
/// `room_for` grows the output, fallibly, for text that needs more (up to one id a byte).
/// Reserving for one id a byte from the start held four bytes of address space for each
/// byte of text (4 GB for a 1 GB text, against a memory limit), and a call on 10 MB of
/// web text faulted in three times the pages (504 against 171, o200k).
///
/// It also holds what `room_for` asks for the first block (its bytes and `ROOM_SLACK`), up
/// to `FIRST_BLOCK_ROOM` bytes: without it every text of up to a few hundred bytes grew its
/// output at the first block, a reallocation that copied the buffer (7% of a call on 100
/// bytes).
pub(crate) fn ids_estimate(bytes: usize) -> usize {
    (bytes / 3)
        .saturating_add(bytes.min(FIRST_BLOCK_ROOM))
        .saturating_add(ROOM_SLACK)
}

/// The bytes of pretokens a first block of text holds, about: what one scanner call cuts
/// (a pretoken running past it makes the block longer).
const FIRST_BLOCK_ROOM: usize = 64 * pretokenize::BLOCKS_PER_CALL;

/// Room beyond a block's own bytes that `room_for` keeps: the encoder writes a few ids at
/// once (`cache::InlineIds`) for each pretoken of a block, and puts in the ids of the
/// words waiting in `NewWords` (at most `BATCH_WORDS` of `INLINE_KEY` bytes) later.
const ROOM_SLACK: usize = 4 * pretokenize::MAX_ENDS + bpe::BATCH_WORDS * cache::INLINE_KEY + 16;

/// Makes room in `out` for the ids of `bytes` bytes of pretokens (BPE makes at most one id
/// a byte) and `ROOM_SLACK`, fallibly, so that the encoder's infallible writes and
/// `reserve`s that follow never reallocate. False, the failure recorded in `cache`, where
/// the memory cannot be had.
#[inline(always)]
fn room_for(out: &mut Vec<TokenId>, bytes: usize, cache: &mut cache::WordCache) -> bool {
    let need = bytes + ROOM_SLACK;
    out.capacity() - out.len() >= need || grow_output(out, need, cache)
}

/// `room_for`'s growth: at least doubling, so that text of many ids grows the output a few
/// times in all.
#[cold]
#[inline(never)]
fn grow_output(out: &mut Vec<TokenId>, need: usize, cache: &mut cache::WordCache) -> bool {
    match crate::alloc::try_reserve(out, need.max(out.capacity()), "token ids") {
        Ok(()) => true,
        Err(e) => {
            cache.fail(e);
            false
        }
    }
}

/// `items` read as the values they hold.
///
/// # Safety
/// Every one of `items` must have been set.
unsafe fn set<T>(items: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller vouches for the values.
    unsafe { &*(items as *const [MaybeUninit<T>] as *const [T]) }
}

/// Short words missing from the cache, waiting to be merged together
/// (`Encoder::encode_new_words`): their inline keys and where in the output their ids go.
#[derive(Default)]
struct NewWords {
    keys: [u128; bpe::BATCH_WORDS],
    at: [usize; bpe::BATCH_WORDS],
    len: usize,
}

impl NewWords {
    #[inline]
    fn push(&mut self, key: u128, at: usize) {
        self.keys[self.len] = key;
        self.at[self.len] = at;
        self.len += 1;
    }
}

/// A vocabulary with its special tokens, ready to encode and decode.
#[derive(Debug)]
pub struct Encoder {
    /// Shared with the encoders `with_specials` makes (same tokens, other specials).
    vocab: Arc<Vocab>,
    specials: SpecialTokens,
    special_ids: Vec<TokenId>,
    /// How text is cut into pretokens.
    pattern: Pattern,
    /// The ids of every special token of the vocabulary, matched here or not: never taken
    /// as a whole-word shortcut (see `new`). Shared with `with_specials` encoders.
    all_special_ids: Arc<[TokenId]>,
    /// What a fresh per-thread cache starts with: every token of up to
    /// `cache::INLINE_KEY` bytes.
    seed: Arc<cache::Seed>,
    /// Shared by `with_specials` encoders too: the per-thread caches map words to ids,
    /// which do not depend on the special tokens.
    uid: u64,
}

impl Encoder {
    /// Wraps `vocab` with `special_tokens` and the split `pattern`; a special token whose
    /// bytes are not a token yet is appended to the vocabulary with the next id.
    pub fn new(mut vocab: Vocab, special_tokens: &[String], pattern: Pattern) -> Result<Self> {
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
        let special_ids: Vec<TokenId> = special_tokens
            .iter()
            .map(|s| vocab.add_token(s.as_bytes()))
            .collect();
        // Special tokens stay out of the word cache: text reaches the cache only when it is
        // not matched as a special token (ordinary mode, or a special not allowed), and then
        // a pretoken spelling one (a special such as "EOS") must get its BPE tokens, as in
        // tiktoken, not the special's id. BPE still finds a special that merges make.
        let mut short_tokens: Vec<(u128, TokenId)> = vocab
            .tokens()
            .iter()
            .filter(|t| !t.is_empty() && t.len() <= cache::INLINE_KEY)
            .filter_map(|t| Some((cache::inline_key(t), vocab.id(t)?)))
            .filter(|(_, id)| !special_ids.contains(id))
            .collect::<rustc_hash::FxHashMap<_, _>>()
            .into_iter()
            .collect();
        // Put in by id: lower ids are the earlier merges, the more frequent tokens, and a
        // word put in early sits in the first slot of its walk, where a lookup finds it
        // without a second probe (the loop's exit mispredicted). In hash order, o200k's
        // warm pass was 280 against 340 MB/s, cl100k's 351 against 389.
        short_tokens.sort_unstable_by_key(|&(_, id)| id);
        let seed = cache::Seed::new(&short_tokens);
        // Built here so the first encode pays nothing for them.
        vocab.merge_tables();
        pattern.prepare();
        Ok(Encoder {
            vocab: Arc::new(vocab),
            specials,
            pattern,
            all_special_ids: special_ids.as_slice().into(),
            special_ids,
            seed: Arc::new(seed),
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The same vocabulary with only the special tokens at `indices` (into
    /// `special_tokens()`) matched in text; the others are encoded as ordinary text, and
    /// with no indices nothing is matched (tiktoken's `encode_ordinary`). Cheap: the
    /// vocabulary, the cache seed and the per-thread caches are shared.
    pub fn with_specials(&self, indices: &[usize]) -> Result<Encoder> {
        let all = self.specials.tokens();
        let mut tokens = Vec::with_capacity(indices.len());
        let mut special_ids = Vec::with_capacity(indices.len());
        for &i in indices {
            let token = all.get(i).ok_or_else(|| {
                BpeError::InvalidArgument(format!(
                    "special token index {i} is out of range ({} special tokens)",
                    all.len()
                ))
            })?;
            tokens.push(token.clone());
            special_ids.push(self.special_ids[i]);
        }
        Ok(Encoder {
            vocab: Arc::clone(&self.vocab),
            specials: SpecialTokens::new(&tokens)?,
            special_ids,
            pattern: self.pattern.clone(),
            all_special_ids: Arc::clone(&self.all_special_ids),
            seed: Arc::clone(&self.seed),
            uid: self.uid,
        })
    }

    /// Loads GPT-2 style `vocab.json` + `merges.txt`.
    pub fn from_files(
        vocab_path: &Path,
        merges_path: &Path,
        special_tokens: &[String],
        pattern: Pattern,
    ) -> Result<Self> {
        let vocab = Vocab::read_gpt2_with(vocab_path, merges_path, special_tokens)?;
        Encoder::new(vocab, special_tokens, pattern)
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

    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// Ids of the special tokens, in the order they were given.
    pub fn special_ids(&self) -> &[TokenId] {
        &self.special_ids
    }

    /// The tokens of `text`; `OutOfMemory` when there is no room for them.
    pub fn encode(&self, text: &str) -> Result<Vec<TokenId>> {
        let mut out = memory::id_buffer(ids_estimate(text.len()))?;
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Appends the tokens of `text` to `out`.
    ///
    /// The output is the one buffer here that grows with the input: room for the ids most
    /// text makes is reserved first, and more before each block of pretokens that could
    /// need it, fallibly (`OutOfMemory`), so that the encoder's own infallible `reserve`s
    /// on the way never reallocate (see `room_for`).
    pub fn encode_into(&self, text: &str, out: &mut Vec<TokenId>) -> Result<()> {
        crate::alloc::try_reserve(out, ids_estimate(text.len()), "token ids")?;
        cache::with_cache(self.uid, &self.seed, text.len(), |cache| {
            cache.reserve_for_text(text.len());
            if self.specials.is_empty() {
                self.encode_ordinary(text, cache, out)?;
            } else {
                for segment in self.specials.segments(text) {
                    match segment {
                        Segment::Text(piece) => self.encode_ordinary(piece, cache, out)?,
                        Segment::Special(i) => {
                            crate::alloc::try_push(out, self.special_ids[i], "token ids")?
                        }
                    }
                }
            }
            cache.take_failure().map_or(Ok(()), Err)
        })
    }

    /// The tokens of the longest prefix of `text` that no text appended later can change,
    /// and that prefix's length in characters (the rest waits for more text).
    pub fn encode_prefix(&self, text: &str) -> Result<(Vec<TokenId>, usize)> {
        match safe_split_before(text, &self.specials, &self.pattern, text.len()) {
            Some(cut) => {
                let head = &text[..cut];
                Ok((self.encode(head)?, head.chars().count()))
            }
            None => Ok((Vec::new(), 0)),
        }
    }

    /// Makes room in this thread's cache for the new words of `bytes` of text about to be
    /// encoded (in one or many calls).
    pub(crate) fn reserve_cache(&self, bytes: usize) {
        cache::with_cache(self.uid, &self.seed, bytes, |cache| {
            cache.reserve_for_text(bytes)
        });
    }

    /// Encodes text that holds no special tokens. Errors only where a custom pattern's
    /// regex engine gives up on the text.
    #[inline]
    fn encode_ordinary(
        &self,
        text: &str,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) -> Result<()> {
        /// `encode_pretokens` for whichever scanner the pattern has.
        struct Work<'e, 't, 'c, 'o> {
            encoder: &'e Encoder,
            text: &'t str,
            cache: &'c mut cache::WordCache,
            out: &'o mut Vec<TokenId>,
        }
        impl WithEnds for Work<'_, '_, '_, '_> {
            type Output = ();
            #[inline(always)]
            fn run<E: Ends>(self, ends: E) {
                self.encoder
                    .encode_pretokens(self.text, ends, self.cache, self.out)
            }
        }
        let work = Work {
            encoder: self,
            text,
            cache,
            out,
        };
        self.pattern.scan(text, work)
    }

    /// Encodes the pretokens that `scanner` cuts `text` into.
    ///
    /// The pretokens of each block are looked up while the next block is cut: a
    /// pretoken's table slot is prefetched when it is cut, so that slots missing from the
    /// processor's caches are fetched several at a time rather than one after another.
    #[inline(always)]
    fn encode_pretokens(
        &self,
        text: &str,
        mut scanner: impl Ends,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        let bytes = text.as_bytes();
        let mut ends = [0usize; pretokenize::MAX_ENDS];
        // The previous block's pretokens, as `cache::key_at` keys (or `long_word` for
        // pretokens too long for one), and the keys' hashes. Left unset until a block is
        // cut (2.5 KB: setting them to zero was a twentieth of encoding a sentence).
        let mut keys = [[MaybeUninit::<u128>::uninit(); pretokenize::MAX_ENDS]; LOOKAHEAD];
        let mut hashes = [[MaybeUninit::<u32>::uninit(); pretokenize::MAX_ENDS]; LOOKAHEAD];
        let mut counts = [0usize; LOOKAHEAD];
        // The bytes of each block's pretokens: the most ids they make.
        let mut spans = [0usize; LOOKAHEAD];
        let mut new_words = NewWords::default();
        let mut start = 0;
        let mut k = 0;
        while let Some(count) = scanner.next_ends(&mut ends) {
            let (keys, hashes, n) = (&mut keys[k], &mut hashes[k], &mut counts[k]);
            // SAFETY: the first `n` of the block's keys and hashes were set when it was cut.
            let (set_keys, set_hashes) = unsafe { (set(&keys[..*n]), set(&hashes[..*n])) };
            if !room_for(out, spans[k], cache) {
                return;
            }
            self.encode_keys(bytes, set_keys, set_hashes, &mut new_words, cache, out);
            spans[k] = ends[..count].last().map_or(0, |&end| end - start);
            let probe = cache.probe();
            for ((key, h), &end) in keys.iter_mut().zip(hashes.iter_mut()).zip(&ends[..count]) {
                let n = end - start;
                if n <= cache::INLINE_KEY {
                    let short = cache::key_at(bytes, start, n);
                    let hash = cache::key_hash(short);
                    probe.prefetch(hash);
                    key.write(short);
                    h.write(hash);
                } else if n <= cache::MAX_CACHED_WORD {
                    let hash = long_words::long_hash(bytes, start, n);
                    probe.prefetch_long(hash);
                    key.write(long_word(start, n));
                    h.write(hash);
                } else {
                    // Never cached: no hash to read it whole for.
                    key.write(long_word(start, n));
                    h.write(0);
                }
                start = end;
            }
            *n = count;
            k = (k + 1) % LOOKAHEAD;
        }
        for _ in 0..LOOKAHEAD {
            let n = counts[k];
            // SAFETY: as above.
            let (keys, hashes) = unsafe { (set(&keys[k][..n]), set(&hashes[k][..n])) };
            if !room_for(out, spans[k], cache) {
                return;
            }
            self.encode_keys(bytes, keys, hashes, &mut new_words, cache, out);
            k = (k + 1) % LOOKAHEAD;
        }
        if new_words.len > 0 {
            self.encode_new_words(&mut new_words, cache, out);
        }
    }

    /// Encodes the pretokens of `bytes` that `keys` stand for (see `encode_ordinary`).
    ///
    /// Runs of short words cached with few ids, nearly all pretokens, are written through
    /// a raw pointer with the table and the output's length in registers; any other
    /// pretoken ends the run and takes `encode_pretoken` (where a short one missing from
    /// the cache waits in `new_words`, which `encode_pretokens` also empties at the end).
    #[inline(always)]
    fn encode_keys(
        &self,
        bytes: &[u8],
        keys: &[u128],
        hashes: &[u32],
        new_words: &mut NewWords,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        const WRITE: usize = std::mem::size_of::<cache::InlineIds>() / 4;
        let mut i = 0;
        while i < keys.len() {
            out.reserve(WRITE * (keys.len() - i));
            let dst = out.as_mut_ptr();
            let mut len = out.len();
            let mut probe = cache.probe();
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
            if let (Some(&key), Some(&h)) = (keys.get(i), hashes.get(i)) {
                self.encode_pretoken(bytes, key, h, new_words, cache, out);
                i += 1;
            }
        }
    }

    /// Merges the words waiting in `new_words`, their merges interleaved
    /// (`bpe::encode_short_batch`: a cold pass is mostly merges, each waiting on memory,
    /// and merged side by side their waits overlap), caches them, and puts their ids into
    /// `out` where each was met, moving the ids written since.
    #[inline(never)]
    fn encode_new_words(
        &self,
        new_words: &mut NewWords,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        let waiting = &new_words.keys[..new_words.len];
        // Each distinct word once, and which of them each waiting one is.
        let mut distinct = [(0u128, [0u8; 16], 0usize); bpe::BATCH_WORDS];
        let mut n = 0;
        let mut which = [0usize; bpe::BATCH_WORDS];
        for (&key, w) in waiting.iter().zip(&mut which) {
            *w = match distinct[..n].iter().position(|d| d.0 == key) {
                Some(j) => j,
                None => {
                    let (bytes, len) = cache::key_bytes(key);
                    distinct[n] = (key, bytes, len);
                    n += 1;
                    n - 1
                }
            };
        }
        let words: [&[u8]; bpe::BATCH_WORDS] =
            std::array::from_fn(|j| &distinct[j].1[..distinct[j].2]);
        // Merged at the end of the output, then copied aside (at most 15 ids a word).
        let start = out.len();
        let mut lens = [0usize; bpe::BATCH_WORDS];
        if n == 1 {
            // One word (a short text's usual case): its own loop, sized to it.
            bpe::encode_word(&self.vocab, words[0], out);
            lens[0] = out.len() - start;
        } else {
            bpe::encode_short_batch(&self.vocab, &words[..n], out, &mut lens);
        }
        let mut merged = [0 as TokenId; bpe::BATCH_WORDS * cache::INLINE_KEY];
        let ids = &mut merged[..out.len() - start];
        ids.copy_from_slice(&out[start..]);
        out.truncate(start);
        let mut starts = [0usize; bpe::BATCH_WORDS];
        for j in 1..n {
            starts[j] = starts[j - 1] + lens[j - 1];
        }
        for j in 0..n {
            cache.insert(words[j], &ids[starts[j]..starts[j] + lens[j]], &self.seed);
        }
        // Room for every waiting word's ids, then, from the last one back, the ids written
        // after it moved up and its own put in.
        let extra: usize = which[..waiting.len()].iter().map(|&j| lens[j]).sum();
        let mut end = out.len();
        out.resize(end + extra, 0);
        let mut shift = extra;
        for (&at, &j) in new_words.at[..waiting.len()].iter().zip(&which).rev() {
            out.copy_within(at..end, at + shift);
            shift -= lens[j];
            out[at + shift..at + shift + lens[j]]
                .copy_from_slice(&ids[starts[j]..starts[j] + lens[j]]);
            end = at;
        }
        new_words.len = 0;
    }

    /// Encodes the pretoken of `bytes` that `key` stands for (its hash `h`; see
    /// `encode_ordinary`). A short one that needs merges waits in `new_words`, to be merged
    /// with the next few (see `encode_new_words`).
    #[inline(always)]
    fn encode_pretoken(
        &self,
        bytes: &[u8],
        key: u128,
        h: u32,
        new_words: &mut NewWords,
        cache: &mut cache::WordCache,
        out: &mut Vec<TokenId>,
    ) {
        if cache::is_short_key(key) {
            if cache.probe().extend_short(key, out) {
                return;
            }
            if cache::key_len(key) >= 2 {
                new_words.push(key, out.len());
                if new_words.len == bpe::BATCH_WORDS {
                    self.encode_new_words(new_words, cache, out);
                }
            } else {
                // A single byte is always cached (a vocabulary token); merged here anyway.
                let (buf, n) = cache::key_bytes(key);
                self.encode_uncached(&buf[..n], cache, out);
            }
        } else {
            let (start, n) = (key as usize, (key >> 64) as usize);
            let word = &bytes[start..start + n];
            if n > cache::MAX_CACHED_WORD || !cache.extend_long(word, h, out) {
                self.encode_uncached(word, cache, out);
            }
        }
    }

    /// Encodes a pretoken missing from the cache, and caches it. A pretoken too long to
    /// merge in the memory there is gives no ids and fails the encode (`WordCache::fail`).
    #[inline(never)]
    fn encode_uncached(&self, word: &[u8], cache: &mut cache::WordCache, out: &mut Vec<TokenId>) {
        if word.len() >= PROBED_WORD {
            let scratch = word.len().saturating_mul(LONG_WORD_SCRATCH);
            if let Err(e) = crate::alloc::check_room(scratch, "merging a long pretoken") {
                cache.fail(e);
                return;
            }
        }
        let start = out.len();
        // Short tokens are in the cache from the start, so a short miss needs merges.
        let whole = if word.len() > cache::INLINE_KEY {
            // Not a special token's id: see `new`.
            self.vocab
                .id(word)
                .filter(|id| !self.all_special_ids.contains(id))
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

    /// The bytes of `ids`, concatenated.
    pub fn decode_bytes(&self, ids: &[TokenId]) -> Result<Vec<u8>> {
        let tokens = self.vocab.tokens();
        let mut out =
            crate::alloc::try_with_capacity(ids.len().saturating_mul(4), "decoded bytes")?;
        for &id in ids {
            match tokens.get(id as usize).filter(|t| !t.is_empty()) {
                Some(bytes) => {
                    crate::alloc::try_reserve(&mut out, bytes.len(), "decoded bytes")?;
                    out.extend_from_slice(bytes)
                }
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

    pub(super) fn tiny() -> Encoder {
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
        Encoder::new(vocab, &["<|eot|>".to_string()], Pattern::Gpt2).unwrap()
    }

    /// Words missing from the cache wait to be merged together (`encode_new_words`), and
    /// their ids go where each was met: the same ids as merging each pretoken on its own,
    /// in a first pass and a second, on text of new words (some met twice before they
    /// are merged, some of more than three ids), long ones, and special tokens between.
    #[test]
    fn new_words_merged_together_land_where_they_were_met() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python/bpelm/tokenizer/data/gpt2");
        let vocab = Vocab::read_gpt2(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
        let e = Encoder::new(vocab, &["<|endoftext|>".to_string()], Pattern::Gpt2).unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut below = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as usize
        };
        let mut text = String::new();
        let mut recent: Vec<String> = Vec::new();
        for i in 0..20_000 {
            let word: String = if !recent.is_empty() && below(4) == 0 {
                recent[below(recent.len() as u64)].clone()
            } else {
                let longest = if below(10) == 0 { 40 } else { 12 };
                let len = 1 + below(longest);
                (0..len)
                    .map(|_| b"qxzjkvwaeio"[below(11)] as char)
                    .collect()
            };
            recent.push(word.clone());
            if recent.len() > 6 {
                recent.remove(0);
            }
            text.push_str(&word);
            text.push_str([" ", ", ", "\n", " "][below(4)]);
            if i % 997 == 0 {
                text.push_str("<|endoftext|>");
            }
        }
        let mut want = Vec::new();
        for segment in e.specials.segments(&text) {
            match segment {
                Segment::Text(piece) => e
                    .pattern
                    .for_each_pretoken(piece, |p| {
                        bpe::encode_word(&e.vocab, p.as_bytes(), &mut want)
                    })
                    .unwrap(),
                Segment::Special(i) => want.push(e.special_ids[i]),
            }
        }
        assert_eq!(e.encode(&text).unwrap(), want);
        assert_eq!(e.encode(&text).unwrap(), want);
    }

    /// An encoder of GPT-2's vocabulary (shipped in the package), no special tokens.
    fn gpt2() -> Encoder {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python/bpelm/tokenizer/data/gpt2");
        let vocab = Vocab::read_gpt2(&dir.join("vocab.json"), &dir.join("merges.txt")).unwrap();
        Encoder::new(vocab, &[], Pattern::Gpt2).unwrap()
    }

    /// A pretoken of hundreds of bytes is merged once and then found in the cache, with the
    /// ids it was merged to (up to 64 bytes, the bound before, it was merged on every pass);
    /// one over `MAX_CACHED_WORD` is merged each time and never cached.
    #[test]
    fn pretokens_of_hundreds_of_bytes_are_cached() {
        let e = gpt2();
        let rule = " ".to_string() + &"-+".repeat(150);
        let too_long = " ".to_string() + &"=#".repeat(cache::MAX_CACHED_WORD);
        let text = format!("a{rule}\nb{too_long}");
        let mut want = Vec::new();
        e.pattern
            .for_each_pretoken(&text, |p| {
                bpe::encode_word(&e.vocab, p.as_bytes(), &mut want)
            })
            .unwrap();
        assert_eq!(e.encode(&text).unwrap(), want);
        let mut merged = Vec::new();
        bpe::encode_word(&e.vocab, rule.as_bytes(), &mut merged);
        cache::with_cache(e.uid, &e.seed, 0, |cache| {
            let mut out = Vec::new();
            let hash = |w: &str| long_words::long_hash(w.as_bytes(), 0, w.len());
            assert!(cache.extend_long(rule.as_bytes(), hash(&rule), &mut out));
            assert_eq!(out, merged);
            assert!(!cache.extend_long(too_long.as_bytes(), hash(&too_long), &mut out));
        });
        assert_eq!(e.encode(&text).unwrap(), want);
    }

    /// Natural text of up to a few KB is encoded in the buffer reserved for it up front,
    /// never grown (a growth copies it: a tenth of a call on 100 bytes, when the first
    /// block's room was not reserved).
    #[test]
    fn short_texts_fit_the_room_reserved_for_them() {
        let e = gpt2();
        let words = [
            "The",
            " cat",
            " sat",
            " on",
            " the",
            " mat",
            ",",
            " and",
            " then",
            " it",
            " slept",
            ".",
            "\n",
            " Tokenizers",
            " split",
            " text",
            " into",
            " words",
            "!",
        ];
        let mut text = String::new();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        while text.len() < 4000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            text.push_str(words[(state % words.len() as u64) as usize]);
            let ids = e.encode(&text).unwrap();
            assert_eq!(
                ids.capacity(),
                ids_estimate(text.len()),
                "{} bytes",
                text.len()
            );
        }
    }

    /// Text of nearly one id a byte, three times what the output is first reserved for,
    /// grows it on the way (`room_for`) and gets every id: whole, and appended to ids
    /// already there in a buffer with no room to spare.
    #[test]
    fn text_of_more_ids_than_reserved_grows_the_output() {
        let e = tiny();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let text: String = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"helo xyz,.\n!"[(state % 12) as usize] as char
            })
            .collect();
        let mut want = Vec::new();
        e.pattern
            .for_each_pretoken(&text, |p| {
                bpe::encode_word(&e.vocab, p.as_bytes(), &mut want)
            })
            .unwrap();
        assert!(want.len() > 2 * ids_estimate(text.len()), "{}", want.len());
        assert_eq!(e.encode(&text).unwrap(), want);
        let mut out = vec![7; 5];
        out.shrink_to_fit();
        e.encode_into(&text, &mut out).unwrap();
        assert_eq!(out[..5], [7; 5]);
        assert_eq!(out[5..], want[..]);
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
    fn with_specials_matches_only_those_given() {
        let e = Encoder::new(
            tiny().vocab().clone(),
            &["<|eot|>".to_string(), "<|pad|>".to_string()],
            Pattern::Gpt2,
        )
        .unwrap();
        let text = "he<|eot|><|pad|>";
        let all = e.encode(text).unwrap();
        assert_eq!(all[all.len() - 2..], [260, 261]);
        let ordinary = e.with_specials(&[]).unwrap();
        assert!(ordinary.special_tokens().is_empty());
        let plain = ordinary.encode(text).unwrap();
        assert!(plain.len() > all.len() && !plain.contains(&260) && !plain.contains(&261));
        let pad_only = e.with_specials(&[1]).unwrap();
        let got = pad_only.encode(text).unwrap();
        assert_eq!(got.last(), Some(&261));
        assert!(!got.contains(&260));
        assert_eq!(pad_only.vocab().len(), e.vocab().len());
        assert!(e.with_specials(&[2]).is_err());
    }

    #[test]
    fn a_special_spelled_by_one_pretoken_is_ordinary_text_in_ordinary_mode() {
        let long = "abcdefghijklmnopqrstuvwxyz"; // longer than an inline cache key
        let e = Encoder::new(
            tiny().vocab().clone(),
            &["world".to_string(), long.to_string(), "hello".to_string()],
            Pattern::Gpt2,
        )
        .unwrap();
        assert_eq!(e.encode("world").unwrap(), [e.special_ids()[0]]);
        let ordinary = e.with_specials(&[]).unwrap();
        assert_eq!(
            ordinary.encode("world").unwrap(),
            b"world".map(TokenId::from)
        );
        let letters: Vec<TokenId> = long.bytes().map(TokenId::from).collect();
        assert_eq!(ordinary.encode(long).unwrap(), letters);
        // "hello" is also a merged token: BPE still makes it.
        assert_eq!(ordinary.encode("hello").unwrap(), [259]);
    }

    #[test]
    fn unused_and_unknown_ids_are_errors_naming_the_id() {
        let gap = (0..=255u8).map(|b| (u32::from(b) + u32::from(b > 10), vec![b]));
        let e = Encoder::new(Vocab::from_id_map(gap, &[]).unwrap(), &[], Pattern::Gpt2).unwrap();
        assert_eq!(e.decode_bytes(&[12, 10]).unwrap(), [11, 10]);
        let unused = e.decode_bytes(&[12, 11]).unwrap_err().to_string();
        assert_eq!(
            unused,
            "token id 11 is unused for a vocabulary of 257 tokens"
        );
        let beyond = e.decode_bytes(&[257]).unwrap_err().to_string();
        assert_eq!(
            beyond,
            "token id 257 is out of range for a vocabulary of 257 tokens"
        );
    }

    #[test]
    fn bad_specials_are_refused() {
        let v = tiny().vocab().clone();
        assert!(Encoder::new(v.clone(), &[String::new()], Pattern::Gpt2).is_err());
        assert!(Encoder::new(v, &["x".to_string(), "x".to_string()], Pattern::Gpt2).is_err());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod timing {
    use super::*;

    /// A pass over text seen before; a function of its own so that a profiler can be told
    /// to count it alone (`valgrind --tool=callgrind --toggle-collect='*warm_pass*'`).
    #[inline(never)]
    fn warm_pass(e: &Encoder, text: &str) -> Vec<TokenId> {
        e.encode(text).unwrap()
    }

    /// The encoder the timings use: GPT-2's files, or with `BPELM_BENCH_PATTERN=cl100k` or
    /// `o200k` that vocabulary's tiktoken ranks (`../shared/data/tiktoken`) and pattern.
    fn bench_encoder() -> Encoder {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
        let eot = "<|endoftext|>".to_string();
        let name = std::env::var("BPELM_BENCH_PATTERN").unwrap_or_else(|_| "gpt2".into());
        let pattern = Pattern::parse(&name).unwrap();
        if matches!(pattern, Pattern::Gpt2) {
            let dir = data.join("gpt2");
            return Encoder::from_files(
                &dir.join("vocab.json"),
                &dir.join("merges.txt"),
                &[eot],
                pattern,
            )
            .unwrap();
        }
        let file = std::fs::File::open(data.join(format!("tiktoken/{name}_base.tiktoken.gz")));
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file.unwrap()), &mut raw)
            .unwrap();
        let ranked = crate::vocab::ranks::parse_ranks(&raw).unwrap();
        let merges = crate::vocab::ranks::merges_from_ranks(&ranked, true).unwrap();
        let entries = ranked.into_iter().map(|(token, rank)| (rank, token));
        let vocab = Vocab::from_id_map(entries, &merges).unwrap();
        Encoder::new(vocab, &[eot], pattern).unwrap()
    }

    /// The text the timings encode: the file `BPELM_BENCH_TEXT` names.
    fn bench_text() -> String {
        let path = std::env::var("BPELM_BENCH_TEXT").expect("set BPELM_BENCH_TEXT to a file");
        String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()
    }

    /// Cold (first pass, fresh caches) and warm (second pass) single-thread encode rates of a
    /// file (see `bench_encoder` for the vocabulary), beside the pretokenizer alone. A
    /// measurement, not a test:
    /// `BPELM_BENCH_TEXT=file cargo test --release encode_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn encode_throughput() {
        let text = bench_text();
        let e = bench_encoder();
        let pattern = e.pattern().clone();
        let mb = text.len() as f64 / 1e6;
        // BPELM_BENCH_PASSES=0: the cold pass only.
        let passes = std::env::var("BPELM_BENCH_PASSES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3usize);
        let t = std::time::Instant::now();
        let ids = e.encode(&text).unwrap();
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
            pattern.for_each_pretoken(&text, |p| n += p.len()).unwrap();
            pretok = pretok.min(t.elapsed().as_secs_f64());
            assert_eq!(n, text.len());
        }
        // The words a cold pass must merge: distinct pretokens that are not one token.
        let mut distinct = rustc_hash::FxHashSet::default();
        pattern
            .for_each_pretoken(&text, |p| {
                if e.vocab().id(p.as_bytes()).is_none() {
                    distinct.insert(p.as_bytes());
                }
            })
            .unwrap();
        // Copied side by side, as a cold pass meets them in the text it has in cache.
        let packed: Vec<u8> = distinct.iter().flat_map(|w| w.iter().copied()).collect();
        let mut words: Vec<&[u8]> = Vec::with_capacity(distinct.len());
        let mut at = 0;
        for w in &distinct {
            words.push(&packed[at..at + w.len()]);
            at += w.len();
        }
        // Best of 5: the merges do not use the word cache, so each pass does the same work.
        let mut merge = f64::MAX;
        let mut out = Vec::new();
        for _ in 0..5 {
            out.clear();
            let t = std::time::Instant::now();
            for w in &words {
                bpe::encode_word(e.vocab(), w, &mut out);
            }
            merge = merge.min(t.elapsed().as_secs_f64());
        }
        let merges = packed.len() - out.len();
        println!(
            "{} distinct pretokens need merges: {:.0} ns each, {:.1} ms in all, {:.1} merges \
             each, {:.0} ns a merge",
            words.len(),
            merge * 1e9 / words.len() as f64,
            merge * 1e3,
            merges as f64 / words.len() as f64,
            merge * 1e9 / merges as f64
        );
        // The short ones as the encoder merges them: `BATCH_WORDS` at a time, interleaved.
        let short: Vec<&[u8]> = words
            .iter()
            .copied()
            .filter(|w| (2..=cache::INLINE_KEY).contains(&w.len()))
            .collect();
        let mut batched = f64::MAX;
        let mut lens = [0usize; bpe::BATCH_WORDS];
        for _ in 0..5 {
            out.clear();
            let t = std::time::Instant::now();
            for group in short.chunks(bpe::BATCH_WORDS) {
                bpe::encode_short_batch(e.vocab(), group, &mut out, &mut lens);
            }
            batched = batched.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{} of them of 2 to {} bytes, merged {} at a time: {:.0} ns each",
            short.len(),
            cache::INLINE_KEY,
            bpe::BATCH_WORDS,
            batched * 1e9 / short.len() as f64
        );
        println!(
            "{mb:.1} MB, {} ids: cold {:.0} MB/s, warm {:.0} MB/s, pretokenize alone {:.0} MB/s",
            ids.len(),
            mb / cold,
            mb / warm,
            mb / pretok
        );
    }

    /// What `encode_stages` times: the pretoken ends only, then each pretoken's cache key
    /// and hash as well, then the prefetch of its table slot too.
    struct Stage<'t, 'c> {
        text: &'t str,
        keys: bool,
        prefetch: Option<cache::Probe<'c>>,
    }

    impl WithEnds for Stage<'_, '_> {
        type Output = u64;
        #[inline(always)]
        fn run<E: Ends>(self, mut scanner: E) -> u64 {
            let bytes = self.text.as_bytes();
            let mut ends = [0usize; pretokenize::MAX_ENDS];
            // Folded into the result, so that nothing is optimized away.
            let mut seen = 0u64;
            let mut start = 0;
            while let Some(count) = scanner.next_ends(&mut ends) {
                if !self.keys {
                    seen = seen.wrapping_add(ends[count.max(1) - 1] as u64);
                    continue;
                }
                for &end in &ends[..count] {
                    let n = end - start;
                    if n <= cache::INLINE_KEY {
                        let hash = cache::key_hash(cache::key_at(bytes, start, n));
                        if let Some(probe) = &self.prefetch {
                            probe.prefetch(hash);
                        }
                        seen = seen.wrapping_add(u64::from(hash));
                    }
                    start = end;
                }
            }
            seen
        }
    }

    /// Where a warm pass goes, stage by stage (best of `BPELM_BENCH_REPS`, default 10, in
    /// ms per MB): cutting the text into pretokens, making their cache keys and hashes,
    /// prefetching their table slots, and the whole encode into a buffer it has used before
    /// (the rest is looking words up and writing their ids). A measurement, not a test:
    /// `BPELM_BENCH_TEXT=file cargo test --release encode_stages -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn encode_stages() {
        let text = bench_text();
        let e = bench_encoder();
        let mut out = e.encode(&text).unwrap();
        let reps = std::env::var("BPELM_BENCH_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10usize);
        let mb = text.len() as f64 / 1e6;
        let best = |f: &mut dyn FnMut()| {
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t = std::time::Instant::now();
                f();
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e3 / mb
        };
        let stage = |keys: bool, prefetch: bool| {
            cache::with_cache(e.uid, &e.seed, text.len(), |cache| {
                let probe = prefetch.then(|| cache.probe());
                let stage = Stage {
                    text: &text,
                    keys,
                    prefetch: probe,
                };
                std::hint::black_box(e.pattern.scan(&text, stage).unwrap());
            });
        };
        let cut = best(&mut || stage(false, false));
        let keyed = best(&mut || stage(true, false));
        let prefetched = best(&mut || stage(true, true));
        let whole = best(&mut || {
            out.clear();
            e.encode_into(&text, &mut out).unwrap();
        });
        println!(
            "{mb:.1} MB, ms/MB: pretoken ends {cut:.2}, + keys and hashes {keyed:.2}, \
             + prefetches {prefetched:.2}, whole warm encode {whole:.2} (so lookups and \
             writes {:.2})",
            whole - prefetched
        );
    }

    /// The word cache's lookups alone, over the keys of every pretoken of a text (short
    /// ones) made beforehand, with each slot prefetched `d` lookups ahead, for several `d`:
    /// what memory costs them once the words of a long text outgrow the processor's caches.
    /// A measurement, not a test:
    /// `BPELM_BENCH_TEXT=file cargo test --release cache_lookups -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cache_lookups() {
        let text = bench_text();
        let e = bench_encoder();
        let ids = e.encode(&text).unwrap();
        let mut keys = Vec::new();
        e.pattern
            .for_each_pretoken(&text, |p| {
                if p.len() <= cache::INLINE_KEY {
                    let key = cache::inline_key(p.as_bytes());
                    keys.push((key, cache::key_hash(key)));
                }
            })
            .unwrap();
        let mb = text.len() as f64 / 1e6;
        // The ids found, summed (writing them out would time the output's growth too).
        let mut found = 0u64;
        for distance in [0usize, 8, 16, 32, 64] {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                cache::with_cache(e.uid, &e.seed, text.len(), |cache| {
                    let mut probe = cache.probe();
                    for (i, &(key, h)) in keys.iter().enumerate() {
                        if let (true, Some(&(_, ahead))) = (distance > 0, keys.get(i + distance)) {
                            probe.prefetch(ahead);
                        }
                        if let Some(ids) = probe.inline_ids(key, h) {
                            found += u64::from(ids[0]) + u64::from(ids[3]);
                        }
                    }
                });
                best = best.min(t.elapsed().as_secs_f64());
            }
            println!(
                "{mb:.1} MB, {} lookups, prefetched {distance} ahead: {:.2} ms/MB, {:.1} ns each",
                keys.len(),
                best * 1e3 / mb,
                best * 1e9 / keys.len() as f64
            );
        }
        assert!(found > 0 && !ids.is_empty());
    }
}
