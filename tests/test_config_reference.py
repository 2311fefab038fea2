"""The README's config reference is the generated one (`bpelm train --help-config`)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

from bpelm.nn import ModelConfig  # noqa: E402
from bpelm.training.config import TrainConfig, config_reference  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def test_every_key_is_documented() -> None:
    table = config_reference()
    for section, cls in (("model", ModelConfig), ("train", TrainConfig)):
        for f in dataclasses.fields(cls):
            row = next(r for r in table.splitlines() if r.startswith(f"| `{section}.{f.name}`"))
            assert not row.rstrip().endswith("|  |"), f"{section}.{f.name} has no comment"


def test_readme_holds_the_generated_reference() -> None:
    spec = importlib.util.spec_from_file_location(
        "sync", REPO / "scripts" / "sync_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    readme = (REPO / "README.md").read_text()
    assert sync.with_reference(readme) == readme, (
        "README.md's config reference is stale: run .venv/bin/python "
        "scripts/sync_config_reference.py"
    )
