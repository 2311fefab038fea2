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


# glibc's mallopt parameters (malloc.h) and the values set by `keep_freed_memory`.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's limit on 64-bit systems
_TRIM_THRESHOLD = 1 << 30
_TOP_PAD = 64 << 20
# A user's own allocator settings win: with any of these set, nothing is changed.
_USER_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Keep the memory of freed tensors in the process for the next step, where glibc's
    malloc is the allocator; returns whether it changed anything.

    PyTorch has no caching allocator on the CPU: each step's activations, logits and
    gradients are malloc'ed and freed again. By default glibc hands large blocks back to the
    kernel (blocks over its mmap threshold are unmapped; a free top of the heap past its trim
    threshold is trimmed), and the next step faults the same pages in afresh, zeroed by the
    kernel. On the tiny-cpu config that was 1.1 M page faults in 250 steps and 12-14% of the
    wall-clock (benches/RESULTS.md, #14); with blocks up to 32 MB kept on the heap and no
    trimming below 1 GB it was 0.17 M. The price is that the process keeps its peak
    working set until it exits, which a training process reaches every step anyway.
    Not done where a user set glibc's MALLOC_* variables, nor off glibc (macOS, Windows,
    musl; jemalloc or tcmalloc preloaded keep their own policy and ignore this)."""
    import os

    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(os.environ.get(name) for name in _USER_MALLOC_ENV) or "malloc" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold first (it also stops glibc's dynamic
    # adjustment of both thresholds, which would otherwise undo the trim threshold).
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX),
            (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
            (_M_TOP_PAD, _TOP_PAD),
        )
    )


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
