"""Compressed corpora: reading them in the core, a window at a time, against 0.2.0's way
(decompress to a temporary copy with Python's opener, then train or encode the copy).

Each job runs in a fresh process (so peak RSS is the job's own), the two ways alternated,
`--rounds` times; the table gives the best wall time, the peak RSS and the text rate.

    python benches/bench_compressed.py FILE.gz [FILE.xz ...] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import machine

# One job, in a child process: prints {"seconds", "text_bytes", "peak_rss"} as JSON.
CHILD = r"""
import json, resource, shutil, sys, time
from pathlib import Path
from bpelm import Tokenizer, train_bpe
from bpelm.tokenizer.corpus import OPENERS
from bpelm.tokenizer.tokenizer import encode_file_sized

job, way, src, scratch, threads = sys.argv[1:6]
src, scratch, threads = Path(src), Path(scratch), int(threads)
tok = Tokenizer.gpt2()
t0 = time.perf_counter()
text = src
if way == "copy":
    text = scratch / "text.txt"
    with OPENERS[src.suffix](src, "rb") as fin, open(text, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 22)
if job == "encode":
    _, size = encode_file_sized(tok, text, scratch / "out.npy", num_threads=threads)
else:
    train_bpe(text, 10_000, ["<|endoftext|>"], num_threads=threads)
    size = None
seconds = time.perf_counter() - t0
if way == "copy":
    size = text.stat().st_size
    text.unlink()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "text_bytes": size, "peak_rss": rss}))
"""


def run(job: str, way: str, src: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bpelm-bench-", dir=src.parent) as scratch:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, job, way, str(src), scratch, str(threads)],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help=".gz, .xz or .bz2 text files")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", default="encode,train", help="encode, train or both")
    args = ap.parse_args()
    print(
        f"# {machine.describe()}, {args.threads} threads, "
        f"best of {args.rounds} fresh processes, ways alternated"
    )
    print("| file | job | way | seconds | text MB/s | peak RSS MB |")
    print("|---|---|---|---:|---:|---:|")
    for src in args.files:
        for job in args.jobs.split(","):
            runs: dict[str, list[dict]] = {"copy": [], "stream": []}
            for _ in range(args.rounds):
                for way in runs:
                    runs[way].append(run(job, way, src, args.threads))
            size = next(r["text_bytes"] for r in runs["copy"])
            for way, rs in runs.items():
                best = min(rs, key=lambda r: r["seconds"])
                print(
                    f"| {src.name} ({size / 1e6:.0f} MB of text) | {job} | "
                    f"{'temporary copy (0.2.0)' if way == 'copy' else 'streamed'} | "
                    f"{best['seconds']:.2f} | {size / 1e6 / best['seconds']:.0f} | "
                    f"{max(r['peak_rss'] for r in rs) / 1e6:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
