"""Training a byte-level BPE vocabulary: a thin, validating wrapper over the Rust trainer."""

from __future__ import annotations

import os

from bpelm import _core
from bpelm.tokenizer.specials import check_special_tokens


def train_bpe(
    input_path: str | os.PathLike[str],
    vocab_size: int,
    special_tokens: list[str] | None = None,
    *,
    num_threads: int | None = None,
    progress: bool = False,
    pattern: str = "gpt2",
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Trains byte-level BPE on a UTF-8 text file.

    The text is split on the special tokens, then into pretokens by the split `pattern`;
    merges never cross either boundary. Each step merges the most frequent adjacent pair
    (ties: the greatest `(left_bytes, right_bytes)`) until `256 + len(merges) +
    len(special_tokens) == vocab_size`, or until no pair is left.

    Returns `(vocab, merges)`: `vocab` maps ids to bytes (0-255 the single bytes, then one id
    per merge in order, then the special tokens in the given order) and `merges` lists the
    merged pairs in creation order.

    Example, on a file holding ``"ab ab ab<|endoftext|>ab"``:

    >>> vocab, merges = train_bpe(path, 259, ["<|endoftext|>"])  # doctest: +SKIP
    >>> merges  # doctest: +SKIP
    [(b'a', b'b'), (b' ', b'ab')]
    >>> vocab[257], vocab[258]  # doctest: +SKIP
    (b' ab', b'<|endoftext|>')

    Args:
        input_path: the text file (UTF-8; a ValueError gives the offset of a bad byte);
            `.gz`, `.xz` and `.bz2` files are decompressed as they are read.
        vocab_size: the number of tokens wanted, at least 256 + len(special_tokens).
        special_tokens: strings kept whole and out of training, e.g. ``["<|endoftext|>"]``.
        num_threads: worker threads (default: all cores).
        progress: draw progress bars on stderr.
        pattern: the split pattern: "gpt2" (default), "cl100k", "o200k" (GPT-4's and
            GPT-4o's), or any regular expression (the slow path; the text between matches is
            kept as pretokens). Give the same one to `Tokenizer(..., pattern=...)`.

    Raises:
        KeyboardInterrupt: on Ctrl-C, within a chunk of counting or a merge.
        MemoryError: when memory runs out (under a ``RLIMIT_AS`` limit, say).
    """
    if not isinstance(input_path, (str, os.PathLike)):
        raise TypeError(f"input_path must be a str or os.PathLike, not {type(input_path).__name__}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, not {type(vocab_size).__name__}")
    specials = check_special_tokens(special_tokens)
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str, not {type(pattern).__name__}")
    n_min = 256 + len(specials)
    if vocab_size < n_min:
        raise ValueError(
            f"vocab_size {vocab_size} is too small: it must be at least 256 + "
            f"{len(specials)} special tokens = {n_min}"
        )
    # num_threads is checked by the core, with one rule for every call that takes it.
    return _core.train_bpe(
        os.fspath(input_path),
        vocab_size,
        specials,
        num_threads=num_threads,
        progress=progress,
        pattern=pattern,
    )
