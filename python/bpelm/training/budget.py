"""A wall-clock budget that includes everything: start-up, compilation, evaluation, and the
final evaluation, checkpoint and plot. Training stops early enough for the end to fit.

The time the end will take is measured as the run goes (the last evaluation, checkpoint and
plot), and estimated before the first of each: an evaluation batch costs about half a training
step (forward only, with margin); a checkpoint writes the weights and AdamW's two moments at
a conservative 50 MB/s; a plot takes a second.
"""

from __future__ import annotations

import time

# Conservative disk rate for a checkpoint not yet measured, bytes/s.
SAVE_BYTES_PER_S = 50e6
# A plot not yet measured (the first one imports matplotlib).
FIRST_PLOT_S = 1.0
# Margin on the measured end: timings vary by this much between calls on a busy machine.
END_MARGIN = 1.25
END_SLACK_S = 0.25


class Budget:
    """`seconds` of wall-clock from `started_at` (a time.perf_counter reading), of which
    `spent_before` (earlier sessions of a resumed run) are already gone."""

    def __init__(self, seconds: float, started_at: float, spent_before: float = 0.0) -> None:
        self.seconds = seconds
        self.started_at = started_at
        self.spent_before = spent_before
        self.step_s: float | None = None  # the latest step (compilation makes the first long)
        self.eval_s: float | None = None
        self.save_s: float | None = None
        self.plot_s: float | None = None

    def used(self) -> float:
        return self.spent_before + time.perf_counter() - self.started_at

    # --- what was measured ---

    def record_step(self, seconds: float) -> None:
        self.step_s = seconds

    def record_eval(self, seconds: float) -> None:
        self.eval_s = seconds

    def record_save(self, seconds: float) -> None:
        self.save_s = seconds

    def record_plot(self, seconds: float) -> None:
        self.plot_s = seconds

    # --- what remains ---

    def end_reserve(self, *, evaluates: bool, eval_batches: int, checkpoint_bytes: int) -> float:
        """Seconds to keep for the end: a final evaluation (when there is validation data),
        the final checkpoint and the plot."""
        step = self.step_s or 0.0
        reserve = self.save_s if self.save_s is not None else checkpoint_bytes / SAVE_BYTES_PER_S
        reserve += self.plot_s if self.plot_s is not None else FIRST_PLOT_S
        if evaluates:
            reserve += self.eval_s if self.eval_s is not None else 0.5 * step * eval_batches
        return reserve * END_MARGIN + END_SLACK_S

    def for_steps(self, reserve: float) -> float:
        """Seconds of the budget left for training steps (from the start), the end kept."""
        return max(self.seconds - reserve, 1e-9)

    def out_of_time(self, reserve: float) -> bool:
        """Whether one more step would leave too little for the end."""
        return self.used() + (self.step_s or 0.0) >= self.for_steps(reserve)
