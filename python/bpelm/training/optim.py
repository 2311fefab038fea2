"""AdamW (decoupled weight decay), the cosine learning-rate schedule and gradient clipping."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

__all__ = ["AdamW", "clip_grad_norm", "cosine_lr_schedule"]


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), bias-corrected.

    Per step t, for each parameter p with gradient g:
        p <- p * (1 - lr * weight_decay)
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    which is the update torch.optim.AdamW makes. Three ways to run it, the same update:
    `fused` (default: on wherever PyTorch has the kernel, CPU and CUDA) hands each group to
    PyTorch's fused AdamW kernel, one pass per tensor; `foreach` (default: on when every
    parameter is on CUDA) spells the update above with torch._foreach_* kernels over whole
    groups; with neither, one parameter at a time, the formula as written. Put 1-D parameters
    (norm gains) in a group with weight_decay=0 to exempt them.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"invalid eps {eps} or weight_decay {weight_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)
        foreach_was_default = foreach is None
        if foreach is None:
            foreach = all(p.is_cuda for g in self.param_groups for p in g["params"])
        self.foreach = foreach
        if fused is None:
            # Asking for foreach (or the loop) by name keeps that path: tests compare them.
            fused = foreach_was_default and _fused_supported(self.param_groups)
        elif fused and not _fused_supported(self.param_groups):
            raise ValueError("fused AdamW needs float CPU or CUDA parameters and torch >= 2.4")
        self.fused = fused

    def _state_for(self, p: torch.Tensor) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            # `step` is a plain int: bias corrections are then host floats, with no device sync.
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if self.fused:
                self._step_fused(group)
            elif self.foreach:
                self._step_foreach(group)
            else:
                self._step_loop(group)
        return loss

    def _advance(self, group: dict[str, Any]) -> Iterator[tuple[torch.Tensor, dict[str, Any]]]:
        """Each parameter of `group` that has a gradient, with its state, step count advanced."""
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("AdamW does not support sparse gradients")
            state = self._state_for(p)
            state["step"] += 1
            yield p, state

    def _buckets(self, group: dict[str, Any]) -> dict[tuple[Any, ...], list[torch.Tensor]]:
        """The parameters `_advance` gives, grouped by (device, dtype, step): foreach and fused
        kernels want one device and dtype per list, and the bias correction one step."""
        buckets: dict[tuple[Any, ...], list[torch.Tensor]] = defaultdict(list)
        for p, state in self._advance(group):
            buckets[(p.device, p.dtype, state["step"])].append(p)
        return buckets

    def _step_loop(self, group: dict[str, Any]) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for p, state in self._advance(group):
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            p.mul_(1 - lr * wd)
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))

    def _step_foreach(self, group: dict[str, Any]) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for (_, _, t), params in self._buckets(group).items():
            grads = [p.grad for p in params]
            ms = [self.state[p]["exp_avg"] for p in params]
            vs = [self.state[p]["exp_avg_sq"] for p in params]
            if wd != 0:
                torch._foreach_mul_(params, 1 - lr * wd)
            torch._foreach_lerp_(ms, grads, 1 - beta1)
            torch._foreach_mul_(vs, beta2)
            torch._foreach_addcmul_(vs, grads, grads, value=1 - beta2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, math.sqrt(1 - beta2**t))
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(params, ms, denom, value=-lr / (1 - beta1**t))

    def _step_fused(self, group: dict[str, Any]) -> None:
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for (device, _, t), params in self._buckets(group).items():
            # The kernel reads the step count from a tensor (its bias corrections are computed
            # inside); `state["step"]` stays the plain int the other paths and checkpoints use.
            step = torch.full((), float(t), device=device)
            torch._fused_adamw_(
                params,
                [p.grad for p in params],
                [self.state[p]["exp_avg"] for p in params],
                [self.state[p]["exp_avg_sq"] for p in params],
                [],
                [step] * len(params),
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                weight_decay=wd,
                eps=eps,
                amsgrad=False,
                maximize=False,
            )


def _fused_supported(groups: list[dict[str, Any]]) -> bool:
    """PyTorch's fused AdamW kernel exists (torch >= 2.4) for these parameters: floating point,
    all on CPU or all on CUDA."""
    if not hasattr(torch, "_fused_adamw_"):
        return False
    params = [p for g in groups for p in g["params"]]
    devices = {p.device.type for p in params}
    return (
        bool(params)
        and len(devices) == 1
        and devices <= {"cpu", "cuda"}
        and all(p.is_floating_point() for p in params)
    )


def cosine_lr_schedule(
    it: int, max_lr: float, min_lr: float, warmup_iters: int, cosine_cycle_iters: int
) -> float:
    """Linear warmup from 0 to max_lr over warmup_iters, cosine decay to min_lr at
    cosine_cycle_iters, min_lr afterwards."""
    if it < warmup_iters:
        return it / warmup_iters * max_lr
    if it >= cosine_cycle_iters:
        return min_lr
    progress = (it - warmup_iters) / (cosine_cycle_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def linear_lr_schedule(
    it: int, max_lr: float, min_lr: float, warmup_iters: int, decay_iters: int
) -> float:
    """Linear warmup from 0 to max_lr over warmup_iters (none when 0), then a straight line
    down to min_lr at decay_iters (to zero when min_lr is 0), min_lr afterwards."""
    if it < warmup_iters:
        return it / warmup_iters * max_lr
    if it >= decay_iters:
        return min_lr
    progress = (it - warmup_iters) / (decay_iters - warmup_iters)
    return max_lr + progress * (min_lr - max_lr)


# The learning-rate schedules a config can name (train.schedule).
SCHEDULES = {"cosine": cosine_lr_schedule, "linear": linear_lr_schedule}


@torch.no_grad()
def clip_grad_norm(
    params: Iterable[torch.Tensor], max_l2_norm: float, eps: float = 1e-6
) -> torch.Tensor:
    """Scale all gradients in place by max_l2_norm / (norm + eps) when their global L2 norm
    exceeds max_l2_norm. Returns the norm before clipping as a 0-d tensor (no host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    device = grads[0].device
    norms = torch._foreach_norm(grads)
    total = torch.linalg.vector_norm(torch.stack([n.to(device, torch.float32) for n in norms]))
    scale = torch.where(total > max_l2_norm, max_l2_norm / (total + eps), torch.ones_like(total))
    # Per-dtype lists: _foreach_mul_ with a tensor scalar wants the lists on the scalar's device.
    by_dtype: dict[tuple[Any, ...], list[torch.Tensor]] = defaultdict(list)
    for g in grads:
        by_dtype[(g.device, g.dtype)].append(g)
    for (dev, dtype), gs in by_dtype.items():
        torch._foreach_mul_(gs, scale.to(dev, dtype))
    return total
