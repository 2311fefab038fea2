"""The largest batch that fits: `bpelm train --find-max-batch` doubles the batch, running a
real training step (forward, backward, AdamW) at each size, until the device runs out of
memory.

On a GPU the out-of-memory error is the test. On a CPU running out of memory means the
kernel's OOM killer, not an exception, so there the doubling stops before a batch whose
estimated need (`bpelm account`'s formula, 25% margin) exceeds the memory available now,
and says so.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bpelm.model_config import ModelConfig
from bpelm.training.config import TrainConfig

# A CPU batch is tried only while its estimated memory, times this, fits what is available.
CPU_MARGIN = 1.25


@dataclass
class Trial:
    batch_size: int
    fits: bool
    seconds: float  # the step's wall-clock (0 when not run)
    note: str = ""


def _available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), or None where the platform cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in str(e).lower()


def find_max_batch(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    *,
    start: int = 1,
    limit: int = 1 << 16,
    log: Callable[[str], None] = print,
) -> tuple[int, list[Trial]]:
    """(the largest batch_size whose training step ran, every trial), doubling from `start`.
    0 when even `start` does not fit."""
    from bpelm.experiments.accounting import account
    from bpelm.nn import TransformerLM
    from bpelm.training.evaluation import lm_loss
    from bpelm.training.loop import build_optimizer
    from bpelm.training.runtime import autocast_context, autocast_dtype, resolve_device

    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.dtype, device)
    estimate = account(model_cfg)
    available = _available_bytes() if device.type == "cpu" else None
    ctx = model_cfg.context_length
    trials: list[Trial] = []
    best = 0
    batch = start
    while batch <= limit:
        need = estimate.memory_bytes(batch)
        if available is not None and need * CPU_MARGIN > available:
            note = (
                f"not run: about {need / 1e9:.1f} GB estimated, {available / 1e9:.1f} GB "
                "available (a CPU cannot report out of memory safely)"
            )
            trials.append(Trial(batch, False, 0.0, note))
            log(f"batch {batch}: {note}")
            break
        model = optimizer = x = y = loss = None
        try:
            torch.manual_seed(0)
            model = TransformerLM(model_cfg, device=device)
            optimizer = build_optimizer(model, dataclasses.replace(cfg, batch_size=batch))
            x = torch.randint(0, model_cfg.vocab_size, (batch, ctx), device=device)
            y = torch.randint(0, model_cfg.vocab_size, (batch, ctx), device=device)
            t0 = time.perf_counter()
            with autocast_context(device, amp):
                loss = lm_loss(model, x, y)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            trials.append(Trial(batch, True, time.perf_counter() - t0))
            log(f"batch {batch}: fits ({trials[-1].seconds:.2f} s for one step)")
            best = batch
        except (RuntimeError, torch.cuda.OutOfMemoryError) as e:
            if not _is_oom(e):
                raise
            trials.append(Trial(batch, False, 0.0, "out of memory"))
            log(f"batch {batch}: out of memory")
            break
        finally:
            del model, optimizer, x, y, loss
            if device.type == "cuda":
                torch.cuda.empty_cache()
        batch *= 2
    return best, trials
