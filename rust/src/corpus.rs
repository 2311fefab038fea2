//! Whole files as text: memory-mapped, checked to be UTF-8, cut into chunks that can be
//! processed in parallel without changing the result.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use crate::error::{BpeError, Result};
use crate::pretokenize::{is_space, Pattern};
use crate::special::SpecialTokens;

/// A file's bytes, known to hold valid UTF-8.
pub struct Corpus {
    path: PathBuf,
    bytes: Bytes,
}

/// Where a corpus's bytes live.
enum Bytes {
    /// A regular file with a size, memory-mapped.
    Mapped(Mmap),
    /// Anything else, read to its end: a pipe (`<(cat f)`), a `/proc` file (whose size
    /// reads as 0), a character device, or an empty file (mapping zero bytes fails on
    /// some platforms).
    Read(Vec<u8>),
}

impl Corpus {
    /// Maps `path` (or reads it, when it cannot be mapped; see `Bytes`) and validates it as
    /// UTF-8. Errors: `Io` (names the path; a directory is `EISDIR`), `OutOfMemory`, and
    /// `NotUtf8` (names the path and the byte offset of the first invalid byte).
    ///
    /// Like every memory map, the text assumes nobody changes the file while it is open.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| BpeError::io(path, e))?;
        let meta = file.metadata().map_err(|e| BpeError::io(path, e))?;
        if meta.is_dir() {
            // Else mmap's "No such device (os error 19)".
            return Err(BpeError::io(path, is_a_directory()));
        }
        let bytes = if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is read-only and lives as long as `Corpus`; a file truncated or
            // rewritten by another process while mapped is outside what this API promises.
            Bytes::Mapped(unsafe { Mmap::map(&file) }.map_err(|e| BpeError::io(path, e))?)
        } else {
            Bytes::Read(read_to_end(file, path)?)
        };
        let corpus = Corpus {
            path: path.to_path_buf(),
            bytes,
        };
        if let Some(offset) = first_invalid_utf8(corpus.raw()) {
            return Err(BpeError::NotUtf8 {
                path: path.display().to_string(),
                offset: offset as u64,
            });
        }
        Ok(corpus)
    }

    fn raw(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(map) => map,
            Bytes::Read(v) => v,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        // SAFETY: `open` checked that all the bytes are UTF-8, and they are read-only.
        unsafe { std::str::from_utf8_unchecked(self.raw()) }
    }
}

/// The error of opening a directory as a file.
pub(crate) fn is_a_directory() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::IsADirectory,
        "is a directory, not a text file",
    )
}

/// Reads `file` (which has no usable size) to its end, growing the buffer fallibly.
fn read_to_end(mut file: File, path: &Path) -> Result<Vec<u8>> {
    const STEP: usize = 1 << 20;
    let mut out = Vec::new();
    while read_more(&mut file, &mut out, STEP, "input text", |e| {
        BpeError::io(path, e)
    })? > 0
    {}
    Ok(out)
}

/// One `read` of `reader` into `buf`, tried again while a signal interrupts it.
pub(crate) fn read_retrying<R: Read + ?Sized>(
    reader: &mut R,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Appends up to `step` bytes read from `reader` to `buf`, which grows fallibly
/// (`OutOfMemory` for `what`); returns how many (0 at the end). A failed read is the error
/// `io_error` makes of it, and leaves `buf` as it was.
pub(crate) fn read_more<R: Read + ?Sized>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    step: usize,
    what: &'static str,
    io_error: impl FnOnce(std::io::Error) -> BpeError,
) -> Result<usize> {
    let start = buf.len();
    crate::alloc::try_reserve(buf, step, what)?;
    buf.resize(start + step, 0);
    match read_retrying(reader, &mut buf[start..]) {
        Ok(n) => {
            buf.truncate(start + n);
            Ok(n)
        }
        Err(e) => {
            buf.truncate(start);
            Err(io_error(e))
        }
    }
}

/// Bytes per block of the parallel UTF-8 check.
const UTF8_BLOCK: usize = 1 << 20;

/// The offset of the first byte where `bytes` stops being valid UTF-8, or `None`.
///
/// Blocks are checked in parallel (`pool::run`). Each block boundary is moved forward past
/// at most three continuation bytes, so it never splits a valid character; then the blocks
/// are valid exactly when the whole is, and the first error of the first bad block is the
/// first error of the whole.
pub fn first_invalid_utf8(bytes: &[u8]) -> Option<usize> {
    let is_continuation = |i: usize| bytes.get(i).is_some_and(|&b| b & 0xC0 == 0x80);
    let mut bounds: Vec<usize> = (0..bytes.len().div_ceil(UTF8_BLOCK))
        .map(|k| {
            let mut b = k * UTF8_BLOCK;
            let mut steps = 0;
            while steps < 3 && is_continuation(b) {
                b += 1;
                steps += 1;
            }
            b
        })
        .collect();
    bounds.push(bytes.len());
    let first_error = |w: &[usize]| match std::str::from_utf8(&bytes[w[0]..w[1].max(w[0])]) {
        Ok(_) => None,
        Err(e) => Some(w[0] + e.valid_up_to()),
    };
    // On the caller's pool, or the default one; on this thread if no pool can start.
    crate::pool::run(None, || bounds.par_windows(2).filter_map(first_error).min())
        .unwrap_or_else(|_| bounds.windows(2).filter_map(first_error).min())
}

/// The char starting at byte `i` of `text` (a char boundary), if any.
fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// Whether a cut at byte `pos` leaves pretokens and special-token matches unchanged on both
/// sides, whatever text follows `text`:
/// * `0 < pos < text.len()` and no occurrence (or, at the end, started occurrence) of a
///   special token strictly contains `pos`; and
/// * a special token starts at `pos`, or `pos` follows a `\n` that follows a non-whitespace
///   character (or starts the text) and precedes a non-whitespace character that `pattern`
///   allows a cut before (`Pattern::cuts_after_newline_before`).
///
/// Why the character before the `\n` matters: in `"a \nb"` the pretokens are `"a"`, `" "`,
/// `"\n"`, `"b"`, but `"a \n"` alone ends in the whitespace run `" \n"`.
pub fn is_safe_cut(text: &str, specials: &SpecialTokens, pattern: &Pattern, pos: usize) -> bool {
    let bytes = text.as_bytes();
    if pos == 0 || pos >= bytes.len() || !text.is_char_boundary(pos) {
        return false;
    }
    if specials.straddles(text, pos) {
        return false;
    }
    if specials.starts_at(text, pos) {
        return true;
    }
    match char_at(text, pos) {
        Some(next) if bytes[pos - 1] == b'\n' && !is_space(next) => {
            if !pattern.cuts_after_newline_before(next) {
                return false;
            }
        }
        _ => return false,
    }
    match text[..pos - 1].chars().next_back() {
        None => true,
        Some(c) => !is_space(c),
    }
}

/// The greatest cut position `p` with `0 < p <= pos` that is safe in the sense of
/// `chunk_ranges` (same pretokens and special-token matches on both sides as without the cut),
/// or `None` when there is none. `encode_iterable` uses it to flush a buffer.
///
/// The cut stays safe whatever text is appended to `text` later: a cut is never made inside a
/// special token that `text` ends with the beginning of, and never at `text.len()`.
/// The search looks back from `pos` only at `\n` bytes and first bytes of special tokens.
pub fn safe_split_before(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    pos: usize,
) -> Option<usize> {
    safe_split_between(text, specials, pattern, 0, pos)
}

/// Like `safe_split_before`, but only cuts `p` with `lo < p <= pos` are considered, so that a
/// caller whose buffer grows without a safe cut does not search it all again each time. Such
/// a caller should pass the previous buffer length minus `specials.max_len() + 4` as `lo`:
/// a position that close to the old end may have become safe only through the new text.
pub fn safe_split_between(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    lo: usize,
    pos: usize,
) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.len() < 2 || pos <= lo {
        return None;
    }
    let limit = pos.min(bytes.len() - 1);
    if limit < lo {
        return None;
    }
    let firsts = specials.first_bytes();
    // Candidates at index i: p = i + 1 after a '\n', p = i before a special token's first byte.
    let check = |i: usize| -> Option<usize> {
        if bytes[i] == b'\n' && i < limit && is_safe_cut(text, specials, pattern, i + 1) {
            return Some(i + 1);
        }
        if i > lo
            && firsts.binary_search(&bytes[i]).is_ok()
            && is_safe_cut(text, specials, pattern, i)
        {
            return Some(i);
        }
        None
    };
    let haystack = &bytes[lo..=limit];
    let at = |i: usize| lo + i;
    match firsts {
        [] => memchr::memrchr_iter(b'\n', haystack)
            .map(at)
            .find_map(check),
        [a] => memchr::memrchr2_iter(b'\n', *a, haystack)
            .map(at)
            .find_map(check),
        [a, b] => memchr::memrchr3_iter(b'\n', *a, *b, haystack)
            .map(at)
            .find_map(check),
        _ => (lo..=limit)
            .rev()
            .filter(|&i| bytes[i] == b'\n' || firsts.binary_search(&bytes[i]).is_ok())
            .find_map(check),
    }
}

/// The first safe cut at or after `from`, searching forward. The special-token search only
/// reaches as far as the next `\n` candidate (plus one token length), so the cost is about
/// the distance to the cut, not to the next special token.
fn first_safe_cut(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    mut from: usize,
) -> Option<usize> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    while from < n {
        let after_newline = memchr::memchr(b'\n', &bytes[from.max(1) - 1..])
            .map(|i| from.max(1) + i)
            .filter(|&p| p < n);
        let window_end = after_newline.map_or(n, |p| p.saturating_add(specials.max_len()));
        let special = specials.find_in(text, from, window_end).map(|m| m.0);
        let candidate = match (after_newline, special) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        if is_safe_cut(text, specials, pattern, candidate) {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

/// Cuts `text` into consecutive ranges of at least `target_bytes` each (except the last),
/// only at places where a cut cannot change pretokenization or special-token matching (see
/// `is_safe_cut`): just before a special token, or between a `\n` and a non-whitespace
/// character, never inside any occurrence of a special token. Each cut is the first safe
/// place at or after the target, so a long stretch without one makes a long chunk. The
/// ranges cover the text exactly, in order; an empty text gives the one range `0..0`.
pub fn chunk_ranges(
    text: &str,
    specials: &SpecialTokens,
    pattern: &Pattern,
    target_bytes: usize,
) -> Vec<Range<usize>> {
    let n = text.len();
    let target = target_bytes.max(1);
    let mut ranges = Vec::with_capacity(n / target + 1);
    let mut start = 0;
    while start < n {
        let want = start.saturating_add(target);
        let end = if want >= n {
            n
        } else {
            first_safe_cut(text, specials, pattern, want).unwrap_or(n)
        };
        ranges.push(start..end);
        start = end;
    }
    if ranges.is_empty() {
        ranges.push(0..0);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pretokenize::Pattern;

    const GPT2: Pattern = Pattern::Gpt2;
    use crate::special::Segment;

    fn set(tokens: &[&str]) -> SpecialTokens {
        let tokens: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        SpecialTokens::new(&tokens).expect("valid special tokens")
    }

    /// Pretokens and specials of `text`, as the encoder sees them.
    fn units<'a>(
        text: &'a str,
        specials: &'a SpecialTokens,
        pattern: &Pattern,
    ) -> Vec<Segment<'a>> {
        let mut out = Vec::new();
        for seg in specials.segments(text) {
            match seg {
                Segment::Text(t) => out.extend(
                    pattern
                        .pretokenize(t)
                        .expect("a built-in pattern")
                        .into_iter()
                        .map(Segment::Text),
                ),
                s => out.push(s),
            }
        }
        out
    }

    fn check_chunks(text: &str, specials: &SpecialTokens, target: usize) -> Vec<Range<usize>> {
        check_chunks_with(text, specials, &GPT2, target)
    }

    fn check_chunks_with(
        text: &str,
        specials: &SpecialTokens,
        pattern: &Pattern,
        target: usize,
    ) -> Vec<Range<usize>> {
        let ranges = chunk_ranges(text, specials, pattern, target);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(w[0].start < w[0].end);
            assert!(
                is_safe_cut(text, specials, pattern, w[0].end),
                "cut at {}",
                w[0].end
            );
        }
        let pieces: Vec<Segment> = ranges
            .iter()
            .flat_map(|r| units(&text[r.clone()], specials, pattern))
            .collect();
        assert_eq!(
            pieces,
            units(text, specials, pattern),
            "{text:?} {ranges:?}"
        );
        ranges
    }

    /// Chunks cut anywhere they may be cut split into the same pieces as the whole, for
    /// each pattern, on texts dense in newlines, slashes (o200k carries a `/` after a
    /// newline into the pretoken before it), whitespace and punctuation.
    #[test]
    fn every_pattern_splits_chunks_as_the_whole() {
        let alphabet = [
            "a", "B", "1", ".", "/", "\n", " ", "\r", "\t", "'", "s", "<|e|>", "é",
        ];
        let specials = set(&["<|e|>"]);
        let mut lcg = crate::pretokenize::testing::Lcg::new(5);
        for pattern in [Pattern::Gpt2, Pattern::Cl100k, Pattern::O200k] {
            for _ in 0..3000 {
                let text: String = (0..30)
                    .map(|_| alphabet[lcg.below(alphabet.len())])
                    .collect();
                check_chunks_with(&text, &specials, &pattern, 1);
            }
        }
        // A custom pattern is cut only before special tokens.
        let custom = Pattern::parse(r"\S+|\s+").expect("a valid pattern");
        let ranges = check_chunks_with("a\nb\nc<|e|>d", &specials, &custom, 1);
        assert_eq!(ranges, [0..5, 5..11]);
    }

    #[test]
    fn cuts_after_newlines_before_text() {
        let s = SpecialTokens::default();
        let text = "one\ntwo\nthree\n  four\n\nfive";
        let ranges = check_chunks(text, &s, 1);
        let cuts: Vec<usize> = ranges.iter().map(|r| r.end).collect();
        assert_eq!(cuts, [4, 8, text.len()]);
        assert_eq!(check_chunks(text, &s, 1000).len(), 1);
        assert_eq!(chunk_ranges("", &s, &GPT2, 10), vec![0..0; 1]);
    }

    #[test]
    fn cuts_before_specials_never_inside() {
        let s = set(&["<|endoftext|>", "<|endoftext|><|endoftext|>"]);
        let doc = "Once upon a time.\n";
        let text = format!("{doc}<|endoftext|>{doc}<|endoftext|><|endoftext|>{doc}");
        for target in [1, 5, 17, 18, 19, 30, 100] {
            check_chunks(&text, &s, target);
        }
        // Inside the double token is no cut, though a single one starts there.
        assert!(!is_safe_cut(
            &text,
            &s,
            &GPT2,
            text.find("><|").expect("double") + 1
        ));
    }

    #[test]
    fn safe_split_before_finds_the_last_safe_cut() {
        let s = set(&["<|eot|>"]);
        let text = "ab\ncd <|eot|>\n x\nyz<|e";
        assert_eq!(safe_split_before(text, &s, &GPT2, text.len()), Some(17));
        assert_eq!(safe_split_before(text, &s, &GPT2, 16), Some(6));
        assert_eq!(safe_split_before(text, &s, &GPT2, 5), Some(3));
        assert_eq!(safe_split_before(text, &s, &GPT2, 2), None);
        // A cut is never inside a token the text ends with the start of.
        assert_eq!(safe_split_before("ab\n<|eo", &s, &GPT2, 5), Some(3));
        assert_eq!(
            safe_split_before("a\nb", &SpecialTokens::default(), &GPT2, 3),
            Some(2)
        );
        assert_eq!(
            safe_split_before("a\n", &SpecialTokens::default(), &GPT2, 2),
            None
        );
        // Many distinct first bytes take the slow path.
        let many = set(&["<a>", "[b]", "{c}", "(d)"]);
        assert_eq!(safe_split_before("xx[b]yy(d)zz", &many, &GPT2, 9), Some(7));
        // A lower bound: only cuts after it.
        assert_eq!(safe_split_between(text, &s, &GPT2, 6, 16), None);
        assert_eq!(safe_split_between(text, &s, &GPT2, 5, 16), Some(6));
        assert_eq!(safe_split_between(text, &s, &GPT2, 2, 5), Some(3));
        assert_eq!(safe_split_between("xx[b]yy(d)zz", &many, &GPT2, 7, 9), None);
    }

    #[test]
    fn safe_split_between_agrees_with_a_scan_of_every_position() {
        let s = set(&["<|eot|>", "\n<x>", "ab"]);
        let text = "ab\n\ncd <|eot|>\nx\n<x>yz\n\n b<|e\nq<|eot|><|eot|>\nab";
        for lo in 0..text.len() {
            for pos in lo..text.len() + 2 {
                let expected = (lo + 1..=pos)
                    .rev()
                    .find(|&p| is_safe_cut(text, &s, &GPT2, p));
                assert_eq!(
                    safe_split_between(text, &s, &GPT2, lo, pos),
                    expected,
                    "{lo} {pos}"
                );
            }
        }
    }

    #[test]
    fn pathological_inputs_are_linear() {
        // 1 MB each, target 1 byte: a quadratic search would take minutes.
        let n = 1 << 20;
        let specials = set(&["<|endoftext|>", "<|endoftext|><|endoftext|>"]);
        for text in [
            "\n".repeat(n),
            " ".repeat(n),
            "a".repeat(n),
            "a\n".repeat(n / 2),
            " \nb".repeat(n / 3),
            "<|endoftext|>".repeat(n / 13),
            "<|endoftext|".repeat(n / 12),
        ] {
            let ranges = chunk_ranges(&text, &specials, &GPT2, 1);
            assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
            let end = text.len();
            let p = safe_split_before(&text, &specials, &GPT2, end);
            assert!(p.is_none_or(|p| is_safe_cut(&text, &specials, &GPT2, p)));
        }
    }

    #[test]
    fn whitespace_before_the_newline_blocks_the_cut() {
        let s = SpecialTokens::default();
        for text in ["a \nb", "a\n\nb", "a\u{a0}\nb", "a\n b", "a\n\tb"] {
            assert_eq!(check_chunks(text, &s, 1).len(), 1, "{text:?}");
        }
        check_chunks("\nb\u{3000}\nc", &s, 1);
    }

    #[test]
    fn utf8_check_reports_the_first_bad_byte() {
        assert_eq!(first_invalid_utf8(b""), None);
        assert_eq!(first_invalid_utf8("héllo 中 😀".as_bytes()), None);
        assert_eq!(first_invalid_utf8(b"ab\xffcd"), Some(2));
        assert_eq!(first_invalid_utf8(b"ab\xe4\xb8"), Some(2));
        // Around block boundaries: a valid multi-byte char straddling one, and bad bytes.
        for shift in 0..5 {
            let mut v = vec![b'a'; UTF8_BLOCK - shift];
            v.extend_from_slice("😀中é".as_bytes());
            v.extend(std::iter::repeat_n(b'b', UTF8_BLOCK));
            assert_eq!(first_invalid_utf8(&v), None, "shift {shift}");
            let bad = v.len() - 10;
            v[bad] = 0x80;
            assert_eq!(first_invalid_utf8(&v), Some(bad));
            v[UTF8_BLOCK - shift + 1] = b'x'; // breaks the emoji
            assert_eq!(
                first_invalid_utf8(&v),
                Some(UTF8_BLOCK - shift),
                "shift {shift}"
            );
        }
    }

    /// Cost of opening (UTF-8 check) and chunking a file; run with
    /// `BPELM_BENCH_TEXT=file cargo test --release -- --ignored --nocapture corpus_throughput`.
    #[test]
    #[ignore]
    fn corpus_throughput() {
        let path = std::env::var("BPELM_BENCH_TEXT").expect("set BPELM_BENCH_TEXT to a file");
        let specials = set(&["<|endoftext|>"]);
        let start = std::time::Instant::now();
        let corpus = Corpus::open(Path::new(&path)).expect("a UTF-8 file");
        let opened = start.elapsed().as_secs_f64();
        let text = corpus.text();
        let _ = chunk_ranges(text, &specials, &GPT2, 1 << 20); // warm-up
        let start = std::time::Instant::now();
        let ranges = chunk_ranges(text, &specials, &GPT2, 1 << 20);
        let chunked = start.elapsed().as_secs_f64();
        let mb = text.len() as f64 / 1e6;
        println!(
            "{mb:.1} MB: open + UTF-8 check {:.0} MB/s, chunk_ranges (1 MiB) {:.1} us, {} chunks",
            mb / opened,
            chunked * 1e6,
            ranges.len()
        );
    }
}
