"""Every LM and tokenizer figure issue #14 asks of a GPU host, in one run of under 8 minutes.

A GPU host comes for minutes, fresh and offline. Prepare its folder here, once (wheels and
data, under 64 MiB, carried with the checkout):

    bash benches/gpu_check.sh --prepare .carry/gpu      # maturin wheel, tiktoken/gigatoken, data

On the host (or here, with --device cpu):

    bash benches/gpu_check.sh --from .carry/gpu --out "$OUT"
    bash benches/gpu_check.sh --smoke --out /tmp/gc     # toy sizes on a CPU, under a minute

It installs the carried wheels offline (`pip install --no-index --no-deps --target`), prints
the machine, then runs four steps, each in its own process under its own time limit, so one
failure or hang cannot eat the rest. After each step `report.json` and `report.md` in --out
are rewritten, so a run cut off still leaves what it finished:

1. train step at the TinyStories 17M shape: plain PyTorch fp32 eager and bf16 + compile,
   bpelm's reference fp32 path and its fast path; tokens/s, MFU, peak memory, ratios
   (`bench_train_step.py`);
2. the loss race, bpelm train against the plain script on the carried books corpus,
   tokenized here by bpelm (`bench_loss_race.py`): wall-clock to a stated validation loss,
   both curves on one plot (race.png);
3. generation, 256 new tokens at batch 1 and 64: KV cache eager and compiled, and a plain
   PyTorch loop without a cache (`bench_train_step.py --decode-*`);
4. the tokenizer on the host's CPUs: encode of >= 50 MB (the books corpus repeated) at
   1..16 threads for bpelm, gigatoken and tiktoken where installed, the Pile estimate, and
   BPE training of 10K at 1 and 16 threads (`bench_tokenizer.py`'s sections).

CUDA-only parts (compile modes, bf16) say "skipped: no CUDA" on a CPU.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import machine as machine_words  # noqa: E402  (`machine` below reports more)

MIB = 1 << 20
CARRY_LIMIT = 64 * MIB
DATA_FILES = ("books_train.txt.xz", "books_valid.txt.xz", "gpt2/vocab.json", "gpt2/merges.txt")
# What the comparison wheels are downloaded for: the GPU image's python3 (3.12) and this one.
WHEEL_PACKAGES = ("tiktoken", "regex", "gigatoken")
STEPS = ("train_step", "loss_race", "generation", "tokenizer")
# Seconds per step on the GPU host (full size) and in --smoke; a step past it is killed.
LIMITS = {
    "full": {"train_step": 130, "loss_race": 215, "generation": 60, "tokenizer": 75},
    "smoke": {"train_step": 90, "loss_race": 90, "generation": 90, "tokenizer": 90},
    # Full size on a CPU, the baseline for the GPU figures: the same steps, each with the
    # time a CPU needs (two 90 s contestants and their scoring; decoding without a cache).
    "cpu": {"train_step": 130, "loss_race": 300, "generation": 240, "tokenizer": 75},
}
# On a CPU at full size: validation windows scored after the race (640 take minutes), and
# the decode test's new tokens and batches (a batch of 64 without a cache takes hours).
CPU_RACE_WINDOWS = 64
CPU_DECODE = ("64", ["1", "8"])
# Every step's record holds these (the test checks them).
REPORT_FIELDS = {
    "train_step": ("status", "rows"),
    "loss_race": ("status", "target_loss", "bpelm", "plain", "time_to_target_ratio"),
    "generation": ("status", "rows"),
    "tokenizer": ("status", "encode", "pile", "train"),
}
TOY_MODEL = {"vocab_size": 512, "context_length": 64, "d_model": 64, "num_layers": 2}
TOY_MODEL.update(num_heads=4, d_ff=172)


# ---------------------------------------------------------------- preparing the folder


def prepare(folder: Path, wheel: Path | None = None) -> int:
    """The abi3 wheel (`maturin build --release`, or `wheel` when given), the comparison
    wheels and the data into `folder`."""
    wheels, data = folder / "wheels", folder / "data"
    for d in (wheels, data):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    if wheel is not None:
        shutil.copy2(wheel, wheels / wheel.name)
    else:
        maturin = shutil.which("maturin", path=str(Path(sys.executable).parent)) or "maturin"
        subprocess.run([maturin, "build", "--release", "--out", str(wheels)], cwd=REPO, check=True)
    for name in WHEEL_PACKAGES:
        for version in sorted({"3.12", f"{sys.version_info[0]}.{sys.version_info[1]}"}):
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
            cmd += ["--only-binary=:all:", "--python-version", version, "-d", str(wheels)]
            for plat in ("manylinux_2_28", "manylinux_2_17", "manylinux2014"):
                cmd += ["--platform", f"{plat}_x86_64"]
            got = subprocess.run([*cmd, name], capture_output=True, text=True)
            if got.returncode != 0:
                print(f"  {name} for Python {version}: no wheel ({got.stderr.strip()[-200:]})")
    shared = REPO.parent / "shared" / "data"
    for rel in DATA_FILES:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shared / rel, data / rel)
    files = [p for p in folder.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    manifest = {str(p.relative_to(folder)): p.stat().st_size for p in files}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    for rel, size in sorted(manifest.items()):
        print(f"  {size / MIB:7.2f} MiB  {rel}")
    print(f"{folder}: {total / MIB:.1f} MiB (limit {CARRY_LIMIT / MIB:.0f} MiB with the checkout)")
    return 0 if total < CARRY_LIMIT else 1


def install(folder: Path, site: Path) -> dict[str, str]:
    """Each carried wheel, offline, into `site` (one pip call per package: a wheel that does
    not fit this Python is reported, the others still go in)."""
    site.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}
    names = sorted({whl.name.split("-")[0].lower() for whl in (folder / "wheels").glob("*.whl")})
    for name in names:
        if name != "bpelm" and _importable(name):
            done[name] = "already installed"
            continue
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        cmd += ["--no-compile", "--target", str(site), "--find-links", str(folder / "wheels")]
        got = subprocess.run([*cmd, name], capture_output=True, text=True)
        done[name] = "installed" if got.returncode == 0 else f"failed: {got.stderr[-200:]}"
    sys.path.insert(0, str(site))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return done


def _importable(module: str) -> bool:
    probe = f"import {module}"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


# ---------------------------------------------------------------- the machine


def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": machine_words.usable_cpus(),
        "cpu": machine_words.cpu_model(),
        "platform": platform.platform(),
        "device": device,
    }
    smi = shutil.which("nvidia-smi")
    if smi:
        q = "--query-gpu=name,driver_version,memory.total"
        out = subprocess.run([smi, q, "--format=csv,noheader"], capture_output=True, text=True)
        info["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except ImportError as e:
        info["torch"] = f"missing: {e} (steps 1-3 need it and are skipped)"
    try:
        import bpelm

        info["bpelm"] = f"{bpelm.__version__} from {Path(bpelm.__file__).parent}"
    except ImportError as e:
        info["bpelm"] = f"missing: {e}"
    return info


# ---------------------------------------------------------------- running a step


def run_step(name: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """One step in its own process under its time limit: its record, or why there is none."""
    limit = LIMITS[profile(args)][name]
    out = scratch / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--step", name, "--scratch", str(scratch)]
    cmd += ["--device", args.device, "--out", str(args.out), "--data", str(args.data)]
    cmd += ["--smoke"] if args.smoke else []
    cmd += ["--batch", str(args.batch)] if args.batch else []
    t0 = time.perf_counter()
    # The child's output goes straight through: every figure prints as it is measured.
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the step and the benchmarks it started
        proc.wait()
        record = {"status": f"timeout: killed after {limit} s"}
    else:
        if out.exists():
            record = json.loads(out.read_text())
        else:
            record = {"status": f"failed (exit {proc.returncode}; its output is above)"}
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record["limit_s"] = limit
    for key in REPORT_FIELDS[name]:
        record.setdefault(key, None)
    return record


def _cuda(device: str) -> bool:
    return device.startswith("cuda")


def _bench(script: str, *argv: str) -> list[str]:
    return [sys.executable, str(HERE / script), *argv]


def _run(cmd: list[str]) -> None:
    """A child benchmark, its output passed through as it comes."""
    subprocess.run(cmd, check=True)


def step_train_step(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    cuda = _cuda(args.device)
    modes = ["torch fp32 eager", "torch bf16+sdpa+compile", "bpelm fp32 reference"]
    modes += ["bpelm bf16+fused+compile"] if cuda else ["bpelm fp32 fused"]
    batch = args.batch or (128 if cuda else 8)
    steps, warmup = (2, 1) if args.smoke else ((20, 5) if cuda else (5, 2))
    runnable = [m for m in modes if cuda or "compile" not in m]
    # Full size: one process per mode, so a mode that fails (a compile error, say) costs only
    # its own row. --smoke: one process for all, as start-up (importing torch) is most of it.
    groups = [runnable] if args.smoke else [[m] for m in runnable]
    measured: dict[str, dict[str, Any]] = {}
    for group in groups:
        out = scratch / "train_step_modes.json"
        out.unlink(missing_ok=True)
        cmd = _bench("bench_train_step.py", "--device", args.device, "--modes", *group)
        cmd += ["--steps", str(steps), "--warmup", str(warmup), "--batch-size", str(batch)]
        cmd += ["--decode-tokens", "0", "--out", str(out)]
        cmd += ["--model-json", json.dumps(TOY_MODEL)] if args.smoke else []
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=90)
            for row in json.loads(out.read_text())["train"]:
                measured[row["mode"]] = {**row, "status": "ok"}
        except (subprocess.SubprocessError, OSError) as e:
            for mode in group:
                measured[mode] = {"mode": mode, "status": f"failed: {type(e).__name__}"}
    rows = []
    for mode in modes:
        row = measured.get(mode, {"mode": mode, "status": "skipped: no CUDA"})
        rows.append(row)
        if "tokens_per_s" in row:
            print(
                f"  {mode:<26} {row['tokens_per_s']:>12,.0f} tok/s  MFU {100 * row['mfu']:5.1f}%"
                f"  peak {row['max_memory_gib'] or 0:.1f} GiB",
                flush=True,
            )
        else:
            print(f"  {mode:<26} {row['status']}", flush=True)
    for base in ("torch fp32 eager", "torch bf16+sdpa+compile"):
        ref = next((r for r in rows if r["mode"] == base and "tokens_per_s" in r), None)
        for r in rows:
            if ref and "tokens_per_s" in r:
                r[f"vs {base}"] = round(r["tokens_per_s"] / ref["tokens_per_s"], 3)
    return {"status": "ok", "batch": batch, "steps": steps, "rows": rows}


def profile(args: argparse.Namespace) -> str:
    """Which sizes and limits a run uses: "smoke", "cpu" (full size on a CPU) or "full"."""
    if args.smoke:
        return "smoke"
    return "full" if _cuda(args.device) else "cpu"


def step_loss_race(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    cuda = _cuda(args.device)
    data = Path(args.data)
    train_text = data / "books_train.txt.xz"
    if args.smoke:  # the first 2 MB: tokenizing all 28.8 MB would be half the smoke run
        train_text = scratch / "books_2MB.txt"
        with lzma.open(data / "books_train.txt.xz", "rb") as f:
            train_text.write_bytes(f.read(2_000_000).rsplit(b"\n", 1)[0])
    cmd = _bench("bench_loss_race.py", "--rounds", "1", "--device", args.device)
    cmd += ["--train-text", str(train_text)]
    cmd += ["--valid-text", str(data / "books_valid.txt.xz")]
    cmd += ["--work", str(scratch / "race"), "--out", str(scratch / "race.json")]
    cmd += ["--plot", str(Path(args.out) / "race.png")]
    if args.smoke:
        shape = [f"{k}={v}" for k, v in TOY_MODEL.items() if k != "vocab_size"]
        cmd += ["--config", str(REPO / "configs" / "tiny-cpu.toml"), "--budget-s", "5"]
        cmd += ["--vocab-size", "512", "--windows", "16"]
        sets = [*shape, "vocab_size=512", "batch_size=4", "eval_every=10", "eval_batches=2"]
    else:
        cmd += ["--config", str(REPO / "configs" / "tinystories-17m.toml"), "--budget-s", "90"]
        windows = "640" if cuda else str(CPU_RACE_WINDOWS)
        cmd += ["--vocab-size", "10000", "--windows", windows]
        batch = args.batch or (128 if cuda else 8)
        sets = [f"batch_size={batch}", "eval_every=50", "eval_batches=4", "log_every=10"]
        sets += ["checkpoint_every=100000", "max_steps=2000"]  # the token budget: 2000 steps
    cmd += [x for s in sets for x in ("--set", s)]
    cmd += ["--plain-bf16", "--plain-compile"] if cuda else []
    _run(cmd)
    result = json.loads((scratch / "race.json").read_text())
    summary, rnd = result["summary"], result["rounds"][0]
    target = summary["target_loss"]
    times = {n: summary[f"time_to_target_{n}"][0] for n in ("bpelm", "plain")}
    record: dict[str, Any] = {"status": "ok", "target_loss": target, "setup": result["setup"]}
    for name in ("bpelm", "plain"):
        r = rnd[name]
        record[name] = {
            "steps": r["steps"],
            "score": r["score"],
            "process_wall_s": round(r["process_wall_s"], 2),
            "time_to_target_s": None if times[name] is None else round(times[name], 1),
        }
    if times["bpelm"] is not None and times["plain"]:
        record["time_to_target_ratio"] = round(times["bpelm"] / times["plain"], 3)
    record["plot"] = "race.png"
    return record


def step_generation(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    cuda = _cuda(args.device)
    out = scratch / "generation.json"
    tokens, batches = {"smoke": ("16", ["1", "64"]), "cpu": CPU_DECODE}.get(
        profile(args), ("256", ["1", "64"])
    )
    cmd = _bench("bench_train_step.py", "--device", args.device, "--modes")
    cmd += ["--decode-tokens", tokens, "--decode-batches", *batches, "--plain-decode"]
    cmd += ["--out", str(out)]
    cmd += [] if cuda else ["--skip-compile"]
    cmd += ["--model-json", json.dumps(TOY_MODEL)] if args.smoke else []
    _run(cmd)
    rows = json.loads(out.read_text())["decode"]
    for r in rows:
        r["kind"] = (
            "plain PyTorch, no cache"
            if r.get("plain_pytorch")
            else ("kv-cache compiled" if r["compiled_step"] else "kv-cache eager")
            if r["kv_cache"]
            else "bpelm, no cache"
        )
    if not cuda:
        rows += [
            {"kind": "kv-cache compiled", "batch": int(b), "status": "skipped: no CUDA"}
            for b in batches
        ]
    return {"status": "ok", "new_tokens": int(tokens), "rows": rows}


def step_tokenizer(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    import bench_tokenizer as BT
    import contenders as C

    data = Path(args.data)
    ncpu = len(os.sched_getaffinity(0))
    size_mb = 3 if args.smoke else 50
    text = scratch / f"books_x{size_mb}MB.txt"
    if not text.exists():
        with lzma.open(data / "books_train.txt.xz", "rb") as f:
            books = f.read()
        if args.smoke:
            books = books[: size_mb * 10**6]
            books = books[: books.rfind(C.EOT.encode())]
        reps = -(-size_mb * 10**6 // len(books))
        text.write_bytes(books * reps)  # a repeat starts where a document ends
    assets = C.Gpt2Assets(data / "gpt2" / "vocab.json", data / "gpt2" / "merges.txt", scratch)
    assets.build()
    runner = BT.Runner(assets, scratch)
    threads = [t for t in (1, 2, 4, 8, 16) if t <= ncpu]
    names = [n for n in ("tiktoken", "bpelm", "gigatoken") if BT.available(n)[0]]
    ns = argparse.Namespace(threads=threads, repeats=1, timeout=20 if args.smoke else 30)
    encode = BT.section_encode(ns, runner, {"books": text}, names)
    pile = BT.pile_estimate(encode, None, ncpu, dataset="books")
    train_text = text if args.smoke else scratch / "books_train.txt"
    if not args.smoke and not train_text.exists():
        with lzma.open(data / "books_train.txt.xz", "rb") as f:
            train_text.write_bytes(f.read())
    train_rows = []
    for t in sorted({1, min(16, ncpu)}):
        ns = argparse.Namespace(train_vocab=[1000 if args.smoke else 10000], train_threads=t)
        ns.train_timeout = 15 if args.smoke else 25
        train_rows += BT.section_train(ns, runner, train_text, ["bpelm"])["rows"]
    bytes_ = text.stat().st_size
    return {
        "status": "ok",
        "text_mb": round(bytes_ / 1e6, 1),
        "threads": threads,
        "encode": [
            {k: r.get(k) for k in ("contender", "threads", "mb_per_s", "scaling_eff", "error")}
            | {"ids_equal_tiktoken": r.get("ids_equal_tiktoken")}
            for r in encode["rows"]
        ],
        "skipped": encode["skipped"],
        "pile": pile,
        "train": [
            {k: r.get(k) for k in ("contender", "vocab_size", "threads", "seconds", "error")}
            for r in train_rows
        ],
        "train_text_mb": round(train_text.stat().st_size / 1e6, 1),
    }


STEP_FUNCTIONS = {
    "train_step": step_train_step,
    "loss_race": step_loss_race,
    "generation": step_generation,
    "tokenizer": step_tokenizer,
}


def child(args: argparse.Namespace) -> int:
    """One step, in the process `run_step` started."""
    scratch = Path(args.scratch)
    if args.step != "tokenizer":
        try:
            import torch  # noqa: F401
        except ImportError as e:
            record = {"status": f"skipped: torch missing ({e})"}
            (scratch / f"{args.step}.json").write_text(json.dumps(record))
            return 0
    record = STEP_FUNCTIONS[args.step](args, scratch)
    (scratch / f"{args.step}.json").write_text(json.dumps(record, default=str))
    return 0


# ---------------------------------------------------------------- the report


def render(report: dict[str, Any]) -> str:
    """report.md: the figures as tables, each step's status first."""
    m = report["machine"]
    lines = [
        "# bpelm GPU check",
        "",
        f"{m.get('gpu') or m.get('cpu')}; {m.get('nvidia_smi', 'no nvidia-smi')}; "
        f"{m['cpus']} CPUs; torch {m.get('torch')}; Python {m['python']}; "
        f"{'smoke (toy sizes)' if report['smoke'] else 'full size'}; device {m['device']}.",
        "",
    ]
    steps = report["steps"]
    if "train_step" in steps:
        s = steps["train_step"]
        lines += [f"## 1. Train step ({s['status']}, batch {s.get('batch')})", ""]
        lines += ["| mode | tokens/s | MFU | peak GiB | vs torch fp32 | vs torch bf16+compile |"]
        lines += ["|---|---:|---:|---:|---:|---:|"]
        for r in s.get("rows") or []:
            if "tokens_per_s" not in r:
                lines.append(f"| {r['mode']} | {r['status']} | | | | |")
                continue
            mem = r.get("max_memory_gib")
            lines.append(
                f"| {r['mode']} | {r['tokens_per_s']:,.0f} | {100 * r['mfu']:.1f}% | "
                f"{'' if mem is None else f'{mem:.2f}'} | {r.get('vs torch fp32 eager', '')} | "
                f"{r.get('vs torch bf16+sdpa+compile', '')} |"
            )
        lines.append("")
    if "loss_race" in steps:
        s = steps["loss_race"]
        lines += [f"## 2. Loss race ({s['status']})", ""]
        if s.get("bpelm"):
            lines += [f"Target validation loss {s['target_loss']}; curves in race.png.", ""]
            windows = s["setup"]["windows"]
            lines += [f"| | steps | loss on {windows} windows | process s | s to target |"]
            lines += ["|---|---:|---:|---:|---:|"]
            for n in ("bpelm", "plain"):
                r = s[n]
                lines.append(
                    f"| {n} | {r['steps']} | {r['score']:.4f} | {r['process_wall_s']} | "
                    f"{r['time_to_target_s']} |"
                )
            lines += ["", f"Time to target, bpelm / plain: {s['time_to_target_ratio']}", ""]
    if "generation" in steps:
        s = steps["generation"]
        lines += [f"## 3. Generation, {s.get('new_tokens')} new tokens ({s['status']})", ""]
        lines += ["| kind | batch | tokens/s |", "|---|---:|---:|"]
        for r in s.get("rows") or []:
            rate = f"{r['tokens_per_s']:,.0f}" if "tokens_per_s" in r else r.get("status")
            lines.append(f"| {r['kind']} | {r['batch']} | {rate} |")
        lines.append("")
    if "tokenizer" in steps:
        s = steps["tokenizer"]
        lines += [f"## 4. Tokenizer ({s['status']}, {s.get('text_mb')} MB)", ""]
        lines += ["| contender | threads | MB/s | efficiency | ids == tiktoken |"]
        lines += ["|---|---:|---:|---:|---|"]
        for r in s.get("encode") or []:
            rate = f"{r['mb_per_s']:.1f}" if r.get("mb_per_s") else r.get("error")
            eff = f"{r['scaling_eff']:.3f}" if r.get("scaling_eff") else ""
            lines.append(
                f"| {r['contender']} | {r['threads']} | {rate} | {eff} | "
                f"{r['ids_equal_tiktoken']} |"
            )
        for name, est in ((s.get("pile") or {}).get("per_contender") or {}).items():
            lines.append(
                f"\nPile (825 GB), {name}: {est['minutes_measured']:.1f} min at "
                f"{est['mb_per_s']:.0f} MB/s measured"
                + (
                    f"; {est['minutes_16_extrapolated']:.1f} min at 16 threads"
                    if "minutes_16_extrapolated" in est
                    else ""
                )
            )
        for r in s.get("train") or []:
            took = f"{r['seconds']:.2f} s" if r.get("seconds") else r.get("error")
            lines.append(
                f"\nBPE training {r['vocab_size']} ({r['contender']}), "
                f"{r['threads']} threads: {took}"
            )
        lines.append("")
    lines += [f"Total {report.get('total_s')} s."]
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any], out: Path) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(render(report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--prepare", metavar="DIR", help="fill DIR with wheels and data, and stop")
    ap.add_argument("--wheel", type=Path, help="with --prepare: this bpelm wheel, not a build")
    ap.add_argument("--from", dest="folder", metavar="DIR", help="install DIR's wheels first")
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cuda or cpu")
    ap.add_argument("--smoke", action="store_true", help="toy sizes: proves it runs")
    ap.add_argument("--batch", type=int, default=0, help="train batch (default: 128 CUDA, 8 CPU)")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma list of steps to run")
    ap.add_argument("--data", default=None, help="data folder (default: DIR/data or ../shared)")
    ap.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prepare:
        return prepare(Path(args.prepare), args.wheel)
    if args.step:
        return child(args)

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"bpelm-gpu-check-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    installed = install(Path(args.folder), scratch / "site") if args.folder else {}
    if args.data is None:
        args.data = (
            str(Path(args.folder) / "data") if args.folder else str(REPO.parent / "shared" / "data")
        )
    if not (Path(args.data) / "books_train.txt.xz").exists():
        print(f"gpu_check: skipped: no books_train.txt.xz in {args.data} (see --prepare)")
        return 0
    if args.device == "auto":
        try:
            import torch

            args.device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            args.device = "cpu"
    report: dict[str, Any] = {
        "smoke": args.smoke,
        "machine": machine(args.device),
        "installed": installed,
        "steps": {},
    }
    print("machine: " + json.dumps(report["machine"]), flush=True)
    save(report, out)
    for name in [s for s in args.steps.split(",") if s]:
        print(f"== {name}", flush=True)
        report["steps"][name] = run_step(name, args, scratch)
        report["total_s"] = round(time.perf_counter() - t0, 1)
        print(
            f"   {name}: {report['steps'][name]['status']} in {report['steps'][name]['seconds']} s",
            flush=True,
        )
        save(report, out)
    print(f"wrote {out / 'report.md'} and report.json in {report['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
