"""Side-by-side tokenizer benchmark: bpelm against tiktoken, HF tokenizers, riptoken,
gigatoken, tokie, fastokens (encoding) and rustbpe, HF, gigatoken (training).

Every measurement runs in a fresh subprocess with the CPU affinity and thread-pool size of
its row, so rayon's process-global pools get the right size and peak RSS is per run.
It only reports numbers; nothing here passes or fails on timings.

    python benches/bench_tokenizer.py --quick            # a few MB, checks that it all runs
    python benches/bench_tokenizer.py                    # 32 MB encode, 128 MB training
    python benches/bench_tokenizer.py --only encode --threads 1,2 --size-mb 64

See benches/README.md for the sections, and how single-thread rows are kept single-threaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import contenders as C  # noqa: E402
import machine  # noqa: E402

PILE_BYTES = 825e9
DATASETS = {"web": "web_128M.txt.xz", "books": "books_train.txt.xz"}
PATHO_CASES = ("spaces", "newlines", "one-letter", "digits", "cjk-no-spaces", "latin1-random")


# ---- data --------------------------------------------------------------------------------


def cache_dir() -> Path:
    env = os.environ.get("BPELM_BENCH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base if env else base / "bpelm" / "bench"


def decompressed(data_dir: Path, name: str) -> Path:
    """The whole .xz corpus, decompressed once into the cache."""
    src = data_dir / DATASETS[name]
    if not src.exists():
        raise FileNotFoundError(f"{src} is absent: the benchmark needs ../shared/data")
    dst = cache_dir() / src.name.removesuffix(".xz")
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        with lzma.open(src, "rb") as fin, open(tmp, "wb") as fout:
            while chunk := fin.read(1 << 24):
                fout.write(chunk)
        tmp.replace(dst)
    return dst


def corpus_prefix(data_dir: Path, name: str, size_mb: float | None) -> Path:
    """The first `size_mb` MB of a corpus, cut back to a whole document (or the whole file)."""
    full = decompressed(data_dir, name)
    if size_mb is None or size_mb * 1e6 >= full.stat().st_size:
        return full
    dst = full.with_name(f"{full.stem}.{size_mb:g}MB.txt")
    if not dst.exists():
        with open(full, "rb") as f:
            data = f.read(int(size_mb * 1e6))
        cut = data.rfind(C.EOT.encode())
        tmp = dst.with_suffix(".tmp")
        tmp.write_bytes(data[:cut] if cut > 0 else data)
        tmp.replace(dst)
    return dst


def load_docs(path: Path) -> list[str]:
    return [d for d in path.read_text(encoding="utf-8").split(C.EOT) if d]


def patho_text(case: str, size: int) -> str:
    """A deterministic ~`size`-byte pathological input (UTF-8 size for the non-ASCII cases)."""
    rng = random.Random(1234)
    if case == "spaces":
        return " " * size
    if case == "newlines":
        return "\n" * size
    if case == "one-letter":
        return "a" * size
    if case == "digits":
        return "".join(rng.choice("0123456789") for _ in range(size))
    if case == "cjk-no-spaces":
        return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(size // 3))
    if case == "latin1-random":
        return bytes(rng.getrandbits(8) for _ in range(size)).decode("latin-1")
    raise ValueError(case)


# ---- worker (one measurement in a fresh process) ---------------------------------------------


def digest(ids: Any) -> str:
    import numpy as np

    return hashlib.sha1(np.ascontiguousarray(ids, dtype=np.uint32).tobytes()).hexdigest()[:16]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Peak anonymous and file-backed RSS, sampled from /proc/self/status.

    ru_maxrss counts the pages of a memory-mapped input file too, which the kernel can drop at
    will; the anonymous part is the memory a run really holds.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                key = line.split(":", 1)[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(line.split()[1]))
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self._sample()
        return {
            "peak_rss_anon_mb": self.peak["RssAnon"] / 1024,
            "peak_rss_file_mb": self.peak["RssFile"] / 1024,
        }


def worker(job: dict) -> dict:
    cpus = job.get("cpus")
    if cpus:
        os.sched_setaffinity(0, cpus)
    sampler = RssSampler().start()
    assets = C.Gpt2Assets(Path(job["vocab"]), Path(job["merges"]), Path(job["assets_dir"]))
    kind = job["kind"]
    out: dict[str, Any] = {}
    if kind == "encode":
        enc = C.ENCODERS[job["contender"]]()
        docs = load_docs(Path(job["path"]))
        n_bytes = sum(len(d.encode("utf-8")) for d in docs)
        t = time.perf_counter()
        enc.load(assets)
        out["load_s"] = time.perf_counter() - t
        out["api"] = enc.api
        # One cold pass per process: libraries cache the ids of words they have seen, and a
        # second pass over the same text would time those caches, not the encoder.
        # A tiny call first, so one-time lazy setup (regex JIT, thread pool) is not timed.
        enc.encode_docs(["Warm-up: one line, 123 words."] * job["threads"], job["threads"])
        c0, t0 = cpu_seconds(), time.perf_counter()
        res = enc.encode_docs(docs, job["threads"])
        dt = time.perf_counter() - t0
        out.update(time=dt, cpu_util=(cpu_seconds() - c0) / dt)
        flat = enc.flat(res)
        out.update(bytes=n_bytes, docs=len(docs), n_tokens=int(len(flat)), digest=digest(flat))
        del res, flat
        if job.get("warm"):
            t0 = time.perf_counter()
            enc.encode_docs(docs, job["threads"])
            out["warm_time"] = time.perf_counter() - t0
        if job.get("verify"):
            out["sample"] = verify_sample(enc, assets, docs, job["threads"])
    elif kind == "file":
        src, dst = Path(job["path"]), Path(job["dst"])
        t = time.perf_counter()
        run = C.file_encoder(job["contender"], assets)
        out["load_s"] = time.perf_counter() - t
        # Lazy one-time setup on a tiny file first; then one cold pass (see "encode").
        warm_src = dst.with_name("warm-up.txt")
        warm_src.write_text("Warm-up: one line.\n" + C.EOT + "\nAnother, 123.\n", encoding="utf-8")
        run(warm_src, dst, job["threads"])
        out["peak_rss_mb_after_load"] = rss_mb()
        t0 = time.perf_counter()
        n = run(src, dst, job["threads"])
        out.update(time=time.perf_counter() - t0, bytes=src.stat().st_size, n_tokens=n)
        dst.unlink(missing_ok=True)
    elif kind == "patho":
        enc = C.ENCODERS[job["contender"]]()
        enc.load(assets)
        text = patho_text(job["case"], job["size"])
        t0 = time.perf_counter()
        ids = enc.encode_text(text)
        out.update(seconds=time.perf_counter() - t0, bytes=len(text.encode("utf-8")))
        out.update(n_tokens=len(ids), digest=digest(ids))
    elif kind == "train":
        t0 = time.perf_counter()
        merges = C.train_with(
            job["contender"], Path(job["path"]), job["vocab_size"], job["threads"]
        )
        out["seconds"] = time.perf_counter() - t0
        out["n_merges"] = len(merges)
        Path(job["merges_out"]).write_text(json.dumps([[a.hex(), b.hex()] for a, b in merges]))
    out["peak_rss_mb_self"] = rss_mb()
    out.update(sampler.stop())
    return out


def verify_sample(enc: C.Encoder, assets: C.Gpt2Assets, docs: list[str], threads: int) -> dict:
    """Compares the contender's ids with tiktoken's on the first documents (~1 MB)."""
    sample, size = [], 0
    for d in docs:
        sample.append(d)
        size += len(d)
        if size > 1_000_000:
            break
    ref = C.TiktokenEncoder()
    ref.load(assets)
    want = ref.per_doc(ref.encode_docs(sample, 1))
    got = enc.per_doc(enc.encode_docs(sample, threads))
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if list(g) != list(w)]
    bad += list(range(len(got), len(want)))
    return {
        "docs": len(sample),
        "mismatched_docs": len(bad),
        "first_mismatch": bad[0] if bad else None,
    }


# ---- parent side: running workers ---------------------------------------------------------


class Runner:
    """Starts workers with the right threads, CPUs and timeout; reads their peak RSS."""

    def __init__(self, assets: C.Gpt2Assets, tmp: Path) -> None:
        self.assets = assets
        self.tmp = tmp
        self.allowed = sorted(os.sched_getaffinity(0))

    def run(self, job: dict, threads: int, timeout: float) -> dict:
        job = dict(job)
        job.update(
            vocab=str(self.assets.vocab_json),
            merges=str(self.assets.merges_txt),
            assets_dir=str(self.assets.cache_dir),
            threads=threads,
            cpus=self.allowed[:threads],
        )
        env = dict(os.environ)
        n = str(threads)
        env.update(
            RAYON_NUM_THREADS=n,
            RAYON_RS_NUM_CPUS=n,
            FASTOKENS_BPE_THREADS=n,
            OMP_NUM_THREADS=n,
            TOKENIZERS_PARALLELISM="true",
        )
        out_f = self.tmp / "worker.out"
        err_f = self.tmp / "worker.err"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)]
        t0 = time.perf_counter()
        with open(out_f, "wb") as fo, open(err_f, "wb") as fe:
            proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
            status, usage, timed_out = None, None, False
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() - t0 > timeout:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    timed_out = True
                    break
                time.sleep(0.02)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        result: dict[str, Any] = {"peak_rss_mb": usage.ru_maxrss / 1024, "wall_s": wall}
        if timed_out:
            result["error"] = f"timeout: killed after {timeout:g} s"
            result["timed_out"] = True
            return result
        text = out_f.read_text(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not text:
            err = err_f.read_text(errors="replace").strip().splitlines()
            result["error"] = (err[-1] if err else f"exit code {proc.returncode}")[:300]
            return result
        result.update(json.loads(text[-1]))
        return result


# ---- sections -------------------------------------------------------------------------------


def available(name: str) -> tuple[bool, str]:
    """Whether a contender can be imported here; the reason when it cannot."""
    module = {"hf-tokenizers": "tokenizers", "bpelm": "bpelm.tokenizer"}.get(name, name)
    try:
        __import__(module)
    except Exception as e:  # noqa: BLE001 - any import failure is a reason to report
        return False, f"cannot import {module}: {type(e).__name__}: {e}"
    return True, ""


def section_encode(args, runner: Runner, data_paths: dict[str, Path], names: list[str]) -> dict:
    rows, skipped = [], {}
    for ds, path in data_paths.items():
        ref_digest = None
        for name in names:
            ok, why = available(name)
            if not ok:
                skipped[name] = why
                continue
            for threads in args.threads:
                # Each repeat is a fresh process (cold caches); the first one also times a
                # second, warm pass and compares ~1 MB of documents with tiktoken.
                reps = []
                for i in range(args.repeats):
                    job = {"kind": "encode", "contender": name, "path": str(path)}
                    job.update(warm=i == 0, verify=i == 0)
                    reps.append(runner.run(job, threads, args.timeout * 3))
                    if "error" in reps[-1]:
                        break
                row = {"dataset": ds, "contender": name, "threads": threads, **reps[0]}
                if all("time" in r for r in reps):
                    row["times"] = [r["time"] for r in reps]
                    row["cpu_util"] = [r["cpu_util"] for r in reps]
                    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in reps)
                    best = min(row["times"])
                    row["best_s"] = best
                    row["mb_per_s"] = row["bytes"] / best / 1e6
                    row["warm_mb_per_s"] = row["bytes"] / row["warm_time"] / 1e6
                    digests = {r["digest"] for r in reps}
                    if name == "tiktoken" and threads == 1:
                        ref_digest = row["digest"]
                    row["ids_equal_tiktoken"] = (
                        None if ref_digest is None else digests == {ref_digest}
                    )
                else:
                    row["error"] = next(r["error"] for r in reps if "error" in r)
                rows.append(row)
                print_encode_row(row)
    # Scaling efficiency: rate(N) / (N * rate(1)), per contender and dataset.
    for row in rows:
        one = next(
            (
                r
                for r in rows
                if r["dataset"] == row["dataset"]
                and r["contender"] == row["contender"]
                and r["threads"] == 1
                and "mb_per_s" in r
            ),
            None,
        )
        if one and "mb_per_s" in row:
            row["scaling_eff"] = row["mb_per_s"] / (row["threads"] * one["mb_per_s"])
    return {"rows": rows, "skipped": skipped}


def print_encode_row(r: dict) -> None:
    if "mb_per_s" in r:
        match = {True: "yes", False: "NO", None: "?"}[r.get("ids_equal_tiktoken")]
        s = r.get("sample", {})
        print(
            f"  {r['dataset']:6} {r['contender']:14} {r['threads']:>3} thr "
            f"{r['mb_per_s']:8.2f} MB/s (warm {r['warm_mb_per_s']:8.2f})  "
            f"best {r['best_s']:6.2f} s  "
            f"cpu {max(r['cpu_util']):4.2f}  "
            f"sample-mismatch {s.get('mismatched_docs')}/{s.get('docs')}"
            f"  ids==tiktoken {match}  rss {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    else:
        print(
            f"  {r['dataset']:6} {r['contender']:14} {r['threads']:>3} thr  "
            f"FAILED: {r.get('error')}",
            flush=True,
        )


def section_file(
    args, runner: Runner, data_paths: dict[str, Path], names: list[str], sizes: list[Path]
) -> dict:
    """Whole-file encoding to .npy (uint16) at each thread count, and peak RSS on a few sizes."""
    rows, rss_rows = [], []
    path = data_paths["web"]
    for name in [n for n in C.FILE_ENCODERS if n in names]:
        ok, why = available(name)
        if not ok:
            rows.append({"contender": name, "error": why})
            continue
        for threads in args.threads:
            job = {"kind": "file", "contender": name, "path": str(path)}
            job["dst"] = str(runner.tmp / "out.npy")
            reps = []
            for _ in range(args.repeats):  # a fresh process per repeat, as for "encode"
                reps.append(runner.run(job, threads, args.timeout * 3))
                if "error" in reps[-1]:
                    break
            row = {"contender": name, "threads": threads, "dataset": "web", **reps[0]}
            if all("time" in r for r in reps):
                row["times"] = [r["time"] for r in reps]
                row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in reps)
                row["mb_per_s"] = row["bytes"] / min(row["times"]) / 1e6
                print(
                    f"  file   {name:14} {threads:>3} thr {row['mb_per_s']:8.2f} MB/s  "
                    f"peak RSS {row['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
            else:
                row["error"] = next(r["error"] for r in reps if "error" in r)
                print(f"  file   {name:14} {threads:>3} thr  FAILED: {row['error']}", flush=True)
            rows.append(row)
        threads = max(args.threads)
        for p in sizes:
            job = {
                "kind": "file",
                "contender": name,
                "path": str(p),
                "dst": str(runner.tmp / "out.npy"),
            }
            r = runner.run(job, threads, args.timeout * 3)
            row = {"contender": name, "threads": threads, "file_mb": p.stat().st_size / 1e6, **r}
            print(
                f"  rss    {name:14} {row['file_mb']:7.1f} MB file -> peak RSS "
                f"{r['peak_rss_mb']:.0f} MB (anonymous {r.get('peak_rss_anon_mb', 0):.0f} MB, "
                f"file-backed {r.get('peak_rss_file_mb', 0):.0f} MB) {r.get('error', '')}",
                flush=True,
            )
            rss_rows.append(row)
    return {"rows": rows, "rss": rss_rows}


def section_patho(args, runner: Runner, names: list[str]) -> dict:
    rows = []
    size = args.patho_mb * 1_000_000
    for case in PATHO_CASES:
        for name in names:
            ok, why = available(name)
            if not ok:
                continue
            job = {"kind": "patho", "contender": name, "case": case, "size": size}
            # Best of `--repeats` fresh processes, as in "encode": one cold call on this
            # virtual machine can take twice as long when its fresh memory comes slowly.
            r = runner.run(job, 1, args.patho_timeout)
            for _ in range(args.repeats - 1):
                if "seconds" not in r:
                    break
                again = runner.run(job, 1, args.patho_timeout)
                if again.get("seconds", float("inf")) < r["seconds"]:
                    r = again
            row = {"case": case, "contender": name, **r}
            if "seconds" in r:
                row["ms_per_mb"] = r["seconds"] * 1e3 / (r["bytes"] / 1e6)
                shown = f"{row['ms_per_mb']:10.1f} ms/MB  {r['n_tokens']} tokens"
            elif r.get("timed_out"):
                shown = f"> {args.patho_timeout:g} s (killed)"
            else:
                shown = f"FAILED: {r.get('error')}"
            print(f"  {case:14} {name:14} {shown}", flush=True)
            rows.append(row)
        # The reference ids: tiktoken's, or where tiktoken failed, the most common output.
        done = [r for r in rows if r["case"] == case and "digest" in r]
        digests = [r["digest"] for r in done]
        ref_row = next((r for r in done if r["contender"] == "tiktoken"), None)
        ref = (
            ref_row["digest"]
            if ref_row
            else (max(set(digests), key=digests.count) if digests else None)
        )
        for r in done:
            r["ids_reference"] = "tiktoken" if ref_row else "most common output"
            r["ids_equal_reference"] = r["digest"] == ref
    return {
        "rows": rows,
        "size_mb": args.patho_mb,
        "timeout_s": args.patho_timeout,
        "repeats": args.repeats,
    }


def section_train(args, runner: Runner, path: Path, names: list[str]) -> dict:
    rows, agreement = [], []
    for vocab_size in args.train_vocab:
        merges: dict[str, list] = {}
        for name in [n for n in C.TRAINERS if n in names]:
            ok, why = available("bpelm.tokenizer" if name == "bpelm" else name)
            out = runner.tmp / f"merges-{name}-{vocab_size}.json"
            if not ok:
                rows.append({"contender": name, "vocab_size": vocab_size, "error": why})
                print(f"  train {vocab_size:>6} {name:14} SKIPPED: {why}", flush=True)
                continue
            job = {
                "kind": "train",
                "contender": name,
                "path": str(path),
                "vocab_size": vocab_size,
                "merges_out": str(out),
            }
            r = runner.run(job, args.train_threads, args.train_timeout)
            row = {"contender": name, "vocab_size": vocab_size, "threads": args.train_threads, **r}
            rows.append(row)
            if "seconds" in r:
                merges[name] = [
                    (bytes.fromhex(a), bytes.fromhex(b)) for a, b in json.loads(out.read_text())
                ]
                print(
                    f"  train {vocab_size:>6} {name:14} {r['seconds']:8.1f} s  peak RSS "
                    f"{r['peak_rss_mb']:7.0f} MB  merges {r['n_merges']}",
                    flush=True,
                )
            else:
                print(f"  train {vocab_size:>6} {name:14} FAILED: {r.get('error')}", flush=True)
        ref = "hf-tokenizers"
        for name, m in merges.items():
            if name != ref and ref in merges:
                agreement.append(
                    {
                        "vocab_size": vocab_size,
                        "a": name,
                        "b": ref,
                        **C.merge_agreement(m, merges[ref]),
                    }
                )
    return {
        "rows": rows,
        "agreement": agreement,
        "path_mb": path.stat().st_size / 1e6,
        "threads": args.train_threads,
    }


def pile_estimate(encode: dict | None, file: dict | None, ncpu: int, dataset: str = "web") -> dict:
    """825 GB at the best measured all-core rate, and extrapolated to 16 cores.

    Both the in-memory rows (`dataset`, ids equal to tiktoken's) and the whole-file rows
    count; each contender gets the API with the best rate at the top thread count.
    """
    rows = [
        {**r, "via": "in-memory documents"}
        for r in (encode or {}).get("rows", [])
        if "mb_per_s" in r and r["dataset"] == dataset and r.get("ids_equal_tiktoken") is not False
    ]
    rows += [
        {**r, "via": "whole file -> .npy"} for r in (file or {}).get("rows", []) if "mb_per_s" in r
    ]
    if not rows:
        return {}
    top = max(r["threads"] for r in rows)
    out: dict[str, Any] = {"pile_gb": PILE_BYTES / 1e9, "measured_threads": top}
    per: dict[str, dict] = {}
    for name, via in sorted({(r["contender"], r["via"]) for r in rows}):
        mine = {r["threads"]: r for r in rows if r["contender"] == name and r["via"] == via}
        if top not in mine:
            continue
        rate = mine[top]["mb_per_s"]
        est = {"via": via, "mb_per_s": rate, "minutes_measured": PILE_BYTES / (rate * 1e6) / 60}
        if 1 in mine and top > 1:
            eff = rate / (top * mine[1]["mb_per_s"])
            rate16 = rate if top >= 16 else mine[1]["mb_per_s"] * 16 * eff
            est.update(
                scaling_eff_at_top=eff,
                mb_per_s_16_extrapolated=rate16,
                minutes_16_extrapolated=PILE_BYTES / (rate16 * 1e6) / 60,
            )
        if name not in per or rate > per[name]["mb_per_s"]:
            per[name] = est
    out["per_contender"] = per
    out["best"] = max(per, key=lambda n: per[n]["mb_per_s"])
    out["note"] = (
        f"measured on {top} threads of this {ncpu}-core machine (shared with other jobs); "
        "the 16-core figures are an extrapolation, not a measurement: rate(1 thread) x 16 x "
        f"the scaling efficiency measured at {top} threads, with the same API"
    )
    return out


# ---- report -------------------------------------------------------------------------------


def machine_info() -> dict:
    versions = {}
    for name in [
        "bpelm",
        "tiktoken",
        "tokenizers",
        "riptoken",
        "gigatoken",
        "tokie",
        "fastokens",
        "rustbpe",
        "numpy",
    ]:
        versions[name] = C.version_of(name)
    try:  # which bpelm (and harness) was measured
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "git_commit": commit or None,
        "cpu_model": machine.cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": machine.usable_cpus(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "loadavg_start": os.getloadavg(),
    }


def tag_for(info: dict, quick: bool) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", info["cpu_model"].lower()).strip("-")[:40]
    return f"{slug}-{info['cpus_allowed']}c" + ("-quick" if quick else "")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["encode"]["rows"] if "mb_per_s" in r]
    datasets = sorted({r["dataset"] for r in rows})
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for name in sorted({r["contender"] for r in rows}):
            pts = sorted(
                (r["threads"], r["mb_per_s"])
                for r in rows
                if r["dataset"] == ds and r["contender"] == name
            )
            bad = any(
                r.get("ids_equal_tiktoken") is False
                for r in rows
                if r["dataset"] == ds and r["contender"] == name
            )
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                marker="o",
                linestyle="--" if bad else "-",
                label=name + (" (ids differ from tiktoken)" if bad else ""),
                linewidth=2.5 if name == "bpelm" else 1.2,
            )
        if ds == "web":  # whole-file rows are measured on the web corpus
            file_rows = [r for r in results.get("file", {}).get("rows", []) if "mb_per_s" in r]
            for name in sorted({r["contender"] for r in file_rows}):
                pts = sorted(
                    (r["threads"], r["mb_per_s"]) for r in file_rows if r["contender"] == name
                )
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="s",
                    linestyle=":",
                    label=f"{name} (whole file -> .npy)",
                )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")  # the contenders span two orders of magnitude
        ax.set_xticks(sorted({r["threads"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("threads (= CPUs the process may use)")
        ax.set_ylabel("MB/s (UTF-8 bytes of documents)")
        ax.set_title(f"GPT-2 encode, {ds} ({results['sizes_mb'][ds]:.0f} MB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    m = results["machine"]
    fig.suptitle(f"{m['cpu_model']}, {m['cpus_allowed']} CPUs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(results: dict) -> None:
    m = results["machine"]
    print("\n=== summary ===")
    print(
        f"machine: {m['cpu_model']}, {m['cpus_allowed']} CPUs usable, python {m['python']}, "
        f"load avg at start {m['loadavg_start'][0]:.2f}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v))
    if "encode" in results:
        enc = results["encode"]
        print(
            f"\nencode (GPT-2 vocab, whole documents; MB = 1e6 UTF-8 bytes; best of "
            f"{results['args']['repeats']}):"
        )
        ths = sorted({r["threads"] for r in enc["rows"]})
        for ds in sorted({r["dataset"] for r in enc["rows"]}):
            print(f"  {ds} ({results['sizes_mb'][ds]:.1f} MB):")
            print(
                "    "
                + f"{'contender':14}"
                + "".join(f"{t:>9}thr" for t in ths)
                + "  ids==tiktoken"
            )
            for name in dict.fromkeys(r["contender"] for r in enc["rows"]):
                mine = {
                    r["threads"]: r
                    for r in enc["rows"]
                    if r["dataset"] == ds and r["contender"] == name
                }
                cells = "".join(
                    f"{mine[t]['mb_per_s']:12.2f}"
                    if t in mine and "mb_per_s" in mine[t]
                    else f"{'fail':>12}"
                    for t in ths
                )
                eq = {mine[t].get("ids_equal_tiktoken") for t in mine}
                shown = (
                    "yes" if eq == {True} else ("NO (rates not comparable)" if False in eq else "?")
                )
                print(f"    {name:14}{cells}  {shown}")
        for name, why in enc["skipped"].items():
            print(f"  skipped {name}: {why}")
    if results.get("pile"):
        p = results["pile"]
        b = p["per_contender"][p["best"]]
        print(
            f"\nThe Pile ({p['pile_gb']:.0f} GB): best measured {p['best']} "
            f"{b['mb_per_s']:.1f} MB/s on {p['measured_threads']} threads -> "
            f"{b['minutes_measured']:.0f} min"
        )
        for name, e in p["per_contender"].items():
            extra = (
                f"; 16 cores (extrapolated) {e['mb_per_s_16_extrapolated']:.0f} MB/s -> "
                f"{e['minutes_16_extrapolated']:.0f} min"
                if "minutes_16_extrapolated" in e
                else ""
            )
            print(f"  {name:14} {e['minutes_measured']:8.0f} min measured ({e['via']}){extra}")
    if "file" in results:
        print("\nwhole-file encode to .npy uint16 (web):")
        for r in results["file"]["rows"]:
            rate = f"{r['mb_per_s']:8.2f} MB/s" if "mb_per_s" in r else f"FAILED: {r.get('error')}"
            print(f"  {r['contender']:14} {r.get('threads', '-'):>3} thr {rate}")
        for r in results["file"]["rss"]:
            print(
                f"  {r['contender']:14} {r['file_mb']:7.1f} MB file: "
                f"peak RSS {r['peak_rss_mb']:6.0f} MB {r.get('error', '')}"
            )
    if "patho" in results:
        pa = results["patho"]
        names = list(dict.fromkeys(r["contender"] for r in pa["rows"]))
        print(
            f"\npathological inputs, ms per MB ({pa['size_mb']} MB, 1 thread, one cold call, "
            f"best of {pa.get('repeats', 1)} processes; * = ids differ):"
        )
        print("  " + f"{'case':14}" + "".join(f"{n[:13]:>14}" for n in names))
        for case in PATHO_CASES:
            cells = []
            for n in names:
                r = next((x for x in pa["rows"] if x["case"] == case and x["contender"] == n), None)
                if r is None:
                    cells.append(f"{'-':>14}")
                elif "ms_per_mb" in r:
                    mark = "" if r.get("ids_equal_reference", True) else "*"
                    cells.append(f"{r['ms_per_mb']:13.1f}{mark or ' '}")
                elif r.get("timed_out"):
                    cells.append(f"{'>' + format(pa['timeout_s'], 'g') + ' s':>14}")
                else:
                    cells.append(f"{'error':>14}")
            print(f"  {case:14}" + "".join(cells))
    if "train" in results:
        t = results["train"]
        print(f"\ntraining on {t['path_mb']:.1f} MB, {t['threads']} threads:")
        for r in t["rows"]:
            if "seconds" in r:
                print(
                    f"  {r['vocab_size']:>6} {r['contender']:14} {r['seconds']:8.1f} s  "
                    f"peak RSS {r['peak_rss_mb']:7.0f} MB"
                )
            else:
                print(f"  {r['vocab_size']:>6} {r['contender']:14} {r.get('error')}")
        for a in t["agreement"]:
            print(
                f"  merges {a['a']} vs {a['b']} @ {a['vocab_size']}: common prefix "
                f"{a['common_prefix']}, set overlap {a['set_overlap']}/"
                f"{min(a['len_a'], a['len_b'])}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a few MB and few repeats: checks it runs")
    ap.add_argument(
        "--only",
        default="encode,file,train,patho",
        help="comma list of sections: encode, file, train, patho",
    )
    ap.add_argument(
        "--threads", default=None, help="comma list (default 1,2,4,8,16 up to the CPUs)"
    )
    ap.add_argument(
        "--size-mb", type=float, default=None, help="encode prefix per corpus (default 32)"
    )
    ap.add_argument(
        "--train-size-mb", type=float, default=None, help="training prefix (default: all)"
    )
    ap.add_argument("--train-vocab", default="10000,32000")
    ap.add_argument("--train-threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None, help="best of N (default 3)")
    ap.add_argument("--contenders", default=",".join(C.ENCODERS) + ",rustbpe")
    ap.add_argument("--patho-mb", type=int, default=1)
    ap.add_argument(
        "--patho-timeout", type=float, default=None, help="seconds per case (default 60)"
    )
    ap.add_argument("--timeout", type=float, default=300, help="seconds per encode repeat")
    ap.add_argument("--train-timeout", type=float, default=1800)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--tag", default=None, help="results file tag (default: CPU model and count)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    ncpu = len(os.sched_getaffinity(0))
    wanted = [1, 2, 4, 8, 16] if args.threads is None else [int(x) for x in args.threads.split(",")]
    args.threads = [t for t in wanted if t <= ncpu] or [1]
    if args.size_mb is None:
        args.size_mb = 4 if args.quick else 32
    if args.train_size_mb is None and args.quick:
        args.train_size_mb = 4
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3
    if args.patho_timeout is None:
        args.patho_timeout = 20 if args.quick else 60
    args.train_threads = args.train_threads or min(2, ncpu)
    args.train_vocab = [int(x) for x in args.train_vocab.split(",")]
    sections = set(args.only.split(","))
    names = [n for n in args.contenders.split(",") if n]
    enc_names = [n for n in names if n in C.ENCODERS]
    # tiktoken is the reference for id equality, so it runs first.
    enc_names.sort(key=lambda n: n != "tiktoken")

    assets = C.Gpt2Assets(
        args.data_dir / "gpt2" / "vocab.json",
        args.data_dir / "gpt2" / "merges.txt",
        cache_dir() / "assets",
    )
    assets.build()
    info = machine_info()
    results: dict[str, Any] = {
        "command": " ".join(["python benches/bench_tokenizer.py", *sys.argv[1:]]),
        "machine": info,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    print(
        f"machine: {info['cpu_model']}, {ncpu} CPUs; threads {args.threads}; "
        f"load avg {info['loadavg_start'][0]:.2f}",
        flush=True,
    )

    args.out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or tag_for(info, args.quick)
    json_path = args.out / f"tokenizer-{tag}.json"

    def save() -> None:
        """Writes what is measured so far (after every section: a long run keeps its data)."""
        results["machine"]["loadavg_end"] = os.getloadavg()
        tmp_path = json_path.with_suffix(".json.tmp")
        tmp_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        tmp_path.replace(json_path)

    with tempfile.TemporaryDirectory(prefix="bpelm-bench-") as tmp:
        runner = Runner(assets, Path(tmp))
        data_paths = {ds: corpus_prefix(args.data_dir, ds, args.size_mb) for ds in DATASETS}
        results["sizes_mb"] = {ds: p.stat().st_size / 1e6 for ds, p in data_paths.items()}
        if "encode" in sections:
            sizes = ", ".join(f"{k} {v:.1f} MB" for k, v in results["sizes_mb"].items())
            print(f"\n== encode ({sizes})", flush=True)
            results["encode"] = section_encode(args, runner, data_paths, enc_names)
            save()
        if "file" in sections:
            print("\n== whole-file encode to .npy (uint16)", flush=True)
            small = corpus_prefix(args.data_dir, "web", max(1.0, args.size_mb / 4))
            sizes = [small, data_paths["web"]]
            if not args.quick:
                sizes.append(corpus_prefix(args.data_dir, "web", None))
            results["file"] = section_file(args, runner, data_paths, enc_names, sizes)
            save()
        if "encode" in results or "file" in results:
            results["pile"] = pile_estimate(results.get("encode"), results.get("file"), ncpu)
        if "patho" in sections:
            print(f"\n== pathological inputs ({args.patho_mb} MB, 1 thread)", flush=True)
            results["patho"] = section_patho(args, runner, enc_names)
            save()
        if "train" in sections:
            path = corpus_prefix(args.data_dir, "web", args.train_size_mb)
            print(
                f"\n== training ({path.stat().st_size / 1e6:.1f} MB, {args.train_threads} threads)",
                flush=True,
            )
            results["train"] = section_train(args, runner, path, names)
            save()
    save()
    if "encode" in results:
        plot(results, args.out / f"tokenizer-{tag}.png")
    print_summary(results)
    print(f"\nwrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
