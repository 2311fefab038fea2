"""AdamW vs torch.optim.AdamW, the cosine schedule, and gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch
from bpelm.training.optim import AdamW, clip_grad_norm, cosine_lr_schedule


def make_params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 5), (5,), (3, 4, 2), (1,)]
    return [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]


def quadratic_loss(params: list[torch.nn.Parameter], step: int) -> torch.Tensor:
    # A changing, non-separable objective so moments see varied gradients.
    g = torch.Generator().manual_seed(step)
    total = torch.zeros(())
    for p in params:
        target = torch.randn(p.shape, generator=g)
        total = total + ((p - target) ** 2).sum() + 0.1 * (p**3).sum().tanh()
    return total


@pytest.mark.parametrize("foreach,fused", [(False, False), (True, False), (None, None)])
def test_adamw_matches_torch_over_1000_steps(foreach: bool | None, fused: bool | None) -> None:
    ours_params, ref_params = make_params(0), make_params(0)
    groups = [
        {"params": ours_params[:1] + ours_params[2:3]},
        {"params": [ours_params[1], ours_params[3]], "weight_decay": 0.0, "lr": 3e-3},
    ]
    ref_groups = [
        {"params": ref_params[:1] + ref_params[2:3]},
        {"params": [ref_params[1], ref_params[3]], "weight_decay": 0.0, "lr": 3e-3},
    ]
    kwargs = {"lr": 1e-2, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}
    ours = AdamW(groups, **kwargs, foreach=foreach, fused=fused)  # type: ignore[arg-type]
    ref = torch.optim.AdamW(ref_groups, **kwargs)  # type: ignore[arg-type]
    if foreach is None:  # the defaults: PyTorch's fused kernel on CPU (torch >= 2.4)
        assert ours.fused is hasattr(torch, "_fused_adamw_")
    else:
        assert ours.foreach is foreach and not ours.fused
    for step in range(1000):
        for opt, params in ((ours, ours_params), (ref, ref_params)):
            opt.zero_grad()
            quadratic_loss(params, step).backward()
            opt.step()
    for a, b in zip(ours_params, ref_params):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    # The optimisation moved the parameters (the comparison is not of untouched tensors).
    assert (ours_params[0] - make_params(0)[0]).abs().max() > 0.1


@pytest.mark.parametrize("path", ["foreach", "fused"])
def test_adamw_skips_params_without_grad_and_lr_change(path: str) -> None:
    if path == "fused" and not hasattr(torch, "_fused_adamw_"):
        pytest.skip("this torch has no fused AdamW kernel")
    a, b = make_params(1)[:2]
    opt = AdamW([a, b], lr=0.1, foreach=path == "foreach", fused=path == "fused")
    before = b.detach().clone()
    (a**2).sum().backward()
    opt.step()
    torch.testing.assert_close(b.detach(), before)
    assert opt.state[a]["step"] == 1 and b not in opt.state
    # Params at different step counts within one group still update (bucketed by step).
    (a.sum() + b.sum()).backward()
    opt.param_groups[0]["lr"] = 0.0
    a_before = a.detach().clone()
    opt.param_groups[0]["weight_decay"] = 0.0
    opt.step()
    torch.testing.assert_close(a.detach(), a_before)
    assert opt.state[a]["step"] == 2 and opt.state[b]["step"] == 1


def test_adamw_rejects_bad_hyperparameters() -> None:
    with pytest.raises(ValueError):
        AdamW(make_params(0), lr=-1.0)
    with pytest.raises(ValueError):
        AdamW(make_params(0), betas=(1.0, 0.9))


def test_cosine_schedule() -> None:
    kw = {"max_lr": 1.0, "min_lr": 0.1, "warmup_iters": 10, "cosine_cycle_iters": 110}
    assert cosine_lr_schedule(0, **kw) == 0.0
    assert cosine_lr_schedule(5, **kw) == pytest.approx(0.5)
    assert cosine_lr_schedule(10, **kw) == pytest.approx(1.0)
    assert cosine_lr_schedule(60, **kw) == pytest.approx(0.1 + 0.5 * 0.9)
    assert cosine_lr_schedule(110, **kw) == pytest.approx(0.1)
    assert cosine_lr_schedule(500, **kw) == pytest.approx(0.1)
    lrs = [cosine_lr_schedule(i, **kw) for i in range(10, 111)]
    assert all(x >= y for x, y in zip(lrs, lrs[1:]))
    expected = 0.1 + 0.5 * (1 + math.cos(math.pi * 0.3)) * 0.9
    assert cosine_lr_schedule(40, **kw) == pytest.approx(expected)
    assert cosine_lr_schedule(0, 1.0, 0.1, 0, 10) == pytest.approx(1.0)


@pytest.mark.parametrize("max_norm", [0.01, 1.0, 1e6])
def test_clip_grad_norm_matches_torch(max_norm: float) -> None:
    ours, ref = make_params(3), make_params(3)
    for params in (ours, ref):
        quadratic_loss(params[:3], 7).backward()  # params[3] keeps grad None
    assert ours[3].grad is None
    norm = clip_grad_norm(ours, max_norm)
    ref_norm = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    assert isinstance(norm, torch.Tensor)
    torch.testing.assert_close(norm, ref_norm)
    for a, b in zip(ours[:3], ref[:3]):
        torch.testing.assert_close(a.grad, b.grad)
    total = torch.sqrt(sum((p.grad**2).sum() for p in ours[:3]))
    if norm > max_norm:
        assert total == pytest.approx(max_norm, rel=1e-4)
    else:
        torch.testing.assert_close(total, norm)  # untouched below the bound


def test_clip_grad_norm_without_grads() -> None:
    assert float(clip_grad_norm(make_params(0), 1.0)) == 0.0
