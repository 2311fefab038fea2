"""A static, preallocated key/value cache for incremental decoding.

Every tensor has a fixed shape and the current length lives in a device tensor, so a decode step
has the same shapes and addresses at every length: it can be captured once in a CUDA graph (or
compiled once) and replayed. Attention reads the whole cache and masks positions not yet written.
"""

from __future__ import annotations

import torch


class LayerKVCache:
    """One layer's keys and values, (B, H, max_len, d_head) each, sharing the model's length."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k = k
        self.v = v

    def update(
        self, k: torch.Tensor, v: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, H, T, d_head) at `positions` (T,) and return the full cache tensors."""
        self.k.index_copy_(2, positions, k.to(self.k.dtype))
        self.v.index_copy_(2, positions, v.to(self.v.dtype))
        return self.k, self.v


class KVCache:
    """Per-layer caches plus `length`, a 0-d int64 device tensor: the tokens stored so far."""

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_heads: int,
        max_len: int,
        d_head: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (batch_size, num_heads, max_len, d_head)
        self.max_len = max_len
        self.batch_size = batch_size
        self.layers = [
            LayerKVCache(
                torch.zeros(shape, device=device, dtype=dtype),
                torch.zeros(shape, device=device, dtype=dtype),
            )
            for _ in range(num_layers)
        ]
        self.length = torch.zeros((), dtype=torch.long, device=device)

    def positions(self, seq_len: int) -> torch.Tensor:
        """Positions of the next `seq_len` tokens: length, length+1, ... (no host sync)."""
        return self.length + torch.arange(seq_len, device=self.length.device)

    def advance(self, seq_len: int) -> None:
        self.length.add_(seq_len)

    def reset(self) -> None:
        self.length.zero_()
