//! Compressed corpora (`.gz`, `.xz`, `.bz2`), decompressed as they are read, so a corpus
//! never needs a decompressed copy on disk or in memory (`windows` reads it a window at a
//! time). The suffix says a file is compressed, as it does for `gzip -d` and Python's
//! openers; its first bytes must then be that format's magic number, so a misnamed file is
//! an error that says so instead of a stream of garbage.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    let consumed = Arc::new(AtomicU64::new(0));
    // The magic bytes go back in front: the decoders check them again.
    let counted = Counted {
        inner: std::io::Cursor::new(head).chain(file),
        consumed: Arc::clone(&consumed),
    };
    let raw = BufReader::with_capacity(READ_BUFFER, counted);
    let reader: Box<dyn Read + Send> = match format {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
    };
    Ok(Decompressed {
        reader,
        consumed,
        compressed_len: meta.len(),
    })
}

/// Fills `buf` from `reader` as far as the data goes; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A reader that counts the bytes read through it.
struct Counted<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
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
