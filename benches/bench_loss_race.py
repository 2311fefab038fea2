"""The loss race: `bpelm train` against a plain PyTorch script (`plain_lm.py`), the same data,
model shape, optimizer settings and schedule, for the same wall-clock from process start.

Each round runs both, one after the other, each in a fresh process, in alternating order (on a
shared machine a neighbour's build slows whichever runs beside it: alternating spreads that
over both, and the per-round ratios show it). Both are then scored on the same first
`--windows` validation windows (consecutive, non-overlapping) by one function,
`bpelm.training.evaluation.window_loss`.

    python benches/bench_loss_race.py                        # 3 rounds of 90 s, tiny-cpu shape
    python benches/bench_loss_race.py --rounds 5 --budget-s 60 --threads 2
    python benches/bench_loss_race.py --device cuda --config configs/tinystories-17m.toml \
        --plain-bf16 --plain-compile

Data: `../shared/data/books_train.txt.xz` and `books_valid.txt.xz` (or --train-text/--valid-text),
tokenized here by bpelm with a `--vocab-size` tokenizer trained on the training text (cached in
--work). Without the data the benchmark says so and exits 0.

The clock: the parent notes time.time() just before it starts a contestant and passes it as
--t0; each contestant stops training when `--budget-s` seconds have passed since then, so
imports and set-up are
inside the race. bpelm's budget (`train(started_at=...)`, as `bpelm train --max-minutes` runs)
also holds its end-of-run work (final evaluation, checkpoint, plot); the script stops training
at the budget and then evaluates and saves its weights. Process wall-clock is reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import machine  # noqa: E402

SPECIAL = "<|endoftext|>"


# ---------------------------------------------------------------- data


def shared_data(name: str) -> Path | None:
    """`../shared/data/NAME` beside the checkout (or $BPELM_SHARED_DATA/NAME), if present."""
    for base in (os.environ.get("BPELM_SHARED_DATA"), REPO.parent / "shared" / "data"):
        if base and (Path(base) / name).exists():
            return Path(base) / name
    return None


def prepare_tokens(
    train_text: Path, valid_text: Path, vocab_size: int, work: Path, threads: int | None = None
) -> dict[str, Any]:
    """A bpelm tokenizer trained on `train_text`, and both texts encoded with it: tok/,
    train.npy, valid.npy in `work` (reused when `work/tokens.json` matches the inputs)."""
    from bpelm.tokenizer.corpus import encode_corpus, load_tokenizer, train_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    key = {
        "train": [str(train_text.resolve()), train_text.stat().st_size],
        "valid": [str(valid_text.resolve()), valid_text.stat().st_size],
        "vocab_size": vocab_size,
    }
    stamp = work / "tokens.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        return json.loads(stamp.read_text())
    t0 = time.perf_counter()
    train_s = train_tokenizer(train_text, vocab_size, [SPECIAL], work / "tok", threads=threads)
    tok = load_tokenizer(work / "tok")
    n_train, bytes_train, enc_s = encode_corpus(
        tok, train_text, work / "train.npy", threads=threads
    )
    n_valid, _, _ = encode_corpus(tok, valid_text, work / "valid.npy", threads=threads)
    record = {
        "key": key,
        "train_tokens": n_train,
        "valid_tokens": n_valid,
        "train_bytes": bytes_train,
        "tokenizer_train_s": round(train_s, 3),
        "encode_train_s": round(enc_s, 3),
        "prepare_s": round(time.perf_counter() - t0, 3),
    }
    stamp.write_text(json.dumps(record, indent=2))
    return record


# ---------------------------------------------------------------- the contestants


def race_configs(args: argparse.Namespace, work: Path):
    """(ModelConfig, TrainConfig) of the race: --config with the data, device and --set."""
    from bpelm.training.config import load_config

    overrides = [
        f"train.train_data={work / 'train.npy'}",
        f"train.val_data={work / 'valid.npy'}",
        f"train.tokenizer={work / 'tok'}",
        f"train.device={args.device}",
        f"train.max_minutes={args.budget_s / 60}",
        *args.set,
    ]
    return load_config(args.config, overrides)


def _quiet(_msg: str) -> None:
    pass


def run_bpelm_child(args: argparse.Namespace) -> int:
    """The bpelm contestant (in its own process): what `bpelm train --max-minutes` does,
    `train()` with the budget counted from the process start (--t0)."""
    import torch
    from bpelm.training.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    work, out = Path(args.work), Path(args.child_out)
    model_cfg, cfg = race_configs(args, work)
    if "started_at" in inspect.signature(train).parameters:
        started_at = time.perf_counter() - (time.time() - args.t0)
        result = train(model_cfg, cfg, out, progress=False, log=_quiet, started_at=started_at)
    else:  # bpelm before its budget counted start-up (the "before" runs): what is left of it
        left = args.t0 + args.budget_s - time.time()
        cfg = dataclasses.replace(cfg, max_minutes=left / 60)
        result = train(model_cfg, cfg, out, progress=False, log=_quiet)
    wall = time.time() - args.t0
    # metrics.jsonl's time_s counts from run()'s start; start_s moves it to process time.
    summary = {"steps": result.steps, "train_s": result.elapsed_s, "wall_s": wall}
    summary["start_s"] = wall - result.elapsed_s
    (out / "race.json").write_text(json.dumps(summary))
    return 0


def contestant_command(name: str, args: argparse.Namespace, out: Path, t0: float) -> list[str]:
    common = ["--budget-s", str(args.budget_s), "--t0", repr(t0), "--threads", str(args.threads)]
    if name == "bpelm":
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "bpelm"]
        cmd += ["--child-out", str(out), "--work", str(args.work), "--config", str(args.config)]
        cmd += ["--device", args.device]
        for item in args.set:
            cmd += ["--set", item]
        return cmd + common
    model_cfg, cfg = race_configs(args, Path(args.work))
    cmd = [sys.executable, str(HERE / "plain_lm.py"), "--out", str(out), "--device", args.device]
    cmd += ["--train", cfg.train_data, "--valid", cfg.val_data]
    cmd += ["--shape", json.dumps(model_cfg.to_dict()), "--hparams", json.dumps(vars(cfg))]
    cmd += ["--bf16"] if args.plain_bf16 else []
    cmd += ["--compile"] if args.plain_compile else []
    return cmd + common


def child_env() -> dict[str, str]:
    """The environment of a contestant: the bpelm this process imports comes first on its
    path (the checkout's, or a wheel installed with --target on a GPU host)."""
    import bpelm

    here = str(Path(bpelm.__file__).resolve().parent.parent)
    path = [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def run_contestant(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Start a contestant, wait for it, and read its curve: rows of step, time_s (since its
    process start) and train_loss or val_loss."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    proc = subprocess.run(
        contestant_command(name, args, out, t0),
        capture_output=True,
        text=True,
        timeout=args.budget_s * 3 + 300,
        env=child_env(),
    )
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    if name == "bpelm":
        from bpelm.training.metrics import read_metrics

        summary = json.loads((out / "race.json").read_text())
        curve = [
            {**r, "time_s": r["time_s"] + summary["start_s"]}
            for r in read_metrics(out / "metrics.jsonl")
        ]
    else:
        data = json.loads((out / "curve.json").read_text())
        summary, curve = data["summary"], data["curve"]
    return {"name": name, "process_wall_s": wall, **summary, "curve": curve}


# ---------------------------------------------------------------- scoring


def score(name: str, out: Path, args: argparse.Namespace) -> float:
    """Mean loss on the first --windows validation windows, one function for both models."""
    import numpy as np
    import torch
    from bpelm.training.checkpoint import load_model
    from bpelm.training.evaluation import window_loss

    model_cfg, cfg = race_configs(args, Path(args.work))
    device = torch.device(args.device)
    if name == "bpelm":
        model, _, _ = load_model(out, device)
    else:
        from plain_lm import TorchLM

        model = TorchLM(model_cfg.to_dict()).to(device)
        model.load_state_dict(torch.load(out / "model.pt", map_location=device))
    batch = min(64, args.windows)
    if args.windows % batch:
        raise ValueError(f"--windows {args.windows}: a multiple of 64, or fewer than 64")
    loss, scored = window_loss(
        model,
        np.load(cfg.val_data, mmap_mode="r"),
        context_length=model_cfg.context_length,
        batch_size=batch,
        max_batches=args.windows // batch,
        device=device,
        amp=None,
    )
    assert scored == args.windows * model_cfg.context_length, "fewer windows than asked"
    return loss


def time_to(curve: list[dict[str, Any]], target: float) -> float | None:
    """Seconds from process start to the first validation loss at or under `target`."""
    for row in curve:
        if row.get("val_loss") is not None and row["val_loss"] <= target:
            return row["time_s"]
    return None


# ---------------------------------------------------------------- the race


def summarize(rounds: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    med = {}
    for name in ("bpelm", "plain"):
        runs = [r[name] for r in rounds]
        med[name] = {
            "steps": statistics.median(r["steps"] for r in runs),
            "score": statistics.median(r["score"] for r in runs),
            "process_wall_s": statistics.median(r["process_wall_s"] for r in runs),
        }
    ratios = [r["bpelm"]["steps"] / r["plain"]["steps"] for r in rounds]
    deltas = [r["bpelm"]["score"] - r["plain"]["score"] for r in rounds]
    out: dict[str, Any] = {
        "median": med,
        "steps_ratio_per_round": [round(x, 3) for x in ratios],
        "steps_ratio_median": round(statistics.median(ratios), 3),
        "score_delta_per_round": [round(x, 4) for x in deltas],
        "score_delta_median": round(statistics.median(deltas), 4),
    }
    if target is not None:
        out["target_loss"] = target
        for name in ("bpelm", "plain"):
            out[f"time_to_target_{name}"] = [time_to(r[name]["curve"], target) for r in rounds]
    return out


def plot(rounds: list[dict[str, Any]], png: Path, target: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = {"bpelm": "tab:blue", "plain": "tab:orange"}
    for i, rnd in enumerate(rounds):
        for name in ("bpelm", "plain"):
            val = [r for r in rnd[name]["curve"] if r.get("val_loss") is not None]
            ax.plot(
                [r["time_s"] for r in val],
                [r["val_loss"] for r in val],
                "o-",
                color=colors[name],
                alpha=0.35 + 0.65 * (i == len(rounds) - 1),
                markersize=2.5,
                label=f"{name} (validation)" if i == 0 else None,
            )
    if target is not None:
        ax.axhline(target, color="gray", linestyle="--", linewidth=0.8, label=f"target {target}")
    ax.set_xlabel("wall-clock since process start (s)")
    ax.set_ylabel("validation loss (nats, sampled batches)")
    ax.set_title("bpelm train vs a plain PyTorch script")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def race(args: argparse.Namespace, log=print) -> dict[str, Any] | None:
    """Every round, scored and summarized; None (with a message) when the data is absent."""
    train_text = Path(args.train_text) if args.train_text else shared_data("books_train.txt.xz")
    valid_text = Path(args.valid_text) if args.valid_text else shared_data("books_valid.txt.xz")
    if train_text is None or valid_text is None or not train_text.exists():
        log(
            "bench_loss_race: skipped: no ../shared/data/books_{train,valid}.txt.xz beside the "
            "checkout (give --train-text and --valid-text)"
        )
        return None
    import torch

    work = Path(args.work)
    tokens = prepare_tokens(train_text, valid_text, args.vocab_size, work)
    model_cfg, cfg = race_configs(args, work)
    log(
        f"race: {model_cfg.d_model}d x {model_cfg.num_layers} layers, vocab {model_cfg.vocab_size}"
        f", batch {cfg.batch_size} x {model_cfg.context_length}; {tokens['train_tokens']:,} "
        f"training tokens; {args.budget_s:g} s per contestant; {args.rounds} rounds"
    )
    rounds = []
    for i in range(args.rounds):
        order = ("bpelm", "plain") if i % 2 == 0 else ("plain", "bpelm")
        rnd: dict[str, Any] = {"order": list(order)}
        for name in order:
            out = work / "runs" / name
            result = run_contestant(name, args, out)
            result["score"] = score(name, out, args)
            rnd[name] = result
            log(
                f"  round {i + 1} {name:<5}: {result['steps']:5d} steps, "
                f"{args.windows} windows {result['score']:.4f}, "
                f"process {result['process_wall_s']:.1f} s"
            )
        rounds.append(rnd)
    target = args.target_loss
    if target is None:  # the plain script's median final validation loss, rounded up
        last = statistics.median(r["plain"]["curve"][-1]["val_loss"] for r in rounds)
        target = math.ceil(last * 100) / 100
    summary = summarize(rounds, target)
    return {
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "processor": machine.cpu_model(),
            "cpus": os.cpu_count(),
            "threads": args.threads or torch.get_num_threads(),
            "device": args.device,
            "load_avg_end": os.getloadavg(),
        },
        "setup": {
            "config": str(args.config),
            "set": args.set,
            "budget_s": args.budget_s,
            "windows": args.windows,
            "tokens": tokens,
            "model": model_cfg.to_dict(),
            "train": vars(cfg),
            "plain": {"bf16": args.plain_bf16, "compile": args.plain_compile},
        },
        "summary": summary,
        "rounds": rounds,
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=90.0, help="per contestant, from start")
    ap.add_argument("--config", default=str(REPO / "configs" / "tiny-cpu.toml"))
    ap.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    ap.add_argument("--vocab-size", type=int, default=2048)
    ap.add_argument("--windows", type=int, default=640, help="validation windows scored")
    ap.add_argument("--target-loss", type=float, default=None)
    ap.add_argument("--train-text", default=None)
    ap.add_argument("--valid-text", default=None)
    ap.add_argument("--plain-bf16", action="store_true")
    ap.add_argument("--plain-compile", action="store_true")
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "bpelm" / "bench" / "race"))
    ap.add_argument("--out", default=None, help="results JSON (default: under --work)")
    ap.add_argument("--plot", default=None, help="PNG of both curves (default: under --work)")
    # Internal: the bpelm contestant's process.
    ap.add_argument("--child", choices=["bpelm"], help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child == "bpelm":
        return run_bpelm_child(args)
    result = race(args)
    if result is None:
        return 0
    work = Path(args.work)
    out = Path(args.out) if args.out else work / "loss_race.json"
    png = Path(args.plot) if args.plot else work / "loss_race.png"
    out.write_text(json.dumps(result, indent=2))
    plot(result["rounds"], png, result["summary"]["target_loss"])
    s = result["summary"]
    med = s["median"]
    print(
        f"median steps bpelm {med['bpelm']['steps']:g} / plain {med['plain']['steps']:g} "
        f"(ratio per round {s['steps_ratio_per_round']}); {args.windows}-window loss bpelm "
        f"{med['bpelm']['score']:.4f} / plain {med['plain']['score']:.4f} (bpelm - plain per "
        f"round {s['score_delta_per_round']})"
    )
    print(f"wrote {out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
