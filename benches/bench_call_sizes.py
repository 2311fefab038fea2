"""Encode speed at every call size (#15): one thread, bpelm's `encode` (a list) and
`encode_to_array` against gigatoken (and tiktoken), on the same texts in the same process.

For each size from 100 bytes to 10 MB (100 MB with `--max-mb 100`) the web corpus is cut into
consecutive pieces of that size, as many as make about 8 MB (at most 20,000 calls); each
contender encodes one such set to warm up, then `--rounds` more, contenders interleaved
within a round. By default each round's pieces are the next ones in the corpus, unseen by
every contender (a corpus pipeline); `--seen` repeats the same pieces every round, which
flatters whatever a library caches about text it has encoded before. Each size is measured
in a process of its own: the sizes cut the same stretch of the corpus, so in one process
every size after the first would meet text the earlier sizes had already encoded. The table
gives the best round in MB/s, the spread of the rounds (slowest / fastest), and bpelm's ratios to
gigatoken: lists against gigatoken's arrays made lists (`.tolist()`; gigatoken's `encode`
returns a numpy array), arrays against its arrays. Ids are checked equal to bpelm's.

`--seen` decodes new str objects for every round (before its clock starts, as every round's
texts are made); `--same-objects` (implies `--seen`) encodes the same str objects every round,
made once before the warm-up. The difference: CPython keeps a str's UTF-8 inside the str the
first time a library asks for it (`PyUnicode_AsUTF8AndSize`). gigatoken and tiktoken ask, so
on the same objects their later calls skip making UTF-8; bpelm reads the str's code units and
makes the UTF-8 itself on every call (faster than CPython does for a fresh str, but every
time). Interleaved, bpelm would also read the UTF-8 copies the others left in the shared
objects, so the same-objects comparison is fair only with `--isolated`: each contender in a
process of its own (for each size, the contenders one after another, twice over: A B C A B C),
its best round of both passes kept and the spread taken over all its rounds.

    python benches/bench_call_sizes.py [--rounds 5] [--max-mb 10] [--seen] [--same-objects]
        [--isolated]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import lzma
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encode_quick as quick  # noqa: E402  (the contenders, loaded one way)
import machine  # noqa: E402
from isolation import PASSES, alternated_results, keep_out_all_but  # noqa: E402

TEXT_BUDGET = 8_000_000
MAX_CALLS = 20_000
CHECKED = 50  # texts whose ids each contender must get right

Encoder = Callable[[str], Any]
Runner = Callable[[list[str]], None]


def pieces(raw: bytes, size: int, round_: int) -> list[str]:
    """Consecutive pieces of `raw` of about `size` UTF-8 bytes each (cut between characters),
    as many as make about TEXT_BUDGET bytes and at most MAX_CALLS: the `round_`-th such set."""
    calls = max(1, min(MAX_CALLS, TEXT_BUDGET // size))
    out, at = [], round_ * calls * size
    for _ in range(calls):
        if at + size > len(raw):
            break
        out.append(raw[at : at + size].decode("utf-8", errors="ignore"))
        at += size
    return out


def one_round(run: Runner, texts: list[str]) -> float:
    """Seconds for `run` to encode `texts`: the encode calls alone (the texts are made before)."""
    t0 = time.perf_counter()
    run(texts)
    return time.perf_counter() - t0


def round_runners(libraries: dict[str, Any]) -> dict[str, Runner]:
    """Each contender's round: its call on each text, written out in the loop as a user
    writes it. Through a lambda (as the ids check calls them) a call costs about 30 ns more,
    6% of a 100-byte call, which only the contenders whose call takes a keyword would pay."""
    bp_array, bp_list = libraries["bpelm"].encode_to_array, libraries["bpelm"].encode

    def bpelm_arrays(texts: list[str]) -> None:
        for t in texts:
            bp_array(t, allowed_special="all")

    def bpelm_lists(texts: list[str]) -> None:
        for t in texts:
            bp_list(t, allowed_special="all")

    runners: dict[str, Runner] = {"bpelm": bpelm_arrays, "bpelm.encode(list)": bpelm_lists}
    if "gigatoken" in libraries:
        giga = libraries["gigatoken"].encode

        def giga_arrays(texts: list[str]) -> None:
            for t in texts:
                giga(t)

        def giga_lists(texts: list[str]) -> None:
            for t in texts:
                giga(t).tolist()

        runners["gigatoken"] = giga_arrays
        runners["gigatoken.tolist()"] = giga_lists
    if "tiktoken" in libraries:
        tik = libraries["tiktoken"].encode

        def tiktoken_lists(texts: list[str]) -> None:
            for t in texts:
                tik(t, allowed_special="all")

        runners["tiktoken"] = tiktoken_lists
    return runners


ORDER = ("bpelm.encode(list)", "gigatoken.tolist()", "bpelm", "gigatoken", "tiktoken")
LABEL = {"bpelm": "bpelm.encode_to_array", "bpelm.encode(list)": "bpelm.encode (list)"}
ARRAYS = {"bpelm", "gigatoken"}
LIBRARY = {"gigatoken.tolist()": "gigatoken", "gigatoken": "gigatoken", "tiktoken": "tiktoken"}
SIZES = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)


def contender_names() -> list[str]:
    """The table's columns: bpelm's two calls, and the other libraries that are installed."""
    have = {m: importlib.util.find_spec(m) is not None for m in ("gigatoken", "tiktoken")}
    return [n for n in ORDER if n not in LIBRARY or have[LIBRARY[n]]]


def mode_words(args: argparse.Namespace) -> str:
    """The header's account of how the rounds ran: which processes, and which texts."""
    if args.isolated:
        how = (
            "isolated: each contender of each size in a process of its own, "
            f"{PASSES} passes in alternation, best of {PASSES} x {args.rounds} rounds "
            "after one to warm up in each process"
        )
    else:
        how = (
            "interleaved: the contenders take turns within a round, each size in a fresh "
            f"process, best of {args.rounds} rounds after one to warm up"
        )
    if args.same_objects:
        text = "the same str objects every round"
        if not args.isolated:
            text += " (bpelm also reads the UTF-8 the others leave in them: fair only isolated)"
    elif args.seen:
        text = "the same text every round, in new str objects"
    else:
        text = "unseen text every round"
    return f"{how}; on {text}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-mb", type=float, default=10.0)
    ap.add_argument(
        "--seen", action="store_true", help="the same pieces every round, in new str objects"
    )
    ap.add_argument(
        "--same-objects",
        action="store_true",
        help="(implies --seen) the same str objects every round, made once: CPython keeps "
        "their UTF-8 once gigatoken or tiktoken asks for it, while bpelm makes UTF-8 from the "
        "code units each call; fair only with --isolated (interleaved, bpelm reads the copies "
        "the others left)",
    )
    ap.add_argument(
        "--isolated",
        action="store_true",
        help=f"each contender in a process of its own, {PASSES} passes in alternation",
    )
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one row, in a child process
    ap.add_argument("--only", help=argparse.SUPPRESS)  # one contender of a row (--isolated)
    args = ap.parse_args()
    args.seen = args.seen or args.same_objects
    corpus = quick.DATA / quick.CORPORA["web"]
    if not corpus.exists():
        print(f"{corpus} not found: nothing to measure")
        return
    if args.size is not None:
        measure_size(args.size, args.rounds, args.seen, args.same_objects, corpus, args.only)
        return
    names = contender_names()
    print(
        f"# {machine.describe()}, one thread, web text, GPT-2 vocabulary; "
        f"{mode_words(args)}; spread = slowest / fastest round"
    )
    print(
        "| call size | calls | "
        + " | ".join(LABEL.get(n, n) for n in names)
        + " | list / giga list | array / giga array |"
    )
    print("|---:|---:|" + "---:|" * (len(names) + 2), flush=True)
    child = [sys.executable, __file__, "--rounds", str(args.rounds)]
    child += ["--seen"] if args.seen else []
    child += ["--same-objects"] if args.same_objects else []
    for size in (s for s in SIZES if s <= int(args.max_mb * 1e6)):
        command = child + ["--size", str(size)]
        if args.isolated:
            print(isolated_row(size, names, command), flush=True)
        else:
            subprocess.run(command, check=True)


def isolated_row(size: int, names: list[str], command: list[str]) -> str:
    """The row for calls of `size` bytes, each contender timed in processes of its own: the
    contenders one after another, PASSES times over (A B C A B C), so that a slow spell of the
    machine is shared out rather than falling on one contender's every round."""
    results = alternated_results(command, names)
    times = {n: [t for r in rs for t in r["times"]] for n, rs in results.items()}
    # Lists and arrays encode different sets when unseen: each MB/s from its own set's bytes.
    best = {n: results[n][0]["bytes"] / 1e6 / min(times[n]) for n in names}
    spread = {n: max(ts) / min(ts) for n, ts in times.items()}
    return row(size, results[names[-1]][0]["calls"], best, spread, names)


def row(
    size: int, calls: int, best: dict[str, float], spread: dict[str, float], names: list[str]
) -> str:
    """The table's row: each contender's best MB/s and spread, then bpelm's ratios."""
    cells = [f"{best[n]:.0f} ({spread[n]:.2f}x)" for n in names]
    pairs = (("bpelm.encode(list)", "gigatoken.tolist()"), ("bpelm", "gigatoken"))
    ratios = [f"{best[a] / best[b]:.2f}" if b in best else "-" for a, b in pairs]
    return f"| {size:,} B | {calls:,} | " + " | ".join(cells + ratios) + " |"


def load_encoders(only: str | None) -> tuple[dict[str, Encoder], dict[str, Runner]]:
    """The contenders, as `text -> ids` and as their rounds (`round_runners`). For `only`,
    just it and bpelm (whose arrays check its ids): the other libraries are kept out of the
    process (an import that finds None in `sys.modules` fails), so that nothing of theirs is
    loaded beside it."""
    if only is not None:
        keep_out_all_but(LIBRARY.get(only, "bpelm"))
    # Their "not installed: skipped" lines would only mislead in an isolated child.
    quiet = contextlib.redirect_stdout(io.StringIO()) if only else contextlib.nullcontext()
    data = quick.DATA
    with quiet:
        libraries = quick.load_libraries(data / "gpt2" / "vocab.json", data / "gpt2" / "merges.txt")
    encoders = quick.encoders_of(libraries)
    if "gigatoken" in encoders:  # it returns numpy arrays; a list from it costs .tolist()
        giga = encoders["gigatoken"]
        encoders["gigatoken.tolist()"] = lambda t: giga(t).tolist()
    if only is not None and only not in encoders:
        sys.exit(f"{only}: its library did not load")
    return encoders, round_runners(libraries)


def reference_ids(encoders: dict[str, Encoder], texts: list[str]) -> list[np.ndarray]:
    """bpelm's arrays for the first CHECKED texts: the ids every contender must give. bpelm
    is checked exact against tiktoken by the tests (tests/test_tiktoken_parity.py), so its
    arrays stand for tiktoken's lists too, also in an isolated child, which has no tiktoken."""
    return [np.asarray(encoders["bpelm"](t), dtype=np.uint32) for t in texts[:CHECKED]]


def check_ids(fn: Encoder, name: str, texts: list[str], want: list[np.ndarray]) -> None:
    """Asserts that contender `name` gives the ids `want`: an array contender bpelm's arrays,
    a list contender those arrays made lists (`.tolist()`)."""
    for t, ids in zip(texts, want):
        got = fn(t)
        if name in ARRAYS:
            assert np.array_equal(np.asarray(got, dtype=np.uint32), ids), name
        else:
            assert got == ids.tolist(), name


def time_contenders(
    encoders: dict[str, Encoder],
    runners: dict[str, Runner],
    names: list[str],
    texts_for: Callable[[int, str], list[str]],
    rounds: int,
) -> dict[str, list[float]]:
    """Each of `names`' seconds in each of `rounds` rounds, taking turns within a round, after
    its ids are checked and round 0 warms it up."""
    want: dict[bool, list[np.ndarray]] = {}
    for name in names:  # the ids to match: bpelm's arrays on each kind's warm-up set
        if (name in ARRAYS) not in want:
            want[name in ARRAYS] = reference_ids(encoders, texts_for(0, name))
    for name in names:  # warm-up, and the ids checked
        texts = texts_for(0, name)
        check_ids(encoders[name], name, texts, want[name in ARRAYS])
        one_round(runners[name], texts)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(1, rounds + 1):
        for name in names:
            texts = texts_for(r, name)  # made (and the last round's freed) before the clock
            times[name].append(one_round(runners[name], texts))
    return times


def measure_size(
    size: int, rounds: int, seen: bool, same: bool, corpus: Path, only: str | None
) -> None:
    """Prints the table's row for calls of `size` bytes, measured in this process; for `only`
    (an isolated child), that contender's rounds alone, as one JSON line for the parent."""
    # Unseen: a library's list and array contenders take turns on the sets (lists on even
    # ones, arrays on odd ones), so that no library meets a text twice; an isolated child
    # keeps to its contender's sets all the same.
    sets = 1 if seen else 2 * (rounds + 1)
    with lzma.open(corpus, "rb") as f:
        raw = f.read(max(size, TEXT_BUDGET) * sets + 16)
    encoders, runners = load_encoders(only)
    names = [only] if only is not None else [n for n in ORDER if n in encoders]
    fixed = pieces(raw, size, 0) if same else None  # made once, before the warm-up

    def texts_for(round_: int, name: str) -> list[str]:
        """The texts `name` encodes in round `round_` (0 warms up): `fixed` if the same
        objects every round, else new str objects made now."""
        if fixed is not None:
            return fixed
        return pieces(raw, size, 0 if seen else 2 * round_ + (name in ARRAYS))

    times = time_contenders(encoders, runners, names, texts_for, rounds)
    texts = texts_for(0, names[-1])
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)  # makes no UTF-8 copy in the str
    if only is not None:
        print(json.dumps({"calls": len(texts), "bytes": n_bytes, "times": times[only]}))
        return
    best = {n: n_bytes / 1e6 / min(ts) for n, ts in times.items()}
    spread = {n: max(ts) / min(ts) for n, ts in times.items()}
    print(row(size, len(texts), best, spread, names), flush=True)


if __name__ == "__main__":
    main()
