"""Whole corpora on disk: compressed inputs, a tokenizer folder, training one and encoding
a text file with it. The `bpelm tokenizer` commands and the demo are thin shells over these.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bpelm.tokenizer.bpe_training import train_bpe
from bpelm.tokenizer.specials import AllowedSpecial
from bpelm.tokenizer.tokenizer import Tokenizer, encode_file_sized

# Compressed inputs, by suffix; each opener returns a binary file object. Training and
# encoding read them in the core, decompressing as they go; these serve Python readers.
OPENERS: dict[str, Callable[..., IO[bytes]]] = {
    ".gz": gzip.open,
    ".xz": lzma.open,
    ".bz2": bz2.open,
}


def plain_copy(src: Path, dest: Path) -> Path:
    """A plain-text copy of `src` at `dest`, decompressing .gz/.xz/.bz2, written through a
    temporary file (rewritten every call: never stale). For readers that need plain bytes,
    or timings of the tokenizer alone; training and encoding read compressed files as
    they are."""
    tmp = dest.with_name(dest.name + ".tmp")
    opener = OPENERS.get(src.suffix, open)
    with opener(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
    tmp.replace(dest)
    return dest


def existing(path: str | os.PathLike[str], what: str) -> Path:
    """`path` as a Path, or FileNotFoundError naming what it was meant to be."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: {what} not found")
    return p


def load_tokenizer(directory: str | os.PathLike[str]) -> Tokenizer:
    """`Tokenizer.load(directory)`, with a missing directory reported as such (the name the
    CLI and experiments use)."""
    return Tokenizer.load(existing(directory, "tokenizer directory"))


def _bars(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def token_dtype(vocab_size: int) -> str:
    """The smallest unsigned dtype that holds every id."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def train_tokenizer(
    input_path: Path,
    vocab_size: int,
    specials: list[str],
    out_dir: Path,
    *,
    threads: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    pattern: str = "gpt2",
) -> float:
    """Train and save a tokenizer into `out_dir` (its split `pattern` recorded in bpelm.json);
    returns the training seconds. `progress`: draw bars (None: when stderr is a terminal)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    size = input_path.stat().st_size
    t0 = time.perf_counter()
    vocab, merges = train_bpe(
        input_path,
        vocab_size,
        specials,
        num_threads=threads,
        progress=_bars(progress),
        pattern=pattern,
    )
    seconds = time.perf_counter() - t0
    tok = Tokenizer(vocab, merges, specials, pattern)
    tok.save(out_dir)
    special_bytes = {s.encode("utf-8") for s in specials}
    longest = max((t for t in vocab.values() if t not in special_bytes), key=len)
    log(
        f"trained a {len(vocab):,}-token vocabulary ({len(merges):,} merges, split pattern "
        f"{_show_pattern(tok.pattern)}) on "
        f"{size / 1e6:.1f} MB{' (compressed)' if input_path.suffix in OPENERS else ''} in "
        f"{seconds:.2f} s, peak memory {peak_rss_bytes() / 1e6:,.0f} MB "
        f"-> {out_dir}/vocab.json, merges.txt, bpelm.json; longest token {len(longest)} bytes: "
        f"{longest.decode('utf-8', errors='backslashreplace')!r}"
    )
    return seconds


def _show_pattern(pattern: str) -> str:
    """A pattern for a log line: a name as is, a regex quoted (and cut when long)."""
    if pattern in ("gpt2", "cl100k", "o200k"):
        return pattern
    return repr(pattern if len(pattern) <= 60 else pattern[:57] + "...")


def peak_rss_bytes() -> int:
    """This process's peak resident set so far, in bytes (0 where the platform cannot say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes; Linux: KiB


def encode_corpus(
    tokenizer: Tokenizer,
    input_path: Path,
    out_path: Path,
    *,
    threads: int | None = None,
    progress: bool | None = None,
    allowed_special: AllowedSpecial = "all",
) -> tuple[int, int, float]:
    """Encode a text file to a token array; returns (tokens, input bytes, seconds). `progress`:
    draw a bar (None: when stderr is a terminal). Special tokens separate documents, so all
    are encoded as their ids unless `allowed_special` says otherwise (see `encode_file`)."""
    if out_path.suffix not in (".npy", ".bin"):
        raise ValueError(f"{out_path}: the output must end in .npy or .bin")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n, size = encode_file_sized(
        tokenizer,
        input_path,
        out_path,
        dtype=token_dtype(tokenizer.vocab_size),
        num_threads=threads,
        progress=_bars(progress),
        allowed_special=allowed_special,
    )
    return n, size, time.perf_counter() - t0
