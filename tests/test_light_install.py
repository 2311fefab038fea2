"""`pip install bpelm` is the tokenizer alone: it imports and works without torch, and the
training half says how to install what it needs instead of a traceback (issue #15)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Run in a child where importing torch, matplotlib or safetensors fails as if not installed.
BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "matplotlib", "safetensors"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    """
)


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tokenizer_works_without_torch(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("low lower lowest " * 200)
    done = run_without_torch(
        f"""
        import bpelm
        vocab, merges = bpelm.train_bpe({str(text)!r}, 300)
        tok = bpelm.Tokenizer(vocab, merges)
        assert tok.decode(tok.encode("lowest low")) == "lowest low"
        bpelm.encode_file(tok, {str(text)!r}, {str(tmp_path / "t.npy")!r})
        import bpelm.cli
        import bpelm.download
        assert "torch" not in sys.modules
        assert "huggingface_hub" not in sys.modules  # the `hub` extra loads only to download
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_training_half_names_the_extra() -> None:
    done = run_without_torch("import bpelm.nn")
    assert done.returncode != 0
    assert "pip install 'bpelm[train]'" in done.stderr
    assert "bpelm.nn" in done.stderr


def test_a_training_command_says_what_to_install(tmp_path: Path) -> None:
    done = run_without_torch(
        f"""
        from bpelm.cli import main
        sys.exit(main(["eval", "--checkpoint", {str(tmp_path)!r}, "--data", "x.npy"]))
        """
    )
    assert done.returncode == 1
    assert "pip install 'bpelm[train]'" in done.stderr
    assert "Traceback" not in done.stderr
