"""Rotary positional embedding (RoFormer): adjacent pairs rotated by position * theta^(-2k/d)."""

from __future__ import annotations

import torch
from torch import nn


class RotaryPositionalEmbedding(nn.Module):
    """Rotates pairs (x[2k], x[2k+1]) of the last dim by angle pos * theta^(-2k/d_k).

    cos/sin tables (context_length, d_k/2) are precomputed in float32 and not saved in the state
    dict. `token_positions` (..., seq) broadcasts against x's leading dims (..., seq, d_k).
    """

    def __init__(
        self,
        theta: float,
        d_k: int,
        context_length: int,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if d_k % 2:
            raise ValueError(f"RoPE needs an even d_k, got {d_k}")
        self.d_k = d_k
        self.context_length = context_length
        inv_freq = theta ** (-torch.arange(0, d_k, 2, device=device, dtype=torch.float64) / d_k)
        pos = torch.arange(context_length, device=device, dtype=torch.float64)
        angles = torch.outer(pos, inv_freq)  # (context_length, d_k/2)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, token_positions: torch.Tensor | None = None) -> torch.Tensor:
        seq = x.shape[-2]
        if token_positions is None:
            cos, sin = self.cos[:seq], self.sin[:seq]
        else:
            cos, sin = self.cos[token_positions], self.sin[token_positions]
        x32 = x.float()
        even, odd = x32[..., 0::2], x32[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
        return rotated.flatten(-2).to(x.dtype)
