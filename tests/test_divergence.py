"""Divergence: a run with an absurd learning rate stops within a few steps, says so, records
it in summary.json, exits non-zero from the CLI and never saves a diverged checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bpelm.cli import main  # noqa: E402
from bpelm.training.config import ConfigError, ModelConfig, TrainConfig  # noqa: E402
from bpelm.training.divergence import DivergenceMonitor, TrainingDiverged  # noqa: E402
from bpelm.training.loop import train  # noqa: E402

VOCAB = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("div")
    rng = np.random.default_rng(1)
    stream = np.tile(rng.integers(0, VOCAB, size=97), 60)
    np.save(d / "train.npy", stream[:5000].astype(np.uint16))
    np.save(d / "val.npy", stream[5000:].astype(np.uint16))
    return d


def configs(data: Path, **train) -> tuple[ModelConfig, TrainConfig]:
    model = ModelConfig(
        vocab_size=VOCAB, context_length=16, d_model=32, num_layers=1, num_heads=2, d_ff=64
    )
    base = dict(
        train_data=str(data / "train.npy"),
        val_data=str(data / "val.npy"),
        batch_size=4,
        max_steps=20,
        max_lr=1e3,
        min_lr=0.0,
        warmup_steps=0,
        eval_every=10,
        eval_batches=1,
        log_every=5,
        checkpoint_every=1,
        keep_last=2,
        device="cpu",
        compile=False,
    )
    return model, TrainConfig(**{**base, **train})


def test_huge_learning_rate_stops_as_diverged(tmp_path: Path, data: Path) -> None:
    model, cfg = configs(data)
    logs: list[str] = []
    with pytest.raises(TrainingDiverged, match="diverged at step") as info:
        train(model, cfg, tmp_path / "run", progress=False, log=logs.append)
    result = info.value.result
    assert result.diverged and result.steps <= 5  # caught at the first check
    assert any("last good checkpoint is kept" in line for line in logs)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["diverged"] is True and summary["status"] == "diverged"
    assert "diverged at step" in summary["divergence"]
    # Only checkpoints from before the divergence, all finite.
    ckpts = sorted((tmp_path / "run").glob("ckpt_*.pt"))
    assert all(int(p.stem.split("_")[1]) < summary["steps"] for p in ckpts)
    for p in ckpts:
        state = torch.load(p, map_location="cpu", weights_only=True)["model"]
        assert all(torch.isfinite(t).all() for t in state.values()), p


def test_normal_run_writes_finished_summary(tmp_path: Path, data: Path) -> None:
    model, cfg = configs(data, max_lr=1e-2, max_steps=4, checkpoint_every=4, eval_every=4)
    result = train(model, cfg, tmp_path / "ok", progress=False, log=lambda _: None)
    assert not result.diverged
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["diverged"] is False
    assert summary["steps"] == 4 and summary["best_val_loss"] is not None


def test_cli_train_exits_nonzero_on_divergence(tmp_path: Path, data: Path, capsys) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[model]\nvocab_size = 64\ncontext_length = 16\nd_model = 32\nnum_layers = 1\n"
        "num_heads = 2\nd_ff = 64\n[train]\n"
        f'train_data = "{data / "train.npy"}"\nbatch_size = 4\nmax_steps = 10\n'
        "max_lr = 1000.0\nmin_lr = 0.0\nwarmup_steps = 0\nlog_every = 2\ncheckpoint_every = 5\n"
        'device = "cpu"\ncompile = false\n'
    )
    rc = main(["train", "--config", str(toml), "--out", str(tmp_path / "r"), "--quiet"])
    assert rc != 0
    assert "diverged at step" in capsys.readouterr().err


def test_monitor_rules() -> None:
    m = DivergenceMonitor(3.0)
    assert not m.update([{"step": 1, "train_loss": 5.0}, {"step": 2, "train_loss": 2.0}])
    assert not m.update([{"step": 3, "val_loss": 100.0}])  # validation rows are not watched
    assert not m.update([{"step": 4, "train_loss": 5.9}])
    assert m.update([{"step": 5, "train_loss": 6.1}]) and "step 5" in m.reason
    nan = DivergenceMonitor(0)  # factor off: only non-finite values count
    assert not nan.update([{"step": 1, "train_loss": 1.0}, {"step": 2, "train_loss": 1e9}])
    assert nan.update([{"step": 3, "train_loss": math.nan}]) and "nan" in nan.reason
    norm = DivergenceMonitor(0)
    assert norm.update([{"step": 1, "train_loss": 1.0, "grad_norm": math.inf}])
    val = DivergenceMonitor(4.0)
    val.update([{"step": 1, "train_loss": 2.0}])
    assert not val.check_val(2, 7.9)
    assert val.check_val(3, 8.1) and "validation loss" in val.reason
    assert DivergenceMonitor(0).check_val(1, math.nan)
    weights = DivergenceMonitor(0)
    assert not weights.check_weights([torch.ones(3)], 7)
    assert weights.check_weights([torch.tensor([1.0, math.nan])], 8) and "step 8" in weights.reason
    for bad in (1.0, 0.5, -2.0, math.inf):
        with pytest.raises(ConfigError, match="divergence_factor"):
            DivergenceMonitor(bad)
