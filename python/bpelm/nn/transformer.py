"""The decoder-only Transformer language model and its block."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from bpelm.nn.attention import ATTENTION_IMPLS, MultiHeadSelfAttention
from bpelm.nn.kv_cache import KVCache, LayerKVCache
from bpelm.nn.layers import Embedding, Identity, Linear, RMSNorm, SiLUFFN, SwiGLU

NORMS = ("rmsnorm", "none")
NORM_POSITIONS = ("pre", "post")
POSITIONS = ("rope", "nope")
FFNS = ("swiglu", "silu")
COMPILED_PREFIX = "_orig_mod."


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def strip_compiled_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keys saved from a torch.compile'd model carry `_orig_mod.`; drop it."""
    return {
        (k[len(COMPILED_PREFIX) :] if k.startswith(COMPILED_PREFIX) else k): v
        for k, v in state_dict.items()
    }


class TransformerBlock(nn.Module):
    """Pre-norm: h = x + attn(ln1(x)); out = h + ffn(ln2(h)).
    Post-norm: h = ln1(x + attn(x)); out = ln2(h + ffn(h))."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        max_seq_len: int,
        theta: float | None,
        *,
        norm: str = "rmsnorm",
        norm_position: str = "pre",
        ffn: str = "swiglu",
        attention: str = "reference",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, NORMS)
        _check_choice("norm_position", norm_position, NORM_POSITIONS)
        _check_choice("ffn", ffn, FFNS)
        self.pre_norm = norm_position == "pre"
        self.attn = MultiHeadSelfAttention(
            d_model, num_heads, max_seq_len, theta, device=device, dtype=dtype, attention=attention
        )
        if norm == "rmsnorm":
            self.ln1 = RMSNorm(d_model, device=device, dtype=dtype)
            self.ln2 = RMSNorm(d_model, device=device, dtype=dtype)
        else:
            self.ln1, self.ln2 = Identity(), Identity()
        ffn_cls = SwiGLU if ffn == "swiglu" else SiLUFFN
        self.ffn = ffn_cls(d_model, d_ff, device=device, dtype=dtype)

    def forward(
        self,
        x: torch.Tensor,
        token_positions: torch.Tensor | None = None,
        kv_cache: LayerKVCache | None = None,
    ) -> torch.Tensor:
        if self.pre_norm:
            h = x + self.attn(self.ln1(x), token_positions, kv_cache)
            return h + self.ffn(self.ln2(h))
        h = self.ln1(x + self.attn(x, token_positions, kv_cache))
        return self.ln2(h + self.ffn(h))


class TransformerLM(nn.Module):
    """token_embeddings -> layers -> ln_final -> lm_head; forward returns logits (..., T, V).

    Ablations (all off by default): norm="none" (identity norms), norm_position="post",
    position="nope" (no RoPE), ffn="silu" (ungated; pass d_ff = 4 d_model), tie_embeddings
    (one matrix, lm_head's, initialised as lm_head). `attention`: "auto" (PyTorch's fused SDPA on
    CUDA, our reference math elsewhere), "reference" or "sdpa".
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        d_model: int,
        num_layers: int,
        num_heads: int,
        d_ff: int,
        rope_theta: float,
        *,
        norm: str = "rmsnorm",
        norm_position: str = "pre",
        position: str = "rope",
        ffn: str = "swiglu",
        tie_embeddings: bool = False,
        attention: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_choice("position", position, POSITIONS)
        _check_choice("attention", attention, ATTENTION_IMPLS)
        _check_choice("norm", norm, NORMS)
        self.vocab_size = vocab_size
        self.context_length = context_length
        self.d_model = d_model
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.d_ff = d_ff
        self.tie_embeddings = tie_embeddings
        # Constructor arguments (less device/dtype): TransformerLM(**model.config) rebuilds it,
        # and checkpoints can store it as plain data.
        self.config: dict[str, Any] = {
            "vocab_size": vocab_size,
            "context_length": context_length,
            "d_model": d_model,
            "num_layers": num_layers,
            "num_heads": num_heads,
            "d_ff": d_ff,
            "rope_theta": rope_theta,
            "norm": norm,
            "norm_position": norm_position,
            "position": position,
            "ffn": ffn,
            "tie_embeddings": tie_embeddings,
            "attention": attention,
        }
        theta = rope_theta if position == "rope" else None
        self.token_embeddings = Embedding(vocab_size, d_model, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            TransformerBlock(
                d_model,
                num_heads,
                d_ff,
                context_length,
                theta,
                norm=norm,
                norm_position=norm_position,
                ffn=ffn,
                attention=attention,
                device=device,
                dtype=dtype,
            )
            for _ in range(num_layers)
        )
        self.ln_final = (
            RMSNorm(d_model, device=device, dtype=dtype) if norm == "rmsnorm" else Identity()
        )
        self.lm_head = Linear(d_model, vocab_size, device=device, dtype=dtype)
        if tie_embeddings:
            # The shared matrix keeps lm_head's initialisation: with the embedding's std 1, the
            # initial logits would have std ~sqrt(d_model) and the first losses would explode.
            self.token_embeddings.weight = self.lm_head.weight

    def forward(
        self,
        token_ids: torch.Tensor,
        token_positions: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """token_ids (..., T) -> logits (..., T, vocab_size), T <= context_length.

        With `kv_cache` the tokens are taken to follow the cached ones (positions default to
        cache.length + 0..T-1), their keys/values are stored, and the cache length advances by T.
        """
        seq = token_ids.shape[-1]
        x = self.token_embeddings(token_ids)  # (..., T, d_model)
        if kv_cache is None:
            for layer in self.layers:
                x = layer(x, token_positions)
        else:
            if token_positions is None:
                token_positions = kv_cache.positions(seq)
            for layer, cache in zip(self.layers, kv_cache.layers):
                x = layer(x, token_positions, cache)
            kv_cache.advance(seq)
        return self.lm_head(self.ln_final(x))

    def make_kv_cache(
        self, batch_size: int, max_len: int | None = None, dtype: torch.dtype | None = None
    ) -> KVCache:
        """An empty static cache for up to `max_len` (default context_length) tokens."""
        weight = self.lm_head.weight
        return KVCache(
            self.num_layers,
            batch_size,
            self.num_heads,
            self.context_length if max_len is None else max_len,
            self.d_model // self.num_heads,
            device=weight.device,
            dtype=weight.dtype if dtype is None else dtype,
        )

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (shared tensors once). non_embedding drops the token embedding table
        unless it is tied to lm_head, where it also serves as the output matmul."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.tie_embeddings:
            n -= self.token_embeddings.weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs (forward + backward) per token, PaLM-style (Chowdhery et al. 2022, B):
        6 * N_matmul + 12 * num_layers * d_model * seq_len.

        N_matmul counts every weight used in a matmul (attention and FFN projections, lm_head;
        not the embedding lookup or norm gains): 2 FLOPs per weight forward, 4 backward. The
        second term is QK^T and AV over the full T x T matrix (causal kernels skip about half
        of it, so MFU computed from this is the usual, slightly generous convention).
        """
        seq_len = self.context_length if seq_len is None else seq_len
        n_matmul = sum(m.weight.numel() for m in self.modules() if isinstance(m, Linear))
        return 6.0 * n_matmul + 12.0 * self.num_layers * self.d_model * seq_len

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Also accepts keys saved from a torch.compile'd model (`_orig_mod.` prefix)."""
        return super().load_state_dict(
            strip_compiled_prefix(state_dict), strict=strict, assign=assign
        )
