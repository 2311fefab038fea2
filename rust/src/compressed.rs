//! Compressed corpora (`.gz`, `.xz`, `.bz2`), decompressed as they are read, so a corpus
//! never needs a decompressed copy on disk or in memory (`windows` reads it a window at a
//! time). The suffix says a file is compressed, as it does for `gzip -d` and Python's
//! openers; its first bytes must then be that format's magic number, so a misnamed file is
//! an error that says so instead of a stream of garbage.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::corpus::read_retrying;
use crate::error::{BpeError, Result};

/// A compression format the core reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Bzip2,
}

/// Bytes of the compressed file read at a time.
const READ_BUFFER: usize = 1 << 20;

impl Compression {
    /// The format a file's suffix names (`.gz`, `.xz`, `.bz2`, any case), if any.
    pub fn of_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "gz" => Some(Compression::Gzip),
            "xz" => Some(Compression::Xz),
            "bz2" => Some(Compression::Bzip2),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }

    /// The first bytes of every file of this format.
    fn magic(self) -> &'static [u8] {
        match self {
            Compression::Gzip => b"\x1f\x8b",
            Compression::Xz => b"\xfd7zXZ\x00",
            Compression::Bzip2 => b"BZh",
        }
    }
}

/// A compressed file being decompressed, with how far into the compressed bytes it is (for
/// a progress bar whose total is the file's size).
pub struct Decompressed {
    /// The decompressed bytes. Concatenated members or streams are read one after the
    /// other, as `gzip -d`, `xz -d` and `bzip2 -d` do.
    pub reader: Box<dyn Read + Send>,
    /// Compressed bytes taken from the file so far (the decoder reads ahead of what it has
    /// given out by at most `READ_BUFFER`).
    pub consumed: Arc<AtomicU64>,
    /// The compressed file's size.
    pub compressed_len: u64,
}

/// Opens `path` for decompression as `format`. Errors name the file: it cannot be opened,
/// or it does not start with the format's magic number.
pub fn open(path: &Path, format: Compression) -> Result<Decompressed> {
    let mut file = File::open(path).map_err(|e| BpeError::io(path, e))?;
    let meta = file.metadata().map_err(|e| BpeError::io(path, e))?;
    if meta.is_dir() {
        return Err(BpeError::io(path, crate::corpus::is_a_directory()));
    }
    let magic = format.magic();
    let mut head = vec![0u8; magic.len()];
    let got = read_up_to(&mut file, &mut head).map_err(|e| BpeError::io(path, e))?;
    if head[..got] != *magic {
        return Err(BpeError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the name says {} but the file does not start like one (is it \
                     compressed at all?)",
                    format.name()
                ),
            ),
        ));
    }
    // The decoders allocate their state infallibly (gzip's and bzip2's panic or abort when
    // it cannot be had, and bzip2's block buffer failing is reported as bad data): under a
    // memory limit, ask first for that much and the read buffer, which come before the
    // first block is decoded below. liblzma reports its own failures (`read_error`).
    let room = READ_BUFFER + decoder_state(format, &head[..got]);
    crate::alloc::check_room(room, "a decompressor")?;
    let consumed = Arc::new(AtomicU64::new(0));
    // The magic bytes go back in front: the decoders check them again.
    let counted = Counted {
        inner: std::io::Cursor::new(head).chain(file),
        consumed: Arc::clone(&consumed),
    };
    let raw = Buffered {
        inner: counted,
        buf: crate::alloc::try_filled(READ_BUFFER, 0u8, "a read buffer")?,
        pos: 0,
        filled: 0,
    };
    let mut decoder: Box<dyn Read + Send> = match format {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
    };
    // The first byte now, while the memory checked for above is still free: decoding the
    // first block allocates the decoder's buffers (bzip2 reports a failure there as bad
    // data, not as memory). Later blocks reuse them.
    let mut first = [0u8; 1];
    let got = read_up_to(&mut decoder, &mut first).map_err(|e| read_error(path, e))?;
    let reader = Box::new(std::io::Cursor::new(first[..got].to_vec()).chain(decoder));
    Ok(Decompressed {
        reader,
        consumed,
        compressed_len: meta.len(),
    })
}

/// About the most memory a decoder of `format` allocates for itself, given the file's first
/// bytes: bzip2 says its block size (`BZh1` to `BZh9`, in 100 kB) and needs 4 bytes per
/// block byte plus its tables; gzip's inflate state and window are under 64 kB.
fn decoder_state(format: Compression, head: &[u8]) -> usize {
    const SLACK: usize = 256 << 10;
    match format {
        Compression::Bzip2 => {
            let level = head
                .get(3)
                .map_or(9, |&b| usize::from(b.wrapping_sub(b'0')).min(9));
            level * 400_000 + SLACK
        }
        Compression::Gzip | Compression::Xz => SLACK,
    }
}

/// The error of a failed read of `path`: `OutOfMemory` where the decoder says it could not
/// allocate (liblzma reports it as an `io::Error` wrapping its own error), else `Io`.
pub fn read_error(path: &Path, e: std::io::Error) -> BpeError {
    let lzma_out_of_memory = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<liblzma::stream::Error>())
        .is_some_and(|err| {
            matches!(
                err,
                liblzma::stream::Error::Mem | liblzma::stream::Error::MemLimit
            )
        });
    if lzma_out_of_memory || e.kind() == std::io::ErrorKind::OutOfMemory {
        return BpeError::OutOfMemory {
            what: "memory to decompress the input",
            bytes: 0,
        };
    }
    BpeError::io(path, e)
}

/// Fills `buf` from `reader` as far as the data goes; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_retrying(reader, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// `std::io::BufReader`, but with its buffer allocated fallibly (`BufReader` aborts the
/// process when its buffer cannot be had, as under a memory limit).
struct Buffered<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[pos..filled]` is read from `inner` and not yet consumed.
    pos: usize,
    filled: usize,
}

impl<R: Read> Read for Buffered<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Buffered<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.filled {
            self.filled = read_retrying(&mut self.inner, &mut self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// A reader that counts the bytes read through it (for a progress bar, read elsewhere).
pub(crate) struct Counted<R> {
    pub(crate) inner: R,
    pub(crate) consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn decompress(path: &Path) -> Result<Vec<u8>> {
        let format = Compression::of_path(path).unwrap();
        let mut d = open(path, format)?;
        let mut out = Vec::new();
        d.reader
            .read_to_end(&mut out)
            .map_err(|e| BpeError::io(path, e))?;
        assert_eq!(d.consumed.load(Ordering::Relaxed), d.compressed_len);
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_format_round_trips_with_concatenated_members() {
        let dir = tempfile::tempdir().unwrap();
        let one = "héllo wörld\n".repeat(1000);
        let two = "second member 😀\n".repeat(500);
        for (suffix, compress) in [
            ("gz", gzip as fn(&[u8]) -> Vec<u8>),
            ("xz", xz),
            ("bz2", bzip2),
        ] {
            let path = dir.path().join(format!("t.txt.{}", suffix.to_uppercase()));
            let mut bytes = compress(one.as_bytes());
            bytes.extend(compress(two.as_bytes()));
            std::fs::write(&path, bytes).unwrap();
            let got = decompress(&path).unwrap();
            assert_eq!(got, format!("{one}{two}").as_bytes(), "{suffix}");
        }
    }

    #[test]
    fn a_misnamed_or_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt.gz");
        std::fs::write(&plain, "not compressed at all").unwrap();
        let err = decompress(&plain).unwrap_err().to_string();
        assert!(
            err.contains("plain.txt.gz") && err.contains("gzip"),
            "{err}"
        );

        let empty = dir.path().join("empty.xz");
        std::fs::write(&empty, "").unwrap();
        assert!(decompress(&empty).unwrap_err().to_string().contains("xz"));

        let cut = dir.path().join("cut.bz2");
        let whole = bzip2("some text that gets cut off\n".repeat(100).as_bytes());
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        let err = decompress(&cut).unwrap_err().to_string();
        assert!(err.contains("cut.bz2"), "{err}");

        assert_eq!(Compression::of_path(Path::new("a.txt")), None);
        assert_eq!(Compression::of_path(Path::new("gz")), None);
    }
}
