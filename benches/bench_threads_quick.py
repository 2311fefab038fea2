"""Quick multi-thread encode throughput of the installed bpelm build: a batch of documents
(`encode_batch_flat`) and a whole file (`encode_file`), both on `--threads` threads.

The first `--mb` MB of the web and books corpora, split into documents at `<|endoftext|>`;
the first call of each kind is reported (cold: fresh per-thread caches), then the best of
`--rounds` more (warm), in MB/s of wall-clock time and in MB per CPU-second. Only
`bpelm._core` is used, so any build of it can be timed by the same script: to compare two
builds, run this alternately with each one's Python, e.g.

    for i in 1 2 3; do for py in /tmp/venv-base/bin/python /tmp/venv-new/bin/python; do
        $py benches/bench_threads_quick.py --threads 2; done; done
"""

from __future__ import annotations

import argparse
import lzma
import resource
import tempfile
import time
from pathlib import Path

import bpelm._core as core
import machine

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CORPORA = {"web": "web_128M.txt.xz", "books": "books_train.txt.xz"}
EOT = "<|endoftext|>"


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads: on a shared machine, where other work
    stretches wall-clock times, MB per CPU-second still compares two builds' work."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=16.0, help="MB of each corpus (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="threads (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds (best kept)")
    args = parser.parse_args()
    gpt2 = DATA / "gpt2"
    tok = core.CoreTokenizer.from_files(gpt2 / "vocab.json", gpt2 / "merges.txt", [EOT])
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for corpus, fname in CORPORA.items():
            with lzma.open(DATA / fname, "rb") as f:
                text = f.read(int(args.mb * 1e6)).decode("utf-8", errors="ignore")
            docs = [d for d in text.split(EOT) if d]
            mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
            src = Path(tmp) / f"{corpus}.txt"
            src.write_text(text, encoding="utf-8")
            file_mb = src.stat().st_size / 1e6
            runs = {
                "batch": (mb, lambda d=docs: tok.encode_batch_flat(d, args.threads)),
                "file": (
                    file_mb,
                    lambda s=src: core.encode_file(
                        tok, s, Path(tmp) / "out.npy", num_threads=args.threads
                    ),
                ),
            }
            for kind, (size, call) in runs.items():
                times, cpu = [], []
                for _ in range(1 + args.rounds):
                    start, start_cpu = time.perf_counter(), cpu_seconds()
                    call()
                    times.append(time.perf_counter() - start)
                    cpu.append(cpu_seconds() - start_cpu)
                cold, warm = times[0], min(times[1:])
                cells.append(
                    f"{corpus} {kind} cold {size / cold:6.1f} warm {size / warm:6.1f}"
                    f" (per CPU-second {size / cpu[0]:5.1f} / {size / min(cpu[1:]):5.1f})"
                )
    print(
        f"{machine.describe()}, {args.threads} threads, {args.mb:g} MB, MB/s: " + " | ".join(cells)
    )


if __name__ == "__main__":
    main()
