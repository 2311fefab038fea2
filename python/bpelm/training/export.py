"""Weights-only exports: a trained model as `model.safetensors` plus `config.json` (the model
config and the tokenizer folder), the format other tools load, with no optimizer state and
nothing that runs code on load. `bpelm generate` and `bpelm eval` read it like a checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from bpelm._files import write_atomic
from bpelm.nn import ModelConfig, TransformerLM

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "bpelm-safetensors-v1"


def is_export(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an export folder or its weights file."""
    path = Path(path)
    return path.suffix == ".safetensors" or (path / WEIGHTS_NAME).is_file()


def export_safetensors(checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write the weights of `checkpoint` (a file, or a run directory's newest) to
    OUT_DIR/model.safetensors and its model config to OUT_DIR/config.json; returns OUT_DIR."""
    from safetensors.torch import save_model

    from bpelm.training.checkpoint import latest_checkpoint, load_model, read_checkpoint_extra

    source = latest_checkpoint(checkpoint)
    model, extra, _ = load_model(source, "cpu")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHTS_NAME}.{os.getpid()}.tmp"
    try:
        # save_model writes a tied matrix once and load_model restores the sharing.
        save_model(model, str(tmp), metadata={"format": FORMAT})
        os.replace(tmp, out / WEIGHTS_NAME)
    finally:
        tmp.unlink(missing_ok=True)
    record = {
        "format": FORMAT,
        "model_config": model.config.to_dict(),
        "tokenizer": extra.get("tokenizer", ""),
        "source_checkpoint": str(source.resolve()),
        "tokens": read_checkpoint_extra(source).get("tokens"),
    }
    write_atomic(out / CONFIG_NAME, json.dumps(record, indent=2) + "\n")
    return out


def load_export(
    path: str | os.PathLike[str], device: torch.device
) -> tuple[TransformerLM, dict[str, Any]]:
    """(model in eval mode, its config.json) from an export folder or its weights file."""
    from safetensors.torch import load_model

    path = Path(path)
    folder = path.parent if path.suffix == ".safetensors" else path
    weights = path if path.suffix == ".safetensors" else folder / WEIGHTS_NAME
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: an export needs its config.json beside {weights}")
    try:
        record = json.loads(config_path.read_text())
        config = ModelConfig.from_dict(record["model_config"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{config_path}: not a bpelm export config ({e})") from None
    model = TransformerLM(config, device=device)
    load_model(model, str(weights), device=str(device))
    model.eval()
    return model, record
