"""Training a `TransformerLM`: the run config, token data, AdamW and its schedule, checkpoints,
metrics, evaluation and the loop itself (`Trainer`, `train`)."""

from bpelm._extras import require

require("torch", "bpelm.training")

from bpelm.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_model,
    read_checkpoint_extra,
    save_checkpoint,
)
from bpelm.training.config import ConfigError, ModelConfig, TrainConfig, build_config, load_config
from bpelm.training.data import get_batch, load_tokens
from bpelm.training.loop import Trainer, TrainResult, train
from bpelm.training.optim import AdamW, clip_grad_norm, cosine_lr_schedule

__all__ = [
    "AdamW",
    "ConfigError",
    "ModelConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_config",
    "clip_grad_norm",
    "cosine_lr_schedule",
    "get_batch",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_model",
    "load_tokens",
    "read_checkpoint_extra",
    "save_checkpoint",
    "train",
]
