"""What a trained tokenizer does to a corpus: bytes per token on sampled documents, its
longest tokens, encoding throughput (and the Pile time it implies), and the same documents
through a second tokenizer side by side."""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bpelm.tokenizer.corpus import OPENERS, existing, plain_copy, token_dtype
from bpelm.tokenizer.tokenizer import Tokenizer, encode_file

PILE_BYTES = 825e9  # The Pile, as the assignment sizes it


def read_prefix(path: Path, max_bytes: int) -> str:
    """Up to `max_bytes` of a text file (plain, .gz, .xz or .bz2), decoded; memory stays
    bounded on a multi-GB file. A character cut at the end is dropped."""
    opener = OPENERS.get(path.suffix, open)
    with opener(path, "rb") as f:
        data = f.read(max_bytes)
    return data.decode("utf-8", errors="ignore")


def sample_documents(text: str, separator: str | None, n: int, seed: int = 0) -> list[str]:
    """`n` documents (split on `separator`, empty ones dropped) drawn without replacement, in
    their order in the file; all of them when there are fewer."""
    docs = [d for d in (text.split(separator) if separator else [text]) if d.strip()]
    if len(docs) <= n:
        return docs
    picked = sorted(random.Random(seed).sample(range(len(docs)), n))
    return [docs[i] for i in picked]


@dataclass
class Compression:
    """Bytes per token of a tokenizer on a set of documents."""

    bytes: int
    tokens: int
    per_document: list[float] = field(default_factory=list)

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / max(self.tokens, 1)


def compression(tok: Tokenizer, docs: list[str]) -> Compression:
    sizes = [len(d.encode("utf-8")) for d in docs]
    # Documents of a corpus (split at the separator): a special token left inside one counts
    # as the one token it is in training data, as `encode_file` does.
    counts = [len(ids) for ids in tok.encode_batch(docs, allowed_special="all")]
    return Compression(
        bytes=sum(sizes),
        tokens=sum(counts),
        per_document=[s / max(c, 1) for s, c in zip(sizes, counts)],
    )


def longest_tokens(tok: Tokenizer, n: int = 10) -> list[tuple[int, bytes]]:
    """The `n` longest tokens as (id, bytes), longest first (specials excluded)."""
    specials = {s.encode("utf-8") for s in tok.special_tokens}
    items = [(i, b) for i, b in tok.vocab.items() if b not in specials]
    return sorted(items, key=lambda x: (-len(x[1]), x[0]))[:n]


def show_token(b: bytes) -> str:
    """A token as readable text: decoded where it is UTF-8, escapes where it is not."""
    text = b.decode("utf-8", errors="backslashreplace")
    return repr(text)


@dataclass
class Throughput:
    bytes: int
    tokens: int
    seconds: float
    threads: int | None

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / max(self.seconds, 1e-9)

    @property
    def pile_hours(self) -> float:
        return PILE_BYTES / max(self.bytes / max(self.seconds, 1e-9), 1e-9) / 3600


def throughput(tok: Tokenizer, path: Path, threads: int | None = None) -> Throughput:
    """Encode the whole file to a scratch .npy (the `bpelm tokenizer encode` path: bounded
    memory, `threads` workers) and time it. A compressed file is decompressed to a scratch
    copy first, so that the time is the tokenizer's, not the decompressor's."""
    with tempfile.TemporaryDirectory(prefix="bpelm-stats-") as tmp:
        text = plain_copy(path, Path(tmp) / "text.txt") if path.suffix in OPENERS else path
        size = text.stat().st_size
        dtype = token_dtype(tok.vocab_size)
        t0 = time.perf_counter()
        n = encode_file(tok, text, Path(tmp) / "tokens.npy", dtype=dtype, num_threads=threads)
        seconds = time.perf_counter() - t0
    return Throughput(size, n, seconds, threads)


def vocabulary_overlap(a: Tokenizer, b: Tokenizer) -> tuple[int, float, float]:
    """(tokens in both, as a share of a's vocabulary, as a share of b's), by byte string."""
    va, vb = set(a.vocab.values()), set(b.vocab.values())
    both = len(va & vb)
    return both, both / max(len(va), 1), both / max(len(vb), 1)


def check_input(path: str | Path) -> Path:
    return existing(path, "input text")
