"""Training metrics: one JSON object per step in metrics.jsonl, and loss.png drawn from it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peak, FLOP/s, by a substring of torch.cuda.get_device_name().
_PEAK_BF16_FLOPS = [
    ("H200", 989e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10G", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),
    ("T4", 65e12),
]


def peak_flops(device_name: str) -> float | None:
    """The GPU's dense bf16 peak in FLOP/s, or None when unknown (CPUs included)."""
    for key, flops in _PEAK_BF16_FLOPS:
        if key in device_name:
            return flops
    return None


class MetricsLog:
    """Appends rows to metrics.jsonl; the file is flushed after every batch of rows."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._file.write(json.dumps(_finite(row)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN/inf; a diverged loss is written as null rather than an invalid file.
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl file; a torn last line (crash mid-write) is skipped."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_metrics(path: str | Path, last_step: int) -> None:
    """Drop rows after `last_step`, so a resumed run does not log the same steps twice."""
    path = Path(path)
    if not path.exists():
        return
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    tmp.replace(path)


def plot_metrics(metrics_path: str | Path, png_path: str | Path) -> None:
    """loss.png: train and validation loss against step and against wall-clock minutes, and
    the learning rate against step (the schedule, warmup and decay, as the run took it)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    train = [r for r in rows if r.get("train_loss") is not None]
    val = [r for r in rows if r.get("val_loss") is not None]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, x_key, x_label, scale in (
        (axes[0], "step", "step", 1.0),
        (axes[1], "time_s", "wall-clock (minutes)", 1 / 60),
    ):
        if train:
            ax.plot(
                [r[x_key] * scale for r in train],
                [r["train_loss"] for r in train],
                label="train",
                linewidth=0.8,
                alpha=0.8,
            )
        if val:
            ax.plot(
                [r[x_key] * scale for r in val],
                [r["val_loss"] for r in val],
                "o-",
                label="validation",
                markersize=3,
            )
        ax.set_xlabel(x_label)
        ax.set_ylabel("cross-entropy loss (nats)")
        ax.grid(alpha=0.3)
        ax.legend()
    lr_rows = [r for r in train if r.get("lr") is not None]
    axes[2].plot([r["step"] for r in lr_rows], [r["lr"] for r in lr_rows], linewidth=0.8)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("learning rate")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    png_path = Path(png_path)
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png_path)
