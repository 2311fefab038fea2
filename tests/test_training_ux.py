"""What a person running `bpelm train` sees and relies on (issue #16): the parameter header,
progress switches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from bpelm.cli import build_parser  # noqa: E402
from bpelm.nn import ModelConfig  # noqa: E402
from bpelm.training.config import TrainConfig  # noqa: E402
from bpelm.training.loop import Trainer  # noqa: E402


def header(tmp_path: Path, tie: bool) -> tuple[str, Trainer]:
    data = tmp_path / "t.npy"
    np.save(data, np.arange(500, dtype=np.uint16) % 50)
    model = ModelConfig(
        vocab_size=5000, context_length=8, d_model=64, num_layers=1, num_heads=2, d_ff=32,
        tie_embeddings=tie,
    )  # fmt: skip
    cfg = TrainConfig(train_data=str(data), device="cpu", compile=False)
    trainer = Trainer(model, cfg, tmp_path / f"run-{tie}", log=lambda _: None)
    return trainer.describe(), trainer


@pytest.mark.parametrize("tie", [False, True])
def test_header_labels_parameter_counts(tmp_path: Path, tie: bool) -> None:
    text, trainer = header(tmp_path, tie)
    total, embedding, rest = (
        float(x)
        for x in re.findall(r"([\d.]+)M (?:parameters|token embedding|non-embedding)", text)
    )
    model = trainer.model
    assert total == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6, abs=0.005)
    assert total == pytest.approx(embedding + rest, abs=0.011)
    assert (embedding == 0) == tie and ("tied" in text) == tie


@pytest.mark.parametrize(
    "argv, expected",
    [([], None), (["--progress"], True), (["--no-progress"], False)],
)
def test_progress_can_be_forced(argv: list[str], expected: bool | None) -> None:
    for command in (["train"], ["eval", "--checkpoint", "c", "--data", "d"]):
        args = build_parser().parse_args([*command, *argv])
        assert args.progress is expected
    args = build_parser().parse_args(["tokenizer", "encode", "--tokenizer", "t", "--input", "i",
                                      "--out", "o.npy", *argv])  # fmt: skip
    assert args.progress is expected


def test_export_safetensors_loads_for_generation(tmp_path: Path, capsys) -> None:
    pytest.importorskip("safetensors")
    import torch
    from bpelm.cli import main
    from bpelm.training import load_model, train

    data = tmp_path / "t.npy"
    np.save(data, np.arange(600, dtype=np.uint16) % 50)
    model_cfg = ModelConfig(
        vocab_size=50, context_length=8, d_model=16, num_layers=1, num_heads=2, d_ff=32,
        tie_embeddings=True,
    )  # fmt: skip
    cfg = TrainConfig(train_data=str(data), batch_size=2, max_steps=2, device="cpu", compile=False)
    train(model_cfg, cfg, tmp_path / "run", progress=False, log=lambda _: None)
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(tmp_path / "run"), "--safetensors", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    original, _, _ = load_model(tmp_path / "run", "cpu")
    exported, record, _ = load_model(out, "cpu")
    assert record["model_config"] == model_cfg.to_dict()
    for (name, a), (_, b) in zip(original.state_dict().items(), exported.state_dict().items()):
        assert torch.equal(a, b), name
    # The tie survives the round trip: one matrix, not two copies.
    assert exported.token_embeddings.weight is exported.lm_head.weight


def test_best_checkpoint_is_not_a_second_copy(tmp_path: Path) -> None:
    from bpelm.training import train
    from bpelm.training.checkpoint import read_checkpoint

    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 50, 37)
    np.save(tmp_path / "t.npy", np.tile(pattern, 40).astype(np.uint16))
    np.save(tmp_path / "v.npy", np.tile(pattern, 5).astype(np.uint16))
    model_cfg = ModelConfig(
        vocab_size=50, context_length=8, d_model=16, num_layers=1, num_heads=2, d_ff=32
    )
    cfg = TrainConfig(
        train_data=str(tmp_path / "t.npy"), val_data=str(tmp_path / "v.npy"), batch_size=4,
        max_steps=6, max_lr=1e-2, warmup_steps=0, eval_every=2, eval_batches=1,
        checkpoint_every=2, keep_last=1, device="cpu", compile=False,
    )  # fmt: skip
    run = tmp_path / "run"
    result = train(model_cfg, cfg, run, progress=False, log=lambda _: None)
    best = run / "best.pt"
    obj = read_checkpoint(best)
    assert obj["extra"]["val_loss"] == result.best_val_loss
    # A learnable stream: every evaluation is a new best, so the last one is the newest
    # checkpoint, and best.pt is that same file (a hard link), not a second copy.
    assert obj["iteration"] == 6
    assert best.samefile(run / "ckpt_0000006.pt")
    assert best.stat().st_nlink == 2
    # The earlier bests were files of their own once their ckpt was rotated out.
    assert not (run / "ckpt_0000004.pt").exists()


BUDGET_TOML = """
[model]
vocab_size = 64
context_length = 64
d_model = 64
num_layers = 2
num_heads = 4
d_ff = 172

[train]
train_data = "{d}/t.npy"
val_data = "{d}/v.npy"
batch_size = 8
max_steps = 1000000
warmup_steps = 10
eval_every = 150
eval_batches = 20
checkpoint_every = 200
device = "cpu"
compile = false
"""


def test_a_time_budget_includes_startup_and_the_end(tmp_path: Path) -> None:
    # Wall-clock from spawning the command: start-up (imports), the steps, every evaluation
    # and checkpoint, and the final evaluation, checkpoint and plot, up to the line that says
    # the run is done; then the interpreter's own exit.
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(0)
    np.save(tmp_path / "t.npy", rng.integers(0, 64, 50_000).astype(np.uint16))
    np.save(tmp_path / "v.npy", rng.integers(0, 64, 20_000).astype(np.uint16))
    (tmp_path / "c.toml").write_text(BUDGET_TOML.format(d=tmp_path.as_posix()))
    budget_s = 15.0
    argv = [sys.executable, "-m", "bpelm", "train", "--config", str(tmp_path / "c.toml")]
    argv += ["--out", str(tmp_path / "run"), "--max-minutes", str(budget_s / 60), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    done_at = None
    for line in proc.stdout:
        if line.startswith("done:"):
            done_at = time.perf_counter() - t0
    proc.wait(timeout=120)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert done_at is not None
    # The run's own work ends within the budget, with 1 s for the interpreter to start before
    # bpelm's clock does; not far short of it either. The exit after it (torch's teardown)
    # is outside bpelm's hands: a few seconds at most even on a loaded machine.
    assert 0.75 * budget_s < done_at < budget_s + 1.0, done_at
    assert wall < budget_s + 5.0, wall
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"stopped_by_time"' in summary


def test_checkpoints_follow_the_umask(tmp_path: Path) -> None:
    import os

    from bpelm.nn import TransformerLM
    from bpelm.training.checkpoint import save_checkpoint

    model = TransformerLM(
        ModelConfig(vocab_size=20, context_length=4, d_model=8, num_layers=1, num_heads=2, d_ff=8)
    )
    old = os.umask(0o022)
    try:
        save_checkpoint(model, None, 0, tmp_path / "c.pt")
        os.umask(0o077)
        save_checkpoint(model, None, 0, tmp_path / "private.pt")
    finally:
        os.umask(old)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644  # mkstemp alone gives 0o600
    assert (tmp_path / "private.pt").stat().st_mode & 0o777 == 0o600


def test_shipped_configs_by_name(capsys) -> None:
    from bpelm.cli import main
    from bpelm.training.config import load_config, presets, resolve_config

    assert {"tiny-cpu", "tinystories-17m"} <= set(presets())
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    assert "tinystories-17m" in listing and "A 17M-parameter" in listing
    # A name works wherever a path does, and means the file in the package.
    path = resolve_config("tinystories-17m")
    assert path.parent.name == "configs" and path.parent.parent.name == "bpelm"
    model, _ = load_config(path)
    assert (model.d_model, model.num_layers) == (512, 4)
    assert main(["configs", "tiny-cpu"]) == 0
    assert "[model]" in capsys.readouterr().out
    assert main(["train", "--config", "no-such-config"]) == 1
    assert "bpelm configs" in capsys.readouterr().err


def test_loss_png_has_a_learning_rate_panel(tmp_path: Path) -> None:
    import json
    import struct

    import matplotlib.pyplot as plt
    from bpelm.training import metrics

    rows = [
        {"step": s, "time_s": s / 10, "train_loss": 5 - s / 10, "lr": s / 1000} for s in range(20)
    ]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    drawn = {}
    real_close = plt.close

    def keep(fig):  # look at the figure before it is closed
        drawn["axes"] = fig.axes
        real_close(fig)

    plt.close = keep
    try:
        metrics.plot_metrics(tmp_path / "m.jsonl", tmp_path / "loss.png")
    finally:
        plt.close = real_close
    lr_axes = [ax for ax in drawn["axes"] if ax.get_ylabel() == "learning rate"]
    assert len(lr_axes) == 1
    assert list(lr_axes[0].lines[0].get_ydata()) == [r["lr"] for r in rows]
    width = struct.unpack(">I", (tmp_path / "loss.png").read_bytes()[16:20])[0]
    assert width > 1200  # three panels side by side
