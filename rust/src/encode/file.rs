//! Encoding a whole file to a token array on disk (`.npy` or raw `.bin`).
//!
//! The input is memory-mapped (or, compressed or without a size, read a window at a time:
//! `stream`) and cut into chunks at places where a cut cannot change the tokens; chunks are
//! encoded in parallel and appended in order with a bounded number in flight (`ordered`),
//! so memory stays flat however large the file. The output is written
//! to a temporary file beside the target and renamed into place only when complete.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::progress;

use super::Encoder;
use crate::corpus::chunk_ranges;
use crate::error::{BpeError, Result};
use crate::stream::{Input, WINDOW_BYTES};

/// About how many bytes of text each parallel task encodes, by default.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Bytes reserved for the `.npy` header, patched with the final shape at the end.
const NPY_HEADER_LEN: usize = 128;

/// Element type of the output array (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    U16,
    U32,
}

impl Dtype {
    /// Parses `"uint16"` or `"uint32"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "uint16" | "u16" => Ok(Dtype::U16),
            "uint32" | "u32" => Ok(Dtype::U32),
            other => Err(BpeError::InvalidArgument(format!(
                "dtype must be \"uint16\" or \"uint32\", not {other:?}"
            ))),
        }
    }

    fn width(self) -> usize {
        match self {
            Dtype::U16 => 2,
            Dtype::U32 => 4,
        }
    }

    fn npy_descr(self) -> &'static str {
        match self {
            Dtype::U16 => "<u2",
            Dtype::U32 => "<u4",
        }
    }
}

/// What `encode_file` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeFileStats {
    pub tokens: u64,
    pub bytes: u64,
}

pub use crate::cancel::Cancel;

/// How `encode_file` works.
#[derive(Clone, Copy)]
pub struct EncodeFileOptions<'a> {
    pub dtype: Dtype,
    /// `None`: one per CPU (see `pool::threads`).
    pub num_threads: Option<usize>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// About how many bytes of text each parallel task encodes.
    pub chunk_bytes: usize,
    /// About how many bytes of text a window of a streamed input holds (`stream`).
    pub window_bytes: usize,
    /// Checked after each chunk is written; `None`: never cancelled.
    pub cancel: Option<Cancel<'a>>,
}

impl Default for EncodeFileOptions<'_> {
    fn default() -> Self {
        EncodeFileOptions {
            dtype: Dtype::U32,
            num_threads: None,
            progress: false,
            chunk_bytes: CHUNK_BYTES,
            window_bytes: WINDOW_BYTES,
            cancel: None,
        }
    }
}

/// Whether `a` and `b` name one file (same device and inode: through symlinks and hard
/// links too); false when either does not exist.
fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        ma.dev() == mb.dev() && ma.ino() == mb.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    }
}

/// Encodes the UTF-8 file `input` into `output`: a `.npy` array or raw little-endian `.bin`
/// of `options.dtype`, written atomically.
pub fn encode_file(
    encoder: &Encoder,
    input: &Path,
    output: &Path,
    options: &EncodeFileOptions,
) -> Result<EncodeFileStats> {
    let EncodeFileOptions {
        dtype,
        num_threads,
        progress,
        chunk_bytes,
        window_bytes,
        cancel,
    } = *options;
    if same_file(input, output) {
        // Renaming the tokens over it would replace the corpus.
        return Err(BpeError::InvalidArgument(format!(
            "the output {} is the input file itself; write the tokens elsewhere",
            output.display()
        )));
    }
    let threads = crate::pool::threads(num_threads)?;
    let vocab_size = encoder.vocab().len();
    if dtype == Dtype::U16 && vocab_size > 1 << 16 {
        return Err(BpeError::InvalidArgument(format!(
            "uint16 holds ids below 65536 but the vocabulary has {vocab_size} tokens; use uint32"
        )));
    }
    let npy = match output.extension().and_then(|e| e.to_str()) {
        Some("npy") => true,
        Some("bin") => false,
        _ => {
            return Err(BpeError::InvalidArgument(format!(
                "{}: the output must end in .npy or .bin",
                output.display()
            )))
        }
    };
    let pool = crate::pool::get(threads)?;
    // On this call's threads: the check that a mapped file is UTF-8 is parallel too.
    let input_file = pool.install(|| Input::open(input))?;
    let mut out = Output::create(output, npy, dtype)?;
    let job = Job {
        encoder,
        pool: &pool,
        threads,
        chunk_bytes: chunk_bytes.max(1),
        cancel,
    };
    let bytes = match input_file {
        Input::Whole(corpus) => {
            let text = corpus.text();
            let bar = progress::bar(progress, text.len() as u64, "encode", progress::Unit::Bytes);
            job.encode(text, &mut out, |done| bar.set_position(done as u64))?;
            bar.finish_and_clear();
            text.len() as u64
        }
        Input::Streamed(stream) => {
            let bar = stream.bar(progress, "encode");
            let bytes = stream.for_each_window(
                encoder.special_tokens(),
                encoder.pattern(),
                window_bytes,
                |window| {
                    job.encode(window.text, &mut out, |done| {
                        bar.set_position(window.progress_at(done))
                    })
                },
            )?;
            bar.finish_and_clear();
            bytes
        }
    };
    let tokens = out.finish(output)?;
    Ok(EncodeFileStats { tokens, bytes })
}

/// What stays the same across the texts (one, or one per window) of an `encode_file` call.
struct Job<'a> {
    encoder: &'a Encoder,
    pool: &'a rayon::ThreadPool,
    threads: usize,
    chunk_bytes: usize,
    cancel: Option<Cancel<'a>>,
}

impl Job<'_> {
    /// Encodes `text` in chunks on the pool and appends the tokens to `out` in order;
    /// `progress(done)` after each chunk is written, with the bytes of `text` done so far.
    fn encode(&self, text: &str, out: &mut Output, progress: impl Fn(usize)) -> Result<()> {
        let Job {
            encoder,
            pool,
            threads,
            chunk_bytes,
            cancel,
        } = *self;
        let ranges = chunk_ranges(
            text,
            encoder.special_tokens(),
            encoder.pattern(),
            chunk_bytes,
        );
        let dtype = out.dtype;
        super::ordered::run_ordered(
            pool,
            ranges.len(),
            4 * threads,
            || {
                // Room for this worker's share of the text's new words, in one growth
                // rather than doublings chunk after chunk.
                encoder.reserve_cache(text.len() / threads);
                Vec::new()
            },
            |i, ids: &mut Vec<u32>, bytes: &mut Vec<u8>| {
                ids.clear();
                encoder.encode_into(&text[ranges[i].clone()], ids)?;
                bytes.clear();
                crate::alloc::try_reserve(bytes, ids.len() * dtype.width(), "encoded chunk")?;
                extend_le_bytes(bytes, ids, dtype);
                Ok(())
            },
            |i, bytes| {
                out.write(bytes)?;
                progress(ranges[i].end);
                match cancel {
                    Some(cancelled) if cancelled() => Err(BpeError::Interrupted),
                    _ => Ok(()),
                }
            },
        )
    }
}

/// The token array being written: a temporary file beside the target, renamed into place by
/// `finish`, and deleted when dropped before (an early return, an interruption).
struct Output {
    tmp: tempfile::NamedTempFile,
    writer: WriteBuffer,
    npy: bool,
    dtype: Dtype,
    writeback: Writeback,
    tokens: u64,
}

impl Output {
    fn create(output: &Path, npy: bool, dtype: Dtype) -> Result<Self> {
        let dir = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let prefix = format!(
            ".{}.",
            output.file_name().and_then(|n| n.to_str()).unwrap_or("out")
        );
        super::stale::remove_orphans(dir, &prefix);
        // Locked so that a later run can tell it from one a killed run left behind. Created
        // with the umask's mode, as any new file would be.
        let tmp = crate::tmpfile::builder()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| BpeError::io(dir, e))?;
        super::stale::lock(tmp.as_file());
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| BpeError::io(tmp.path(), e))?;
        let mut out = Output {
            writer: WriteBuffer {
                file,
                buf: crate::alloc::try_with_capacity(WRITE_BUFFER, "the output buffer")?,
            },
            tmp,
            npy,
            dtype,
            writeback: Writeback::new(if npy { NPY_HEADER_LEN as u64 } else { 0 }),
            tokens: 0,
        };
        if npy {
            out.writer
                .write_all(&[b' '; NPY_HEADER_LEN])
                .map_err(|e| out.io_err(e))?;
        }
        Ok(out)
    }

    fn io_err(&self, e: std::io::Error) -> BpeError {
        BpeError::io(self.tmp.path(), e)
    }

    /// Appends encoded tokens (`dtype` elements).
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).map_err(|e| self.io_err(e))?;
        self.tokens += (bytes.len() / self.dtype.width()) as u64;
        self.writeback
            .advance(self.writer.get_ref(), bytes.len() as u64);
        Ok(())
    }

    /// Writes the `.npy` header, makes the file durable and renames it to `output`; returns
    /// the number of tokens.
    fn finish(mut self, output: &Path) -> Result<u64> {
        self.writer.flush().map_err(|e| self.io_err(e))?;
        if self.npy {
            let header = npy_header(self.dtype, self.tokens)?;
            let f = self.writer.get_mut();
            let written = f
                .seek(SeekFrom::Start(0))
                .and_then(|_| f.write_all(&header));
            written.map_err(|e| self.io_err(e))?;
        }
        self.writer
            .get_ref()
            .sync_all()
            .map_err(|e| self.io_err(e))?;
        let Output {
            tmp,
            writer,
            tokens,
            ..
        } = self;
        drop(writer); // its handle is closed before the rename
        tmp.persist(output)
            .map_err(|e| BpeError::io(output, e.error))?;
        Ok(tokens)
    }
}

/// `std::io::BufWriter`, but with its buffer allocated fallibly (`BufWriter` aborts the
/// process when its buffer cannot be had, as under a memory limit).
struct WriteBuffer {
    file: File,
    buf: Vec<u8>,
}

impl WriteBuffer {
    fn get_ref(&self) -> &File {
        &self.file
    }

    fn get_mut(&mut self) -> &mut File {
        &mut self.file
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buf.len() + bytes.len() > self.buf.capacity() {
            self.flush()?;
        }
        if bytes.len() >= self.buf.capacity() {
            return self.file.write_all(bytes);
        }
        self.buf.extend_from_slice(bytes); // within the capacity: no allocation
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

/// The output writer's buffer: the file holds all that was written but this much at most.
const WRITE_BUFFER: usize = 1 << 20;
/// Bytes written between two starts of writeback.
const WRITEBACK_BYTES: u64 = 2 << 20;

/// Starts the disk writes of the output while it is still being encoded, a few MB at a
/// time, so that the `fsync` at the end (which makes the file durable before it is renamed
/// into place) waits only for the last of them.
struct Writeback {
    /// Bytes handed to the writer so far, and the end of what writeback has started on.
    written: u64,
    started: u64,
}

impl Writeback {
    fn new(start: u64) -> Self {
        Writeback {
            written: start,
            started: 0,
        }
    }

    /// Counts `bytes` more written, and starts writeback every `WRITEBACK_BYTES` of them on
    /// what has surely reached `file` (all but the writer's buffer).
    fn advance(&mut self, file: &File, bytes: u64) {
        self.written += bytes;
        let end = self.written.saturating_sub(WRITE_BUFFER as u64);
        if end >= self.started + WRITEBACK_BYTES {
            start_writeback(file, self.started, end);
            self.started = end;
        }
    }
}

/// Asks the kernel to start writing `from..to` of `file` to disk, without waiting.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no
    // memory of ours, and a failure only leaves the work to the final fsync.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _to: u64) {}

/// Appends `ids` to `out` as little-endian `dtype` elements.
fn extend_le_bytes(out: &mut Vec<u8>, ids: &[u32], dtype: Dtype) {
    // Into fixed-size chunks of a resized vector, a loop the compiler vectorizes (an
    // iterator of bytes extended one by one does not).
    let start = out.len();
    out.resize(start + ids.len() * dtype.width(), 0);
    let dst = &mut out[start..];
    match dtype {
        // Ids were checked to fit when the vocabulary has at most 65536 tokens.
        Dtype::U16 => {
            for (d, &id) in dst.chunks_exact_mut(2).zip(ids) {
                d.copy_from_slice(&(id as u16).to_le_bytes());
            }
        }
        Dtype::U32 => {
            for (d, &id) in dst.chunks_exact_mut(4).zip(ids) {
                d.copy_from_slice(&id.to_le_bytes());
            }
        }
    }
}

/// A version 1.0 `.npy` header for a 1-D array of `len` elements, exactly `NPY_HEADER_LEN`
/// bytes long (padded with spaces, ending in a newline, as the format asks).
fn npy_header(dtype: Dtype, len: u64) -> Result<Vec<u8>> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({len},), }}",
        dtype.npy_descr()
    );
    let prefix_len = 10;
    let body_len = NPY_HEADER_LEN - prefix_len;
    if dict.len() + 1 > body_len {
        return Err(BpeError::InvalidArgument(format!(
            "array of {len} tokens is too long for .npy"
        )));
    }
    let mut out = Vec::with_capacity(NPY_HEADER_LEN);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(body_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(NPY_HEADER_LEN - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_names_the_shape() {
        let h = npy_header(Dtype::U16, 12345).unwrap();
        assert_eq!(h.len(), NPY_HEADER_LEN);
        assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(
            u16::from_le_bytes([h[8], h[9]]) as usize + 10,
            NPY_HEADER_LEN
        );
        let text = String::from_utf8(h[10..].to_vec()).unwrap();
        assert!(text.starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (12345,), }"));
        assert!(text.ends_with(" \n"));
        assert!(npy_header(Dtype::U32, u64::MAX).is_ok());
    }

    #[test]
    fn dtype_names() {
        assert_eq!(Dtype::parse("uint16").unwrap(), Dtype::U16);
        assert_eq!(Dtype::parse("uint32").unwrap(), Dtype::U32);
        assert!(Dtype::parse("int64")
            .unwrap_err()
            .to_string()
            .contains("int64"));
    }
}
