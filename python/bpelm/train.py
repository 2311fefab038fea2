"""The training loop: AdamW on memory-mapped token arrays, with evaluation, metrics and
checkpoints that resume bit-for-bit.

Losses and gradient norms stay on the device and are fetched together every `log_every`
steps, so the loop never waits on the GPU except there, at evaluation and at checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bpelm.config import ModelConfig, TrainConfig, config_dict
from bpelm.metrics import MetricsLog, peak_flops, plot_metrics, truncate_metrics

CHECKPOINT_RE = re.compile(r"^ckpt_(\d+)\.pt$")
# Validation batches come from their own generator so evaluating never moves the training data.
VAL_SEED_OFFSET = 1_000_003


# -----------------------------------------------------------------------------
# Device and precision


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else is checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device {name!r} requested but MPS is not available on this machine")
    return device


def autocast_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `setting` on `device`; None means plain float32."""
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": None}
    if setting not in table:
        raise ValueError(
            f"train.dtype: expected auto, bfloat16, float16 or float32, got {setting!r}"
        )
    return table[setting]


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_compile(setting: bool | str, device: torch.device) -> bool:
    return device.type == "cuda" if setting == "auto" else bool(setting)


# -----------------------------------------------------------------------------
# Building blocks shared with `bpelm eval` and `bpelm generate`


def build_model(cfg: ModelConfig, device: str | torch.device) -> torch.nn.Module:
    from bpelm.nn import TransformerLM

    return TransformerLM(**dataclasses.asdict(cfg), device=device)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW that decays matrices only: norms' gains and biases keep weight decay off."""
    from bpelm.optim import AdamW

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    return AdamW(
        groups,
        lr=cfg.max_lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """CPU batch -> device; pinned and asynchronous on CUDA."""
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def lm_loss(model: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from bpelm.nn import cross_entropy

    logits = model(x)
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def sampled_val_loss(
    model: torch.nn.Module,
    data: np.ndarray,
    *,
    batches: int,
    batch_size: int,
    context_length: int,
    seed: int,
    device: torch.device,
    amp: torch.dtype | None,
) -> float:
    """Mean loss over `batches` random batches drawn from a fixed seed: every call sees the
    same windows, so successive evaluations are comparable."""
    from bpelm.data import get_batch

    rng = np.random.default_rng(seed + VAL_SEED_OFFSET)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float32)
    for _ in range(batches):
        x, y = get_batch(data, batch_size, context_length, device, rng=rng)
        with autocast_context(device, amp):
            total += lm_loss(model, x, y).float()
    model.train(was_training)
    return total.item() / batches


@torch.no_grad()
def window_loss(
    model: torch.nn.Module,
    data: np.ndarray,
    *,
    context_length: int,
    batch_size: int,
    max_batches: int | None,
    device: torch.device,
    amp: torch.dtype | None,
    progress: bool = False,
) -> tuple[float, int]:
    """Mean loss over consecutive non-overlapping windows from the start of `data`
    (deterministic). Returns (loss, tokens scored)."""
    n_windows = (len(data) - 1) // context_length
    if n_windows <= 0:
        raise ValueError(
            f"the data has {len(data)} tokens, fewer than one window of {context_length} + 1"
        )
    n_batches = math.ceil(n_windows / batch_size)
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    from tqdm.auto import tqdm

    model.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    scored = 0
    for b in tqdm(range(n_batches), desc="eval", unit="batch", disable=not progress):
        first = b * batch_size
        count = min(batch_size, n_windows - first)
        start = first * context_length
        chunk = np.asarray(data[start : start + count * context_length + 1], dtype=np.int64)
        x = torch.from_numpy(chunk[:-1].reshape(count, context_length))
        y = torch.from_numpy(chunk[1:].reshape(count, context_length))
        x, y = to_device(x, device), to_device(y, device)
        with autocast_context(device, amp):
            loss = lm_loss(model, x, y)
        total += loss.double() * (count * context_length)
        scored += count * context_length
    return total.item() / scored, scored


# -----------------------------------------------------------------------------
# Run directory: checkpoints, environment record


def checkpoint_paths(out_dir: Path) -> list[tuple[int, Path]]:
    """Periodic checkpoints in `out_dir`, oldest first."""
    found = []
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            m = CHECKPOINT_RE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(path: str | Path) -> Path:
    """`path` itself when it is a file, else the newest ckpt_*.pt in that directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint file or run directory")
    found = checkpoint_paths(path)
    if not found:
        raise FileNotFoundError(f"{path}: no ckpt_*.pt checkpoints in this directory")
    return found[-1][1]


def _git_hash() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_record(device: torch.device) -> dict[str, Any]:
    """Library versions, machine and git hash, written beside the run's config."""
    import bpelm

    record: dict[str, Any] = {
        "bpelm": bpelm.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "git_hash": _git_hash(),
        "argv": sys.argv,
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record


# -----------------------------------------------------------------------------
# Optional trackers (never required; imported only when asked for)


class _Trackers:
    def __init__(self, cfg: TrainConfig, out_dir: Path, config: dict, log: Callable) -> None:
        self.wandb = None
        self.tb = None
        if cfg.wandb_project:
            try:
                import wandb
            except ImportError:
                log("warning: train.wandb_project is set but wandb is not installed; skipping it")
            else:
                self.wandb = wandb.init(project=cfg.wandb_project, dir=str(out_dir), config=config)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log("warning: train.tensorboard is set but tensorboard is not installed; skipping")
            else:
                self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def log(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            values = {k: v for k, v in row.items() if k != "step" and v is not None}
            if self.wandb is not None:
                self.wandb.log(values, step=row["step"])
            if self.tb is not None:
                for k, v in values.items():
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()
        if self.tb is not None:
            self.tb.close()


# -----------------------------------------------------------------------------
# The loop


@dataclass
class TrainResult:
    out_dir: Path
    steps: int
    tokens: int
    elapsed_s: float
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    stopped_by_time: bool
    last_checkpoint: Path


def lr_at(step: int, elapsed_s: float, cfg: TrainConfig) -> tuple[float, float]:
    """(learning rate, schedule progress in [0, 1]) before update number `step + 1`.

    Progress is the larger of the step fraction and, under a time budget, the elapsed
    fraction of it: the cosine reaches min_lr when either runs out.
    """
    from bpelm.optim import cosine_lr_schedule

    progress = step / cfg.max_steps
    if cfg.max_minutes > 0:
        progress = max(progress, elapsed_s / (cfg.max_minutes * 60))
    progress = min(progress, 1.0)
    lr = cosine_lr_schedule(
        progress * cfg.max_steps, cfg.max_lr, cfg.min_lr, cfg.warmup_steps, cfg.max_steps
    )
    return float(lr), progress


def _rng_state(data_rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "numpy": data_rng.bit_generator.state,
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng_state(state: dict[str, Any], data_rng: np.random.Generator, device) -> None:
    data_rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def _check_tokens(data: np.ndarray, vocab_size: int, name: str, path: str) -> None:
    """Catch a tokenizer/model vocabulary mismatch up front instead of as a CUDA assert."""
    if len(data) < 2:
        raise ValueError(f"{path}: {name} has {len(data)} tokens; need at least 2")
    if len(data) <= 500_000_000:  # a full scan of larger arrays costs more than it is worth
        top = int(data.max())
        if top >= vocab_size:
            raise ValueError(
                f"{path}: {name} contains token id {top}, but model.vocab_size is {vocab_size}; "
                "raise model.vocab_size to the tokenizer's vocabulary size"
            )


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train `model_cfg` as `cfg` says, writing everything into `out_dir`.

    `resume` is a checkpoint file or a run directory (its newest checkpoint): model,
    optimizer, step, data-sampling and torch RNG states are restored, so the run continues
    exactly as if it had never stopped (under a time budget the schedule follows wall-clock
    and is then only approximately the same).
    """
    from tqdm.auto import tqdm

    from bpelm.checkpoint import load_checkpoint, read_checkpoint_extra, save_checkpoint
    from bpelm.data import get_batch, load_tokens
    from bpelm.optim import clip_grad_norm

    out_dir = Path(out_dir)
    if resume is None and checkpoint_paths(out_dir):
        raise FileExistsError(
            f"{out_dir} already holds checkpoints of another run: pass --resume to continue "
            "it, or choose another --out"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.dtype, device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")

    if not cfg.train_data:
        raise ValueError("train.train_data is not set: give a token array (.npy/.bin)")
    train_data = load_tokens(cfg.train_data)
    _check_tokens(train_data, model_cfg.vocab_size, "train_data", cfg.train_data)
    val_data = None
    if cfg.val_data:
        val_data = load_tokens(cfg.val_data)
        _check_tokens(val_data, model_cfg.vocab_size, "val_data", cfg.val_data)
    if len(train_data) <= model_cfg.context_length:
        raise ValueError(
            f"{cfg.train_data}: {len(train_data)} tokens is not more than one context "
            f"({model_cfg.context_length})"
        )

    torch.manual_seed(cfg.seed)
    data_rng = np.random.default_rng(cfg.seed)
    model = build_model(model_cfg, device)
    optimizer = build_optimizer(model, cfg)

    step = 0
    elapsed_before = 0.0
    best_val = math.inf
    if resume is not None:
        ckpt = latest_checkpoint(resume)
        step = load_checkpoint(ckpt, model, optimizer)
        extra = read_checkpoint_extra(ckpt)
        _restore_rng_state(extra["rng"], data_rng, device)
        elapsed_before = float(extra.get("elapsed_s", 0.0))
        best_val = float(extra.get("best_val_loss") or math.inf)
        truncate_metrics(out_dir / "metrics.jsonl", step)
        log(f"resumed from {ckpt} at step {step}")
    else:
        (out_dir / "metrics.jsonl").unlink(missing_ok=True)  # a fresh run starts a fresh log

    config = config_dict(model_cfg, cfg)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "environment.json").write_text(
        json.dumps(environment_record(device), indent=2) + "\n"
    )
    tokenizer_dir = str(Path(cfg.tokenizer).resolve()) if cfg.tokenizer else ""

    compiled = use_compile(cfg.compile, device)
    forward = torch.compile(model) if compiled else model
    ctx = model_cfg.context_length
    tokens_per_step = cfg.batch_size * ctx
    flops_per_token = float(model.flops_per_token(ctx))
    peak = peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    params = [p for p in model.parameters() if p.requires_grad]
    clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    log(
        f"model: {model.num_params() / 1e6:.2f}M parameters, device {device}"
        f"{', ' + str(amp).replace('torch.', '') + ' autocast' if amp else ''}"
        f"{', compiled' if compiled else ''}; {len(train_data):,} training tokens; "
        f"{tokens_per_step:,} tokens/step"
    )

    metrics = MetricsLog(out_dir / "metrics.jsonl")
    trackers = _Trackers(cfg, out_dir, config, log)
    pending: list[tuple[int, torch.Tensor, torch.Tensor, float, float]] = []
    last_train_loss: float | None = None
    last_val: float | None = None
    last_ckpt: Path | None = None
    stopped_by_time = False

    def elapsed() -> float:
        return elapsed_before + (time.perf_counter() - t_start)

    def extra_state() -> dict[str, Any]:
        return {
            "config": config,
            "model_config": config["model"],
            "tokenizer": tokenizer_dir,
            "rng": _rng_state(data_rng, device),
            "elapsed_s": elapsed(),
            "tokens": step * tokens_per_step,
            "best_val_loss": best_val if math.isfinite(best_val) else None,
            "val_loss": last_val,
        }

    def flush() -> None:
        """Fetch the pending losses in one transfer and write their rows."""
        nonlocal pending, last_train_loss, window_t, window_steps
        if not pending:
            return
        losses = torch.stack([loss for _, loss, _, _, _ in pending]).float()
        norms = torch.stack([norm.to(losses.device) for _, _, norm, _, _ in pending]).float()
        values = torch.stack([losses, norms], dim=1).tolist()  # the one sync per interval
        now = elapsed()
        rate = window_steps * tokens_per_step / max(now - window_t, 1e-9)
        mfu = rate * flops_per_token / peak if peak else None
        rows = []
        for (s, _, _, lr, t), (loss, gnorm) in zip(pending, values):
            rows.append(
                {
                    "step": s,
                    "tokens": s * tokens_per_step,
                    "time_s": round(t, 4),
                    "train_loss": loss,
                    "lr": lr,
                    "grad_norm": gnorm,
                    "tokens_per_s": round(rate, 1),
                    "mfu": None if mfu is None else round(mfu, 4),
                }
            )
        rows[-1]["time_s"] = round(now, 4)
        metrics.write(rows)
        trackers.log(rows)
        last_train_loss = values[-1][0]
        if bar is not None:
            bar.set_postfix(loss=f"{last_train_loss:.3f}", tok_s=f"{rate:,.0f}")
        pending = []
        window_t, window_steps = elapsed(), 0

    def evaluate() -> None:
        """Validation loss as its own metrics row (train fields absent); best.pt on a record."""
        nonlocal last_val, best_val
        assert val_data is not None
        last_val = sampled_val_loss(
            model,
            val_data,
            batches=cfg.eval_batches,
            batch_size=cfg.batch_size,
            context_length=ctx,
            seed=cfg.seed,
            device=device,
            amp=amp,
        )
        row = {"step": step, "tokens": step * tokens_per_step, "time_s": round(elapsed(), 4)}
        row["val_loss"] = last_val
        metrics.write([row])
        trackers.log([row])
        if last_val < best_val:
            best_val = last_val
            save(out_dir / "best.pt")
        log(f"step {step}: val loss {last_val:.4f}")

    def save(path: Path) -> None:
        # save_checkpoint writes a temporary file and renames it: never a torn checkpoint.
        save_checkpoint(model, optimizer, step, path, extra=extra_state())

    def save_periodic() -> Path:
        path = out_dir / f"ckpt_{step:07d}.pt"
        save(path)
        for _, old in checkpoint_paths(out_dir)[: -max(cfg.keep_last, 1)]:
            old.unlink(missing_ok=True)
        return path

    model.train()
    t_start = time.perf_counter()
    window_t, window_steps = elapsed_before, 0
    bar = (
        tqdm(
            total=cfg.max_steps,
            initial=step,
            desc="train",
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 30,  # a log file gets a line per 30 s
        )
        if progress
        else None
    )
    try:
        while step < cfg.max_steps:
            lr, frac = lr_at(step, elapsed(), cfg)
            if frac >= 1.0 and step > 0 and cfg.max_minutes > 0:
                stopped_by_time = True
                break
            for group in optimizer.param_groups:
                group["lr"] = lr
            # On CUDA get_batch copies through pinned memory without blocking.
            x, y = get_batch(train_data, cfg.batch_size, ctx, device, rng=data_rng)
            with autocast_context(device, amp):
                loss = lm_loss(forward, x, y)
            loss.backward()
            grad_norm = clip_grad_norm(params, clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            window_steps += 1
            pending.append((step, loss.detach(), grad_norm.detach(), lr, elapsed()))
            if bar is not None:
                bar.update(1)

            last = step == cfg.max_steps
            do_eval = val_data is not None and (step % cfg.eval_every == 0 or last)
            if step % cfg.log_every == 0 or do_eval or last:
                flush()
            if do_eval:
                evaluate()
                plot_metrics(out_dir / "metrics.jsonl", out_dir / "loss.png")
            if step % cfg.checkpoint_every == 0 or last:
                last_ckpt = save_periodic()
            if do_eval or step % cfg.checkpoint_every == 0:
                window_t, window_steps = elapsed(), 0  # keep eval/saving out of tokens/s
    except KeyboardInterrupt:
        flush()
        log(f"interrupted at step {step}; `--resume` continues from the last checkpoint")
        raise
    finally:
        if bar is not None:
            bar.close()

    flush()
    if step > 0 and (last_ckpt is None or not last_ckpt.name.endswith(f"{step:07d}.pt")):
        # Stopped by the time budget (or resumed at the end): evaluate and save the end state.
        if val_data is not None:
            evaluate()
        last_ckpt = save_periodic()
    metrics.close()
    trackers.close()
    if (out_dir / "metrics.jsonl").exists():
        plot_metrics(out_dir / "metrics.jsonl", out_dir / "loss.png")
    total = elapsed()
    if stopped_by_time:
        log(f"time budget of {cfg.max_minutes:g} min reached at step {step}")
    log(
        f"done: {step} steps, {step * tokens_per_step:,} tokens in {total:.1f} s; "
        f"train loss {last_train_loss if last_train_loss is None else round(last_train_loss, 4)}"
        + (f", val loss {last_val:.4f}" if last_val is not None else "")
        + f"; run directory {out_dir}"
    )
    assert last_ckpt is not None or step == 0
    return TrainResult(
        out_dir=out_dir,
        steps=step,
        tokens=step * tokens_per_step,
        elapsed_s=total,
        train_loss=last_train_loss,
        val_loss=last_val,
        best_val_loss=best_val if math.isfinite(best_val) else None,
        stopped_by_time=stopped_by_time,
        last_checkpoint=last_ckpt if last_ckpt is not None else out_dir,
    )
