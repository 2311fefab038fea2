"""Grid sweeps: every point of a grid of config overrides trained as a normal run in its own
folder, one after another, then one table and one figure for all of them.

A sweep is resumable: a point whose folder holds `summary.json` (written when a run ends,
diverged or not) is skipped; one with checkpoints but no summary (interrupted) is resumed.

A sweep can come from the command line (`--grid train.max_lr=1e-3,3e-3`) or from a `[sweep]`
table in the config file itself, which `bpelm train` would refuse and this module strips:

    [sweep]
    grid = { "train.max_lr" = [1e-3, 3e-3, 1e-2] }     # the cartesian product of these
    points = [["ffn=swiglu"], ["ffn=silu", "d_ff=2048"]] # explicit sets, crossed with the grid
    tokens = 40_960_000                                 # token budget: max_steps per point
    smoke = ["d_model=64", "max_steps=20"]              # applied with --smoke, which also
    smoke_grid = { "train.batch_size" = [1, 8] }        # replaces these grid keys
    smoke_tokens = 20_480                               # and the token budget
    smoke_points = [["train_data=runs/smoke-data/web/train.npy"]]  # and the points
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpelm.experiments.compare import (
    OVERRIDES_FILE,
    label_runs,
    load_run,
    short_override,
    write_report,
)
from bpelm.training.checkpoint import checkpoint_paths
from bpelm.training.config import ConfigError, ModelConfig, TrainConfig, build_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.9/3.10
    import tomli as tomllib

# A point item "label=NAME" names its folder and row instead of its (long) overrides.
LABEL = "label="
SWEEP_KEYS = {"grid", "points", "tokens", "smoke", "smoke_grid", "smoke_points", "smoke_tokens"}


@dataclass
class SweepSpec:
    """A base config plus the sets of overrides to train it with."""

    source: str
    base: dict[str, Any]  # the config file's [model] and [train] tables
    grid: list[tuple[str, list[str]]] = field(default_factory=list)
    points: list[list[str]] = field(default_factory=list)
    # Overrides every point gets (--set, --max-minutes, --device, --smoke's).
    common: list[str] = field(default_factory=list)
    # Training tokens per point: max_steps = tokens // (batch_size * context_length).
    tokens: int | None = None

    def overrides(self) -> list[list[str]]:
        """Each point's own overrides (what names and labels it), in run order."""
        explicit = self.points or [[]]
        keys = [k for k, _ in self.grid]
        combos = itertools.product(*(values for _, values in self.grid)) if self.grid else [()]
        grid_sets = [[f"{k}={v}" for k, v in zip(keys, combo)] for combo in combos]
        return [list(p) + g for p in explicit for g in grid_sets]

    def configs(self, point: list[str]) -> tuple[ModelConfig, TrainConfig]:
        """The point's configs: base, then common overrides, then its own, then the budget."""
        overrides = self.common + [o for o in point if not o.startswith(LABEL)]
        model, train = build_config(self.base, overrides, source=self.source)
        if self.tokens:
            steps = self.tokens // (train.batch_size * model.context_length)
            if steps < 1:
                raise ConfigError(
                    f"{self.source}: a budget of {self.tokens:,} tokens is less than one step "
                    f"of {train.batch_size} x {model.context_length} ({point})"
                )
            model, train = build_config(
                self.base, overrides + [f"train.max_steps={steps}"], source=self.source
            )
        return model, train


def _text(value: Any) -> str:
    # TOML values as --set text: booleans lower-case, everything else as written by str().
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """['train.max_lr=1e-3,3e-3'] -> [('train.max_lr', ['1e-3', '3e-3'])]."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not parts:
            raise ConfigError(
                f"--grid {item!r}: expected KEY=V1,V2,... (e.g. train.max_lr=1e-3,3e-3)"
            )
        grid.append((key.strip(), parts))
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--grid names a key twice: {keys}")
    return grid


def load_spec(
    config: str | Path,
    grid: list[str] | None = None,
    common: list[str] | None = None,
    *,
    tokens: int | None = None,
    smoke: bool = False,
) -> SweepSpec:
    """A sweep from a TOML config (its optional `[sweep]` table) plus command-line grid items.

    Command-line `--grid` keys replace the file's grid for the same key; `tokens` replaces the
    file's budget."""
    path = Path(config)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    table = data.pop("sweep", {})
    if not isinstance(table, dict) or set(table) - SWEEP_KEYS:
        raise ConfigError(f"{path}: [sweep] may hold only {sorted(SWEEP_KEYS)}")
    file_grid = _grid_table(table.get("grid", {}))
    if smoke:
        smaller = {k: v for k, v in _grid_table(table.get("smoke_grid", {}))}
        file_grid = [(k, smaller.get(k, v)) for k, v in file_grid]
        file_grid += [(k, v) for k, v in smaller.items() if k not in dict(file_grid)]
    cli_grid = parse_grid(grid or [])
    cli_keys = {k for k, _ in cli_grid}
    spec = SweepSpec(
        source=str(path),
        base=data,
        grid=[g for g in file_grid if g[0] not in cli_keys] + cli_grid,
        points=[
            [str(o) for o in p]
            for p in table.get(
                "smoke_points" if smoke and "smoke_points" in table else "points", []
            )
        ],
        common=[str(o) for o in table.get("smoke", [])] if smoke else [],
        tokens=tokens
        if tokens is not None
        else table.get("smoke_tokens" if smoke and "smoke_tokens" in table else "tokens"),
    )
    spec.common += list(common or [])
    if smoke and "smoke" not in table:
        raise ConfigError(f"{path}: --smoke needs a [sweep] smoke = [...] list of overrides")
    return spec


def _grid_table(grid: Any) -> list[tuple[str, list[str]]]:
    if not isinstance(grid, dict):
        raise ConfigError("[sweep] grid must be a table of KEY = [values]")
    return [
        (str(k), [_text(v) for v in (vals if isinstance(vals, list) else [vals])])
        for k, vals in grid.items()
    ]


def point_name(point: list[str]) -> str:
    """A folder name for a point: 'max_lr=1e-3_batch_size=64' (safe characters only)."""
    labels = [o[len(LABEL) :] for o in point if o.startswith(LABEL)]
    name = labels[0] if labels else "_".join(short_override(o) for o in point) or "base"
    return re.sub(r"[^A-Za-z0-9._=+-]", "-", name)


@dataclass
class PointOutcome:
    point: list[str]
    run_dir: Path
    status: str  # "skipped", "finished", "stopped_by_time", "diverged", "out of memory"


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    *,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> list[PointOutcome]:
    """Train every point not yet finished, then write OUT/summary.md and OUT/curves.png."""
    from bpelm.training.divergence import TrainingDiverged
    from bpelm.training.loop import train

    out = Path(out_dir)
    points = spec.overrides()
    configs = [spec.configs(p) for p in points]  # every point checked before any trains
    names = [point_name(p) for p in points]
    if len(set(names)) != len(names):
        raise ConfigError(f"two sweep points share a folder name: {names}")
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "config": spec.source,
        "grid": spec.grid,
        "points": spec.points,
        "common": spec.common,
        "tokens": spec.tokens,
    }
    (out / "sweep.json").write_text(json.dumps(record, indent=2) + "\n")
    outcomes = []
    for i, (point, (model_cfg, train_cfg), name) in enumerate(zip(points, configs, names), 1):
        run_dir = out / name
        head = f"[{i}/{len(points)}] {' '.join(point) or 'base'}"
        if (run_dir / "summary.json").exists():
            log(f"{head}: already finished, skipped ({run_dir})")
            outcomes.append(PointOutcome(point, run_dir, "skipped"))
            continue
        resume = run_dir if checkpoint_paths(run_dir) else None
        log(f"{head}: {'resuming' if resume else 'training'} in {run_dir}")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / OVERRIDES_FILE).write_text(json.dumps(point) + "\n")
        try:
            result = train(model_cfg, train_cfg, run_dir, resume=resume, progress=progress, log=log)
            status = "stopped_by_time" if result.stopped_by_time else "finished"
        except TrainingDiverged as e:
            log(f"{head}: {e}")
            status = "diverged"
        except RuntimeError as e:
            if not _is_oom(e):
                raise
            # The batch sweep goes up to the memory limit: a point that does not fit is a
            # result, recorded like a finished run so that a rerun skips it.
            log(f"{head}: out of memory ({str(e).splitlines()[0]})")
            _write_oom_summary(run_dir, str(e))
            status = "out of memory"
        outcomes.append(PointOutcome(point, run_dir, status))
    records = [load_run(o.run_dir) for o in outcomes if (o.run_dir / "config.json").exists()]
    label_runs(records)
    md, png = write_report(records, out, title=f"Sweep of {spec.source}")
    log(f"sweep: {len(points)} point(s); table {md}, curves {png}")
    return outcomes


def _is_oom(e: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(e, oom) or "out of memory" in str(e).lower()


def _write_oom_summary(run_dir: Path, message: str) -> None:
    import time

    data = {
        "status": "out of memory",
        "diverged": False,
        "error": message.splitlines()[0] if message else "",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (run_dir / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
