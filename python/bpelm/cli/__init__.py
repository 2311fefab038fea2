"""The `bpelm` command: a thin shell over the library, one module per command group
(`download`, `tokenizer`, `train`, `generate`/`eval` in `model`, `demo`). Each module parses
its arguments and calls library functions; nothing here is needed to use bpelm from Python.
"""

from __future__ import annotations

import argparse
import os
import sys

from bpelm._extras import EXTRA_OF, MissingExtra, install_hint
from bpelm.cli import demo, download, experiments, export, model, tokenizer, train
from bpelm.cli.common import CliError, HelpFormatter

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpelm",
        description="Byte-level BPE tokenizer (Rust core) and a small Transformer LM.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"bpelm {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (download, tokenizer, train, model, export, demo, experiments):
        group.register(sub, HelpFormatter)
    return p


def _version() -> str:
    try:
        from bpelm import __version__

        return __version__
    except ImportError:  # pragma: no cover - extension not built
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bpelm` script; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for commands that re-launch
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("bpelm: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        # A command of the training half run on a tokenizer-only install (`pip install bpelm`).
        top = (e.name or "").split(".")[0]
        if os.environ.get("BPELM_DEBUG") or not (isinstance(e, MissingExtra) or top in EXTRA_OF):
            raise
        message = str(e) if isinstance(e, MissingExtra) else f"needs {top}: {install_hint(top)}"
        print(f"bpelm {args.command}: error: {message}", file=sys.stderr)
        return 1
    except (CliError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        # ConfigError is a ValueError: a bad key or value is reported in one line too.
        if os.environ.get("BPELM_DEBUG"):
            raise
        print(f"bpelm {args.command}: error: {e}", file=sys.stderr)
        print("(set BPELM_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
