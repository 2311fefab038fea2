"""Resource accounting for a `TransformerLM` shape: parameters, forward matmul FLOPs per
component, training FLOPs, AdamW FLOPs, memory as `a * batch + b`, the largest batch that fits
and the days a run takes.

Conventions (the write-ups of this exercise differ; each choice that varies is an
`AccountingOptions` field, never silent):
- FLOPs are matrix multiplies only, 2*m*n*k each; norms, softmax, RoPE and the embedding lookup
  are not counted. Attention scores and the weighted sum are counted over the full T x T matrix
  (a causal kernel could skip half of it).
- Training FLOPs per sequence are 3 x forward (backward is two matmuls per forward matmul).
- Memory: parameters, gradients and AdamW's two moments are `bytes_per_value` each; the
  activations are what backward keeps, listed in `activation_values_per_sequence`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from bpelm.model_config import ModelConfig

GPT2_VOCAB = 50_257


def _gpt2(num_layers: int, d_model: int, num_heads: int) -> dict[str, Any]:
    # The assignment's GPT-2 shapes in this model's architecture: SwiGLU with d_ff = 4 d_model,
    # RMSNorm, RoPE, untied head, no biases.
    return {
        "vocab_size": GPT2_VOCAB,
        "context_length": 1024,
        "d_model": d_model,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "d_ff": 4 * d_model,
    }


PRESETS: dict[str, dict[str, Any]] = {
    "gpt2-small": _gpt2(12, 768, 12),
    "gpt2-medium": _gpt2(24, 1024, 16),
    "gpt2-large": _gpt2(36, 1280, 20),
    "gpt2-xl": _gpt2(48, 1600, 25),
    # The [model] table of configs/tinystories-17m.toml (copied: a preset must not move when
    # someone edits a config file).
    "tinystories-17m": {
        "vocab_size": 10_000,
        "context_length": 256,
        "d_model": 512,
        "num_layers": 4,
        "num_heads": 16,
        "d_ff": 1344,
    },
}


# Training settings a preset implies for `bpelm account`'s batch and step defaults: the
# assignment's question (GPT-2 XL, 400K steps of 1,024 sequences) and the TinyStories config.
PRESET_TRAIN: dict[str, dict[str, Any]] = {
    **{name: {"batch_size": 1024, "max_steps": 400_000} for name in PRESETS if "gpt2" in name},
    "tinystories-17m": {"batch_size": 128, "max_steps": 10_000},
}


@dataclass(frozen=True)
class AccountingOptions:
    """The assumptions that write-ups disagree on, with this tool's defaults."""

    # Bytes per stored value (parameters, gradients, optimizer state, activations): 4 = float32.
    bytes_per_value: int = 4
    # FLOPs per parameter for one AdamW step. 13 counts: m update 3, v update 4, bias-free
    # update sqrt + eps + divide + scale + subtract 4, weight decay 2 (9 counts a fused
    # multiply-add as one operation).
    adamw_flops_per_param: int = 13
    # Count the FFN's d_ff-wide tensors (first projection, SiLU output and for SwiGLU the gate
    # and the product) in activation memory; False keeps only the FFN's d_model-wide output.
    ffn_intermediate: bool = True


@dataclass(frozen=True)
class Component:
    """One row of the breakdown: parameters and forward matmul FLOPs for one sequence."""

    name: str
    params: int
    forward_flops: float


@dataclass
class Account:
    """Everything `bpelm account` prints, for one model shape at one context length."""

    config: ModelConfig
    context: int
    options: AccountingOptions
    components: list[Component]
    # Activation values (not bytes) one sequence keeps for backward.
    activation_values_per_sequence: int
    activation_breakdown: dict[str, int] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return sum(c.params for c in self.components)

    @property
    def forward_flops(self) -> float:
        """Forward matmul FLOPs for one sequence of `context` tokens."""
        return sum(c.forward_flops for c in self.components)

    def share(self, component: Component) -> float:
        return component.forward_flops / self.forward_flops if self.forward_flops else 0.0

    @property
    def train_flops_per_sequence(self) -> float:
        """Forward + backward, taken as 3 x forward."""
        return 3.0 * self.forward_flops

    @property
    def adamw_flops(self) -> float:
        """One optimizer step, independent of the batch."""
        return float(self.options.adamw_flops_per_param * self.params)

    def step_flops(self, batch: int) -> float:
        return batch * self.train_flops_per_sequence + self.adamw_flops

    # --- memory ---

    @property
    def param_bytes(self) -> int:
        return self.params * self.options.bytes_per_value

    @property
    def grad_bytes(self) -> int:
        return self.param_bytes

    @property
    def adamw_bytes(self) -> int:
        return 2 * self.param_bytes  # first and second moments

    @property
    def activation_bytes_per_sequence(self) -> int:
        """`a` in memory = a * batch + b."""
        return self.activation_values_per_sequence * self.options.bytes_per_value

    @property
    def fixed_bytes(self) -> int:
        """`b` in memory = a * batch + b: parameters, gradients and AdamW state."""
        return self.param_bytes + self.grad_bytes + self.adamw_bytes

    def memory_bytes(self, batch: int) -> int:
        return self.activation_bytes_per_sequence * batch + self.fixed_bytes

    def max_batch(self, memory_bytes: float) -> int:
        """The largest batch whose memory fits in `memory_bytes` (0 when even the weights,
        gradients and optimizer state do not)."""
        room = memory_bytes - self.fixed_bytes
        if room < self.activation_bytes_per_sequence:
            return 0
        return int(room // self.activation_bytes_per_sequence)

    def days(self, steps: int, batch: int, peak_flops: float, mfu: float) -> float:
        """Days for `steps` updates of `batch` sequences at `mfu` of `peak_flops` FLOP/s."""
        if peak_flops <= 0 or mfu <= 0:
            raise ValueError("peak FLOP/s and MFU must be positive")
        return steps * self.step_flops(batch) / (peak_flops * mfu) / 86_400

    def to_dict(self, batch: int | None = None) -> dict[str, Any]:
        """Plain data for --json."""
        out: dict[str, Any] = {
            "model": self.config.to_dict(),
            "context": self.context,
            "options": {
                "bytes_per_value": self.options.bytes_per_value,
                "adamw_flops_per_param": self.options.adamw_flops_per_param,
                "ffn_intermediate": self.options.ffn_intermediate,
            },
            "components": [
                {
                    "name": c.name,
                    "params": c.params,
                    "forward_flops": c.forward_flops,
                    "share": self.share(c),
                }
                for c in self.components
            ],
            "params": self.params,
            "forward_flops": self.forward_flops,
            "train_flops_per_sequence": self.train_flops_per_sequence,
            "adamw_flops": self.adamw_flops,
            "memory": {
                "param_bytes": self.param_bytes,
                "grad_bytes": self.grad_bytes,
                "adamw_bytes": self.adamw_bytes,
                "activation_bytes_per_sequence": self.activation_bytes_per_sequence,
                "fixed_bytes": self.fixed_bytes,
                "activation_breakdown_values": self.activation_breakdown,
            },
        }
        if batch is not None:
            out["batch"] = batch
            out["memory"]["total_bytes"] = self.memory_bytes(batch)
            out["step_flops"] = self.step_flops(batch)
        return out


def account(
    config: ModelConfig, context: int | None = None, options: AccountingOptions | None = None
) -> Account:
    """The accounting of `config` at `context` tokens (default: its context_length)."""
    opts = options or AccountingOptions()
    t = config.context_length if context is None else context
    if t <= 0:
        raise ValueError(f"context must be positive, got {t}")
    d, f, v, n = config.d_model, config.d_ff, config.vocab_size, config.num_layers
    h = config.num_heads
    ffn_mats = 3 if config.ffn == "swiglu" else 2  # SwiGLU: w1, w3 (gate) and w2
    norms_per_layer = 2 if config.norm == "rmsnorm" else 0
    final_norm = d if config.norm == "rmsnorm" else 0

    def mm(m: int, k: int, nn: int) -> float:
        return 2.0 * m * k * nn

    # With tied embeddings the one matrix is counted once, under the LM head (it is the one
    # used in a matmul); the lookup's own row then holds no parameters.
    embed_params = 0 if config.tie_embeddings else v * d
    components = [
        Component("token embedding", embed_params, 0.0),
        Component("Q/K/V projections", n * 3 * d * d, n * 3 * mm(t, d, d)),
        # QK^T: (T x d_head) @ (d_head x T) per head = 2 T^2 d over all heads.
        Component("attention scores QK^T", 0, n * mm(t, d, t)),
        # softmax(...) V: (T x T) @ (T x d_head) per head.
        Component("attention-weighted sum", 0, n * mm(t, t, d)),
        Component("output projection", n * d * d, n * mm(t, d, d)),
        Component(f"FFN ({config.ffn})", n * ffn_mats * d * f, n * ffn_mats * mm(t, d, f)),
        Component("norms", n * norms_per_layer * d + final_norm, 0.0),
        Component("LM head", v * d, mm(t, d, v)),
    ]

    # Activations one sequence keeps for backward (values, not bytes).
    ffn_wide = (4 if config.ffn == "swiglu" else 2) if opts.ffn_intermediate else 0
    per_layer = {
        "norm outputs": norms_per_layer * t * d,
        "Q, K, V": 3 * t * d,
        "scores QK^T": h * t * t,
        "softmax": h * t * t,
        "weighted sum": t * d,
        "output projection": t * d,
        "FFN d_ff-wide tensors": ffn_wide * t * f,
        "FFN output": t * d,
    }
    breakdown = {f"per layer: {k}": val for k, val in per_layer.items()}
    breakdown["final norm"] = t * d if config.norm == "rmsnorm" else 0
    breakdown["logits"] = t * v
    breakdown["cross-entropy softmax"] = t * v
    total = n * sum(per_layer.values()) + breakdown["final norm"] + 2 * t * v
    return Account(config, t, opts, components, total, breakdown)


# -----------------------------------------------------------------------------
# Byte sizes as people write them

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str) -> float:
    """'80GiB' -> 85899345920, '80GB' -> 8e10, '1e9' -> 1e9 (GB is 10^9, GiB is 2^30)."""
    m = re.fullmatch(r"\s*([0-9.eE+_-]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"memory {text!r}: expected a number with B, KB/MB/GB/TB or KiB..TiB")
    try:
        value = float(m.group(1).replace("_", ""))
    except ValueError:
        raise ValueError(f"memory {text!r}: {m.group(1)!r} is not a number") from None
    return value * _UNITS[m.group(2).lower()]


def format_bytes(n: float, unit: str = "GiB") -> str:
    """`n` bytes in `unit` (GiB or GB), with the unit named."""
    scale = {"GiB": 2**30, "GB": 1e9}[unit]
    return f"{n / scale:,.2f} {unit}"


# -----------------------------------------------------------------------------
# Checking the formulas against a real model


@dataclass(frozen=True)
class Measurement:
    """A real `TransformerLM`'s parameter count and FlopCounterMode's forward FLOPs, in total
    and grouped like the formula's components (scores and weighted sum together: the counter
    sees both as the attention module's own matmuls)."""

    params: int
    forward_flops: float
    by_component: dict[str, float]


# Leaf module name (last part of its qualified name) -> component it belongs to.
_LEAF_COMPONENT = {
    "q_proj": "Q/K/V projections",
    "k_proj": "Q/K/V projections",
    "v_proj": "Q/K/V projections",
    "output_proj": "output projection",
    "w1": "FFN",
    "w2": "FFN",
    "w3": "FFN",
    "lm_head": "LM head",
}
ATTENTION_MATMULS = "attention scores + weighted sum"


def measure(config: ModelConfig, context: int | None = None) -> Measurement:
    """Build the model on the meta device (no memory, no compute) and count what it does on one
    sequence of `context` tokens. Attention uses the reference math, whose two matmuls are the
    ones the formula counts (a fused kernel may be counted differently)."""
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bpelm.nn.transformer import TransformerLM

    t = config.context_length if context is None else context
    cfg = dataclasses.replace(config, attention="reference", context_length=max(t, 1))
    model = TransformerLM(cfg, device="meta")
    params = sum(p.numel() for p in model.parameters())  # shared tensors are yielded once
    tokens = torch.zeros((1, t), dtype=torch.long, device="meta")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(tokens)
    total = float(counter.get_total_flops())
    grouped: dict[str, float] = {}
    for name, ops in counter.get_flop_counts().items():
        component = _LEAF_COMPONENT.get(name.rsplit(".", 1)[-1])
        if component is not None:
            grouped[component] = grouped.get(component, 0.0) + float(sum(ops.values()))
    # What no projection accounts for is attention's own QK^T and weights @ V.
    grouped[ATTENTION_MATMULS] = total - sum(grouped.values())
    return Measurement(params, total, grouped)


def formula_by_measured_component(acc: Account) -> dict[str, float]:
    """The formula's FLOPs grouped as `Measurement.by_component` groups them."""
    out: dict[str, float] = {}
    for c in acc.components:
        if c.name.startswith("attention"):
            key = ATTENTION_MATMULS
        elif c.name.startswith("FFN"):
            key = "FFN"
        else:
            key = c.name
        if c.forward_flops or key == ATTENTION_MATMULS:
            out[key] = out.get(key, 0.0) + c.forward_flops
    return out


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300) if not (a == b == 0) else 0.0


def is_close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel)
