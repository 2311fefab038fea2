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


def test_the_preset_examples_give_the_ids_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The `pycon` transcripts need tiktoken's rank files, which the presets download on first
    # use: here the cache is filled from ../shared instead, so nothing is downloaded.
    import doctest
    import gzip

    import bpelm
    from bpelm.tokenizer import presets
    from conftest import shared_file

    cache = tmp_path / "cache"
    (cache / "tiktoken").mkdir(parents=True)
    for preset in presets.PRESETS.values():
        packed = shared_file(f"tiktoken/{preset.name}.tiktoken.gz").read_bytes()
        (cache / "tiktoken" / f"{preset.name}.tiktoken").write_bytes(gzip.decompress(packed))
    monkeypatch.setenv("BPELM_CACHE_DIR", str(cache))
    blocks = re.findall(r"```pycon\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert blocks
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner()
    for i, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {"bpelm": bpelm}, f"README pycon {i}", None, 0))
    results = runner.summarize(verbose=False)
    assert results.failed == 0 and results.attempted >= 4
