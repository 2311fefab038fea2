"""Switches that help small models (issue #10): QK-norm, logit soft-capping, linear decay to
zero without warmup; checked against PyTorch's own functions and closed forms."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from bpelm.nn import ModelConfig, TransformerLM  # noqa: E402
from bpelm.training.config import ConfigError, TrainConfig, build_config  # noqa: E402
from bpelm.training.loop import lr_at  # noqa: E402
from bpelm.training.optim import linear_lr_schedule  # noqa: E402

BASE = dict(vocab_size=50, context_length=8, d_model=16, num_layers=2, num_heads=2, d_ff=32)


def model(**overrides) -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(ModelConfig(**{**BASE, **overrides}))


def test_qk_norm_adds_a_gain_per_head_dimension_and_normalizes() -> None:
    plain, normed = model(), model(qk_norm=True)
    d_head = BASE["d_model"] // BASE["num_heads"]
    extra = sum(p.numel() for p in normed.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == BASE["num_layers"] * 2 * d_head
    attn = normed.layers[0].attn
    x = torch.randn(3, 5, d_head) * 7
    want = torch.nn.functional.rms_norm(x, (d_head,), attn.q_norm.weight, eps=attn.q_norm.eps)
    torch.testing.assert_close(attn.q_norm(x), want)
    ids = torch.randint(0, 50, (2, 8))
    assert normed(ids).shape == (2, 8, 50) and not torch.equal(normed(ids), plain(ids))


def test_logit_softcap_bounds_the_logits() -> None:
    cap = 2.0
    plain, capped = model(), model(logit_softcap=cap)
    with torch.no_grad():
        for m in (plain, capped):
            m.lm_head.weight.mul_(50)  # large logits
        ids = torch.randint(0, 50, (2, 8))
        raw, out = plain(ids), capped(ids)
    assert raw.abs().max() > 3 * cap
    torch.testing.assert_close(out, cap * torch.tanh(raw / cap))
    assert out.abs().max() <= cap  # tanh rounds to 1 in float32 far out


def test_linear_decay_to_zero_without_warmup() -> None:
    assert linear_lr_schedule(0, 1.0, 0.0, 0, 100) == 1.0
    assert linear_lr_schedule(25, 1.0, 0.0, 0, 100) == pytest.approx(0.75)
    assert linear_lr_schedule(100, 1.0, 0.0, 0, 100) == 0.0
    assert linear_lr_schedule(5, 1.0, 0.1, 10, 110) == pytest.approx(0.5)  # warmup
    cfg = TrainConfig(max_steps=200, warmup_steps=0, max_lr=3e-3, min_lr=0.0, schedule="linear")
    lrs = [lr_at(s, 0.0, cfg)[0] for s in range(0, 201, 50)]
    assert lrs == pytest.approx([3e-3, 2.25e-3, 1.5e-3, 0.75e-3, 0.0])


def test_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="train.schedule"):
        build_config({}, ["train.schedule=step"])
    with pytest.raises(ConfigError, match="model.logit_softcap"):
        build_config({}, ["model.logit_softcap=-1"])


def test_the_budget_config_uses_them() -> None:
    from bpelm.training.config import load_config, resolve_config

    model_cfg, train_cfg = load_config(resolve_config("budget-10min"))
    assert train_cfg.max_minutes == 10
    assert model_cfg.tie_embeddings and model_cfg.qk_norm and model_cfg.logit_softcap > 0
    assert train_cfg.schedule == "linear" and train_cfg.min_lr == 0 and train_cfg.warmup_steps == 0
    assert math.isfinite(train_cfg.max_lr)


def test_find_max_batch_doubles_until_it_does_not_fit(monkeypatch) -> None:
    import bpelm.training.max_batch as mb
    from bpelm.experiments.accounting import account

    model_cfg = ModelConfig(**BASE)
    cfg = TrainConfig(device="cpu", compile=False)
    # A machine with room for a few small batches: the doubling stops at the estimate.
    room = account(model_cfg).memory_bytes(8) * mb.CPU_MARGIN * 1.01
    monkeypatch.setattr(mb, "_available_bytes", lambda: int(room))
    best, trials = mb.find_max_batch(model_cfg, cfg, log=lambda _: None)
    assert best == 8
    assert [t.batch_size for t in trials] == [1, 2, 4, 8, 16]
    assert all(t.fits for t in trials[:4]) and not trials[4].fits
    assert "estimated" in trials[4].note


def test_find_max_batch_stops_at_out_of_memory(monkeypatch) -> None:
    import bpelm.training.evaluation as ev  # find_max_batch imports lm_loss from here
    import bpelm.training.max_batch as mb

    original = ev.lm_loss

    def oom_from_4(model, x, y):
        if x.shape[0] >= 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, x, y)

    monkeypatch.setattr(ev, "lm_loss", oom_from_4)
    monkeypatch.setattr(mb, "_available_bytes", lambda: None)
    cfg = TrainConfig(device="cpu")
    best, trials = mb.find_max_batch(ModelConfig(**BASE), cfg, log=lambda _: None)
    assert best == 2 and trials[-1].note == "out of memory"
