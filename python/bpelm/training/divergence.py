"""Stopping a diverged run: a NaN/inf loss or gradient norm, or a loss far above its best.

The loop fetches losses from the device only every `log_every` steps (and before every
evaluation and checkpoint), so the monitor sees every step's loss, at most `log_every` steps
late, and never lets a checkpoint be written after a divergent step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from bpelm.training.config import ConfigError


class TrainingDiverged(RuntimeError):
    """Raised by `train()` for a run that stopped as diverged; `.result` is its TrainResult.

    A RuntimeError, so `bpelm train` reports it in one line and exits non-zero."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class DivergenceMonitor:
    """Watches the train losses and gradient norms of metrics rows, in step order.

    `factor` > 1: a finite loss above factor x the lowest train loss so far is divergence;
    0 turns that test off (non-finite values always count).
    """

    def __init__(self, factor: float) -> None:
        if not (factor == 0 or (math.isfinite(factor) and factor > 1)):
            raise ConfigError(
                f"train.divergence_factor must be 0 (off) or a number above 1, got {factor}"
            )
        self.factor = factor
        self.running_min = math.inf
        self.reason: str | None = None
        self.step: int | None = None

    @property
    def diverged(self) -> bool:
        return self.reason is not None

    def _stop(self, step: int, reason: str) -> None:
        if self.reason is None:
            self.step, self.reason = step, f"diverged at step {step}: {reason}"

    def update(self, rows: Iterable[dict[str, Any]]) -> bool:
        """Check rows with a `train_loss`; True once the run has diverged."""
        for row in rows:
            if self.reason is not None:
                break
            loss = row.get("train_loss")
            if "train_loss" not in row:
                continue
            step = int(row.get("step", 0))
            norm = row.get("grad_norm")
            if loss is None or not math.isfinite(loss):
                self._stop(step, f"train loss is {loss}")
            elif norm is not None and not math.isfinite(norm):
                self._stop(step, f"gradient norm is {norm} (train loss {loss:.4g})")
            elif self.factor and loss > self.factor * self.running_min:
                self._stop(
                    step,
                    f"train loss {loss:.4g} exceeds {self.factor:g} x its running minimum "
                    f"{self.running_min:.4g} (train.divergence_factor)",
                )
            else:
                self.running_min = min(self.running_min, loss)
        return self.diverged

    def check_val(self, step: int, val_loss: float) -> bool:
        """A validation loss NaN/inf or above factor x the running minimum of train loss (the
        same scale) is divergence too: it must not become best.pt. True if diverged."""
        if not math.isfinite(val_loss):
            self._stop(step, f"validation loss is {val_loss}")
        elif self.factor and val_loss > self.factor * self.running_min:
            self._stop(
                step,
                f"validation loss {val_loss:.4g} exceeds {self.factor:g} x the running minimum "
                f"of train loss {self.running_min:.4g} (train.divergence_factor)",
            )
        return self.diverged

    def check_weights(self, params: Iterable[torch.Tensor], step: int) -> bool:
        """Before a checkpoint: non-finite weights are divergence too (the last line of
        defence: a finite loss can precede an update that overflowed). True if diverged."""
        flags = [p.detach().isfinite().all() for p in params]
        if flags and not bool(torch.stack(flags).all()):
            self._stop(step, "the weights hold NaN/inf values")
        return self.diverged
