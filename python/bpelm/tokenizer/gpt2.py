"""GPT-2's conventions in Python: its split pattern, its byte <-> printable-character map,
and a tiktoken `Encoding` built from its own `vocab.json` (no download).

The Rust core has its own copy of the byte map (it reads and writes the files); this module
serves the reference trainer, the tests' oracles and the benchmarks.
"""

from __future__ import annotations

import json
import os
from typing import Any

# GPT-2's pretokenization pattern, as tiktoken's r50k_base writes it.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character -> byte.

    Printable Latin-1 bytes stand for themselves; the other 68 are shifted, in order, to
    code points 256 and up (so byte 0x20, the space, is written 'Ġ' = U+0120).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = {b: b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + shifted
            shifted += 1
    return {chr(c): b for b, c in chars.items()}


def load_vocab_json(vocab_path: str | os.PathLike[str]) -> dict[str, int]:
    """GPT-2's `vocab.json`: printable token string -> id."""
    with open(vocab_path, encoding="utf-8") as f:
        return json.load(f)


def mergeable_ranks(
    vocab_path: str | os.PathLike[str], special_tokens: tuple[str, ...] = (EOT,)
) -> dict[bytes, int]:
    """Token bytes -> id for every ordinary token of a GPT-2 style `vocab.json`."""
    decoder = byte_decoder()
    vocab = load_vocab_json(vocab_path)
    return {
        bytes(decoder[c] for c in tok): i for tok, i in vocab.items() if tok not in special_tokens
    }


def tiktoken_encoding(vocab_path: str | os.PathLike[str], name: str = "gpt2-offline") -> Any:
    """tiktoken's GPT-2 encoding built from a local `vocab.json` (tiktoken must be installed)."""
    import tiktoken

    vocab = load_vocab_json(vocab_path)
    return tiktoken.Encoding(
        name,
        pat_str=GPT2_PATTERN,
        mergeable_ranks=mergeable_ranks(vocab_path),
        special_tokens={EOT: vocab[EOT]},
        explicit_n_vocab=len(vocab),
    )
