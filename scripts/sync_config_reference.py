"""Rewrites the README's config reference from the config dataclasses (run after adding or
documenting a config key; tests/test_config_reference.py fails until it is run)."""

from __future__ import annotations

import sys
from pathlib import Path

from bpelm.training.config import config_reference

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def with_reference(text: str) -> str:
    """`text` (the README) with the generated table between the markers."""
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{config_reference()}{END}{tail}"


if __name__ == "__main__":
    README.write_text(with_reference(README.read_text()))
    sys.exit(0)
