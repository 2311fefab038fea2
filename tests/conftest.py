"""Shared fixtures: where the provided data lives, and small decoded samples of it."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file from ../shared/data, or a skip naming what is missing."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's shared data beside the repo")
    return path


# Code points that Unicode 17.0 (Python's `regex` module here) assigns and Unicode 16.0
# (regex-syntax 0.8, so tiktoken and bpelm) leaves unassigned: the only characters where the
# `regex` module may split differently (tests/data/unicode17_additions.txt says more).
UNICODE_17_ADDITIONS = [
    tuple(int(x, 16) for x in line.split())
    for line in (Path(__file__).parent / "data" / "unicode17_additions.txt")
    .read_text(encoding="ascii")
    .splitlines()
    if line and not line.startswith("#")
]


def in_unicode_17_additions(c: str) -> bool:
    """Whether `c` is one of `UNICODE_17_ADDITIONS`."""
    cp = ord(c)
    return any(start <= cp <= end for start, end in UNICODE_17_ADDITIONS)


def read_xz_prefix(path: Path, n_bytes: int) -> str:
    """The first `n_bytes` of an .xz text file, decoded (cut back to a whole character)."""
    with lzma.open(path, "rb") as f:
        data = f.read(n_bytes)
    return data.decode("utf-8", errors="ignore")


@pytest.fixture(scope="session")
def gpt2_files() -> tuple[Path, Path]:
    """GPT-2's own vocab.json and merges.txt."""
    return shared_file("gpt2/vocab.json"), shared_file("gpt2/merges.txt")


@pytest.fixture(scope="session")
def web_sample() -> str:
    """About 2 MB of the web-like benchmark corpus."""
    return read_xz_prefix(shared_file("web_128M.txt.xz"), 2_000_000)


@pytest.fixture(scope="session")
def books_sample() -> str:
    """About 2 MB of the public-domain books corpus."""
    return read_xz_prefix(shared_file("books_train.txt.xz"), 2_000_000)


@pytest.fixture(scope="session")
def tinystories_sample() -> str:
    return shared_file("tinystories_sample.txt").read_text(encoding="utf-8")
