"""bpelm's from-scratch model library: its config, layers, attention, the Transformer LM and a
KV cache."""

from bpelm._extras import require

require("torch", "bpelm.nn (the model)")

from bpelm.model_config import ModelConfig
from bpelm.nn.attention import MultiHeadSelfAttention
from bpelm.nn.functional import (
    cross_entropy,
    logsumexp,
    scaled_dot_product_attention,
    silu,
    softmax,
)
from bpelm.nn.kv_cache import KVCache, LayerKVCache
from bpelm.nn.layers import Embedding, Identity, Linear, RMSNorm, SiLUFFN, SwiGLU, default_d_ff
from bpelm.nn.rope import RotaryPositionalEmbedding
from bpelm.nn.transformer import (
    TransformerBlock,
    TransformerLM,
    strip_compiled_prefix,
    unwrap_compiled,
)

__all__ = [
    "Embedding",
    "Identity",
    "KVCache",
    "LayerKVCache",
    "Linear",
    "ModelConfig",
    "MultiHeadSelfAttention",
    "RMSNorm",
    "RotaryPositionalEmbedding",
    "SiLUFFN",
    "SwiGLU",
    "TransformerBlock",
    "TransformerLM",
    "cross_entropy",
    "default_d_ff",
    "logsumexp",
    "scaled_dot_product_attention",
    "silu",
    "softmax",
    "strip_compiled_prefix",
    "unwrap_compiled",
]
