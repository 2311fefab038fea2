"""`bpelm experiment sgd-toy|match-ffn`: the assignment's small studies that need no data."""

from __future__ import annotations

import argparse

from bpelm.cli.common import CliError


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    e = sub.add_parser(
        "experiment", help="small studies: the SGD learning-rate toy, FFN matching, smoke data"
    )
    esub = e.add_subparsers(dest="experiment_command", metavar="STUDY", required=True)
    toy = esub.add_parser(
        "sgd-toy",
        help="SGD with lr/sqrt(t+1) on mean(W^2), W 10x10, at several learning rates",
        description="Minimise mean(W^2) for a 10x10 W ~ 5 N(0,1) with SGD whose step is "
        "lr / sqrt(t+1) * grad, and print the loss before each step for each rate.",
        formatter_class=fmt,
    )
    toy.add_argument("--lrs", default="1e1,1e2,1e3", help="comma-separated learning rates")
    toy.add_argument("--steps", type=int, default=10, help="updates per rate")
    toy.add_argument("--seed", type=int, default=0, help="seed of the starting W (same for all)")
    toy.set_defaults(func=cmd_sgd_toy)
    mf = esub.add_parser(
        "match-ffn",
        help="the SiLU d_ff whose model counts as many parameters as the SwiGLU one",
        description="For the SiLU vs SwiGLU ablation: print the ungated FFN width whose model "
        "has the parameter count of the config's SwiGLU model (within 1%%), and both counts.",
        formatter_class=fmt,
    )
    mf.add_argument("--config", required=True, help="TOML config (its d_ff is SwiGLU's)")
    mf.add_argument("--multiple", type=int, default=64, help="round d_ff to a multiple of this")
    mf.set_defaults(func=cmd_match_ffn)
    sd = esub.add_parser(
        "smoke-data",
        help="small token arrays for running the studies at --smoke size on a CPU",
        description="Write OUT/stories (the bundled sample) and OUT/web (the first --web-mb MB "
        "of --web) as train/valid token arrays, each with its own small tokenizer. The "
        "studies in experiments/ read runs/smoke-data at --smoke size.",
        formatter_class=fmt,
    )
    sd.add_argument("--out", default="runs/smoke-data", help="output folder")
    sd.add_argument(
        "--web",
        default=None,
        help="web corpus (default: ../shared/data/web_128M.txt.xz beside the checkout when "
        "present, else the bundled sample)",
    )
    sd.add_argument("--web-mb", type=float, default=1.0, help="MB of the web corpus to use")
    sd.add_argument("--vocab-size", type=int, default=512, help="tokens per tokenizer")
    sd.set_defaults(func=cmd_smoke_data)


def cmd_sgd_toy(args: argparse.Namespace) -> int:
    from bpelm.experiments.toys import sgd_toy, sgd_toy_table

    try:
        lrs = [float(x) for x in args.lrs.split(",") if x.strip()]
    except ValueError:
        raise CliError(f"--lrs {args.lrs!r}: expected comma-separated numbers") from None
    if not lrs or args.steps <= 0:
        raise CliError("--lrs needs at least one rate and --steps must be positive")
    print(sgd_toy_table(sgd_toy(lrs, args.steps, args.seed)))
    return 0


def cmd_match_ffn(args: argparse.Namespace) -> int:
    from bpelm.experiments.sweep import load_spec
    from bpelm.experiments.toys import match_silu_to_swiglu

    if args.multiple <= 0:
        raise CliError("--multiple must be positive")
    model, _ = load_spec(args.config).configs([])  # a study's [sweep] table is allowed
    m = match_silu_to_swiglu(model, args.multiple)
    print(f"swiglu d_ff {m.swiglu.d_ff}: {m.swiglu_params:,} parameters")
    print(
        f"silu   d_ff {m.silu.d_ff}: {m.silu_params:,} parameters "
        f"({100 * m.relative_difference:.2f}% apart)"
    )
    print(f"use: --set ffn=silu --set d_ff={m.silu.d_ff}")
    return 0 if m.relative_difference <= 0.01 else 1


def cmd_smoke_data(args: argparse.Namespace) -> int:
    from bpelm.experiments.smoke import make_smoke_data

    if args.web_mb <= 0 or args.vocab_size < 257:
        raise CliError("--web-mb must be positive and --vocab-size at least 257")
    make_smoke_data(args.out, web=args.web, web_mb=args.web_mb, vocab_size=args.vocab_size)
    return 0
