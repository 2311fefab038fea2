"""The training loop: AdamW on memory-mapped token arrays, with evaluation, metrics and
checkpoints that resume bit-for-bit.

`Trainer` holds a run's state and does one thing per method (build, step, evaluate, save,
log); `train()` drives it. Losses and gradient norms stay on the device and are fetched
together every `log_every` steps, so the loop never waits on the GPU except there, at
evaluation and at checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bpelm.nn import ModelConfig, TransformerLM
from bpelm.training import distributed
from bpelm.training.accumulation import accumulation_steps
from bpelm.training.budget import Budget
from bpelm.training.checkpoint import (
    checkpoint_name,
    checkpoint_paths,
    read_resumable,
    restore,
    save_checkpoint,
)
from bpelm.training.config import TrainConfig, config_dict, with_absolute_paths
from bpelm.training.data import get_batch, open_tokens
from bpelm.training.divergence import DivergenceMonitor, TrainingDiverged
from bpelm.training.evaluation import lm_loss, sampled_val_loss
from bpelm.training.metrics import MetricsLog, peak_flops, plot_metrics, truncate_metrics
from bpelm.training.optim import SCHEDULES, AdamW, clip_grad_norm
from bpelm.training.runtime import (
    autocast_context,
    autocast_dtype,
    enable_fast_matmul,
    environment_record,
    keep_freed_memory,
    resolve_device,
    use_compile,
)
from bpelm.training.trackers import Trackers


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
    # Stopped early by the divergence monitor (`divergence` says why); see summary.json.
    diverged: bool = False
    divergence: str | None = None


# loss.png during training: at most one per this many seconds, and at most 1/PLOT_SHARE of
# the time (the plot after the last step is always drawn).
PLOT_EVERY_S = 30.0
PLOT_SHARE = 50

# -----------------------------------------------------------------------------
# Building blocks (also used by `bpelm eval`, `bpelm generate` and the benchmarks)


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW that decays matrices only: norms' gains and biases keep weight decay off."""
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


def lr_at(
    step: int, elapsed_s: float, cfg: TrainConfig, budget_s: float | None = None
) -> tuple[float, float]:
    """(learning rate, schedule progress in [0, 1]) before update number `step + 1`.

    Progress is the larger of the step fraction and, under a time budget, the elapsed
    fraction of it: the schedule (train.schedule) reaches min_lr when either runs out.
    `budget_s` is the part of the budget left for steps (default: all of max_minutes).
    Warmup is the same fraction of the schedule either way: warmup_steps / max_steps of the
    steps, or of the budget.
    """
    progress = step / cfg.max_steps
    if cfg.max_minutes > 0:
        budget_s = cfg.max_minutes * 60 if budget_s is None else budget_s
        progress = max(progress, elapsed_s / budget_s)
    progress = min(progress, 1.0)
    lr = SCHEDULES[cfg.schedule](
        progress * cfg.max_steps, cfg.max_lr, cfg.min_lr, cfg.warmup_steps, cfg.max_steps
    )
    if cfg.max_minutes > 0 and step < cfg.warmup_steps:
        # The budget's clock starts before the first step (start-up counts), which alone could
        # carry the time fraction past warmup: the first warmup_steps steps warm up regardless.
        lr = min(lr, cfg.max_lr * step / cfg.warmup_steps)
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


def _quiet(_: str) -> None:
    """The log of ranks other than 0."""


class _NoLog:
    """Metrics and trackers on ranks other than 0: rank 0 writes them."""

    def write(self, rows: list[dict[str, Any]]) -> None:
        pass

    def log(self, rows: list[dict[str, Any]]) -> None:
        pass

    def close(self) -> None:
        pass


# -----------------------------------------------------------------------------
# The run


class Trainer:
    """One training run: the model, optimizer, data and run directory, and the step count.

    Build it (fresh, or from `resume`: a checkpoint file or a run directory's newest), then
    call `run()`; or drive it step by step with `step()`, `evaluate()` and `save_periodic()`.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        out_dir: str | Path,
        *,
        resume: str | Path | None = None,
        log: Callable[[str], None] = print,
        started_at: float | None = None,
    ) -> None:
        # The time budget counts from here, or from `started_at` (a time.perf_counter reading,
        # e.g. the process start) when given: start-up is part of the budget.
        self.started_at = time.perf_counter() if started_at is None else started_at
        # Paths are made absolute before config.json records them: a run resumes from any
        # working directory.
        cfg = with_absolute_paths(cfg)
        self.model_cfg, self.cfg, self.log = model_cfg, cfg, log
        self.out_dir = Path(out_dir)
        if resume is None and checkpoint_paths(self.out_dir):
            raise FileExistsError(
                f"{self.out_dir} already holds checkpoints of another run: pass --resume to "
                "continue it, or choose another --out"
            )
        # Under torchrun: this process's rank, and its own GPU. Rank 0 alone writes files.
        self.ranks, device_setting = distributed.start(cfg.device)
        self.main = self.ranks.is_main
        if not self.main:
            self.log = log = _quiet
        self.rows = self.ranks.rows(cfg.batch_size) if self.ranks.distributed else None
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(device_setting)
        self.amp = autocast_dtype(cfg.dtype, self.device)
        enable_fast_matmul(self.device)
        # On a CPU each step mallocs and frees its tensors: keep that memory (see there).
        self.malloc_kept = self.device.type == "cpu" and keep_freed_memory()
        self._load_data()

        torch.manual_seed(cfg.seed)
        self.data_rng = np.random.default_rng(cfg.seed)
        self.model = TransformerLM(model_cfg, device=self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.step_count = 0
        self.elapsed_before = 0.0
        self.best_val = math.inf
        self.last_val: float | None = None
        self.last_train_loss: float | None = None
        self._best_due = False  # a new best validation loss whose best.pt is not written yet
        self.budget: Budget | None = None  # set by run() under train.max_minutes
        self._plotted_at = time.perf_counter()  # the last loss.png (run() resets it)
        self._plot_s = 0.0
        if resume is not None:
            self._resume(resume)
        elif self.main:
            self.metrics_path.unlink(missing_ok=True)  # a fresh run starts a fresh log

        self.config = config_dict(model_cfg, cfg)
        if self.main:
            self._write_json("config.json", self.config)
            self._write_json("environment.json", environment_record(self.device))
        self.tokenizer_dir = cfg.tokenizer
        self.compiled = use_compile(cfg.compile, self.device)
        # DDP wraps the model (gradients averaged in backward); compile wraps DDP, as PyTorch
        # recommends. Checkpoints and evaluation use self.model, the module itself.
        self.ddp = distributed.wrap(self.model, self.ranks, self.device)
        self.forward = torch.compile(self.ddp) if self.compiled else self.ddp
        self.grad_accum = accumulation_steps(cfg)
        self.tokens_per_step = cfg.batch_size * self.grad_accum * model_cfg.context_length
        self.flops_per_token = float(self.model.flops_per_token(model_cfg.context_length))
        on_cuda = self.device.type == "cuda"
        self.peak = peak_flops(torch.cuda.get_device_name(self.device)) if on_cuda else None
        self.clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        self.divergence = DivergenceMonitor(cfg.divergence_factor)
        # (step, loss, grad norm, lr, elapsed) of steps whose values are still on the device.
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, float, float]] = []
        self.t_start = time.perf_counter()
        self._reset_rate_window()

    # --- building ---

    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def _load_data(self) -> None:
        cfg, ctx = self.cfg, self.model_cfg.context_length
        if not cfg.train_data:
            raise ValueError("train.train_data is not set: give a token array (.npy/.bin)")
        vocab = self.model_cfg.vocab_size
        # Both arrays are checked here, before the model is built: a validation array too
        # short for one window would otherwise fail at the first evaluation, after training.
        self.train_data = open_tokens("train.train_data", cfg.train_data, vocab, ctx + 1)
        self.val_data = None
        if cfg.val_data:
            self.val_data = open_tokens("train.val_data", cfg.val_data, vocab, ctx + 1)

    def _resume(self, resume: str | Path) -> None:
        ckpt, obj = read_resumable(resume, self.log)
        self.step_count = restore(obj, self.model, self.optimizer)
        extra = obj["extra"]
        _restore_rng_state(extra["rng"], self.data_rng, self.device)
        self.elapsed_before = float(extra.get("elapsed_s", 0.0))
        self.best_val = float(extra.get("best_val_loss") or math.inf)
        if self.main:
            truncate_metrics(self.metrics_path, self.step_count)
        self.log(f"resumed from {ckpt} at step {self.step_count}")

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        (self.out_dir / name).write_text(json.dumps(data, indent=2) + "\n")

    def describe(self) -> str:
        """The one-line header a run prints at start. Parameters are counted the way papers
        do: the total, the token embedding table, and the rest (non-embedding, which counts an
        untied LM head; with tied embeddings the one matrix is the LM head's)."""
        amp = self.amp
        tied = self.model_cfg.tie_embeddings
        embedding = 0 if tied else self.model.token_embeddings.weight.numel()
        return (
            f"model: {self.model.num_params(non_embedding=False) / 1e6:.2f}M parameters "
            f"({embedding / 1e6:.2f}M token embedding, {self.model.num_params() / 1e6:.2f}M "
            f"non-embedding{'; tied to the LM head' if tied else ''}), device {self.device}"
            f"{', ' + str(amp).replace('torch.', '') + ' autocast' if amp else ''}"
            f"{', compiled' if self.compiled else ''}"
            f"{', freed memory kept for reuse' if self.malloc_kept else ''}; "
            f"{len(self.train_data):,} training tokens; "
            f"{self.tokens_per_step:,} tokens/step"
        )

    # --- time ---

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions of a resumed run included."""
        return self.elapsed_before + (time.perf_counter() - self.t_start)

    def _reset_rate_window(self) -> None:
        # tokens/s is measured over the steps since the last flush, evaluation or checkpoint.
        self.window_t, self.window_steps = self.elapsed(), 0

    # --- one step ---

    def step(self, lr: float) -> None:
        """One AdamW update at learning rate `lr` on a fresh random batch."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self._forward_backward()
        grad_norm = clip_grad_norm(self.params, self.clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        self.window_steps += 1
        self.pending.append(
            (self.step_count, loss.detach(), grad_norm.detach(), lr, self.elapsed())
        )

    def _forward_backward(self) -> torch.Tensor:
        """Gradients of the mean loss over `grad_accum_steps` micro-batches (one batch when 1);
        returns that mean loss, detached. See bpelm.training.accumulation."""
        ctx, accum = self.model_cfg.context_length, self.grad_accum
        total: torch.Tensor | None = None
        for i in range(accum):
            # On CUDA get_batch copies through pinned memory without blocking. Under DDP every
            # rank draws the same global batch and reads its own rows of it.
            x, y = get_batch(
                self.train_data,
                self.cfg.batch_size,
                ctx,
                self.device,
                rng=self.data_rng,
                rows=self.rows,
            )
            # DDP averages gradients once, in the last micro-batch's backward.
            defer = self.ranks.distributed and i < accum - 1
            with self.ddp.no_sync() if defer else contextlib.nullcontext():
                with autocast_context(self.device, self.amp):
                    loss = lm_loss(self.forward, x, y)
                (loss / accum if accum > 1 else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        assert total is not None
        return total if accum == 1 else total / accum

    # --- metrics ---

    def flush(self, metrics: MetricsLog, trackers: Trackers) -> list[dict[str, Any]]:
        """Fetch the pending losses in one transfer and write their rows; returns the rows."""
        if not self.pending:
            return []
        pending = self.pending
        losses = torch.stack([loss for _, loss, _, _, _ in pending]).float()
        # Each rank's loss is over its rows: their mean is the global batch's loss.
        losses = distributed.mean_over_ranks(losses, self.ranks)
        norms = torch.stack([norm.to(losses.device) for _, _, norm, _, _ in pending]).float()
        values = torch.stack([losses, norms], dim=1).tolist()  # the one sync per interval
        now = self.elapsed()
        rate = self.window_steps * self.tokens_per_step / max(now - self.window_t, 1e-9)
        if self.budget is not None and self.window_steps:
            # Measured here, after the one sync, so a GPU's queued work is included.
            self.budget.record_step((now - self.window_t) / self.window_steps)
        mfu = rate * self.flops_per_token / self.peak if self.peak else None
        rows = []
        for (s, _, _, lr, t), (loss, gnorm) in zip(pending, values):
            rows.append(
                {
                    "step": s,
                    "tokens": s * self.tokens_per_step,
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
        self.last_train_loss = values[-1][0]
        self.pending = []
        self._reset_rate_window()
        return rows

    # --- evaluation and checkpoints ---

    def evaluate(self, metrics: MetricsLog, trackers: Trackers) -> float:
        """Validation loss as its own metrics row (train fields absent); best.pt on a record."""
        assert self.val_data is not None
        cfg = self.cfg
        t0 = time.perf_counter()
        self.last_val = sampled_val_loss(
            self.model,
            self.val_data,
            batches=cfg.eval_batches,
            batch_size=cfg.batch_size,
            context_length=self.model_cfg.context_length,
            seed=cfg.seed,
            device=self.device,
            amp=self.amp,
        )
        step = self.step_count
        row = {
            "step": step,
            "tokens": step * self.tokens_per_step,
            "time_s": round(self.elapsed(), 4),
        }
        row["val_loss"] = self.last_val
        metrics.write([row])
        trackers.log([row])
        if self.budget is not None:
            self.budget.record_eval(time.perf_counter() - t0)
        if self.last_val < self.best_val and not self.divergence.check_val(step, self.last_val):
            self.best_val = self.last_val
            self._best_due = True  # written by save_best, after this step's checkpoint
        self.log(f"step {step}: val loss {self.last_val:.4f}")
        return self.last_val

    def extra_state(self) -> dict[str, Any]:
        """What a checkpoint holds besides the weights and optimizer: enough to resume."""
        return {
            "config": self.config,
            "model_config": self.config["model"],
            "tokenizer": self.tokenizer_dir,
            "rng": _rng_state(self.data_rng, self.device),
            "elapsed_s": self.elapsed(),
            "tokens": self.step_count * self.tokens_per_step,
            "best_val_loss": self.best_val if math.isfinite(self.best_val) else None,
            "val_loss": self.last_val,
        }

    def save(self, path: Path) -> None:
        # save_checkpoint writes a temporary file and renames it: never a torn checkpoint.
        if not self.main:
            return
        t0 = time.perf_counter()
        save_checkpoint(self.model, self.optimizer, self.step_count, path, extra=self.extra_state())
        if self.budget is not None:
            self.budget.record_save(time.perf_counter() - t0)

    def _plot(self, during_training: bool = False) -> None:
        """loss.png from metrics.jsonl. During training at most one plot per PLOT_EVERY_S,
        the first PLOT_EVERY_S after the start (and never over 1/PLOT_SHARE of the time): on a
        CPU a plot costs ~0.3 s, the first ~1 s with matplotlib's import, which at every
        evaluation was 4% of a 90 s run. The plot after the last step is always drawn."""
        t0 = time.perf_counter()
        if during_training:
            wait = max(PLOT_EVERY_S, PLOT_SHARE * self._plot_s)
            if t0 - self._plotted_at < wait:
                return
        plot_metrics(self.metrics_path, self.out_dir / "loss.png")
        self._plotted_at, self._plot_s = time.perf_counter(), time.perf_counter() - t0
        if self.budget is not None:
            self.budget.record_plot(self._plot_s)

    def _end_reserve(self, budget: Budget) -> float:
        """The seconds the end of the run will take: final evaluation, checkpoint, plot."""
        checkpoint_bytes = 3 * sum(p.numel() * p.element_size() for p in self.params)
        return budget.end_reserve(
            evaluates=self.val_data is not None,
            eval_batches=self.cfg.eval_batches,
            checkpoint_bytes=checkpoint_bytes,
        )

    def save_best(self, periodic: Path | None) -> None:
        """best.pt after a new best validation loss: a hard link to this step's periodic
        checkpoint when there is one (the same bytes, stored once, and kept when rotation
        removes the ckpt file), else a checkpoint of its own."""
        if not self._best_due:
            return
        self._best_due = False
        best = self.out_dir / "best.pt"
        if periodic is not None and periodic.name == checkpoint_name(self.step_count):
            tmp = best.with_name(f".best.pt.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(periodic, tmp)
                os.replace(tmp, best)  # atomic: readers see the old best or the new one
                return
            except OSError:  # a filesystem without hard links: write a copy instead
                tmp.unlink(missing_ok=True)
        self.save(best)

    def save_periodic(self) -> Path:
        """ckpt_STEP.pt, keeping only the newest `keep_last`."""
        path = self.out_dir / checkpoint_name(self.step_count)
        self.save(path)
        for _, old in checkpoint_paths(self.out_dir)[: -max(self.cfg.keep_last, 1)]:
            old.unlink(missing_ok=True)
        return path

    # --- the loop ---

    def run(self, progress: bool = True) -> TrainResult:
        """Train until max_steps or the time budget; evaluate, log and checkpoint on the way."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.log(self.describe())
        budget = None
        if cfg.max_minutes > 0:
            budget = Budget(cfg.max_minutes * 60, self.started_at, self.elapsed_before)
        self.budget = budget
        metrics = MetricsLog(self.metrics_path) if self.main else _NoLog()
        trackers = Trackers(cfg, self.out_dir, self.config, self.log) if self.main else _NoLog()
        last_ckpt: Path | None = None
        stopped_by_time = False
        self.model.train()
        self.t_start = self._plotted_at = time.perf_counter()
        self.window_t, self.window_steps = self.elapsed_before, 0
        bar = None
        if progress and self.main:
            # Under a budget the bar counts its seconds (its ETA is the budget's end); else steps.
            done = min(round(budget.used()), round(budget.seconds)) if budget else self.step_count
            bar = tqdm(
                total=round(budget.seconds) if budget else cfg.max_steps,
                initial=done,
                desc="train",
                unit="s" if budget else "step",
                dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30,  # a log file: a line per 30 s
            )

        def flush() -> None:
            rows = self.flush(metrics, trackers)
            self.divergence.update(rows)
            if bar is not None and rows:
                bar.set_postfix(
                    loss=f"{self.last_train_loss:.3f}", tok_s=f"{rows[-1]['tokens_per_s']:,.0f}"
                )

        first_step = self.step_count
        try:
            while self.step_count < cfg.max_steps:
                if budget is None:
                    lr, _ = lr_at(self.step_count, self.elapsed(), cfg)
                else:
                    reserve = self._end_reserve(budget)
                    # Not on the first step's time alone: compilation, or oneDNN building its
                    # bf16 kernels on a CPU, can make it several times the next ones.
                    late = self.step_count > first_step + 1 and budget.out_of_time(reserve)
                    if self._agree(late):  # rank 0's clock decides for every rank
                        stopped_by_time = True
                        break
                    lr, _ = lr_at(self.step_count, budget.used(), cfg, budget.for_steps(reserve))
                t_step = time.perf_counter()
                self.step(lr)
                if budget is not None and self.step_count <= first_step + 2:
                    # Until the first flush measures it (after a device sync), a step costs
                    # what the latest of the first two took.
                    budget.record_step(time.perf_counter() - t_step)
                if bar is not None:
                    if budget is None:
                        bar.update(1)
                    else:
                        bar.update(max(min(round(budget.used()), bar.total) - bar.n, 0))
                        bar.set_postfix_str(f"step {self.step_count}", refresh=False)
                step = self.step_count
                last = step == cfg.max_steps
                do_eval = self.val_data is not None and (step % cfg.eval_every == 0 or last)
                save_due = step % cfg.checkpoint_every == 0 or last
                if step % cfg.log_every == 0 or do_eval or save_due:
                    flush()
                    if self._agree(self._diverged(check_weights=save_due)):
                        break  # before evaluating or saving: no checkpoint of a diverged model
                if do_eval:
                    if self.main:
                        self.evaluate(metrics, trackers)
                        self._plot(during_training=True)
                    if self._agree(self.divergence.diverged):  # by the validation loss
                        break
                if save_due:
                    last_ckpt = self.save_periodic()
                    distributed.barrier(self.ranks)  # the others wait for rank 0's checkpoint
                self.save_best(last_ckpt)
                if do_eval or step % cfg.checkpoint_every == 0:
                    self._reset_rate_window()  # keep eval/saving out of tokens/s
        except KeyboardInterrupt:
            flush()
            self.log(
                f"interrupted at step {self.step_count}; `--resume` continues from the last "
                "checkpoint"
            )
            raise
        finally:
            if bar is not None:
                bar.close()

        flush()
        step = self.step_count
        diverged = self._agree(self.divergence.diverged)
        if (
            step > 0
            and not diverged
            and (last_ckpt is None or last_ckpt.name != checkpoint_name(step))
        ):
            # Stopped by the time budget (or resumed at the end): evaluate and save the end state.
            if self.val_data is not None and self.main:
                self.evaluate(metrics, trackers)
            if not self._agree(self._diverged(check_weights=True)):
                last_ckpt = self.save_periodic()
                self.save_best(last_ckpt)
            diverged = self._agree(self.divergence.diverged)
        metrics.close()
        trackers.close()
        if self.main and self.metrics_path.exists():
            self._plot()
        total = self.elapsed()
        if stopped_by_time:
            self.log(f"time budget of {cfg.max_minutes:g} min reached at step {step}")
        if diverged:
            self.log(f"{self.divergence.reason}; stopped, the last good checkpoint is kept")
        train_loss = self.last_train_loss
        self.log(
            f"done: {step} steps, {step * self.tokens_per_step:,} tokens in {total:.1f} s; "
            f"train loss {train_loss if train_loss is None else round(train_loss, 4)}"
            + (f", val loss {self.last_val:.4f}" if self.last_val is not None else "")
            + f"; run directory {self.out_dir}"
        )
        assert last_ckpt is not None or step == 0 or diverged
        result = TrainResult(
            out_dir=self.out_dir,
            steps=step,
            tokens=step * self.tokens_per_step,
            elapsed_s=total,
            train_loss=train_loss,
            val_loss=self.last_val,
            best_val_loss=self.best_val if math.isfinite(self.best_val) else None,
            stopped_by_time=stopped_by_time,
            last_checkpoint=last_ckpt if last_ckpt is not None else self.out_dir,
            diverged=diverged,
            divergence=self.divergence.reason,
        )
        if self.main:
            self._write_summary(result)
        distributed.barrier(self.ranks)
        return result

    def _agree(self, decision: bool) -> bool:
        """Rank 0's `decision` on every rank: runs stop at the same step everywhere."""
        return distributed.rank0_decides(self.ranks, decision, self.device)

    # --- divergence and the run's summary ---

    def _diverged(self, check_weights: bool) -> bool:
        """Whether the run has diverged, by the losses flushed so far and, before a
        checkpoint, by the weights themselves."""
        if check_weights:
            self.divergence.check_weights(self.params, self.step_count)
        return self.divergence.diverged

    def _write_summary(self, result: TrainResult) -> None:
        """summary.json: how the run ended, one record per run for `bpelm compare`."""
        status = "diverged" if result.diverged else "finished"
        if result.stopped_by_time and not result.diverged:
            status = "stopped_by_time"
        data = {
            "status": status,
            "diverged": result.diverged,
            "divergence": result.divergence,
            "steps": result.steps,
            "tokens": result.tokens,
            "elapsed_s": round(result.elapsed_s, 3),
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "best_val_loss": result.best_val_loss,
            "stopped_by_time": result.stopped_by_time,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        # JSON has no NaN: a diverged loss is written as null.
        data = {
            k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()
        }
        self._write_json("summary.json", data)


def train(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    started_at: float | None = None,
) -> TrainResult:
    """Train `model_cfg` as `cfg` says, writing everything into `out_dir`.

    Under `train.max_minutes` the whole call fits the budget, the final evaluation and
    checkpoint included; `started_at` (a time.perf_counter reading, e.g. the process start)
    moves its start earlier, so that start-up counts too.

    `resume` is a checkpoint file or a run directory (its newest checkpoint): model,
    optimizer, step, data-sampling and torch RNG states are restored, so the run continues
    exactly as if it had never stopped (under a time budget the schedule follows wall-clock
    and is then only approximately the same).

    A run that diverges (see `TrainConfig.divergence_factor`) raises `TrainingDiverged`.
    """
    trainer = Trainer(model_cfg, cfg, out_dir, resume=resume, log=log, started_at=started_at)
    try:
        result = trainer.run(progress=progress)
    finally:
        if trainer.ranks.distributed:
            distributed.stop()
    if result.diverged:
        # An error for callers (`bpelm train` exits non-zero); `.result` still has the numbers.
        raise TrainingDiverged(
            f"{result.divergence}; stopped after {result.steps} steps (summary.json in "
            f"{result.out_dir}; lower train.max_lr or set train.divergence_factor)",
            result,
        )
    return result
