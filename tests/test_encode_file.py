"""encode_file: arrays on disk equal encode(whole text); atomic output; clear errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from bpelm import Tokenizer, _core, encode_file

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def gpt2(gpt2_files) -> Tokenizer:
    return Tokenizer.from_files(*gpt2_files, special_tokens=[EOT])


@pytest.fixture(scope="module")
def text(web_sample) -> str:
    return web_sample[:600_000]


def write_text(path, text: str):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def leftovers(folder) -> list[str]:
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


def test_npy_equals_encode(gpt2, text, tmp_path):
    src = write_text(tmp_path / "in.txt", text)
    out = tmp_path / "tokens.npy"
    n = encode_file(gpt2, src, out)
    arr = np.load(out)
    assert arr.dtype == np.uint16
    assert n == len(arr)
    assert arr.tolist() == gpt2.encode(text, allowed_special="all")
    assert not leftovers(tmp_path)


def test_bin_and_uint32(gpt2, text, tmp_path):
    src = write_text(tmp_path / "in.txt", text)
    encode_file(gpt2, src, tmp_path / "t.bin", dtype="uint32", num_threads=1)
    arr = np.fromfile(tmp_path / "t.bin", dtype="<u4")
    assert arr.tolist() == gpt2.encode(text, allowed_special="all")
    encode_file(gpt2, src, tmp_path / "t16.bin")
    assert np.fromfile(tmp_path / "t16.bin", dtype="<u2").tolist() == arr.tolist()


def test_many_small_chunks_keep_order(gpt2, text, tmp_path):
    src = write_text(tmp_path / "in.txt", text)
    out = tmp_path / "t.npy"
    tokens, nbytes = _core.encode_file(gpt2._core, str(src), str(out), "uint32", 2, False, 2048)
    assert nbytes == len(text.encode("utf-8"))
    arr = np.load(out)
    assert tokens == len(arr)
    assert arr.tolist() == gpt2.encode(text, allowed_special="all")


def test_empty_input(gpt2, tmp_path):
    src = write_text(tmp_path / "empty.txt", "")
    assert encode_file(gpt2, src, tmp_path / "e.npy") == 0
    assert np.load(tmp_path / "e.npy").shape == (0,)


def test_uint16_refused_for_large_vocab(tmp_path):
    vocab = {i: bytes([i]) for i in range(256)}
    for i in range(65_300):
        vocab[256 + i] = b"\xff\xfe" + i.to_bytes(3, "little")
    tok = Tokenizer(vocab, [])
    assert tok.vocab_size > 65_536
    src = write_text(tmp_path / "in.txt", "hello")
    with pytest.raises(ValueError, match="uint32"):
        encode_file(tok, src, tmp_path / "t.npy", dtype="uint16")
    assert not (tmp_path / "t.npy").exists()
    encode_file(tok, src, tmp_path / "t.npy", dtype="uint32")
    assert np.load(tmp_path / "t.npy").tolist() == list(b"hello")


def test_non_utf8_input_names_the_offset(gpt2, tmp_path):
    src = tmp_path / "bad.txt"
    src.write_bytes(b"hello \xff world")
    with pytest.raises(ValueError, match="offset 6"):
        encode_file(gpt2, src, tmp_path / "t.npy")
    assert not (tmp_path / "t.npy").exists()
    assert not leftovers(tmp_path)


def test_failed_write_leaves_nothing(gpt2, text, tmp_path):
    src = write_text(tmp_path / "in.txt", text)
    # The output name is taken by a folder, so the final rename fails.
    (tmp_path / "out.npy").mkdir()
    with pytest.raises(OSError):
        encode_file(gpt2, src, tmp_path / "out.npy")
    assert not leftovers(tmp_path)


def test_bad_arguments(gpt2, tmp_path):
    src = write_text(tmp_path / "in.txt", "hi")
    with pytest.raises(ValueError, match="dtype"):
        encode_file(gpt2, src, tmp_path / "t.npy", dtype="int64")
    with pytest.raises(ValueError, match=r"\.npy or \.bin"):
        encode_file(gpt2, src, tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError):
        encode_file(gpt2, tmp_path / "missing.txt", tmp_path / "t.npy")
    with pytest.raises(TypeError):
        encode_file("gpt2", src, tmp_path / "t.npy")  # type: ignore[arg-type]
