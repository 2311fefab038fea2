"""Checkpoints: model + optimizer state (plus caller metadata) in one file, written atomically;
finding the newest in a run directory; rebuilding a trained model from one."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

import torch
from torch import nn

from bpelm.nn import ModelConfig, TransformerLM, strip_compiled_prefix, unwrap_compiled

__all__ = [
    "CheckpointError",
    "checkpoint_paths",
    "latest_checkpoint",
    "load_checkpoint",
    "load_model",
    "read_checkpoint",
    "read_checkpoint_extra",
    "read_resumable",
    "save_checkpoint",
]

PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]
# Periodic checkpoints are named by their step, so that names sort in training order.
CHECKPOINT_RE = re.compile(r"^ckpt_(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    """The file name of the periodic checkpoint taken after `step` updates."""
    return f"ckpt_{step:07d}.pt"


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


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: set it straight back
    os.umask(mask)
    return mask


def _atomic_save(obj: Any, path: Path) -> None:
    # A temp file in the same directory, fsynced, then renamed over the target: readers see the
    # old file or the new one, never a torn one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a checkpoint gets the mode any new file
        # would, so others on a shared cluster can read it when the umask says so.
        os.fchmod(fd, 0o666 & ~_umask())
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
        "model": strip_compiled_prefix(unwrap_compiled(model).state_dict()),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "iteration": int(iteration),
        "extra": dict(extra or {}),
    }
    if isinstance(out, (str, os.PathLike)):
        _atomic_save(obj, Path(out))
    else:
        torch.save(obj, out)


class CheckpointError(ValueError):
    """A file that is not a readable bpelm checkpoint (truncated, corrupt, or something else)."""


# What torch.load raises on a file that is not a checkpoint: a bad zip, a truncated stream,
# an unpickling error (weights_only refuses anything but plain data and tensors).
_UNREADABLE = (RuntimeError, EOFError, ValueError, AttributeError)
_KEYS = ("model", "optimizer", "iteration", "extra")


def read_checkpoint(src: PathOrFile) -> dict[str, Any]:
    """The checkpoint's contents (model, optimizer, iteration, extra), read once, on the CPU.

    Only plain data and tensors are loaded (`weights_only=True`), so a file from elsewhere
    cannot run code; anything else is a CheckpointError naming the file."""
    name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "checkpoint"
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False: unsafe advice for a file of
        # unknown origin, so it is not passed on.
        raise CheckpointError(
            f"{name}: not a bpelm checkpoint (not a torch file of plain data and tensors)"
        ) from None
    except _UNREADABLE as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{name}: not a bpelm checkpoint ({first_line[:200]})") from None
    if not isinstance(obj, dict) or any(k not in obj for k in _KEYS):
        raise CheckpointError(
            f"{name}: not a bpelm checkpoint (expected the keys {', '.join(_KEYS)})"
        )
    return obj


def restore(
    obj: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Put a read checkpoint's weights (and optimizer state) in place; returns its iteration."""
    unwrap_compiled(model).load_state_dict(strip_compiled_prefix(obj["model"]))
    if optimizer is not None:
        if obj["optimizer"] is None:
            raise CheckpointError("the checkpoint holds no optimizer state")
        optimizer.load_state_dict(obj["optimizer"])
    return int(obj["iteration"])


def load_checkpoint(
    src: PathOrFile, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> int:
    """Restore `model` (and `optimizer` when given) from `src`; returns the saved iteration."""
    return restore(read_checkpoint(src), model, optimizer)


def read_checkpoint_extra(src: PathOrFile) -> dict[str, Any]:
    """The `extra` dict a checkpoint was saved with (model config, train config, RNG states...)."""
    return dict(read_checkpoint(src).get("extra", {}))


def read_resumable(
    path: str | os.PathLike[str], log: Callable[[str], None] = print
) -> tuple[Path, dict[str, Any]]:
    """(file, contents) of the checkpoint to resume from `path`: the file itself, or in a run
    directory the newest periodic checkpoint that reads back; unreadable newer ones (a run
    killed while the disk filled, a copied-over truncated file) are skipped, and said so."""
    path = Path(path)
    if path.is_file():
        return path, read_checkpoint(path)
    latest_checkpoint(path)  # a clear error for a missing directory or one without checkpoints
    errors = []
    for _, candidate in reversed(checkpoint_paths(path)):
        try:
            obj = read_checkpoint(candidate)
        except CheckpointError as e:
            errors.append(str(e))
            log(f"warning: {e}; trying the previous checkpoint")
            continue
        return candidate, obj
    raise CheckpointError(f"{path}: no readable checkpoint: " + "; ".join(errors))


def checkpoint_paths(out_dir: Path) -> list[tuple[int, Path]]:
    """Periodic checkpoints in `out_dir` as (step, path), oldest first."""
    found = []
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            m = CHECKPOINT_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(path: str | os.PathLike[str]) -> Path:
    """`path` itself when it is a file, else the newest ckpt_*.pt in that directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint file or run directory")
    found = checkpoint_paths(path)
    if not found:
        raise FileNotFoundError(f"{path}: no ckpt_*.pt checkpoints in this directory")
    return found[-1][1]


def load_model(
    checkpoint: str | os.PathLike[str], device: torch.device | str = "auto"
) -> tuple[TransformerLM, dict[str, Any], torch.device]:
    """(model in eval mode, the checkpoint's extra dict, device): the model rebuilt from the
    config a training run stored in `checkpoint` (a file, a run directory's newest, or a
    weights-only export from `bpelm export`)."""
    from bpelm.training.export import is_export, load_export
    from bpelm.training.runtime import resolve_device

    if is_export(checkpoint):
        dev = resolve_device(device)
        model, record = load_export(checkpoint, dev)
        return model, record, dev
    path = latest_checkpoint(checkpoint)
    obj = read_checkpoint(path)
    extra = dict(obj["extra"])
    if "model_config" not in extra:
        raise CheckpointError(f"{path}: holds no model config (not written by `bpelm train`?)")
    dev = resolve_device(device)
    model = TransformerLM(ModelConfig.from_dict(extra["model_config"]), device=dev)
    restore(obj, model)
    model.eval()
    return model, extra, dev
