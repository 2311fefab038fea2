"""Stateless building blocks written from tensor arithmetic: softmax, SiLU, cross-entropy and
scaled dot-product attention. PyTorch's own versions are only the oracle in the tests."""

from __future__ import annotations

import math

import torch


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax along `dim`; the max is subtracted first so large inputs cannot overflow."""
    shifted = x - x.amax(dim=dim, keepdim=True)
    e = torch.exp(shifted)
    return e / e.sum(dim=dim, keepdim=True)


def silu(x: torch.Tensor) -> torch.Tensor:
    """x * sigmoid(x)."""
    return x * torch.sigmoid(x)


def logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log(sum(exp(x))) along `dim` (dropped), stable for large inputs."""
    m = x.amax(dim=dim, keepdim=True)
    # A row of -inf would give (-inf) - (-inf) = nan; such rows are shifted by 0 instead.
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))).squeeze(dim)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of `targets` (...,) under `logits` (..., V).

    Computed in at least float32 whatever the logits' dtype (bf16 under autocast), as
    logsumexp(logits) - logits[target], so logits scaled by 1000 stay finite.
    """
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    target_logit = logits.gather(-1, targets.unsqueeze(-1).long()).squeeze(-1)
    return (logsumexp(logits, dim=-1) - target_logit).mean()


def scaled_dot_product_attention(
    Q: torch.Tensor,
    K: torch.Tensor,
    V: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d_k)) V over any leading dims.

    Q (..., n_q, d_k), K (..., n_k, d_k), V (..., n_k, d_v); `mask` is boolean, broadcastable
    to (..., n_q, n_k), True where the query may attend to the key. Returns (..., n_q, d_v).
    """
    scores = (Q @ K.transpose(-2, -1)) * (1.0 / math.sqrt(Q.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ V
