"""Where a warm encode pass waits, counted rather than timed: valgrind's cachegrind simulates
the caches and a branch predictor, so its counts repeat from run to run on a loud machine
where timings do not.

Each library encodes the same `str` objects (pieces of `--size` bytes of `--mb` MB of web
text, GPT-2's vocabulary, one thread) once, and in another run three times, each run under
cachegrind; half the difference of the two is one warm pass, free of start-up and of the
cold pass. Per warm pass it reports instructions, first-level and last-level data misses,
and conditional and indirect branches with their mispredictions. The last level simulated
is a 1.25 MB cache (`--ll-kb`), a core's L2 on the Xeons this ran on: the shared L3 is
what other tenants of a machine contend for. These are cachegrind's models, not the
processor's: read the ratios between libraries, not the absolute counts.

    python benches/cachegrind_passes.py [--mb 10] [--size 10000] [--only bpelm]

Needs valgrind (`apt-get install valgrind`); about a minute per library at 10 MB.
"""

from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import machine  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data"
LIBRARIES = ("bpelm", "gigatoken")


def child(library: str, text_path: Path, size: int, passes: int) -> None:
    """Encodes the pieces of the text at `text_path` `passes` times with `library`."""
    import bench_call_sizes
    import bench_encode_quick as quick

    raw = text_path.read_bytes()
    texts = [raw[i : i + size].decode("utf-8", errors="ignore") for i in range(0, len(raw), size)]
    gpt2 = DATA / "gpt2"
    libraries = quick.load_libraries(gpt2 / "vocab.json", gpt2 / "merges.txt")
    # The call each library makes in bench_call_sizes' rounds (arrays: its `encode_to_array`
    # and gigatoken's `encode`), so that the counts are of what those tables time.
    run = bench_call_sizes.round_runners(libraries)[library]
    for _ in range(passes):
        run(texts)


def counts(library: str, text_path: Path, size: int, passes: int, ll_kb: int) -> dict[str, int]:
    """cachegrind's totals for a child run of `passes` passes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cachegrind.out"
        cmd = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=yes",
            "--branch-sim=yes",
            "--D1=49152,12,64",
            f"--LL={ll_kb * 1024},20,64",
            f"--cachegrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            library,
            str(text_path),
            str(size),
            str(passes),
        ]
        # A fixed hash seed, so that the interpreter's own branches go alike in both runs.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        # The file names its events ("events: Ir I1mr ...") and sums them ("summary: ...").
        fields = dict(line.split(":", 1) for line in out.read_text().splitlines() if ":" in line)
        names, totals = fields["events"].split(), fields["summary"].split()
        return dict(zip(names, map(int, totals), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="MB of web text (default 10)")
    ap.add_argument("--size", type=int, default=10_000, help="bytes a call (default 10,000)")
    ap.add_argument("--only", default="", help="comma-separated libraries (bpelm, gigatoken)")
    ap.add_argument("--ll-kb", type=int, default=1280, help="last-level cache, KB (20-way)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        library, path, size, passes = args.child
        child(library, Path(path), int(size), int(passes))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    corpus = DATA / "web_128M.txt.xz"
    if not corpus.exists():
        raise SystemExit(f"{corpus} is missing: this needs ../shared/data")
    libraries = [x for x in (args.only.split(",") if args.only else LIBRARIES) if x]
    print(
        f"# {machine.describe()}; cachegrind, one thread, {args.mb:g} MB of web text in calls "
        f"of {args.size:,} bytes, the same str objects each pass; per warm pass (millions)"
    )
    print("| library | instructions | D1 misses | LL misses | branches | mispredicted |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        text_path = Path(tmp) / "text"
        with lzma.open(corpus, "rb") as f:
            text_path.write_bytes(f.read(int(args.mb * 1e6)))
        for library in libraries:
            one = counts(library, text_path, args.size, 1, args.ll_kb)
            three = counts(library, text_path, args.size, 3, args.ll_kb)
            per = {k: (three[k] - one[k]) / 2 / 1e6 for k in three}
            print(
                f"| {library} | {per['Ir']:.1f} | {per['D1mr'] + per['D1mw']:.2f} | "
                f"{per['DLmr'] + per['DLmw']:.2f} | {per['Bc'] + per['Bi']:.1f} | "
                f"{per['Bcm'] + per['Bim']:.3f} |"
            )


if __name__ == "__main__":
    main()
