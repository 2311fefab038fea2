"""Token data on disk and the batches drawn from it, on their way to the device."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from bpelm.tokenizer.token_files import bin_dtype
from bpelm.training.runtime import resolve_device

__all__ = ["check_tokens", "get_batch", "load_tokens", "open_tokens", "to_device"]

_default_rng = np.random.default_rng()


def load_tokens(path: str | os.PathLike[str], dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Memory-map a token file: `.npy` (dtype from its header) or raw `.bin` (dtype from its
    `FILE.bin.json`, else `dtype`, else uint16 with a warning). Ids must be unsigned integers:
    a float or signed array is refused rather than silently truncated."""
    path = Path(path)
    if path.suffix == ".npy":
        data = np.load(path, mmap_mode="r")
    elif path.suffix == ".bin":
        data = np.memmap(path, dtype=bin_dtype(path, dtype), mode="r")
    else:
        raise ValueError(f"{path}: expected a .npy or .bin token file")
    if data.dtype.kind != "u" or data.ndim != 1:
        raise ValueError(
            f"{path}: holds a {data.ndim}-d {data.dtype} array; token ids are a 1-d array of "
            "unsigned integers (uint16 or uint32), as `bpelm tokenizer encode` writes"
        )
    return data


def check_tokens(data: np.ndarray, vocab_size: int, key: str, min_tokens: int = 2) -> None:
    """The one check of a token array against a model, before any work: at least
    `min_tokens` ids (one context window + 1 for training and evaluation), and none at or
    past `vocab_size` (which would surface as an IndexError or a CUDA assert much later).
    `key` names where the array came from (a config key and path, or a flag)."""
    if len(data) < min_tokens:
        raise ValueError(
            f"{key}: {len(data):,} tokens, fewer than the {min_tokens:,} needed "
            "(one context window + 1)"
        )
    if len(data) <= 500_000_000:  # a full scan of larger arrays costs more than it is worth
        top = int(data.max())
        if top >= vocab_size:
            raise ValueError(
                f"{key}: contains token id {top}, but the model's vocab_size is {vocab_size} "
                "(model.vocab_size must be at least the tokenizer's vocabulary size)"
            )


def open_tokens(key: str, path: str, vocab_size: int, min_tokens: int) -> np.ndarray:
    """The token array a config key points at, loaded and checked (`check_tokens`); any
    problem, a missing file included, names the key."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{key}: {path} not found")
    try:
        data = load_tokens(path)
    except ValueError as e:
        raise ValueError(f"{key}: {e}") from None
    check_tokens(data, vocab_size, f"{key} ({path})", min_tokens)
    return data


def to_device(tokens: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on `device`: on CUDA through pinned memory with a non-blocking copy, so
    the host goes on preparing work while it travels."""
    if device.type == "cuda":
        return tokens.pin_memory().to(device, non_blocking=True)
    return tokens.to(device)


def get_batch(
    dataset: npt.ArrayLike,
    batch_size: int,
    context_length: int,
    device: torch.device | str,
    *,
    rng: np.random.Generator | None = None,
    rows: slice | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (x, y) int64 batches of shape (batch_size, context_length), y = x shifted by one.

    With `rows`, the batch_size starts are drawn all the same and only those rows are read
    and returned: ranks that share one RNG each take their slice of one global batch.

    Starts are uniform over 0 .. len(dataset) - context_length - 1. Only the sampled windows are
    read, so a np.memmap is never loaded whole. On CUDA one (B, T+1) buffer makes one pinned,
    asynchronous copy, and x and y are views of it.
    """
    dev = resolve_device(device)
    if not isinstance(dataset, np.ndarray):  # np.memmap is an ndarray: left as is
        dataset = np.asarray(dataset)
    n = len(dataset)
    if n < context_length + 1:
        raise ValueError(
            f"dataset has {n} tokens; a batch needs at least context_length + 1 = "
            f"{context_length + 1}"
        )
    rng = _default_rng if rng is None else rng
    starts = rng.integers(0, n - context_length, size=batch_size)
    if rows is not None:
        starts = starts[rows]
    window = starts[:, None] + np.arange(context_length + 1)
    tokens = torch.from_numpy(np.asarray(dataset[window], dtype=np.int64))
    if dev.type == "cuda":
        tokens = to_device(tokens, dev)
        return tokens[:, :-1], tokens[:, 1:]
    # On the CPU the views would make every later reshape copy: two contiguous halves instead.
    return tokens[:, :-1].contiguous().to(dev), tokens[:, 1:].contiguous().to(dev)
