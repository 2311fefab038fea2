"""Files that are not what they seem: the input as the output, pipes, /proc files,
directories."""

from __future__ import annotations

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
