//! Byte-level BPE training: count pretokens in parallel, then merge incrementally.
//!
//! The rules (the same as `bpelm/_reference.py`, which the tests hold this to): the text is
//! split on special tokens, then into GPT-2 pretokens, and no merge crosses either boundary.
//! Each step merges the most frequent adjacent pair, counted over all pretokens with their
//! multiplicity (overlapping occurrences each count, so `aaa` holds `(a, a)` twice); ties go
//! to the greatest `(left_bytes, right_bytes)`. Occurrences are replaced left to right without
//! overlap. Ids: 0..=255 are the bytes, then the merges in order, then the special tokens.
//!
//! What was measured and tried on the way here is in `benches/RESULTS.md` (training).

mod count;
mod merge;
mod word;

use std::path::Path;

use indicatif::ProgressBar;

use crate::alloc;
use crate::cancel::{Cancel, Stop};
use crate::error::{BpeError, Result};
use crate::pool;
use crate::pretokenize::Pattern;
use crate::progress;
use crate::special::SpecialTokens;
use crate::stream::{Input, WINDOW_BYTES};
use crate::TokenId;

pub use merge::learn_merges;
pub use word::Words;

/// A trained tokenizer: `vocab[id]` is the bytes of token `id`; `merges[i]` made id `256 + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trained {
    pub vocab: Vec<Vec<u8>>,
    pub merges: Vec<(TokenId, TokenId)>,
}

impl Trained {
    /// The merges as the byte strings of their two parts, in order: what `Vocab::new` takes.
    pub fn merge_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let bytes = |id: TokenId| self.vocab[id as usize].clone();
        self.merges
            .iter()
            .map(|&(l, r)| (bytes(l), bytes(r)))
            .collect()
    }
}

/// How training runs.
#[derive(Clone, Copy, Default)]
pub struct TrainOptions<'a> {
    /// `None`: one per CPU (see `pool::threads`).
    pub num_threads: Option<usize>,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// About how many bytes of text a window of a streamed input (a compressed file)
    /// holds; 0: `stream::WINDOW_BYTES`.
    pub window_bytes: usize,
    /// Asked while training runs (see `pool::run_cancellable`); the counting stops between
    /// chunks and the merging between merges. `None`: never cancelled.
    pub cancel: Option<Cancel<'a>>,
}

/// Trains on the UTF-8 file at `path`, split into pretokens by `pattern`, until the
/// vocabulary holds `vocab_size` tokens (or no pair is left). Memory the input sizes is
/// reserved fallibly (`OutOfMemory`, never an abort); a cancelled call ends with
/// `Interrupted`.
pub fn train_file(
    path: &Path,
    vocab_size: usize,
    special_tokens: &[String],
    pattern: &Pattern,
    options: &TrainOptions,
) -> Result<Trained> {
    // Arguments are checked before the file is mapped, so bad ones fail at once.
    let specials = checked_specials(vocab_size, special_tokens)?;
    pool::run_cancellable(
        options.num_threads,
        options.cancel,
        |stop| match Input::open(path)? {
            Input::Whole(corpus) => {
                alloc::check_headroom("the corpus")?;
                let text = corpus.text();
                train_text_with(text, vocab_size, &specials, pattern, options.progress, stop)
            }
            Input::Streamed(stream) => {
                let bar = stream.bar(options.progress, "count");
                let window = match options.window_bytes {
                    0 => WINDOW_BYTES,
                    n => n,
                };
                let words = count::count_stream(stream, window, &specials, pattern, &bar, stop)?;
                bar.finish();
                merge_words(words, vocab_size, &specials, options.progress, stop)
            }
        },
    )
}

/// The validated special tokens, once `vocab_size` is known to hold them and the bytes.
fn checked_specials(vocab_size: usize, special_tokens: &[String]) -> Result<SpecialTokens> {
    let specials = SpecialTokens::new(special_tokens)?;
    check_vocab_size(vocab_size, added_specials(&specials).count())?;
    Ok(specials)
}

/// The special tokens that take ids of their own after the merges: all but single bytes,
/// which are tokens 0..=255 already (given a second id, the vocabulary would hold the same
/// bytes twice, which `Vocab` refuses; the encoder gives such a special the byte's id).
fn added_specials(specials: &SpecialTokens) -> impl Iterator<Item = &str> + '_ {
    specials
        .tokens()
        .iter()
        .map(String::as_str)
        .filter(|s| s.len() != 1)
}

/// Trains on `text`, like `train_file`.
pub fn train_text(
    text: &str,
    vocab_size: usize,
    special_tokens: &[String],
    pattern: &Pattern,
    options: &TrainOptions,
) -> Result<Trained> {
    let specials = checked_specials(vocab_size, special_tokens)?;
    pool::run_cancellable(options.num_threads, options.cancel, |stop| {
        train_text_with(text, vocab_size, &specials, pattern, options.progress, stop)
    })
}

fn check_vocab_size(vocab_size: usize, n_specials: usize) -> Result<()> {
    let min = 256 + n_specials;
    if vocab_size < min {
        return Err(BpeError::InvalidArgument(format!(
            "vocab_size {vocab_size} is too small: it must be at least 256 + {n_specials} \
             special tokens = {min}"
        )));
    }
    // Ids run from 0 to vocab_size - 1 and are `TokenId`s.
    let max = u64::from(TokenId::MAX) + 1;
    if vocab_size as u64 > max {
        return Err(BpeError::InvalidArgument(format!(
            "vocab_size {vocab_size} is too large: token ids are 32-bit, so at most {max}"
        )));
    }
    Ok(())
}

fn train_text_with(
    text: &str,
    vocab_size: usize,
    specials: &SpecialTokens,
    pattern: &Pattern,
    progress: bool,
    stop: &Stop,
) -> Result<Trained> {
    let bar = progress::bar(progress, text.len() as u64, "count", progress::Unit::Bytes);
    let words = count::count_words(text, specials, pattern, &bar, stop)?;
    bar.finish();
    merge_words(words, vocab_size, specials, progress, stop)
}

/// The merges learnt from counted `words`, and the vocabulary they make with `specials`.
fn merge_words(
    words: Words,
    vocab_size: usize,
    specials: &SpecialTokens,
    progress: bool,
    stop: &Stop,
) -> Result<Trained> {
    alloc::check_headroom("the counted words")?;
    if words.len() > u32::MAX as usize {
        return Err(BpeError::InvalidArgument(format!(
            "{} distinct pretokens are more than this trainer indexes (2^32 - 1)",
            words.len()
        )));
    }

    // Up to what was asked for, and what the words can make: the merges stop early when
    // no pair is left.
    let n_added = added_specials(specials).count();
    let n_merges = (vocab_size - 256 - n_added).min(words.max_merges());
    let bar = progress::bar(progress, n_merges as u64, "merge", progress::Unit::Items);
    let mut trained = learn_merges(words, n_merges, &bar, stop)?;
    bar.finish();
    alloc::try_reserve(&mut trained.vocab, n_added, "vocabulary")?;
    for special in added_specials(specials) {
        let bytes = alloc::try_to_vec(special.as_bytes(), "vocabulary")?;
        trained.vocab.push(bytes);
    }
    Ok(trained)
}

/// Learns up to `n_merges` merges on words given directly as byte strings with counts
/// (no pretokenization); returns the vocabulary (bytes, then merged tokens) and the merges.
pub fn train_words<'a>(
    words: impl IntoIterator<Item = (&'a [u8], u64)>,
    n_merges: usize,
) -> Result<Trained> {
    let mut ws = Words::new();
    for (bytes, n) in words {
        ws.push(bytes, n)?;
    }
    pool::run(None, || {
        learn_merges(ws, n_merges, &ProgressBar::hidden(), &Stop::new())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specials(tokens: &[&str]) -> Vec<String> {
        tokens.iter().map(|s| s.to_string()).collect()
    }

    fn threads(num_threads: Option<usize>) -> TrainOptions<'static> {
        TrainOptions {
            num_threads,
            ..TrainOptions::default()
        }
    }

    #[test]
    fn vocab_is_bytes_then_merges_then_specials() {
        let eot = specials(&["<|endoftext|>", "<pad>"]);
        let text = "ab ab<|endoftext|>ab ab";
        let trained = train_text(text, 260, &eot, &Pattern::Gpt2, &threads(None)).expect("trains");
        // Pretokens: "ab" x2, " ab" x2; (a, b) x4, then (" ", "ab") x2.
        assert_eq!(trained.merges, [(97, 98), (32, 256)]);
        let pairs = [
            (b"a".to_vec(), b"b".to_vec()),
            (b" ".to_vec(), b"ab".to_vec()),
        ];
        assert_eq!(trained.merge_pairs(), pairs);
        assert_eq!(trained.vocab.len(), 260);
        assert_eq!(trained.vocab[65], b"A");
        assert_eq!(trained.vocab[256], b"ab");
        assert_eq!(trained.vocab[257], b" ab");
        assert_eq!(trained.vocab[258], b"<|endoftext|>");
        assert_eq!(trained.vocab[259], b"<pad>");
    }

    #[test]
    fn a_single_byte_special_token_is_its_byte_not_a_second_entry() {
        let text = "a b a b<|eot|>a b";
        for single in [" ", "a"] {
            let trained = train_text(
                text,
                262,
                &specials(&[single, "<|eot|>"]),
                &Pattern::Gpt2,
                &threads(Some(1)),
            )
            .expect("trains");
            let vocab = crate::vocab::Vocab::new(trained.vocab.clone(), &[]).expect("distinct");
            assert_eq!(
                vocab.id(single.as_bytes()),
                Some(u32::from(single.as_bytes()[0]))
            );
            assert_eq!(
                trained.vocab.last().map(Vec::as_slice),
                Some(&b"<|eot|>"[..])
            );
            // 256 bytes, the merges, one added special: up to 262 in all.
            assert_eq!(trained.vocab.len(), 256 + trained.merges.len() + 1);
        }
        assert!(train_text("ab", 256, &specials(&["a"]), &Pattern::Gpt2, &threads(None)).is_ok());
    }

    #[test]
    fn no_merge_crosses_a_special_token() {
        // Without the split, "<|endoftext|>" would give frequent pairs.
        let text = "<|endoftext|>x".repeat(20);
        let trained = train_text(
            &text,
            300,
            &specials(&["<|endoftext|>"]),
            &Pattern::Gpt2,
            &threads(Some(2)),
        )
        .expect("trains");
        assert!(trained.merges.is_empty());
        assert_eq!(trained.vocab.len(), 257);
    }

    #[test]
    fn vocab_size_below_bytes_and_specials_is_an_error() {
        let err = train_text(
            "abc",
            256,
            &specials(&["<s>"]),
            &Pattern::Gpt2,
            &threads(None),
        )
        .expect_err("too small");
        assert!(
            err.to_string()
                .contains("at least 256 + 1 special tokens = 257"),
            "{err}"
        );
        assert!(train_text("abc", 256, &[], &Pattern::Gpt2, &threads(Some(1))).is_ok());
    }

    #[test]
    fn a_huge_vocab_size_is_checked_not_allocated() {
        // Allowed (ids still fit 32 bits): the merges stop when no pair is left, and nothing
        // is allocated for the 2^32 asked for.
        let trained = train_text("ab ab abc", 1 << 32, &[], &Pattern::Gpt2, &threads(Some(1)))
            .expect("trains");
        assert!(trained.merges.len() <= 5, "{:?}", trained.merges);
        let err = train_text("ab", (1 << 32) + 5, &[], &Pattern::Gpt2, &threads(None))
            .expect_err("too large");
        assert!(err.to_string().contains("at most 4294967296"), "{err}");
        let trained = train_words([(&b"abab"[..], 3)], usize::MAX).expect("trains");
        assert_eq!(trained.merges.len(), 2);
    }
}
