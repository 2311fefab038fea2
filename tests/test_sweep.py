"""`bpelm sweep` and `bpelm compare` on a tiny CPU config: table, figure, resumability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from bpelm.cli import main  # noqa: E402
from bpelm.experiments.compare import load_runs, markdown_table  # noqa: E402
from bpelm.experiments.sweep import load_spec, parse_grid, point_name  # noqa: E402
from bpelm.training.config import ConfigError  # noqa: E402

TOML = """
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
batch_size = 4
max_steps = 4
max_lr = 1e-2
min_lr = 1e-3
warmup_steps = 1
eval_every = 2
eval_batches = 1
log_every = 2
checkpoint_every = 4
keep_last = 1
device = "cpu"
compile = false
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sweepdata")
    rng = np.random.default_rng(0)
    stream = np.tile(rng.integers(0, 64, size=97), 40)
    np.save(d / "train.npy", stream[:3000].astype(np.uint16))
    np.save(d / "val.npy", stream[3000:].astype(np.uint16))
    path = d / "tiny.toml"
    path.write_text(TOML.format(d=d))
    return path


def test_sweep_writes_table_and_plot_and_rerun_skips(tmp_path: Path, config: Path, capsys) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--config", str(config), "--grid", "train.max_lr=1e-2,1e3"]
    argv += ["--out", str(out), "--quiet"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "finished" in first and "diverged" in first
    table = (out / "summary.md").read_text()
    assert "max_lr=1e-2" in table and "max_lr=1e3" in table
    assert table.count("| yes |") == 1  # the 1e3 point diverged, and says so
    assert (out / "curves.png").stat().st_size > 1000
    assert json.loads((out / "max_lr=1e3" / "summary.json").read_text())["diverged"] is True
    assert main(argv) == 0
    second = capsys.readouterr().out
    assert second.count("already finished, skipped") == 2  # nothing retrains


def test_compare_two_runs(tmp_path: Path, config: Path, capsys) -> None:
    for lr in ("1e-2", "3e-3"):
        argv = ["train", "--config", str(config), "--set", f"train.max_lr={lr}"]
        assert main(argv + ["--out", str(tmp_path / "runs" / f"lr{lr}"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "runs"), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out
    assert "max_lr=0.01" in printed and "max_lr=0.003" in printed  # differences from the base
    assert (tmp_path / "cmp" / "curves.png").exists()
    records = load_runs([tmp_path / "runs"])
    assert [r.status for r in records] == ["finished", "finished"]
    assert all(r.best_val_loss is not None and r.tokens == 4 * 4 * 16 for r in records)
    assert "| finished | no |" in markdown_table(records)
    assert main(["compare", str(tmp_path / "nothing-here")]) == 1


def test_grid_parsing_and_points(config: Path) -> None:
    assert parse_grid(["train.max_lr=1e-3, 3e-3", "batch_size=1,2"]) == [
        ("train.max_lr", ["1e-3", "3e-3"]),
        ("batch_size", ["1", "2"]),
    ]
    for bad in (["max_lr"], ["max_lr="], ["a=1", "a=2"]):
        with pytest.raises(ConfigError, match="grid"):
            parse_grid(bad)
    spec = load_spec(config, ["train.max_lr=1e-3,2e-3", "batch_size=2,4"], ["seed=3"], tokens=256)
    points = spec.overrides()
    assert len(points) == 4 and points[0] == ["train.max_lr=1e-3", "batch_size=2"]
    model, train = spec.configs(points[0])
    assert train.seed == 3 and train.max_steps == 256 // (2 * 16)  # the token budget
    assert spec.configs(points[1])[1].max_steps == 256 // (4 * 16)
    assert point_name(["train.max_lr=1.5e-3", "model.ffn=silu"]) == "max_lr=1.5e-3_ffn=silu"
    with pytest.raises(ConfigError, match="unknown config key"):
        load_spec(config, ["train.no_such=1,2"]).configs(["train.no_such=1"])


def test_sweep_table_in_config_file(tmp_path: Path, config: Path) -> None:
    text = config.read_text() + (
        '\n[sweep]\ngrid = { "train.max_lr" = [1e-3, 2e-3] }\n'
        'points = [["ffn=swiglu"], ["ffn=silu", "d_ff=96"]]\nsmoke = ["max_steps=1"]\n'
    )
    path = tmp_path / "study.toml"
    path.write_text(text)
    spec = load_spec(path, ["train.max_lr=5e-3"], smoke=True)
    assert spec.overrides() == [
        ["ffn=swiglu", "train.max_lr=5e-3"],
        ["ffn=silu", "d_ff=96", "train.max_lr=5e-3"],
    ]
    assert spec.configs(spec.overrides()[1])[0].ffn == "silu"
    assert spec.configs(spec.overrides()[0])[1].max_steps == 1
    (tmp_path / "bad.toml").write_text(config.read_text() + "\n[sweep]\ngird = {}\n")
    with pytest.raises(ConfigError, match=r"\[sweep\]"):
        load_spec(tmp_path / "bad.toml")


def test_compare_puts_samples_side_by_side(tmp_path: Path, config: Path, capsys) -> None:
    from bpelm import Tokenizer

    Tokenizer({i: bytes([i]) for i in range(256)}, []).save(tmp_path / "tok")
    for lr in ("1e-2", "3e-3"):
        argv = ["train", "--config", str(config), "--set", f"train.max_lr={lr}"]
        argv += ["--set", "vocab_size=300", "--set", f"tokenizer={tmp_path / 'tok'}"]
        assert main(argv + ["--out", str(tmp_path / "runs" / f"lr{lr}"), "--quiet"]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "runs"), "--out", str(out), "--sample", "ab"]) == 0
    summary = (out / "summary.md").read_text()
    section = summary.split("## Samples", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("**")]
    assert len(lines) == 2 and all("**: ab" in line for line in lines)
    assert "no sample" not in section
