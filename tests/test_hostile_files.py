"""Files that are not what they seem: the input as the output, pipes, /proc files,
directories, single-byte special tokens, truncated merges, malformed vocab.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from bpelm import Tokenizer, _core, encode_file, train_bpe

TEXT = "the cat sat on the mat.\nthe dog sat on the log.\n" * 50


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    src = tmp_path_factory.mktemp("tok") / "train.txt"
    src.write_text(TEXT + "<|endoftext|>")
    vocab, merges = train_bpe(src, 300, ["<|endoftext|>"], num_threads=1)
    return Tokenizer(vocab, merges, ["<|endoftext|>"])


# -- the input as the output --------------------------------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_encoding_a_file_onto_itself_is_refused(tok, tmp_path, how):
    corpus = tmp_path / "a.bin"
    corpus.write_text(TEXT)
    out = corpus
    if how == "symlink":
        out = tmp_path / "link.bin"
        out.symlink_to(corpus)
    elif how == "hardlink":
        out = tmp_path / "hard.bin"
        os.link(corpus, out)
    with pytest.raises(ValueError, match="is the input file itself"):
        encode_file(tok, corpus, out)
    assert corpus.read_text() == TEXT
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# -- pipes, /proc files, directories ---------------------------------------------------------


def test_a_fifo_is_read_not_taken_for_empty(tok, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write({TEXT!r})"])
    try:
        out = tmp_path / "out.npy"
        n = encode_file(tok, fifo, out, num_threads=1)
    finally:
        writer.wait(timeout=30)
    assert n > 0
    assert np.load(out).tolist() == tok.encode(TEXT)


def test_training_on_a_fifo_sees_the_text(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(fifo)!r}, 'w').write({TEXT!r})"])
    try:
        vocab, merges = train_bpe(fifo, 300, [], num_threads=1)
    finally:
        writer.wait(timeout=30)
    assert len(merges) > 0 and len(vocab) > 257


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_a_proc_file_is_read_although_its_size_is_zero():
    text = _core.read_corpus("/proc/self/status")
    assert "Name:" in text


def test_a_directory_says_so(tok, tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        encode_file(tok, tmp_path, tmp_path / "out.npy")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        train_bpe(tmp_path, 300, [])


# -- single-byte special tokens ---------------------------------------------------------------


@pytest.mark.parametrize("special", [" ", "a"])
def test_a_single_byte_special_token_trains_a_usable_vocabulary(tmp_path, special):
    src = tmp_path / "t.txt"
    src.write_text(TEXT)
    vocab, merges = train_bpe(src, 300, [special, "<|endoftext|>"], num_threads=1)
    assert len(set(vocab.values())) == len(vocab)
    tok = Tokenizer(vocab, merges, [special, "<|endoftext|>"])
    assert tok.encode(special, allowed_special="all") == [ord(special)]
    assert tok.decode(tok.encode(TEXT, allowed_special="all")) == TEXT


# -- truncated merges, vocab.json messages ------------------------------------------------------


def test_a_truncated_merges_file_names_the_missing_line(tok, tmp_path):
    tok.save(tmp_path)
    merges = (tmp_path / "merges.txt").read_text().splitlines(keepends=True)
    assert len(merges) > 10
    (tmp_path / "merges.txt").write_text("".join(merges[:10]))
    with pytest.raises(ValueError, match=r"merges.txt:11: missing merge"):
        Tokenizer.load(tmp_path)
    (tmp_path / "bpelm.json").unlink()
    with pytest.raises(ValueError, match=r"merges.txt:11: missing merge"):
        Tokenizer.load(tmp_path)


def test_a_bpelm_json_from_a_newer_version_is_refused(tok, tmp_path):
    tok.save(tmp_path)
    meta = json.loads((tmp_path / "bpelm.json").read_text())
    meta["bpelm_version"] = "99.0.0"
    (tmp_path / "bpelm.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="99.0.0"):
        Tokenizer.load(tmp_path)
    meta["bpelm_version"] = _core.__version__
    (tmp_path / "bpelm.json").write_text(json.dumps(meta))
    assert Tokenizer.load(tmp_path).encode("the cat") == tok.encode("the cat")


def test_vocab_json_errors_have_a_column_and_an_offset(tok, tmp_path):
    tok.save(tmp_path)
    vocab = tmp_path / "vocab.json"
    one_line = json.dumps(json.loads(vocab.read_text()))
    vocab.write_text(one_line[:-1] + ', "x" 5}')
    with pytest.raises(ValueError, match=r"vocab.json:1:\d+: "):
        Tokenizer.load(tmp_path)
    vocab.write_bytes(b'{"a": 0, \xff}')
    with pytest.raises(ValueError, match="not valid UTF-8 at byte offset 9"):
        Tokenizer.load(tmp_path)
