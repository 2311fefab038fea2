"""`benches/gpu_check.py --smoke`: the GPU check runs end to end at toy sizes on a CPU, every
CUDA-only part says it was skipped, and report.json holds every field the GPU run will fill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, shared_file

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

sys.path.insert(0, str(REPO / "benches"))
import gpu_check  # noqa: E402


@pytest.mark.slow
def test_smoke_run_fills_every_field(tmp_path: Path) -> None:
    shared_file("books_train.txt.xz")
    shared_file("gpt2/vocab.json")
    out = tmp_path / "out"
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benches" / "gpu_check.py"), "--smoke", "--device", "cpu"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert (out / "report.md").exists() and (out / "race.png").exists()
    assert {"cpus", "python", "torch", "device"} <= report["machine"].keys()
    assert set(report["steps"]) == set(gpu_check.STEPS)
    for step, fields in gpu_check.REPORT_FIELDS.items():
        record = report["steps"][step]
        assert record["status"] == "ok", (step, record["status"])
        for field in fields:
            assert field in record, (step, field)
            # At toy size a 5 s race may end before one side reaches the target loss: the
            # ratio is then null by design; every other field has a value.
            if field != "time_to_target_ratio":
                assert record[field] is not None, (step, field)
    # CUDA-only parts are there, marked skipped, not missing or failed.
    modes = {r["mode"]: r for r in report["steps"]["train_step"]["rows"]}
    assert modes["torch bf16+sdpa+compile"]["status"] == "skipped: no CUDA"
    for mode in ("torch fp32 eager", "bpelm fp32 reference", "bpelm fp32 fused"):
        assert modes[mode]["tokens_per_s"] > 0 and "vs torch fp32 eager" in modes[mode]
    kinds = {(r["kind"], r["batch"]): r for r in report["steps"]["generation"]["rows"]}
    assert kinds[("kv-cache compiled", 1)]["status"] == "skipped: no CUDA"
    for key in (("kv-cache eager", 1), ("kv-cache eager", 64), ("plain PyTorch, no cache", 1)):
        assert kinds[key]["tokens_per_s"] > 0
    race = report["steps"]["loss_race"]
    assert race["bpelm"]["steps"] > 0 and race["plain"]["steps"] > 0
    reached = [race[side]["time_to_target_s"] is not None for side in ("bpelm", "plain")]
    assert (race["time_to_target_ratio"] is not None) == all(reached)
    tok = report["steps"]["tokenizer"]
    assert any(r["contender"] == "bpelm" and r["mb_per_s"] for r in tok["encode"])
    assert tok["pile"]["per_contender"]["bpelm"]["minutes_measured"] > 0
    assert {r["threads"] for r in tok["train"] if r.get("seconds")} >= {1}


def test_render_reports_a_cut_off_run() -> None:
    """A run killed after its first step still renders (the report is rewritten per step)."""
    report = {
        "smoke": False,
        "machine": {"cpus": 16, "python": "3.12", "device": "cuda", "gpu": "H100"},
        "steps": {"train_step": {"status": "timeout: killed after 130 s", "rows": None}},
    }
    text = gpu_check.render(report)
    assert "timeout: killed after 130 s" in text and "H100" in text
