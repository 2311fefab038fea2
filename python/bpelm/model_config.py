"""The model's shape: the `[model]` table of a config, and what `TransformerLM` is built from.

Plain data, importable without torch (`bpelm account` and config files need no model)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class ModelConfig:
    """The shape of a `TransformerLM`: the one place its hyperparameters are listed."""

    # Number of token ids; must be at least the tokenizer's vocabulary size.
    vocab_size: int = 10_000
    # Longest sequence the model sees (RoPE tables and batches are this long).
    context_length: int = 256
    # Width of the residual stream.
    d_model: int = 512
    # Number of Transformer blocks.
    num_layers: int = 4
    # Attention heads per block; d_model must divide evenly.
    num_heads: int = 16
    # Hidden width of the feed-forward network (about 8/3 * d_model for SwiGLU).
    d_ff: int = 1344
    # RoPE base frequency.
    rope_theta: float = 10_000.0
    # "rmsnorm" or "none" (ablation).
    norm: str = "rmsnorm"
    # "pre" or "post" normalization.
    norm_position: str = "pre"
    # Positional scheme: "rope" or "nope" (no positional information).
    position: str = "rope"
    # Feed-forward kind: "swiglu" or "silu" (ungated; use d_ff = 4 * d_model).
    ffn: str = "swiglu"
    # Share the input embedding with the output projection.
    tie_embeddings: bool = False
    # Kernels for attention, cross-entropy, SiLU and RMSNorm: "fused" (PyTorch's fused ops, the
    # same math, faster on every device) or "reference" (our own tensor arithmetic).
    kernels: str = "fused"
    # Attention alone: "auto" (as `kernels` says), "reference" or "sdpa" (PyTorch's fused SDPA).
    attention: str = "auto"
    # QK-norm: RMSNorm (with a learned gain per head dimension) on each head's queries and
    # keys before RoPE, which bounds the attention logits and tolerates higher learning rates.
    qk_norm: bool = False
    # Logit soft-capping: logits become cap * tanh(logits / cap), smoothly bounded by the cap
    # (Gemma 2 uses 30). 0: off.
    logit_softcap: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for config.json and checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """A ModelConfig from a stored dict, ignoring keys newer versions may add."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
