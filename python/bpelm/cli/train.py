"""`bpelm train`: train a Transformer LM from a TOML config, or resume a run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bpelm.cli.common import PROCESS_START, CliError, add_progress_argument
from bpelm.tokenizer.corpus import existing


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    tr = sub.add_parser(
        "train",
        help="train a Transformer LM from a TOML config",
        description="Train a Transformer LM. Everything (model shape, optimizer, schedule, data, "
        "run settings) is in one TOML file with [model] and [train] tables: one of yours, or "
        "a shipped one by name (`bpelm configs`).",
        formatter_class=fmt,
    )
    tr.add_argument(
        "--config",
        default=None,
        help="TOML config file, or the name of a shipped one (`bpelm configs` lists them)",
    )
    tr.add_argument(
        "--help-config",
        action=_ConfigReference,
        nargs=0,
        help="print every config key with its type, default and meaning, and exit",
    )
    tr.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_lr=1e-3 or --set d_model=256 "
        "(repeatable)",
    )
    tr.add_argument("--out", default=None, help="run directory (default runs/CONFIG-TIMESTAMP)")
    tr.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="resume from a checkpoint file or run directory (default: --out's newest)",
    )
    tr.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="time budget from the command's start: start-up, compilation, evaluations and the "
        "final checkpoint included; the LR decay (warmup included) follows it",
    )
    tr.add_argument("--device", default=None, help="cuda, cuda:N, cpu or mps (default: auto)")
    tr.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train on N processes of this machine with DistributedDataParallel (one per GPU; "
        "gloo on CPU): runs `torchrun --standalone --nproc-per-node N -m bpelm train ...`. "
        "train.batch_size is the global batch, split evenly among them",
    )
    tr.add_argument(
        "--find-max-batch",
        action="store_true",
        help="instead of training: double train.batch_size from 1, one real step at each size, "
        "until the device runs out of memory, and report the largest that fits (on a CPU the "
        "doubling stops where `bpelm account` estimates more than the memory available)",
    )
    add_progress_argument(tr)
    tr.add_argument("--quiet", action="store_true", help="the same as --no-progress")
    tr.set_defaults(func=cmd_train)

    cf = sub.add_parser(
        "configs",
        help="list the configs that ship with bpelm",
        description="The configs that ship in the package; `bpelm train --config NAME` takes "
        "a name as well as a path, and `bpelm configs NAME` prints one (to copy and edit).",
        formatter_class=fmt,
    )
    cf.add_argument("name", nargs="?", default=None, help="print this config")
    cf.set_defaults(func=cmd_configs)


class _ConfigReference(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from bpelm.training.config import config_reference

        print(config_reference(), end="")
        parser.exit()


def cmd_configs(args: argparse.Namespace) -> int:
    from bpelm.training.config import preset_summary, presets, resolve_config

    if args.name is not None:
        print(resolve_config(args.name).read_text(encoding="utf-8"), end="")
        return 0
    for name, path in presets().items():
        print(f"{name:<18} {preset_summary(path)}")
    return 0


def load_any_config(path: Path, overrides: list[str]):
    """A TOML config (a path or a shipped config's name), or the config.json a previous run
    wrote (for --resume)."""
    from bpelm.training.config import build_config, load_config, resolve_config

    path = resolve_config(path)
    if path.suffix == ".json":
        data = json.loads(existing(path, "config").read_text())
        return build_config(data, overrides, source=str(path))
    return load_config(path, overrides)


def _exec_torchrun(nproc: int, argv: list[str]) -> None:
    """Replace this process with torchrun starting `nproc` copies of this command (less
    --nproc): PyTorch's own launcher, which sets each copy's rank."""
    if nproc < 1:
        raise CliError(f"--nproc must be at least 1, got {nproc}")
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={nproc}", "-m", "bpelm", *rest]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def cmd_train(args: argparse.Namespace) -> int:
    from bpelm.training import latest_checkpoint, train
    from bpelm.training.distributed import launched_by_torchrun

    if args.nproc is not None and not launched_by_torchrun():
        _exec_torchrun(args.nproc, args.argv)

    config_path = args.config
    resume = None
    if args.resume is not None:
        resume_from = args.resume or args.out
        if not resume_from:
            raise CliError("--resume without a path needs --out (the run directory to resume)")
        # A run directory stays a directory: resuming then falls back past an unreadable
        # newest checkpoint to the previous good one.
        resume = Path(resume_from)
        run_dir = latest_checkpoint(resume).parent
        if config_path is None:
            config_path = run_dir / "config.json"
    if config_path is None:
        raise CliError("--config FILE.toml is required (or --resume a run)")
    overrides = list(args.set or [])
    if args.max_minutes is not None:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    model_cfg, train_cfg = load_any_config(Path(config_path), overrides)
    if args.find_max_batch:
        from bpelm.training.max_batch import find_max_batch

        best, _ = find_max_batch(model_cfg, train_cfg)
        if best == 0:
            raise CliError("not even a batch of 1 fits this model on this device")
        print(f"largest batch_size that fits: {best} (set train.batch_size, or use "
              "train.grad_accum_steps for more)")  # fmt: skip
        return 0
    if args.out:
        out = Path(args.out)
    elif resume is not None:
        out = run_dir
    else:
        out = Path("runs") / f"{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Training keeps its bar off a terminal too (a line per 30 s in a log) unless told not to.
    progress = not args.quiet if args.progress is None else args.progress and not args.quiet
    train(model_cfg, train_cfg, out, resume=resume, progress=progress, started_at=PROCESS_START)
    return 0
