"""Token data on disk and random training batches drawn from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["get_batch", "load_tokens"]

_default_rng = np.random.default_rng()


def load_tokens(path: str | os.PathLike[str], dtype: npt.DTypeLike = np.uint16) -> np.ndarray:
    """Memory-map a token file: `.npy` (dtype from its header) or raw `.bin` of `dtype`."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, mmap_mode="r")
    if path.suffix == ".bin":
        return np.memmap(path, dtype=dtype, mode="r")
    raise ValueError(f"{path}: expected a .npy or .bin token file")


def _parse_device(device: torch.device | str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {device!r} requested but MPS is not available")
    return dev


def get_batch(
    dataset: npt.ArrayLike,
    batch_size: int,
    context_length: int,
    device: torch.device | str,
    *,
    rng: np.random.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (x, y) int64 batches of shape (batch_size, context_length), y = x shifted by one.

    Starts are uniform over 0 .. len(dataset) - context_length - 1. Only the sampled windows are
    read, so a np.memmap is never loaded whole. On CUDA the batch goes through pinned memory
    with a non-blocking copy.
    """
    dev = _parse_device(device)
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
    window = starts[:, None] + np.arange(context_length + 1)
    tokens = torch.from_numpy(np.asarray(dataset[window], dtype=np.int64))
    if dev.type == "cuda":
        # One pinned (B, T+1) buffer, one async copy; x and y are views of it on the device.
        tokens = tokens.pin_memory().to(dev, non_blocking=True)
        return tokens[:, :-1], tokens[:, 1:]
    return tokens[:, :-1].contiguous().to(dev), tokens[:, 1:].contiguous().to(dev)
