"""Comparing finished runs: one row per run (its config's differences, status, losses, tokens,
wall-clock) in a markdown table, and every run's loss curves in one figure.

A run is a directory holding `config.json` and `metrics.jsonl` (what `bpelm train` writes);
`summary.json`, written when a run ends, gives its status. A folder of runs (a sweep, or a
whole project) is searched recursively, so it doubles as the experiment log.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpelm.training.metrics import read_metrics

# Written by `bpelm sweep` into each run: the --grid/--set values that made this point.
OVERRIDES_FILE = "overrides.json"


@dataclass
class RunRecord:
    """What one run directory says about itself."""

    path: Path
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] | None
    overrides: list[str] | None
    label: str = ""
    differences: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.summary is None:
            return "incomplete"  # interrupted, or still running
        return str(self.summary.get("status", "finished"))

    @property
    def diverged(self) -> bool:
        return bool(self.summary and self.summary.get("diverged"))

    def _val(self) -> list[float]:
        return [r["val_loss"] for r in self.rows if _finite(r.get("val_loss"))]

    @property
    def final_val_loss(self) -> float | None:
        vals = self._val()
        return vals[-1] if vals else None

    @property
    def best_val_loss(self) -> float | None:
        vals = self._val()
        return min(vals) if vals else None

    @property
    def final_train_loss(self) -> float | None:
        losses = [r["train_loss"] for r in self.rows if "train_loss" in r]
        return losses[-1] if losses else None  # None also when the last one was NaN

    @property
    def steps(self) -> int:
        return max((int(r.get("step", 0)) for r in self.rows), default=0)

    @property
    def tokens(self) -> int:
        return max((int(r.get("tokens", 0)) for r in self.rows), default=0)

    @property
    def wall_clock_s(self) -> float:
        if self.summary and self.summary.get("elapsed_s") is not None:
            return float(self.summary["elapsed_s"])
        return max((float(r.get("time_s", 0.0)) for r in self.rows), default=0.0)

    @property
    def date(self) -> str:
        if self.summary and self.summary.get("finished_at"):
            return str(self.summary["finished_at"])[:16].replace("T", " ")
        metrics = self.path / "metrics.jsonl"
        stamp = metrics.stat().st_mtime if metrics.exists() else self.path.stat().st_mtime
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _read_json(path: Path) -> dict[str, Any] | list[Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_run(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "metrics.jsonl").is_file()


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories among `paths` and anywhere below them, each once, in path order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such run directory or folder")
        if is_run(p):
            found.append(p)
        else:
            found.extend(sorted(m.parent for m in p.rglob("metrics.jsonl") if is_run(m.parent)))
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def load_run(path: str | Path) -> RunRecord:
    path = Path(path)
    config = _read_json(path / "config.json")
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'}: not a run's config")
    summary = _read_json(path / "summary.json")
    overrides = _read_json(path / OVERRIDES_FILE)
    metrics = path / "metrics.jsonl"
    return RunRecord(
        path=path,
        config=config,
        rows=read_metrics(metrics) if metrics.exists() else [],  # none yet: failed at start
        summary=summary if isinstance(summary, dict) else None,
        overrides=[str(x) for x in overrides] if isinstance(overrides, list) else None,
    )


def _flatten(config: dict[str, Any]) -> dict[str, Any]:
    flat = {}
    for section, table in config.items():
        if isinstance(table, dict):
            for k, v in table.items():
                flat[f"{section}.{k}"] = v
    return flat


def short_override(item: str) -> str:
    """'train.max_lr=1e-3' -> 'max_lr=1e-3' (the section prefix only; values keep dots)."""
    for section in ("model.", "train."):
        if item.startswith(section):
            return item[len(section) :]
    return item


def _short(value: Any) -> str:
    if isinstance(value, str) and "/" in value:
        return Path(value).name  # data and tokenizer paths: the file name tells them apart
    return str(value)


def label_runs(records: list[RunRecord]) -> None:
    """Each record's `differences`: config values not shared by every run compared (its
    base is what they have in common), and `label`: the sweep's overrides when it has them,
    else those differences, else the folder name."""
    flats = [_flatten(r.config) for r in records]
    keys = sorted({k for f in flats for k in f})
    varying = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    for record, flat in zip(records, flats):
        record.differences = {k: flat.get(k) for k in varying}
        if record.overrides is not None:
            labels = [o[len("label=") :] for o in record.overrides if o.startswith("label=")]
            shown = labels[:1] or [short_override(o) for o in record.overrides]
            record.label = " ".join(shown) or "base"
        elif record.differences:
            record.label = " ".join(
                f"{k.split('.', 1)[1]}={_short(v)}" for k, v in record.differences.items()
            )
        else:
            record.label = record.path.name


def load_runs(paths: list[str | Path]) -> list[RunRecord]:
    """Every run found under `paths`, labelled against each other."""
    records = [load_run(p) for p in find_runs(paths)]
    label_runs(records)
    return records


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def markdown_table(records: list[RunRecord], root: Path | None = None) -> str:
    """One row per run: date, run, its differences, status, losses, tokens and wall-clock."""
    head = (
        "| date | run | differences | status | diverged | steps | tokens | wall-clock "
        "| final val loss | best val loss | final train loss |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in records:
        try:
            name = str(r.path.resolve().relative_to(root.resolve())) if root else str(r.path)
        except ValueError:
            name = str(r.path)
        lines.append(
            f"| {r.date} | `{name}` | {r.label} | {r.status} | {'yes' if r.diverged else 'no'} "
            f"| {r.steps:,} | {r.tokens:,} | {_duration(r.wall_clock_s)} "
            f"| {_fmt(r.final_val_loss)} | {_fmt(r.best_val_loss)} "
            f"| {_fmt(r.final_train_loss)} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(records: list[RunRecord], png_path: str | Path) -> None:
    """Validation (top) and training (bottom) loss against steps (left) and wall-clock
    (right), one colour per run, labelled by its differences."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharey="row")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    first_losses = []
    for i, r in enumerate(records):
        color = colors[i % len(colors)]
        train = [x for x in r.rows if _finite(x.get("train_loss"))]
        val = [x for x in r.rows if _finite(x.get("val_loss"))]
        if train and not r.diverged:
            first_losses.append(train[0]["train_loss"])
        label = r.label + (" (diverged)" if r.diverged else "")
        for col, (key, scale) in enumerate((("step", 1.0), ("time_s", 1 / 60))):
            if val:
                axes[0][col].plot(
                    [x[key] * scale for x in val],
                    [x["val_loss"] for x in val],
                    "o-",
                    markersize=3,
                    color=color,
                    label=label,
                )
            if train:
                axes[1][col].plot(
                    [x[key] * scale for x in train],
                    [x["train_loss"] for x in train],
                    linewidth=0.8,
                    alpha=0.8,
                    color=color,
                    label=label,
                )
    for row, what in enumerate(("validation", "training")):
        for col, xlabel in enumerate(("step", "wall-clock (minutes)")):
            ax = axes[row][col]
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{what} loss (nats)")
            ax.grid(alpha=0.3)
            if first_losses:
                # A diverged run's losses (up to 1e6 and beyond) would flatten every other
                # curve: the axis stops a little above the highest starting loss.
                ax.set_ylim(top=1.1 * max(first_losses))
    handles, labels = axes[1][0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.025 * math.ceil(len(labels) / 3), 1, 1))
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)


def samples_section(records: list[RunRecord], prompt: str, max_new_tokens: int = 64) -> str:
    """Markdown: one sample per run from its best checkpoint (else its newest), the same
    prompt and seed for all, so the runs read side by side."""
    import io

    from bpelm.generate import sample_text
    from bpelm.tokenizer.corpus import load_tokenizer
    from bpelm.training.checkpoint import latest_checkpoint, load_model

    parts = [
        f"## Samples\n\nPrompt {prompt!r}, {max_new_tokens} new tokens, seed 0, temperature "
        "0.8, top-p 0.9, from each run's best.pt (else its newest checkpoint).\n"
    ]
    for r in records:
        best = r.path / "best.pt"
        try:
            source = best if best.exists() else latest_checkpoint(r.path)
            model, extra, _ = load_model(source, "cpu")
            tok = load_tokenizer(extra.get("tokenizer") or "")
            out = io.StringIO()
            text = sample_text(model, tok, prompt, max_new_tokens=max_new_tokens, out=out)[0]
            body = (prompt + text).replace("\n", " ")
        except (OSError, ValueError, KeyError) as e:  # no checkpoint, no tokenizer recorded
            body = f"(no sample: {e})"
        parts.append(f"**{r.label or r.path.name}**: {body}\n")
    return "\n".join(parts)


def write_report(
    records: list[RunRecord],
    out_dir: str | Path,
    title: str = "Runs",
    sample_prompt: str | None = None,
) -> tuple[Path, Path]:
    """OUT/summary.md and OUT/curves.png for `records`; returns both paths. With
    `sample_prompt`, summary.md also holds a sample from each run."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(records, root=out)
    md = out / "summary.md"
    samples = "" if sample_prompt is None else "\n" + samples_section(records, sample_prompt)
    md.write_text(
        f"# {title}\n\n{len(records)} run(s); differences are the config values that are not "
        "the same in every run listed. Loss curves: `curves.png`.\n\n" + table + samples
    )
    png = out / "curves.png"
    plot_curves(records, png)
    return md, png
