"""Small numeric studies that need no data: the learning-rate toy (SGD with a 1/sqrt(t+1)
decay on a mean-square loss), and matching a SiLU FFN's width to a SwiGLU's parameter count."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

import torch

from bpelm.experiments.accounting import account
from bpelm.training.config import ModelConfig


class DecayingSGD(torch.optim.Optimizer):
    """theta <- theta - lr / sqrt(t + 1) * grad, t counted per parameter from 0."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3) -> None:
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                t = state.get("t", 0)
                p.sub_(group["lr"] / math.sqrt(t + 1) * p.grad)
                state["t"] = t + 1
        return loss


def sgd_toy(lrs: Iterable[float], steps: int = 10, seed: int = 0) -> dict[float, list[float]]:
    """Loss before each of `steps` updates of mean(W^2), W a 10x10 matrix ~ 5 N(0, 1) (the same
    start for every rate), one list per learning rate."""
    out: dict[float, list[float]] = {}
    for lr in lrs:
        gen = torch.Generator().manual_seed(seed)
        weights = torch.nn.Parameter(5 * torch.randn((10, 10), generator=gen))
        opt = DecayingSGD([weights], lr=lr)
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = (weights**2).mean()
            losses.append(float(loss.item()))
            loss.backward()
            opt.step()
        out[lr] = losses
    return out


def diverges(losses: list[float]) -> bool:
    """Ends higher than it started (or non-finite)."""
    return not math.isfinite(losses[-1]) or losses[-1] > losses[0]


def sgd_toy_table(results: dict[float, list[float]]) -> str:
    """One column per learning rate, one row per step, and a verdict row."""
    lrs = list(results)
    lines = ["step" + "".join(f"{f'lr={lr:g}':>14}" for lr in lrs)]
    for t in range(len(next(iter(results.values())))):
        lines.append(f"{t:>4}" + "".join(f"{results[lr][t]:>14.4g}" for lr in lrs))
    verdicts = ["diverges" if diverges(results[lr]) else "converges" for lr in lrs]
    lines.append("    " + "".join(f"{v:>14}" for v in verdicts))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class FfnMatch:
    swiglu: ModelConfig
    silu: ModelConfig
    swiglu_params: int
    silu_params: int

    @property
    def relative_difference(self) -> float:
        return abs(self.silu_params - self.swiglu_params) / self.swiglu_params


def match_silu_to_swiglu(config: ModelConfig, multiple: int = 64) -> FfnMatch:
    """The SiLU d_ff (a multiple of `multiple`) whose model has the parameter count closest to
    the SwiGLU model's with `config.d_ff`: SwiGLU has three d_model x d_ff matrices, SiLU two,
    so about 1.5 x d_ff."""
    swiglu = dataclasses.replace(config, ffn="swiglu")
    target = account(swiglu).params
    base = 1.5 * config.d_ff
    candidates = {
        max(multiple, multiple * round(base / multiple) + k * multiple) for k in (-1, 0, 1)
    }
    best = min(
        (dataclasses.replace(config, ffn="silu", d_ff=d) for d in candidates),
        key=lambda c: abs(account(c).params - target),
    )
    return FfnMatch(swiglu, best, target, account(best).params)
