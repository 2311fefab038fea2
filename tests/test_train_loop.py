"""The training loop on a tiny model: exact resume, metrics rows, plots, checkpoints, budget."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from bpelm.training.checkpoint import checkpoint_paths  # noqa: E402
from bpelm.training.config import ModelConfig, TrainConfig  # noqa: E402
from bpelm.training.loop import lr_at, train  # noqa: E402
from bpelm.training.metrics import read_metrics  # noqa: E402

VOCAB = 64
ROW_FIELDS = {"step", "tokens", "time_s", "train_loss", "lr", "grad_norm", "tokens_per_s", "mfu"}


@pytest.fixture(scope="module")
def token_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A learnable token stream (a noisy repeating pattern) and a held-out piece of it."""
    d = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(1)
    pattern = rng.integers(0, VOCAB, size=97)
    stream = np.tile(pattern, 120)
    noise = rng.random(stream.size) < 0.05
    stream[noise] = rng.integers(0, VOCAB, size=int(noise.sum()))
    train_path, val_path = d / "train.npy", d / "val.npy"
    np.save(train_path, stream[:10_000].astype(np.uint16))
    np.save(val_path, stream[10_000:].astype(np.uint16))
    return train_path, val_path


def tiny(token_files: tuple[Path, Path], **overrides) -> tuple[ModelConfig, TrainConfig]:
    model = ModelConfig(
        vocab_size=VOCAB, context_length=16, d_model=32, num_layers=1, num_heads=2, d_ff=64
    )
    cfg = TrainConfig(
        train_data=str(token_files[0]),
        val_data=str(token_files[1]),
        batch_size=4,
        max_steps=8,
        max_lr=1e-2,
        min_lr=1e-3,
        warmup_steps=2,
        eval_every=4,
        eval_batches=2,
        log_every=3,
        checkpoint_every=4,
        keep_last=5,
        device="cpu",
        compile=False,
    )
    return model, dataclasses.replace(cfg, **overrides)


def train_rows(run: Path) -> dict[int, dict]:
    return {r["step"]: r for r in read_metrics(run / "metrics.jsonl") if "train_loss" in r}


def test_resume_continues_exactly(tmp_path: Path, token_files) -> None:
    model, cfg = tiny(token_files)
    full = train(model, cfg, tmp_path / "full", progress=False, log=lambda _: None)
    assert full.steps == 8
    ckpt = tmp_path / "full" / "ckpt_0000004.pt"
    assert ckpt.exists()
    resumed = train(
        model, cfg, tmp_path / "resumed", resume=ckpt, progress=False, log=lambda _: None
    )
    assert resumed.steps == 8
    a, b = train_rows(tmp_path / "full"), train_rows(tmp_path / "resumed")
    assert sorted(b) == [5, 6, 7, 8]  # the resumed run logs only the steps it took
    for step in (5, 6, 7, 8):
        assert b[step]["train_loss"] == a[step]["train_loss"], step
        assert b[step]["grad_norm"] == a[step]["grad_norm"], step
        assert b[step]["lr"] == a[step]["lr"], step
    assert resumed.val_loss == full.val_loss


def test_resume_in_place_does_not_duplicate_rows(tmp_path: Path, token_files) -> None:
    model, cfg = tiny(token_files, max_steps=4)
    train(model, cfg, tmp_path, progress=False, log=lambda _: None)
    cfg8 = dataclasses.replace(cfg, max_steps=8)
    train(model, cfg8, tmp_path, resume=tmp_path, progress=False, log=lambda _: None)
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "train_loss" in r]
    assert steps == list(range(1, 9))


def test_metrics_plot_and_run_files(tmp_path: Path, token_files) -> None:
    model, cfg = tiny(token_files, max_steps=12, keep_last=2)
    result = train(model, cfg, tmp_path, progress=False, log=lambda _: None)
    rows = read_metrics(tmp_path / "metrics.jsonl")
    train_only = [r for r in rows if "train_loss" in r]
    assert [r["step"] for r in train_only] == list(range(1, 13))
    for r in train_only:
        assert ROW_FIELDS <= r.keys()
        assert r["tokens"] == r["step"] * 4 * 16
        assert math.isfinite(r["train_loss"]) and r["grad_norm"] > 0 and r["tokens_per_s"] > 0
        assert r["mfu"] is None  # no known peak FLOP/s on a CPU
    times = [r["time_s"] for r in train_only]
    assert times == sorted(times)
    val_steps = [r["step"] for r in rows if "val_loss" in r]
    assert val_steps == [4, 8, 12]
    # The model learns the repeating pattern: the loss falls from about ln(64).
    assert train_only[0]["train_loss"] > 3.5
    assert result.val_loss is not None and result.val_loss < train_only[0]["train_loss"] - 0.3
    # Warmup, then decay to min_lr at the last step.
    assert train_only[0]["lr"] == 0.0 and train_only[2]["lr"] == pytest.approx(1e-2)
    assert train_only[-1]["lr"] < train_only[3]["lr"]
    png = tmp_path / "loss.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["d_model"] == 32 and config["train"]["max_steps"] == 12
    env = json.loads((tmp_path / "environment.json").read_text())
    assert {"torch", "numpy", "bpelm", "git_hash"} <= env.keys()
    # keep_last=2 periodic checkpoints, plus best.pt.
    assert [s for s, _ in checkpoint_paths(tmp_path)] == [8, 12]
    assert (tmp_path / "best.pt").exists()


def test_time_budget_ends_the_run_with_the_schedule_finished(
    tmp_path: Path, token_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that advances 5 ms per reading makes the run's time deterministic: a budget
    # of 0.6 s against 100k steps must stop the run on time, not on steps.
    ticks = iter(range(10**9))
    monkeypatch.setattr("bpelm.training.loop.time.perf_counter", lambda: 0.005 * next(ticks))
    model, cfg = tiny(
        token_files, max_steps=100_000, max_minutes=0.01, checkpoint_every=10**6, eval_every=10**6
    )
    result = train(model, cfg, tmp_path, progress=False, log=lambda _: None)
    assert result.stopped_by_time
    assert 0 < result.steps < 100_000
    assert result.last_checkpoint.exists()
    rows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "train_loss" in r]
    assert len(rows) == result.steps
    # The decay followed wall-clock: the last step ran close to min_lr (a step-driven
    # schedule would still be at max_lr after this few of 100k steps).
    assert rows[-1]["lr"] < cfg.min_lr * 1.5
    lrs = [r["lr"] for r in rows[cfg.warmup_steps :]]
    assert lrs == sorted(lrs, reverse=True)


def test_lr_follows_the_larger_of_step_and_time_progress() -> None:
    from bpelm.training.optim import cosine_lr_schedule

    cfg = TrainConfig(max_steps=1000, warmup_steps=10, max_lr=1.0, min_lr=0.1)
    assert lr_at(500, 0.0, cfg)[0] == pytest.approx(cosine_lr_schedule(500, 1.0, 0.1, 10, 1000))
    timed = dataclasses.replace(cfg, max_minutes=10)
    lr, progress = lr_at(100, 300.0, timed)  # 10% of steps, 50% of the time
    assert progress == pytest.approx(0.5)
    assert lr == pytest.approx(cosine_lr_schedule(500, 1.0, 0.1, 10, 1000))
    assert lr_at(100, 601.0, timed)[1] == 1.0


def test_time_budget_warms_up_even_after_a_slow_start() -> None:
    cfg = TrainConfig(max_steps=2000, warmup_steps=30, max_lr=3e-3, min_lr=3e-4, max_minutes=1.5)
    # 3.5 s of imports and set-up are 3.9% of the budget, past warmup's 1.5%, before step 1.
    assert lr_at(0, 3.5, cfg)[0] == 0.0
    assert lr_at(15, 4.0, cfg)[0] == pytest.approx(1.5e-3)
    assert lr_at(30, 6.0, cfg)[0] > 2.9e-3  # warmed up: the cosine's value from here on


def test_vocabulary_mismatch_is_reported(tmp_path: Path, token_files) -> None:
    model, cfg = tiny(token_files)
    model = dataclasses.replace(model, vocab_size=16)
    with pytest.raises(ValueError, match="vocab_size"):
        train(model, cfg, tmp_path, progress=False, log=lambda _: None)


def test_a_fresh_run_refuses_a_directory_with_checkpoints(tmp_path: Path, token_files) -> None:
    model, cfg = tiny(token_files, max_steps=1)
    train(model, cfg, tmp_path, progress=False, log=lambda _: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train(model, cfg, tmp_path, progress=False, log=lambda _: None)


def test_losses_are_fetched_once_per_log_interval(
    tmp_path: Path, token_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop must not wait on the device every step: count the host transfers that
    bpelm/train.py itself makes (.item() / .tolist() on tensors)."""
    import sys

    import torch

    calls = {"item": 0, "tolist": 0}

    def counting(name: str):
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.endswith(str(Path("bpelm", "training", "loop.py"))):
                calls[name] += 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in calls:
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    model, cfg = tiny(token_files, max_steps=12, log_every=4, val_data="", checkpoint_every=100)
    train(model, cfg, tmp_path, progress=False, log=lambda _: None)
    assert calls == {"item": 0, "tolist": 3}  # steps 4, 8 and 12
    assert len(train_rows(tmp_path)) == 12
