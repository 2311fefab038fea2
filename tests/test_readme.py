"""The README's Python examples run as written, in order, on a small corpus (issue #15)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "python" / "bpelm" / "data" / "sample.txt"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 2


def test_the_python_examples_run(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "corpus.txt").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(python_blocks()))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "tok" / "vocab.json").exists() and (tmp_path / "corpus.npy").exists()
    assert (tmp_path / "runs" / "mine" / "summary.json").exists()
