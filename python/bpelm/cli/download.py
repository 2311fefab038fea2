"""`bpelm download`: fetch a dataset's train and validation text."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    d = sub.add_parser(
        "download",
        help="download TinyStories or the OpenWebText sample",
        description="Download a dataset's train and validation text (resumable, checksummed, "
        "decompressed).",
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
    d.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from bpelm.download import download_dataset

    download_dataset(args.dataset, Path(args.out), base_url=args.base_url, timeout=args.timeout)
    return 0
