"""Gradient accumulation: one optimizer update from several micro-batches.

With `train.grad_accum_steps = k`, a step draws k micro-batches of `train.batch_size`
sequences, back-propagates each loss divided by k, and updates once: the same gradient as one
batch of k x batch_size (the mean loss over all its sequences), in the memory of one
micro-batch.
"""

from __future__ import annotations

from bpelm.training.config import ConfigError, TrainConfig


def accumulation_steps(cfg: TrainConfig) -> int:
    """`cfg.grad_accum_steps`, checked."""
    k = cfg.grad_accum_steps
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"train.grad_accum_steps must be a positive integer, got {k!r}")
    return k
