"""Where and how a model runs: the device, the autocast dtype, compilation, and a record of
the software and machine a run used."""

from __future__ import annotations

import contextlib
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


def resolve_device(name: torch.device | str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is parsed and checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {name!r}: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} requested but MPS is not available on this machine")
    return device


def autocast_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `setting` on `device`; None means plain float32.

    "auto" is bfloat16 on CUDA only. On a CPU with AVX512-BF16, "bfloat16" made the tiny-cpu
    step 8-20% faster at the same loss after 500 steps (4.4855 vs 4.4854), but it did not win
    the loss race against a plain float32 script (benches/RESULTS.md), so it stays opt-in."""
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}
    if setting not in table:
        raise ValueError(
            f"train.dtype: expected auto, bfloat16, float16 or float32, got {setting!r}"
        )
    return table[setting]


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast to `dtype` on `device`, or nothing for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_compile(setting: bool | str, device: torch.device) -> bool:
    """Whether to torch.compile: "auto" means on CUDA only."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


def enable_fast_matmul(device: torch.device) -> None:
    """TF32 matmuls on CUDA (Ampere and later): float32 training at tensor-core speed."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(device: torch.device) -> dict[str, Any]:
    """Library versions, machine and git hash, written beside the run's config."""
    import bpelm

    record: dict[str, Any] = {
        "bpelm": bpelm.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "git_hash": _git_hash(),
        "argv": sys.argv,
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record
