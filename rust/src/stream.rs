//! Input files for training and whole-file encoding, and the ones that cannot be mapped:
//! compressed files (`compressed`) and files without a size (pipes, `/proc` files) are read
//! as a stream of text windows, each cut where a cut cannot change pretokens or special
//! tokens (`corpus::safe_split_between`), so memory stays at a few windows whatever the
//! size of the input. Decompressing and reading run on a thread of their own, a window
//! ahead of the caller, and window buffers are recycled (fresh pages are slow to fault in).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use indicatif::ProgressBar;

use crate::compressed::{self, Compression, Counted};
use crate::corpus::{read_more, safe_split_between, Corpus};
use crate::error::{BpeError, Result};
use crate::pretokenize::Pattern;
use crate::progress;
use crate::special::SpecialTokens;

/// About how many bytes of text a window holds: enough to keep every thread of a large
/// machine busy with 1 MB chunks, few enough that three windows are a small part of memory.
pub const WINDOW_BYTES: usize = 32 << 20;
/// Bytes asked of the reader at a time.
const READ_STEP: usize = 1 << 20;
/// The reading thread's stack: the decoders keep their state on the heap.
const READER_STACK: usize = 1 << 20;

/// A text file opened for training or encoding.
pub enum Input {
    /// A regular, uncompressed file, mapped and checked as a whole.
    Whole(Corpus),
    /// Anything else, read window by window.
    Streamed(Stream),
}

impl Input {
    /// Opens `path`: compressed by its suffix (`Compression::of_path`), else mapped when it
    /// is a regular file with a size, else streamed. Errors name the file.
    pub fn open(path: &Path) -> Result<Input> {
        if let Some(format) = Compression::of_path(path) {
            let d = compressed::open(path, format)?;
            return Ok(Input::Streamed(Stream {
                path: path.to_path_buf(),
                reader: d.reader,
                read: d.consumed,
                total: Some(d.compressed_len),
                compressed: true,
            }));
        }
        let file = File::open(path).map_err(|e| BpeError::io(path, e))?;
        let meta = file.metadata().map_err(|e| BpeError::io(path, e))?;
        if meta.is_file() && meta.len() > 0 {
            drop(file);
            return Corpus::open(path).map(Input::Whole);
        }
        if meta.is_dir() {
            return Err(BpeError::io(path, crate::corpus::is_a_directory()));
        }
        let read = Arc::new(AtomicU64::new(0));
        Ok(Input::Streamed(Stream {
            path: path.to_path_buf(),
            reader: Box::new(Counted {
                inner: file,
                consumed: Arc::clone(&read),
            }),
            read,
            total: None,
            compressed: false,
        }))
    }
}

/// A file read as a stream of text windows (see the module documentation).
pub struct Stream {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    /// Bytes taken from the file so far: compressed bytes for a compressed file.
    read: Arc<AtomicU64>,
    /// The file's size when it has one.
    total: Option<u64>,
    compressed: bool,
}

/// One window of a stream, with where the file's reading stood before and after it, in the
/// units of `Stream::bar`.
pub struct Window<'a> {
    pub text: &'a str,
    read_before: u64,
    read_after: u64,
}

impl Window<'_> {
    /// The bar position once the first `done` bytes of this window are processed
    /// (interpolated: a compressed window's bytes are not the file's).
    pub fn progress_at(&self, done: usize) -> u64 {
        let span = self.read_after.saturating_sub(self.read_before) as f64;
        let fraction = done as f64 / self.text.len().max(1) as f64;
        self.read_before + (span * fraction.min(1.0)) as u64
    }
}

impl Stream {
    /// A progress bar for working through this stream: over the compressed bytes of a
    /// compressed file (whose text size is unknown until the end), over the bytes read of a
    /// file without a size.
    pub fn bar(&self, show: bool, what: &str) -> ProgressBar {
        match self.total {
            Some(total) if self.compressed => progress::bar(
                show,
                total,
                &format!("{what} (compressed)"),
                progress::Unit::Bytes,
            ),
            Some(total) => progress::bar(show, total, what, progress::Unit::Bytes),
            None => progress::counter(show, what),
        }
    }

    /// Reads the stream to its end and calls `each` with every window in order, on the
    /// calling thread, while the next window is read on a thread of its own. Returns the
    /// text's length in bytes. A window holds about `target` bytes of text (more where no
    /// safe cut comes sooner, less at the end). Errors: the file cannot be read or is not
    /// valid UTF-8 (`NotUtf8` names the path and the offset in the decompressed text), or
    /// whatever `each` returns, which stops the reading too.
    pub fn for_each_window(
        self,
        specials: &SpecialTokens,
        pattern: &Pattern,
        target: usize,
        mut each: impl FnMut(&Window) -> Result<()>,
    ) -> Result<u64> {
        let Stream {
            path,
            mut reader,
            read,
            ..
        } = self;
        // Two windows in flight (one being filled, one handed over) plus the caller's.
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<(Vec<u8>, u64)>>(1);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let progress = Arc::clone(&read);
        let path = path.as_path();
        std::thread::scope(|scope| {
            // Moved in, so that the caller's loop ends when this thread does. A thread that
            // cannot start (a memory limit) is an error, not the panic `scope.spawn` makes.
            let reading = std::thread::Builder::new()
                .name("bpelm-read".into())
                .stack_size(READER_STACK)
                .spawn_scoped(scope, move || {
                    let mut windows = Windows {
                        path,
                        specials,
                        pattern,
                        target: target.max(1),
                        buf: Vec::new(),
                        checked: 0,
                        offset: 0,
                    };
                    loop {
                        let next = windows.next(&mut reader, &free_rx);
                        let end = matches!(next, Ok(None) | Err(_));
                        let sent = match next {
                            Ok(Some(window)) => {
                                full_tx.send(Ok((window, progress.load(Ordering::Relaxed))))
                            }
                            Ok(None) => break,
                            Err(e) => full_tx.send(Err(e)),
                        };
                        // A failed send: the caller stopped (an error of its own).
                        if end || sent.is_err() {
                            break;
                        }
                    }
                });
            if reading.is_err() {
                return Err(BpeError::OutOfMemory {
                    what: "a thread to read the input",
                    bytes: READER_STACK,
                });
            }
            let mut total = 0u64;
            let mut read_before = 0u64;
            let result = (|| {
                for next in &full_rx {
                    let (bytes, read_after) = next?;
                    // SAFETY: `Windows::next` hands out only bytes it checked to be UTF-8.
                    let text = unsafe { std::str::from_utf8_unchecked(&bytes) };
                    each(&Window {
                        text,
                        read_before,
                        read_after,
                    })?;
                    total += bytes.len() as u64;
                    read_before = read_after;
                    let _ = free_tx.send(bytes);
                }
                Ok(total)
            })();
            // Ends the reader if it still runs: its next send fails.
            drop(full_rx);
            result
        })
    }
}

/// The reading side of `Stream::for_each_window`.
struct Windows<'a> {
    path: &'a Path,
    specials: &'a SpecialTokens,
    pattern: &'a Pattern,
    target: usize,
    /// Text read but not yet handed out.
    buf: Vec<u8>,
    /// How many bytes at the start of `buf` are known to be UTF-8.
    checked: usize,
    /// Offset in the text of `buf[0]`.
    offset: u64,
}

impl Windows<'_> {
    /// The next window's bytes, or `None` at the end of the stream.
    fn next(
        &mut self,
        reader: &mut dyn Read,
        recycled: &mpsc::Receiver<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>> {
        let mut want = self.target;
        // Cuts up to `searched` were looked for already, or would make the window shorter
        // than the target (see `safe_split_between`).
        let mut searched = self.target - 1;
        loop {
            let eof = self.fill(reader, want)?;
            self.check_utf8(eof)?;
            // SAFETY: `check_utf8` checked these bytes.
            let text = unsafe { std::str::from_utf8_unchecked(&self.buf[..self.checked]) };
            let cut = if eof {
                Some(self.buf.len())
            } else {
                safe_split_between(text, self.specials, self.pattern, searched, text.len())
            };
            match cut {
                Some(0) => return Ok(None),
                Some(cut) => {
                    let mut rest = recycled.try_recv().unwrap_or_default();
                    rest.clear();
                    crate::alloc::try_reserve(
                        &mut rest,
                        (self.buf.len() - cut).max(want),
                        "input window",
                    )?;
                    rest.extend_from_slice(&self.buf[cut..]);
                    self.buf.truncate(cut);
                    self.checked -= cut;
                    self.offset += cut as u64;
                    return Ok(Some(std::mem::replace(&mut self.buf, rest)));
                }
                None => {
                    // No safe cut yet (a long line): read on.
                    searched = searched.max(text.len().saturating_sub(self.specials.max_len() + 4));
                    want = self.buf.len() + self.target;
                }
            }
        }
    }

    /// Reads until `buf` holds `want` bytes or the stream ends; returns whether it ended.
    fn fill(&mut self, reader: &mut dyn Read, want: usize) -> Result<bool> {
        while self.buf.len() < want {
            let read = read_more(reader, &mut self.buf, READ_STEP, "input window", |e| {
                compressed::read_error(self.path, e)
            })?;
            if read == 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Extends `checked` over the new bytes of `buf`. A character cut off at the end is
    /// left for the next read, unless the stream has ended.
    fn check_utf8(&mut self, eof: bool) -> Result<()> {
        match std::str::from_utf8(&self.buf[self.checked..]) {
            Ok(_) => self.checked = self.buf.len(),
            Err(e) => {
                self.checked += e.valid_up_to();
                if e.error_len().is_some() || eof {
                    return Err(BpeError::NotUtf8 {
                        path: self.path.display().to_string(),
                        offset: self.offset + self.checked as u64,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::corpus::is_safe_cut;

    /// `bytes` as the stream of a file named `test.txt` without a size.
    fn stream_of(bytes: Vec<u8>) -> Stream {
        Stream {
            path: PathBuf::from("test.txt"),
            reader: Box::new(std::io::Cursor::new(bytes)),
            read: Arc::new(AtomicU64::new(0)),
            total: None,
            compressed: false,
        }
    }

    fn windows_of(bytes: &[u8], specials: &SpecialTokens, target: usize) -> Result<Vec<String>> {
        let stream = stream_of(bytes.to_vec());
        let mut out = Vec::new();
        let total = stream.for_each_window(specials, &Pattern::Gpt2, target, |w| {
            out.push(w.text.to_string());
            Ok(())
        })?;
        assert_eq!(total as usize, bytes.len());
        Ok(out)
    }

    #[test]
    fn windows_cover_the_text_and_are_cut_only_where_safe() {
        let specials = SpecialTokens::new(&["<|endoftext|>".to_string()]).unwrap();
        let doc = "Once upon a time, there was a cat.\n  It sat.\n\nThe end<|endoftext|>";
        let text = doc.repeat(4000);
        for target in [1, 100, 4096, 1 << 20, text.len() * 2] {
            let windows = windows_of(text.as_bytes(), &specials, target).unwrap();
            assert_eq!(windows.concat(), text, "target {target}");
            let mut at = 0;
            for w in &windows[..windows.len() - 1] {
                at += w.len();
                assert!(w.len() >= target.min(text.len()));
                assert!(is_safe_cut(&text, &specials, &Pattern::Gpt2, at));
            }
        }
        assert!(windows_of(b"", &specials, 10).unwrap().is_empty());
    }

    #[test]
    fn a_text_without_safe_cuts_is_one_window() {
        let specials = SpecialTokens::default();
        let text = "word ".repeat(3 << 20); // 15 MB, no newline: read on until the end
        let windows = windows_of(text.as_bytes(), &specials, 1 << 20).unwrap();
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].len(), text.len());
    }

    #[test]
    fn bad_utf8_is_reported_at_its_offset_in_the_text() {
        let specials = SpecialTokens::default();
        let mut bytes = "line\n".repeat(1 << 19).into_bytes(); // 2.6 MB
                                                               // A character split between two reads is fine; a bad byte is not.
        let at = bytes.len() - 7;
        bytes.splice(at..at, "é中😀\n".bytes());
        assert!(windows_of(&bytes, &specials, 1000).is_ok());
        bytes[READ_STEP + 3] = 0xff;
        let err = windows_of(&bytes, &specials, 1000).unwrap_err().to_string();
        assert!(
            err.contains("test.txt") && err.contains(&format!("offset {}", READ_STEP + 3)),
            "{err}"
        );
        // Cut off inside a character at the very end.
        let err = windows_of(
            "ab\ncd\u{e9}".as_bytes().split_last().unwrap().1,
            &specials,
            1,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("offset 5"), "{err}");
    }

    #[test]
    fn an_error_of_the_caller_stops_the_reading() {
        let specials = SpecialTokens::default();
        let text = "a line\n".repeat(1 << 20);
        let stream = stream_of(text.into_bytes());
        let mut calls = 0;
        let err = stream.for_each_window(&specials, &Pattern::Gpt2, 4096, |_| {
            calls += 1;
            Err(BpeError::Interrupted)
        });
        assert!(matches!(err, Err(BpeError::Interrupted)));
        assert_eq!(calls, 1);
    }
}
