"""`bpelm sweep` and `bpelm compare`: a grid of training runs, and a table and figure of runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from bpelm.cli.common import CliError, add_progress_argument, progress_enabled


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    s = sub.add_parser(
        "sweep",
        help="train every point of a grid of config overrides, then compare them",
        description="Train each point of a grid (the cartesian product of every --grid, and of "
        "the config's own [sweep] table) as a normal `bpelm train` run in OUT/POINT, one after "
        "another, then write OUT/summary.md and OUT/curves.png. Resumable: a point whose folder "
        "holds summary.json is skipped on a rerun, an interrupted one is resumed.",
        formatter_class=fmt,
    )
    s.add_argument("--config", required=True, help="TOML config (may hold a [sweep] table)")
    s.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2,...",
        help="values to sweep, e.g. --grid train.max_lr=1e-3,3e-3,1e-2 (repeatable: the "
        "product of all)",
    )
    s.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value in every point (repeatable)",
    )
    s.add_argument("--out", required=True, help="sweep folder: one run folder per point")
    s.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget of each run; the LR decay follows wall-clock so it ends on time",
    )
    s.add_argument(
        "--tokens",
        type=int,
        default=None,
        help="training tokens per point: max_steps = TOKENS // (batch_size x context_length), "
        "so a batch-size sweep holds tokens constant (default: the [sweep] table's tokens, "
        "else max_steps as configured)",
    )
    s.add_argument(
        "--smoke",
        action="store_true",
        help="apply the [sweep] table's smoke overrides (a tiny CPU-sized version)",
    )
    s.add_argument("--device", default=None, help="cuda, cuda:N, cpu or mps (default: auto)")
    s.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own choice; 1 with --smoke, where the tiny "
        "models run faster on one thread than on several that wait for each other)",
    )
    s.add_argument(
        "--dry-run", action="store_true", help="list the points and their folders; train nothing"
    )
    add_progress_argument(s)
    s.add_argument("--quiet", action="store_true", help="the same as --no-progress")
    s.set_defaults(func=cmd_sweep)

    c = sub.add_parser(
        "compare",
        help="a table and loss curves of finished runs",
        description="Find every run (a folder with config.json and metrics.jsonl) in or below "
        "the paths given and write OUT/summary.md (date, the config's differences from what "
        "all runs share, status, diverged, steps, tokens, wall-clock, final and best validation "
        "loss) and OUT/curves.png (validation and training loss against steps and wall-clock).",
        formatter_class=fmt,
    )
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or folders of runs")
    c.add_argument(
        "--out",
        default=None,
        help="where to write summary.md and curves.png (default: the "
        "single folder given, else the current directory)",
    )
    c.add_argument(
        "--sample",
        default=None,
        metavar="PROMPT",
        help="also put a sample from each run (its best checkpoint, its tokenizer, one seed) "
        "in summary.md, side by side",
    )
    c.set_defaults(func=cmd_compare)


def cmd_sweep(args: argparse.Namespace) -> int:
    from bpelm.experiments.sweep import load_spec, point_name, run_sweep

    common = list(args.set or [])
    if args.max_minutes is not None:
        common.append(f"train.max_minutes={args.max_minutes}")
    if args.device is not None:
        common.append(f"train.device={args.device}")
    spec = load_spec(args.config, args.grid, common, tokens=args.tokens, smoke=args.smoke)
    if args.dry_run:
        for point in spec.overrides():
            model, train = spec.configs(point)
            print(
                f"{Path(args.out) / point_name(point)}: {' '.join(point) or 'base'} "
                f"({train.max_steps:,} steps of {train.batch_size} x {model.context_length})"
            )
        return 0
    threads = 1 if args.threads is None and args.smoke else args.threads
    if threads is not None and threads < 1:
        raise CliError("--threads must be positive")
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    progress = progress_enabled(args) and not args.quiet
    try:
        outcomes = run_sweep(spec, args.out, progress=progress)
    finally:
        torch.set_num_threads(before)  # main() may be called again in the same process
    for o in outcomes:
        print(f"{o.status:>16}  {o.run_dir}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bpelm.experiments.compare import load_runs, markdown_table, write_report

    records = load_runs(args.runs)
    if not records:
        raise CliError(f"no runs (config.json + metrics.jsonl) in or below {' '.join(args.runs)}")
    if args.out is not None:
        out = Path(args.out)
    elif len(args.runs) == 1 and Path(args.runs[0]).is_dir():
        out = Path(args.runs[0])
    else:
        out = Path(".")
    md, png = write_report(
        records, out, title="Comparison of " + ", ".join(args.runs), sample_prompt=args.sample
    )
    print(markdown_table(records, root=out), end="")
    print(f"wrote {md} and {png}")
    return 0
