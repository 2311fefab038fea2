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

    python benches/bench_call_sizes.py [--rounds 5] [--max-mb 10]
"""

from __future__ import annotations

import argparse
import importlib.util
import lzma
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_encode_quick as quick  # noqa: E402  (the contenders, loaded one way)

TEXT_BUDGET = 8_000_000
MAX_CALLS = 20_000


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


def one_round(fn, texts: list[str]) -> float:
    t0 = time.perf_counter()
    for t in texts:
        fn(t)
    return time.perf_counter() - t0


ORDER = ("bpelm.encode(list)", "gigatoken.tolist()", "bpelm", "gigatoken", "tiktoken")
LABEL = {"bpelm": "bpelm.encode_to_array", "bpelm.encode(list)": "bpelm.encode (list)"}
ARRAYS = {"bpelm", "gigatoken"}
SIZES = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)


def contender_names() -> list[str]:
    """The table's columns: bpelm's two calls, and the other libraries that are installed."""
    have = {m: importlib.util.find_spec(m) is not None for m in ("gigatoken", "tiktoken")}
    needs = {"gigatoken.tolist()": "gigatoken", "gigatoken": "gigatoken", "tiktoken": "tiktoken"}
    return [n for n in ORDER if n not in needs or have[needs[n]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-mb", type=float, default=10.0)
    ap.add_argument("--seen", action="store_true", help="the same pieces every round")
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)  # one row, in a child process
    args = ap.parse_args()
    corpus = quick.DATA / quick.CORPORA["web"]
    if not corpus.exists():
        print(f"{corpus} not found: nothing to measure")
        return
    if args.size is not None:
        measure_size(args.size, args.rounds, args.seen, corpus)
        return
    names = contender_names()
    print(
        f"# {platform.machine()}, {os.cpu_count()} CPUs, one thread, web text, GPT-2 vocabulary; "
        f"best of {args.rounds} rounds after one to warm up, on "
        f"{'the same text every round' if args.seen else 'unseen text every round'}, "
        "each size in a fresh process; spread = slowest / fastest round"
    )
    print(
        "| call size | calls | "
        + " | ".join(LABEL.get(n, n) for n in names)
        + " | list / giga list | array / giga array |"
    )
    print("|---:|---:|" + "---:|" * (len(names) + 2), flush=True)
    for size in (s for s in SIZES if s <= int(args.max_mb * 1e6)):
        command = [sys.executable, __file__, "--rounds", str(args.rounds), "--size", str(size)]
        subprocess.run(command + (["--seen"] if args.seen else []), check=True)


def measure_size(size: int, rounds: int, seen: bool, corpus: Path) -> None:
    """Prints the table's row for calls of `size` bytes, measured in this process."""
    # Unseen: a library's list and array contenders take turns on the sets (lists on even
    # ones, arrays on odd ones), so that no library meets a text twice.
    sets = 1 if seen else 2 * (rounds + 1)
    with lzma.open(corpus, "rb") as f:
        raw = f.read(max(size, TEXT_BUDGET) * sets + 16)
    data = quick.DATA
    encoders = quick.load_encoders(data / "gpt2" / "vocab.json", data / "gpt2" / "merges.txt")
    if "gigatoken" in encoders:  # it returns numpy arrays; a list from it costs .tolist()
        giga = encoders["gigatoken"]
        encoders["gigatoken.tolist()"] = lambda t: giga(t).tolist()
    names = [n for n in ORDER if n in encoders]

    def texts_for(round_: int, name: str) -> list[str]:
        return pieces(raw, size, 0 if seen else 2 * round_ + (name in ARRAYS))

    want = {
        kind: [np.asarray(encoders["bpelm"](t), dtype=np.uint32) for t in texts[:50]]
        for kind, texts in ((k, texts_for(0, k)) for k in ("bpelm", "tiktoken"))
    }
    for name in names:  # warm-up, and the ids checked
        texts = texts_for(0, name)
        got = [np.asarray(encoders[name](t), dtype=np.uint32) for t in texts[:50]]
        kind = "bpelm" if name in ARRAYS else "tiktoken"
        assert all(np.array_equal(a, b) for a, b in zip(got, want[kind])), name
        one_round(encoders[name], texts)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(1, rounds + 1):
        for name in names:
            times[name].append(one_round(encoders[name], texts_for(r, name)))
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    best = {n: n_bytes / 1e6 / min(ts) for n, ts in times.items()}
    cells = [f"{best[n]:.0f} ({max(times[n]) / min(times[n]):.2f}x)" for n in names]
    pairs = (("bpelm.encode(list)", "gigatoken.tolist()"), ("bpelm", "gigatoken"))
    ratios = [f"{best[a] / best[b]:.2f}" if b in best else "-" for a, b in pairs]
    print(f"| {size:,} B | {len(texts):,} | " + " | ".join(cells + ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
