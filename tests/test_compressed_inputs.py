"""Compressed corpora (.gz, .xz, .bz2) are read by the core as they are decompressed, a
window of text at a time: training and encoding give what the plain file gives, errors name
the file, and memory does not grow with the text."""

from __future__ import annotations

import bz2
import gzip
import lzma
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bpelm import Tokenizer, _core, encode_file, train_bpe

SAMPLE = Path(__file__).parents[1] / "python" / "bpelm" / "data" / "sample.txt"
SPECIALS = ["<|endoftext|>"]
COMPRESSORS = {".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """The bundled sample with documents, Unicode and a long line: about 240 KB."""
    text = SAMPLE.read_text(encoding="utf-8")
    docs = [text, "naïve café — 中文 😀 Ünïcödé\n" * 300, "word " * 5000 + "\n", text[::-1]]
    path = tmp_path_factory.mktemp("plain") / "corpus.txt"
    path.write_text("<|endoftext|>".join(docs), encoding="utf-8")
    return path


def compressed(plain: Path, suffix: str, members: int = 1) -> Path:
    """`plain` compressed as `suffix`, in `members` concatenated members (as `cat a.gz b.gz`
    makes, which `gzip -d` reads as one text)."""
    data = plain.read_bytes()
    cut = [len(data) * i // members for i in range(members + 1)]
    out = plain.with_name(f"{plain.name}.{members}{suffix}")
    out.write_bytes(b"".join(COMPRESSORS[suffix](data[a:b]) for a, b in zip(cut, cut[1:])))
    return out


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_training_on_a_compressed_file_equals_training_on_the_plain_one(plain, suffix):
    want = train_bpe(plain, 600, SPECIALS)
    for members, window, threads in [(1, 1 << 20, 2), (3, 4096, 1), (2, 1000, 2)]:
        path = compressed(plain, suffix, members)
        got = _core.train_bpe(path, 600, SPECIALS, threads, False, "gpt2", window)
        assert got == want, (members, window, threads)


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_encoding_a_compressed_file_equals_encoding_the_plain_one(plain, suffix, tmp_path):
    tok = Tokenizer(*train_bpe(plain, 600, SPECIALS, pattern="cl100k"), SPECIALS, pattern="cl100k")
    encode_file(tok, plain, tmp_path / "want.npy")
    want = np.load(tmp_path / "want.npy")
    for members, window in [(1, 1 << 25), (3, 4096), (2, 1)]:
        path = compressed(plain, suffix, members)
        out = tmp_path / f"got-{members}-{window}.npy"
        tokens, size = _core.encode_file(tok._core, path, out, "uint16", 2, False, 1 << 16, window)
        assert size == plain.stat().st_size
        assert tokens == len(want)
        assert np.array_equal(np.load(out), want), (members, window)


def test_damaged_and_misnamed_files_are_errors_naming_them(plain, tmp_path):
    tok = Tokenizer.gpt2()
    whole = compressed(plain, ".gz").read_bytes()
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    misnamed = tmp_path / "plain.txt.xz"
    misnamed.write_bytes(plain.read_bytes())
    for path, words in [(cut, ["cut.txt.gz"]), (misnamed, ["plain.txt.xz", "xz"])]:
        with pytest.raises(OSError) as e:
            encode_file(tok, path, tmp_path / "out.npy")
        assert all(w in str(e.value) for w in words), e.value
        with pytest.raises(OSError) as e:
            train_bpe(path, 300)
        assert all(w in str(e.value) for w in words), e.value
    assert not (tmp_path / "out.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.txt.gz", "plain.txt.xz"]


def test_bad_utf8_inside_a_compressed_file_names_its_offset(tmp_path):
    text = b"fine text\n" * 100_000 + b"\xff and more\n"
    path = tmp_path / "bad.txt.bz2"
    path.write_bytes(bz2.compress(text))
    offset = text.index(b"\xff")
    with pytest.raises(ValueError, match=f"bad.txt.bz2.*offset {offset}"):
        train_bpe(path, 300)
    with pytest.raises(ValueError, match=f"offset {offset}"):
        encode_file(Tokenizer.gpt2(), path, tmp_path / "out.npy")


def test_memory_stays_flat_however_long_the_compressed_text(tmp_path):
    """64 MB of text, read 4 MB at a time: the encoding process grows by far less than the
    text (a decompressed copy in memory would add 64 MB)."""
    path = tmp_path / "big.txt.gz"
    block = SAMPLE.read_bytes()
    with gzip.open(path, "wb", compresslevel=1) as f:
        for _ in range(64_000_000 // len(block)):
            f.write(block)
    script = textwrap.dedent(
        f"""
        import resource
        from bpelm import Tokenizer, _core
        tok = Tokenizer.gpt2()
        tok.encode("warm up " * 1000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tokens, size = _core.encode_file(
            tok._core, {str(path)!r}, {str(tmp_path / "big.npy")!r}, "uint16", 2, False,
            1 << 20, 4 << 20)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(size, (after - before) * 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    size, grown = map(int, out.split())
    assert size >= 60_000_000
    assert grown < 32_000_000, f"grew by {grown / 1e6:.1f} MB for {size / 1e6:.0f} MB of text"
