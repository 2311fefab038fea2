"""Parameterised layers: Linear, Embedding, RMSNorm and the two feed-forward variants.

RMSNorm and the feed-forward networks take `fused`: False (the default) runs our own tensor
arithmetic; True calls PyTorch's fused kernel for the same function (F.rms_norm, F.silu), which
makes fewer passes over memory and keeps fewer tensors for the backward pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # fused=True only
from torch import nn

from bpelm.nn.functional import silu


class Linear(nn.Module):
    """y = x W^T, no bias; W (out, in) ~ N(0, 2/(in+out)) truncated at 3 std."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features, device=device, dtype=dtype)
        )
        std = math.sqrt(2.0 / (in_features + out_features))
        nn.init.trunc_normal_(self.weight, mean=0.0, std=std, a=-3 * std, b=3 * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.t()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Embedding(nn.Module):
    """Lookup table (V, d) ~ N(0, 1) truncated at 3."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(
            torch.empty(num_embeddings, embedding_dim, device=device, dtype=dtype)
        )
        nn.init.trunc_normal_(self.weight, mean=0.0, std=1.0, a=-3.0, b=3.0)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.weight[token_ids]

    def extra_repr(self) -> str:
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * g, computed in float32 and cast back to x's dtype."""

    def __init__(
        self,
        d_model: int,
        eps: float = 1e-5,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.fused = fused
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_dtype = x.dtype
        if self.fused:
            # F.rms_norm computes in x's dtype: a float32 copy keeps the reference's precision.
            out = F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps)
            return out.to(in_dtype)
        x32 = x.float()
        inv_rms = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x32 * inv_rms * self.weight.float()).to(in_dtype)


class Identity(nn.Module):
    """Stands in for a norm in the no-norm ablation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def default_d_ff(d_model: int) -> int:
    """8/3 * d_model rounded up to a multiple of 64."""
    return -(-8 * d_model // (3 * 64)) * 64


def _silu(x: torch.Tensor, fused: bool) -> torch.Tensor:
    return F.silu(x) if fused else silu(x)


class SwiGLU(nn.Module):
    """w2(silu(w1 x) * w3 x)."""

    def __init__(
        self,
        d_model: int,
        d_ff: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.fused = fused
        d_ff = default_d_ff(d_model) if d_ff is None else d_ff
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)
        self.w3 = Linear(d_model, d_ff, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(_silu(self.w1(x), self.fused) * self.w3(x))


class SiLUFFN(nn.Module):
    """w2(silu(w1 x)): the ungated ablation (callers pass d_ff = 4 d_model)."""

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.fused = fused
        self.w1 = Linear(d_model, d_ff, device=device, dtype=dtype)
        self.w2 = Linear(d_ff, d_model, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(_silu(self.w1(x), self.fused))
