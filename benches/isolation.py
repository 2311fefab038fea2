"""Each contender of a benchmark in a process of its own (`--isolated` in
`bench_call_sizes.py` and `bench_patterns.py`).

Taking turns in one process, each library's rounds evicted the others' word tables from the
processor's caches, which cost some libraries more than others; and on the same `str`
objects a library could read the UTF-8 copy CPython kept for another. A child process
measures one contender and prints one JSON line last; the parent runs the contenders' children
one after another, `PASSES` times over (A B C A B C), so that a slow spell of the machine is
shared out rather than falling on one contender's every round.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

PASSES = 2
OTHER_LIBRARIES = ("gigatoken", "tiktoken")


def keep_out_all_but(library: str) -> None:
    """Keeps the libraries other than `library` (and bpelm, whose ids are the reference) out
    of this process: an import that finds None in `sys.modules` fails, so nothing of theirs
    is loaded beside it."""
    for other in OTHER_LIBRARIES:
        if other != library:
            sys.modules[other] = None  # type: ignore[assignment]


def alternated_results(command: list[str], names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each of `names`' results, `command + ["--only", name]` run for each, the contenders one
    after another, `PASSES` times over."""
    results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for _ in range(PASSES):
        for name in names:
            results[name].append(child_result(command + ["--only", name]))
    return results


def child_result(command: list[str]) -> dict[str, Any]:
    """What a child measured: the JSON line it prints last."""
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.splitlines()[-1])
