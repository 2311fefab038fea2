"""Saving and restoring model + optimizer state (plus caller metadata) in one file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Union

import torch
from torch import nn

from bpelm.nn.transformer import strip_compiled_prefix

__all__ = ["load_checkpoint", "read_checkpoint_extra", "save_checkpoint"]

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


def _unwrap(model: nn.Module) -> nn.Module:
    """The module under torch.compile's wrapper, so keys carry no `_orig_mod.`."""
    return getattr(model, "_orig_mod", model)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_save(obj: Any, path: Path) -> None:
    # A temp file in the same directory, fsynced, then renamed over the target: readers see the
    # old file or the new one, never a torn one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    iteration: int,
    out: PathOrFile,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write model and optimizer state, the iteration, and `extra` (plain Python / tensors only,
    so the file loads with weights_only=True). A path is written atomically."""
    obj = {
        "model": strip_compiled_prefix(_unwrap(model).state_dict()),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "iteration": int(iteration),
        "extra": dict(extra or {}),
    }
    if isinstance(out, (str, os.PathLike)):
        _atomic_save(obj, Path(out))
    else:
        torch.save(obj, out)


def _read(src: PathOrFile) -> dict[str, Any]:
    return torch.load(src, map_location="cpu", weights_only=True)


def load_checkpoint(
    src: PathOrFile, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Restore `model` (and `optimizer` when given) from `src`; returns the saved iteration."""
    obj = _read(src)
    _unwrap(model).load_state_dict(strip_compiled_prefix(obj["model"]))
    if optimizer is not None:
        if obj["optimizer"] is None:
            raise ValueError("checkpoint holds no optimizer state")
        optimizer.load_state_dict(obj["optimizer"])
    return int(obj["iteration"])


def read_checkpoint_extra(src: PathOrFile) -> dict[str, Any]:
    """The `extra` dict a checkpoint was saved with (model config, train config, RNG states...)."""
    return dict(_read(src).get("extra", {}))
