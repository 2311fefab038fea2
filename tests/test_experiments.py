"""experiments/: every study file loads (full and smoke size), and one runs end to end at smoke
size on the CPU, data included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from bpelm.cli import main  # noqa: E402
from bpelm.experiments.sweep import load_spec  # noqa: E402

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
STUDIES = sorted(EXPERIMENTS.glob("*.toml"))


def test_studies_are_listed_in_the_readme() -> None:
    readme = (EXPERIMENTS / "README.md").read_text()
    assert len(STUDIES) >= 7
    for study in STUDIES:
        assert f"experiments/{study.name}" in readme, study.name


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.stem)
def test_study_points_build(study: Path) -> None:
    for smoke in (False, True):
        spec = load_spec(study, smoke=smoke)
        points = spec.overrides()
        assert len(points) >= 2
        for point in points:
            model, train = spec.configs(point)
            if smoke:
                assert train.device == "cpu" and model.d_model <= 128


def test_smoke_study_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the studies' smoke paths are relative: runs/smoke-data/...
    assert main(["experiment", "smoke-data", "--web-mb", "0.2"]) == 0
    argv = ["sweep", "--config", str(EXPERIMENTS / "silu.toml"), "--smoke", "--out", "out"]
    assert main(argv + ["--quiet"]) == 0
    table = (tmp_path / "out" / "summary.md").read_text()
    assert "ffn=silu d_ff=256" in table and table.count("| finished |") == 2
    assert (tmp_path / "out" / "curves.png").exists()
    summary = json.loads((tmp_path / "out" / "ffn=swiglu" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["best_val_loss"] is not None
