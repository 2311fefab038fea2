"""Loss on held-out tokens: the training loss function, sampled validation batches during
training, and the deterministic pass over consecutive windows that `bpelm eval` reports."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from bpelm.nn.kernels import cross_entropy, uses_fused
from bpelm.training.data import get_batch, to_device
from bpelm.training.runtime import autocast_context

# Validation batches come from their own generator so evaluating never moves the training data.
VAL_SEED_OFFSET = 1_000_003


def lm_loss(model: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of `model` on inputs x and targets y, through the kernels
    the model's config names (fused, or our reference arithmetic)."""
    logits = model(x)
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), uses_fused(model))


@torch.no_grad()
def sampled_val_loss(
    model: torch.nn.Module,
    data: np.ndarray,
    *,
    batches: int,
    batch_size: int,
    context_length: int,
    seed: int,
    device: torch.device,
    amp: torch.dtype | None,
) -> float:
    """Mean loss over `batches` random batches drawn from a fixed seed: every call sees the
    same windows, so successive evaluations are comparable."""
    rng = np.random.default_rng(seed + VAL_SEED_OFFSET)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float32)
    for _ in range(batches):
        x, y = get_batch(data, batch_size, context_length, device, rng=rng)
        with autocast_context(device, amp):
            total += lm_loss(model, x, y).float()
    model.train(was_training)
    return total.item() / batches


def bits_per_byte(loss_nats: float, targets: np.ndarray, token_bytes: np.ndarray) -> float:
    """Loss in bits per byte of text: the nats of all `targets` (mean `loss_nats` each) over
    the bytes they spell, in base 2. Unlike nats per token it does not depend on the
    tokenizer, so models with different vocabularies compare. `token_bytes[i]` is the byte
    length of token i."""
    n_bytes = int(token_bytes[np.asarray(targets, dtype=np.int64)].sum())
    if n_bytes == 0:
        raise ValueError("the scored tokens spell no bytes")
    return loss_nats * len(targets) / (n_bytes * math.log(2))


@torch.no_grad()
def window_loss(
    model: torch.nn.Module,
    data: np.ndarray,
    *,
    context_length: int,
    batch_size: int,
    max_batches: int | None,
    device: torch.device,
    amp: torch.dtype | None,
    progress: bool = False,
) -> tuple[float, int]:
    """Mean loss over consecutive non-overlapping windows from the start of `data`
    (deterministic). Returns (loss, tokens scored): the scored targets are
    data[1 : tokens + 1]."""
    n_windows = (len(data) - 1) // context_length
    if n_windows <= 0:
        raise ValueError(
            f"the data has {len(data)} tokens, fewer than one window of {context_length} + 1"
        )
    n_batches = math.ceil(n_windows / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    from tqdm.auto import tqdm

    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    scored = 0
    for b in tqdm(range(n_batches), desc="eval", unit="batch", disable=not progress):
        first = b * batch_size
        count = min(batch_size, n_windows - first)
        start = first * context_length
        chunk = np.asarray(data[start : start + count * context_length + 1], dtype=np.int64)
        x = torch.from_numpy(chunk[:-1].reshape(count, context_length))
        y = torch.from_numpy(chunk[1:].reshape(count, context_length))
        x, y = to_device(x, device), to_device(y, device)
        with autocast_context(device, amp):
            loss = lm_loss(model, x, y)
        total += loss.double() * (count * context_length)
        scored += count * context_length
    return total.item() / scored, scored
