"""What every `bpelm` subcommand shares: the one-line error and the help layout."""

from __future__ import annotations

import argparse
import sys
import time

# When this process began running bpelm: a time budget (`--max-minutes`) counts from here,
# so start-up, imports and compilation are inside it.
PROCESS_START = time.perf_counter()

# The end-of-text token: the default special token of a trained tokenizer.
END_OF_TEXT = "<|endoftext|>"


class CliError(Exception):
    """An error to report in one line, without a traceback."""


def add_progress_argument(p: argparse.ArgumentParser) -> None:
    """--progress / --no-progress: force progress bars on or off (default: on a terminal)."""
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw progress bars (default: only when stderr is a terminal)",
    )


def progress_enabled(args: argparse.Namespace) -> bool:
    """The --progress choice, or whether stderr is a terminal when none was made."""
    choice = getattr(args, "progress", None)
    return sys.stderr.isatty() if choice is None else bool(choice)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one and the help text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text
