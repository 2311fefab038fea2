"""Files bpelm writes (through a temporary file and a rename) get the mode the user's umask
gives any new file, not the temporary file's private 0o600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpelm import Tokenizer, encode_file

TINY = Tokenizer({i: bytes([i]) for i in range(256)}, [], ["<|endoftext|>"])


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_tokenizer_follows_umask(tmp_path, umask):
    TINY.save(tmp_path / "tok")
    for name in ("vocab.json", "merges.txt", "bpelm.json"):
        assert mode(tmp_path / "tok" / name) == 0o666 & ~umask, name


@pytest.mark.parametrize("suffix", [".npy", ".bin"])
def test_token_arrays_follow_umask(tmp_path, umask, suffix):
    src = tmp_path / "in.txt"
    src.write_text("some text<|endoftext|>", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    encode_file(TINY, src, out)
    assert mode(out) == 0o666 & ~umask
