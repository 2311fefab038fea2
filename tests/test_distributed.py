"""Training on several processes (issue #12): torchrun and DDP with gloo on the CPU. Two ranks
with half the batch each follow the same loss curve as one process with the whole batch; a
two-rank run resumes on one rank; only rank 0 writes files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch.distributed  # noqa: E402

if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch build has no gloo backend", allow_module_level=True)

CONFIG = """
[model]
vocab_size = 64
context_length = 16
d_model = 32
num_layers = 1
num_heads = 2
d_ff = 64

[train]
train_data = "{d}/train.npy"
val_data = "{d}/val.npy"
batch_size = 8
max_steps = {steps}
max_lr = 1e-2
min_lr = 1e-3
warmup_steps = 1
eval_every = 2
eval_batches = 2
log_every = 1
checkpoint_every = 2
keep_last = 5
device = "cpu"
dtype = "float32"
compile = false
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    pattern = rng.integers(0, 64, 53)
    np.save(d / "train.npy", np.tile(pattern, 60).astype(np.uint16))
    np.save(d / "val.npy", np.tile(pattern, 10).astype(np.uint16))
    return d


def write_config(d: Path, steps: int) -> Path:
    path = d / f"steps{steps}.toml"
    path.write_text(CONFIG.format(d=d.as_posix(), steps=steps))
    return path


def bpelm_train(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "bpelm", "train", *args, "--quiet"]
    if nproc > 1:
        argv += ["--nproc", str(nproc)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train_loss"] for r in rows if "train_loss" in r}


def test_two_ranks_follow_one_process_and_resume_on_one(data: Path, tmp_path: Path) -> None:
    four = write_config(data, 4)
    bpelm_train(["--config", str(four), "--out", str(tmp_path / "one")])
    done = bpelm_train(["--config", str(four), "--out", str(tmp_path / "two")], nproc=2)
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(one) == sorted(two) == [1, 2, 3, 4]
    for step in one:  # half the batch on each rank, gradients averaged: the same updates
        assert two[step] == pytest.approx(one[step], rel=1e-4, abs=1e-5), step

    # Rank 0 alone wrote the run: one metrics log, one set of checkpoints, printed once.
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files.count("metrics.jsonl") == 1
    assert [f for f in files if f.startswith("ckpt_")] == ["ckpt_0000002.pt", "ckpt_0000004.pt"]
    assert done.stdout.count("done:") == 1

    # Two ranks to step 2, then one rank from there: the same curve as one process all along.
    two_steps = write_config(data, 2)
    bpelm_train(["--config", str(two_steps), "--out", str(tmp_path / "mixed")], nproc=2)
    bpelm_train(
        ["--resume", str(tmp_path / "mixed"), "--set", "max_steps=4"],
    )
    mixed = losses(tmp_path / "mixed")
    assert sorted(mixed) == [1, 2, 3, 4]
    for step in mixed:
        assert mixed[step] == pytest.approx(one[step], rel=1e-4, abs=1e-5), step


def test_the_global_batch_must_divide_among_ranks(data: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "bpelm", "train", "--config", str(write_config(data, 2))]
    argv += ["--out", str(tmp_path / "odd"), "--set", "batch_size=5", "--nproc", "2", "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "must divide evenly among 2 ranks" in done.stdout + done.stderr
