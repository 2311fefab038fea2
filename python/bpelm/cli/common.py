"""What every `bpelm` subcommand shares: the one-line error and the help layout."""

from __future__ import annotations

import argparse

# The end-of-text token: the default special token of a trained tokenizer.
END_OF_TEXT = "<|endoftext|>"


class CliError(Exception):
    """An error to report in one line, without a traceback."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one and the help text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text
