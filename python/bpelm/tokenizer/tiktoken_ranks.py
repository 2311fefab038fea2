"""tiktoken's rank files (`.tiktoken`): one token a line, base64 bytes then its rank.

A rank is the token's id, and also the order of merging: tiktoken's BPE repeatedly merges
the adjacent pair whose concatenation has the lowest rank. So the merge that makes a token
is found by running that BPE on the token's own bytes with only lower ranks allowed: it
ends in exactly two parts, the merge's left and right. Listing those merges in the order of
the tokens' ranks gives bpelm's (rank-ordered) merges and the same ids as tiktoken.

One caveat, inherent in the two rules: tiktoken would also merge a pair (x, y) that is not
the listed merge of x + y (another split of the same token), bpelm only the listed one. A
token made that way needs its other split to form first, which standard BPE training makes
rare; GPT-2's, cl100k's and o200k's files agree exactly (tests/test_formats.py and
tests/test_patterns.py check ids on corpora and arbitrary text).

Nothing here depends on a split pattern, and the files record none: the pattern is the
caller's to give (`Tokenizer.from_tiktoken(path, pattern=...)`).
"""

from __future__ import annotations

import base64
import gzip
import os
from typing import Union

from bpelm import _core
from bpelm._files import write_atomic

PathLike = Union[str, "os.PathLike[str]"]


GZIP_MAGIC = b"\x1f\x8b"


def read_rank_bytes(path: PathLike) -> bytes:
    """The bytes of a `.tiktoken` file, unzipped when it is gzipped (told by its first two
    bytes, not its name)."""
    with open(path, "rb") as f:
        data = f.read()
    return gunzip_if_gzipped(data, path)


def gunzip_if_gzipped(data: bytes, source: object) -> bytes:
    """`data` unzipped when it starts with gzip's magic bytes, else `data` itself."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{source}: not a readable gzip file ({e})") from None


def parse_ranks(data: bytes, source: object = "<ranks>") -> dict[bytes, int]:
    """Token bytes -> rank from the text of a `.tiktoken` file (parsed by the core);
    ValueError names a malformed line of `source`."""
    return _core.parse_ranks(data, str(source))


def read_ranks(path: PathLike) -> dict[bytes, int]:
    """Token bytes -> rank from a `.tiktoken` file, plain or gzipped; ValueError names a
    malformed line."""
    return parse_ranks(read_rank_bytes(path), path)


def write_ranks(path: PathLike, ranks: dict[bytes, int]) -> None:
    """Writes `ranks` as a `.tiktoken` file in rank order, atomically."""
    lines = [
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for token, rank in sorted(ranks.items(), key=lambda item: item[1])
    ]
    write_atomic(path, b"".join(lines))


def merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """The merges, in rank order, that make every multi-byte token of `ranks` (found by the
    core, `vocab/ranks.rs`: each token byte-pair merged with only lower ranks splits in two).

    ValueError when a token cannot be made from lower-ranked ones (tiktoken could never
    produce it either) or a single byte is missing (byte-level BPE needs all 256).
    """
    return _core.merges_from_ranks(ranks)
