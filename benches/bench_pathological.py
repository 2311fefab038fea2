"""bpelm alone on the pathological inputs of bench_tokenizer.py: ms per MB, 1 thread, best of N.

    python benches/bench_pathological.py [--size-mb 1] [--repeats 3]

The inputs come from bench_tokenizer.patho_text, so they are byte for byte the same. It only
reports numbers; nothing here passes or fails on timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import machine  # noqa: E402
from bench_tokenizer import PATHO_CASES, patho_text  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data" / "gpt2"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", type=Path, default=DATA, help="folder with GPT-2's vocab files")
    args = ap.parse_args(argv)
    from bpelm.tokenizer import Tokenizer

    if not (args.data / "vocab.json").exists():
        print(f"{args.data}/vocab.json is absent", file=sys.stderr)
        return 1
    tok = Tokenizer.from_files(
        args.data / "vocab.json", args.data / "merges.txt", special_tokens=["<|endoftext|>"]
    )
    tok.encode_to_array("warm up, 123.")
    size = int(args.size_mb * 1_000_000)
    print(f"bpelm, GPT-2 vocab, {machine.describe()}, 1 thread, best of {args.repeats}")
    for case in PATHO_CASES:
        text = patho_text(case, size)
        mb = len(text.encode("utf-8")) / 1e6
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ids = tok.encode_to_array(text)
            best = min(best, time.perf_counter() - t0)
        print(f"  {case:14} {best * 1000 / mb:8.1f} ms/MB  ({len(ids)} tokens)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
