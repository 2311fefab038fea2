"""`bpelm export`: a checkpoint's weights as safetensors, for sharing and other tools."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    x = sub.add_parser(
        "export",
        help="write a checkpoint's weights as safetensors",
        description="Write the weights of a checkpoint (no optimizer state) to "
        "OUT/model.safetensors and the model config to OUT/config.json. `bpelm generate "
        "--checkpoint OUT` and `bpelm eval --checkpoint OUT` load it.",
        formatter_class=fmt,
    )
    x.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    x.add_argument("--safetensors", required=True, metavar="OUT", help="output directory")
    x.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from bpelm.training.export import WEIGHTS_NAME, export_safetensors

    out = export_safetensors(args.checkpoint, args.safetensors)
    print(f"wrote {out / WEIGHTS_NAME} and {out / 'config.json'}")
    return 0
