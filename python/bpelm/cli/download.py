"""`bpelm download`: fetch a dataset's train and validation text."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    d = sub.add_parser(
        "download",
        help="download TinyStories or the OpenWebText sample",
        description="Download a dataset's train and validation text (resumable, "
        "sha256-checked, decompressed). With huggingface_hub installed (pip install "
        "'bpelm[hub]') and no mirror, files come through it and must match the sha256 the "
        "hub publishes; a hash pinned in bpelm is checked from any source; otherwise the "
        "first download's sha256 is recorded and checked later (trust on first use).",
        formatter_class=fmt,
    )
    d.add_argument("dataset", choices=["tinystories", "owt"])
    d.add_argument("--out", default="data", help="directory for the files")
    d.add_argument(
        "--base-url",
        default=None,
        help="mirror to fetch from instead of the dataset's public URL (also $BPELM_DOWNLOAD_BASE)",
    )
    d.add_argument("--timeout", type=float, default=5.0, help="connect/read timeout, seconds")
    d.add_argument(
        "--decompress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a decompressed copy of gzipped files (owt); --no-decompress keeps only "
        "the .gz, which the tokenizer commands read directly",
    )
    d.add_argument(
        "--print-hashes",
        action="store_true",
        help="print the sha256 the hub publishes for each file, as PINNED_SHA256 lines for "
        "bpelm/download.py, and download nothing (needs huggingface_hub)",
    )
    d.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from bpelm.download import download_dataset, published_hashes

    if args.print_hashes:
        for name, digest in published_hashes(args.dataset, timeout=args.timeout).items():
            note = "" if digest else "  # the hub publishes no sha256 for it"
            print(f'    "{name}": "{digest or ""}",{note}')
        return 0
    download_dataset(
        args.dataset,
        Path(args.out),
        base_url=args.base_url,
        timeout=args.timeout,
        decompress=args.decompress,
    )
    return 0
