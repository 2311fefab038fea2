"""Token arrays on disk: `.npy` carries its dtype in its header; a raw `.bin` does not, so
bpelm writes its dtype beside it in `FILE.bin.json` and reads it from there.

A `.bin` without that file (nanoGPT's convention, or one written by another tool) is read as
uint16 unless the caller says otherwise, with a warning: read with the wrong width, every
other id of a uint32 array becomes 0 and nothing else notices.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from bpelm._files import write_atomic

TOKEN_DTYPES = ("uint16", "uint32")
DEFAULT_BIN_DTYPE = "uint16"


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """Where the dtype of the raw token file `path` is recorded."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_bin_sidecar(path: str | os.PathLike[str], dtype: str, tokens: int) -> None:
    """Record `dtype` and the token count of the raw token file `path` (atomically)."""
    write_atomic(sidecar_path(path), json.dumps({"dtype": dtype, "tokens": tokens}) + "\n")


def bin_dtype(path: str | os.PathLike[str], dtype: str | None = None) -> str:
    """The dtype to read the raw token file `path` with: `dtype` when given (it must agree
    with a recorded one), else the recorded one, else uint16 with a warning."""
    side = sidecar_path(path)
    recorded = None
    if side.exists():
        try:
            recorded = json.loads(side.read_text())["dtype"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{side}: not a token-array description ({e})") from None
        if recorded not in TOKEN_DTYPES:
            raise ValueError(f"{side}: dtype {recorded!r} is not one of {TOKEN_DTYPES}")
    if dtype is not None:
        dtype = np.dtype(dtype).name
        if recorded is not None and dtype != recorded:
            raise ValueError(f"{path}: asked to read as {dtype}, but {side} records {recorded}")
        return dtype
    if recorded is not None:
        return recorded
    warnings.warn(
        f"{path}: raw token file without {side.name}; reading it as {DEFAULT_BIN_DTYPE} "
        "(write .npy, or record the dtype, to be sure)",
        stacklevel=3,
    )
    return DEFAULT_BIN_DTYPE
