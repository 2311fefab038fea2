"""The two ways a model computes: our reference tensor arithmetic (`bpelm.nn.functional`,
for teaching and tests) or PyTorch's fused kernels for the same functions (the fast path).

`ModelConfig.kernels` picks one for a whole model; the layers take it as `fused`. The fused
kernels compute the same math in fewer passes over memory: on two CPU cores the reference
cross-entropy alone (eight passes over the logits forward, more backward) made a step of the
tiny-cpu model about 25% slower than F.cross_entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bpelm.nn import functional as reference

KERNELS = ("fused", "reference")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, fused: bool) -> torch.Tensor:
    """Mean next-token loss of `targets` (...,) under `logits` (..., V), in at least float32
    whatever the logits' dtype: `reference.cross_entropy`, or F.cross_entropy when `fused`."""
    if not fused:
        return reference.cross_entropy(logits, targets)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())


def uses_fused(model: torch.nn.Module) -> bool:
    """Whether `model` (a TransformerLM, possibly torch.compile'd) runs the fused kernels."""
    inner = getattr(model, "_orig_mod", model)
    config = getattr(inner, "config", None)
    return getattr(config, "kernels", "reference") == "fused"
