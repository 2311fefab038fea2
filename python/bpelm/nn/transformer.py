"""The decoder-only Transformer language model and its block."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from bpelm.model_config import ModelConfig
from bpelm.nn.attention import ATTENTION_IMPLS, MultiHeadSelfAttention, resolve_attention
from bpelm.nn.kernels import KERNELS
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


def unwrap_compiled(model: nn.Module) -> nn.Module:
    """The module under torch.compile's wrapper (the model itself when not compiled)."""
    return getattr(model, "_orig_mod", model)


class TransformerBlock(nn.Module):
    """Pre-norm: h = x + attn(ln1(x)); out = h + ffn(ln2(h)).
    Post-norm: h = ln1(x + attn(x)); out = ln2(h + ffn(h))."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        context_length: int,
        theta: float | None,
        *,
        norm: str = "rmsnorm",
        norm_position: str = "pre",
        ffn: str = "swiglu",
        attention: str = "reference",
        fused: bool = False,
        qk_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_choice("norm", norm, NORMS)
        _check_choice("norm_position", norm_position, NORM_POSITIONS)
        _check_choice("ffn", ffn, FFNS)
        self.pre_norm = norm_position == "pre"
        self.attn = MultiHeadSelfAttention(
            d_model,
            num_heads,
            context_length,
            theta,
            device=device,
            dtype=dtype,
            attention=attention,
            qk_norm=qk_norm,
            fused=fused,
        )
        if norm == "rmsnorm":
            self.ln1 = RMSNorm(d_model, device=device, dtype=dtype, fused=fused)
            self.ln2 = RMSNorm(d_model, device=device, dtype=dtype, fused=fused)
        else:
            self.ln1, self.ln2 = Identity(), Identity()
        ffn_cls = SwiGLU if ffn == "swiglu" else SiLUFFN
        self.ffn = ffn_cls(d_model, d_ff, device=device, dtype=dtype, fused=fused)

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

    Built from a `ModelConfig`, the one list of its hyperparameters. Ablations (all off by
    default): norm="none" (identity norms), norm_position="post", position="nope" (no RoPE),
    ffn="silu" (ungated; pass d_ff = 4 d_model), tie_embeddings (one matrix, lm_head's,
    initialised as lm_head). `kernels`: "fused" (PyTorch's fused kernels for attention, RMSNorm,
    SiLU and, through `bpelm.nn.kernels.cross_entropy`, the loss) or "reference" (our own
    arithmetic throughout); `attention` ("auto": as `kernels` says, "reference" or "sdpa")
    overrides it for attention alone.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(
                f"TransformerLM takes a ModelConfig, not {type(config).__name__} "
                "(build one with ModelConfig(**fields) or ModelConfig.from_dict(data))"
            )
        _check_choice("position", config.position, POSITIONS)
        _check_choice("attention", config.attention, ATTENTION_IMPLS)
        _check_choice("norm", config.norm, NORMS)
        _check_choice("kernels", config.kernels, KERNELS)
        # The one record of the model's shape: checkpoints store config.to_dict(), and
        # TransformerLM(ModelConfig.from_dict(...)) rebuilds the same model.
        self.config = config
        c = config
        theta = c.rope_theta if c.position == "rope" else None
        fused = c.kernels == "fused"
        self.token_embeddings = Embedding(c.vocab_size, c.d_model, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            TransformerBlock(
                c.d_model,
                c.num_heads,
                c.d_ff,
                c.context_length,
                theta,
                norm=c.norm,
                norm_position=c.norm_position,
                ffn=c.ffn,
                attention=resolve_attention(c.attention, fused),
                fused=fused,
                qk_norm=c.qk_norm,
                device=device,
                dtype=dtype,
            )
            for _ in range(c.num_layers)
        )
        self.ln_final = (
            RMSNorm(c.d_model, device=device, dtype=dtype, fused=fused)
            if c.norm == "rmsnorm"
            else Identity()
        )
        self.lm_head = Linear(c.d_model, c.vocab_size, device=device, dtype=dtype)
        if c.tie_embeddings:
            # The shared matrix keeps lm_head's initialisation: with the embedding's std 1, the
            # initial logits would have std ~sqrt(d_model) and the first losses would explode.
            self.token_embeddings.weight = self.lm_head.weight

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def context_length(self) -> int:
        return self.config.context_length

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
        logits = self.lm_head(self.ln_final(x))
        cap = self.config.logit_softcap
        if cap > 0:
            logits = cap * torch.tanh(logits / cap)
        return logits

    def make_kv_cache(
        self, batch_size: int, max_len: int | None = None, dtype: torch.dtype | None = None
    ) -> KVCache:
        """An empty static cache for up to `max_len` (default context_length) tokens."""
        weight = self.lm_head.weight
        return KVCache(
            self.config.num_layers,
            batch_size,
            self.config.num_heads,
            self.context_length if max_len is None else max_len,
            self.config.d_model // self.config.num_heads,
            device=weight.device,
            dtype=weight.dtype if dtype is None else dtype,
        )

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count (shared tensors once). non_embedding drops the token embedding table
        unless it is tied to lm_head, where it also serves as the output matmul."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.config.tie_embeddings:
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
        return 6.0 * n_matmul + 12.0 * self.config.num_layers * self.config.d_model * seq_len

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Also accepts keys saved from a torch.compile'd model (`_orig_mod.` prefix)."""
        return super().load_state_dict(
            strip_compiled_prefix(state_dict), strict=strict, assign=assign
        )
