"""A corpus too large for one machine, in slices: shard i of n is a byte range of the file,
cut where the tokenization cannot change (`_core.safe_split_before`: before a special token or
at a line end that no pretoken spans), so encoding the shards one by one and joining them gives
the ids of the whole file, and summing the shards' pretoken counts gives its counts.

Any job runner drives it (a shell loop over ssh, a Slurm array, Ray): each job needs only its
`i/n` and the shared file.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bpelm import _core
from bpelm._files import write_atomic
from bpelm.tokenizer.specials import AllowedSpecial
from bpelm.tokenizer.tokenizer import Tokenizer, encode_file

# Bytes read around a nominal boundary to find a safe cut before it; doubled while none is
# found (a file without line breaks or special tokens has few safe cuts).
WINDOW_BYTES = 1 << 20
COPY_CHUNK = 1 << 24
COUNTS_FORMAT = "bpelm-pretoken-counts-v1"


def parse_shard(text: str) -> tuple[int, int]:
    """`"i/n"` -> (i, n), with 0 <= i < n."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/8") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return i, n


def _char_start(data: bytes, at: int) -> int:
    """The first UTF-8 character start at or after `at` (skips continuation bytes)."""
    while at < len(data) and 0x80 <= data[at] < 0xC0:
        at += 1
    return at


def _boundary(f, size: int, nominal: int, specials: list[str], pattern: str) -> int:
    """The greatest safe cut at or before byte `nominal` (0 when there is none)."""
    if nominal <= 0:
        return 0
    if nominal >= size:
        return size
    window = WINDOW_BYTES
    while True:
        start = max(0, nominal - window)
        f.seek(start)
        data = f.read(nominal - start + 8)  # a few bytes past: the cut's right neighbour
        lead = _char_start(data, 0) if start > 0 else 0
        text = data[lead:].decode("utf-8", errors="ignore")
        cut = _core.safe_split_before(text, specials, nominal - start - lead, pattern)
        if cut is not None:
            return start + lead + cut
        if start == 0:
            return 0
        window *= 2


def shard_range(
    path: str | os.PathLike[str], i: int, n: int, specials: list[str], pattern: str = "gpt2"
) -> range:
    """The bytes of shard `i` of `n` of the file at `path` (an empty range is possible), cut
    where neither special tokens nor the pretokens of `pattern` change."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        start = _boundary(f, size, size * i // n, specials, pattern)
        end = _boundary(f, size, size * (i + 1) // n, specials, pattern)
    return range(start, max(start, end))


def _copy_range(src: Path, piece: range, dest: Path) -> None:
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        fin.seek(piece.start)
        left = len(piece)
        while left:
            chunk = fin.read(min(COPY_CHUNK, left))
            if not chunk:
                raise OSError(f"{src}: ended before byte {piece.stop}")
            fout.write(chunk)
            left -= len(chunk)


def encode_shard(
    tokenizer: Tokenizer,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    shard: tuple[int, int],
    *,
    dtype: str = "uint16",
    num_threads: int | None = None,
    progress: bool = False,
    allowed_special: AllowedSpecial = "all",
) -> tuple[int, range]:
    """Encode shard (i, n) of `input_path` to `output_path`; returns (tokens, byte range).

    The slice is copied beside the output and encoded with `encode_file` (all its threads),
    then the copy is removed: a shard costs its own size in scratch space, not the file's.
    Special tokens as in `encode_file` (a corpus's specials are its ids by default)."""
    src, out = Path(input_path), Path(output_path)
    piece = shard_range(src, *shard, tokenizer.special_tokens, tokenizer.pattern)
    scratch = out.with_name(f".{out.name}.shard-{os.getpid()}.txt")
    try:
        _copy_range(src, piece, scratch)
        tokens = encode_file(
            tokenizer,
            scratch,
            out,
            dtype=dtype,
            num_threads=num_threads,
            progress=progress,
            allowed_special=allowed_special,
        )
    finally:
        scratch.unlink(missing_ok=True)
    return tokens, piece


def concat_token_arrays(
    inputs: Iterable[str | os.PathLike[str]], output_path: str | os.PathLike[str]
) -> int:
    """Join `.npy` token arrays in order into one `.npy` (written atomically); returns its
    length. All inputs must have the same dtype."""
    arrays = [np.load(p, mmap_mode="r") for p in inputs]
    if not arrays:
        raise ValueError("concat needs at least one token array")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise ValueError(f"the arrays have different dtypes: {sorted(str(d) for d in dtypes)}")
    total = sum(len(a) for a in arrays)
    out = Path(output_path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.npy")
    try:
        joined = np.lib.format.open_memmap(tmp, mode="w+", dtype=arrays[0].dtype, shape=(total,))
        at = 0
        for a in arrays:
            joined[at : at + len(a)] = a
            at += len(a)
        joined.flush()
        del joined
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return total


# --- pretoken counts, for training on many machines ---------------------------------------


def count_shard(
    input_path: str | os.PathLike[str],
    shard: tuple[int, int],
    specials: list[str],
    pattern: str = "gpt2",
) -> Counter[bytes]:
    """The pretoken counts of shard (i, n): the text split on the special tokens (which are
    not counted), then into pretokens by `pattern`, as `train_bpe` does. Pure Python over the
    core's pretokenizer: a few MB/s per process (run many)."""
    piece = shard_range(input_path, *shard, specials, pattern)
    with open(input_path, "rb") as f:
        f.seek(piece.start)
        text = f.read(len(piece)).decode("utf-8")
    counts: Counter[bytes] = Counter()
    for part in _core.split_special(text, specials):
        if isinstance(part, str):
            counts.update(p.encode("utf-8") for p in _core.pretokenize(part, pattern))
    return counts


def save_counts(
    counts: Counter[bytes],
    specials: list[str],
    path: str | os.PathLike[str],
    pattern: str = "gpt2",
) -> None:
    """Counts as JSON (pretokens as hex: they are bytes), with the special tokens they
    exclude and the split pattern that made them; written atomically."""
    data = {
        "format": COUNTS_FORMAT,
        "special_tokens": specials,
        "pattern": _core.split_pattern(pattern)[0] or pattern,
        "counts": {w.hex(): n for w, n in counts.items()},
    }
    write_atomic(path, json.dumps(data))


def load_counts(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[Counter[bytes], list[str], str]:
    """The summed counts of several count files, and their (common) special tokens and split
    pattern (gpt2 for files that record none)."""
    total: Counter[bytes] = Counter()
    specials: list[str] | None = None
    pattern: str | None = None
    for p in paths:
        try:
            data = json.loads(Path(p).read_text())
            if data.get("format") != COUNTS_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {COUNTS_FORMAT}")
            these = list(data["special_tokens"])
            this_pattern = data.get("pattern", "gpt2")
            if not isinstance(this_pattern, str):
                raise TypeError(f"pattern {this_pattern!r} is not a str")
            counts = data["counts"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a bpelm count file ({e})") from None
        if specials is not None and these != specials:
            raise ValueError(f"{p}: special tokens {these} differ from the others' {specials}")
        if pattern is not None and not _same_pattern(this_pattern, pattern):
            raise ValueError(
                f"{p}: split pattern {this_pattern!r} differs from the others' {pattern!r}"
            )
        specials, pattern = these, this_pattern
        total.update({bytes.fromhex(w): int(n) for w, n in counts.items()})
    if specials is None or pattern is None:
        raise ValueError("no count files given")
    return total, specials, pattern


def _same_pattern(a: str, b: str) -> bool:
    return _core.split_pattern(a) == _core.split_pattern(b)


def train_from_counts(
    counts: Counter[bytes], vocab_size: int, specials: list[str]
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """(vocab, merges) exactly as `train_bpe` would make from a file with these counts:
    bytes, then one token per merge, then the special tokens."""
    n_merges = vocab_size - 256 - len(specials)
    if n_merges < 0:
        raise ValueError(f"vocab_size {vocab_size} is below 256 + {len(specials)} specials")
    merges = _core._learn_merges(sorted(counts.items()), n_merges)
    vocab = {i: bytes([i]) for i in range(256)}
    for left, right in merges:
        vocab[len(vocab)] = left + right
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab, merges
