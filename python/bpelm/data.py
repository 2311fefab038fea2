"""Token data on disk and random training batches drawn from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

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
    n = len(dataset)  # type: ignore[arg-type]
    if n < context_length + 1:
        raise ValueError(
            f"dataset has {n} tokens; a batch needs at least context_length + 1 = "
            f"{context_length + 1}"
        )
    rng = _default_rng if rng is None else rng
    starts = rng.integers(0, n - context_length, size=batch_size)
    window = starts[:, None] + np.arange(context_length + 1)
    tokens = torch.from_numpy(np.asarray(dataset[window], dtype=np.int64))  # type: ignore[index]
    x, y = tokens[:, :-1], tokens[:, 1:]
    if dev.type == "cuda":
        x = x.contiguous().pin_memory().to(dev, non_blocking=True)
        y = y.contiguous().pin_memory().to(dev, non_blocking=True)
        return x, y
    return x.contiguous().to(dev), y.contiguous().to(dev)
