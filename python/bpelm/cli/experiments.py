"""The experiment command groups, registered together so that `cli/__init__.py` lists them in
one place: `account` (resource accounting); `sweep`, `compare` and `experiment` follow."""

from __future__ import annotations

import argparse

from bpelm.cli import account, experiment, sweep


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    for group in (account, sweep, experiment):
        group.register(sub, fmt)
