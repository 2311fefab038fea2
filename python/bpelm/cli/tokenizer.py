"""`bpelm tokenizer train|encode`: a vocabulary from a text file, a text file to token ids."""

from __future__ import annotations

import argparse
from pathlib import Path

from bpelm.cli import tokenizer_stats
from bpelm.cli.common import END_OF_TEXT, add_progress_argument, progress_enabled
from bpelm.tokenizer.corpus import (
    encode_corpus,
    existing,
    load_tokenizer,
    token_dtype,
    train_tokenizer,
)


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    t = sub.add_parser("tokenizer", help="train a tokenizer or encode a corpus with one")
    tsub = t.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    tt = tsub.add_parser(
        "train",
        help="train a byte-level BPE vocabulary",
        description="Train byte-level BPE on a UTF-8 text file (plain, .gz, .xz or .bz2) and "
        "write DIR/vocab.json, merges.txt and bpelm.json.",
        formatter_class=fmt,
    )
    tt.add_argument("--input", required=True, help="training text")
    tt.add_argument(
        "--vocab-size", type=int, required=True, help="tokens wanted, specials included"
    )
    tt.add_argument(
        "--special",
        action="append",
        default=None,
        help=f"special token (repeatable); {END_OF_TEXT} is always one, with the first id "
        "after the learned tokens, so --special adds to it rather than replacing it",
    )
    tt.add_argument("--out", required=True, help="output directory")
    tt.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    add_progress_argument(tt)
    tt.set_defaults(func=cmd_train)
    te = tsub.add_parser(
        "encode",
        help="encode a text file to a token array",
        description="Encode a UTF-8 text file (plain, .gz, .xz or .bz2) to a .npy or raw .bin "
        "array (uint16 when the vocabulary fits, else uint32). The file is taken to be a "
        "training corpus: the tokenizer's special tokens in it (e.g. <|endoftext|> between "
        "documents) are encoded as their ids. This differs on purpose from "
        "Tokenizer.encode, which like tiktoken refuses text spelling a special token unless "
        "allowed_special names it; --ordinary-specials encodes them as plain text instead.",
        formatter_class=fmt,
    )
    te.add_argument("--tokenizer", required=True, help="directory from `bpelm tokenizer train`")
    te.add_argument("--input", required=True, help="text to encode")
    te.add_argument("--out", required=True, help="output FILE.npy or FILE.bin")
    te.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    te.add_argument(
        "--ordinary-specials",
        action="store_true",
        help="encode special tokens found in the text as ordinary text, not as their ids",
    )
    add_progress_argument(te)
    te.set_defaults(func=cmd_encode)
    tokenizer_stats.add_parser(tsub, fmt)


def cmd_train(args: argparse.Namespace) -> int:
    # End-of-text stays (first, so its id does not depend on the others): training, the
    # document separator of `tokenizer encode` and generation's stop token all rely on it.
    specials = [END_OF_TEXT] + [s for s in args.special or [] if s != END_OF_TEXT]
    train_tokenizer(
        existing(args.input, "input text"),
        args.vocab_size,
        specials,
        Path(args.out),
        threads=args.threads,
        progress=progress_enabled(args),
    )
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    out = Path(args.out)
    n, size, seconds = encode_corpus(
        tok,
        existing(args.input, "input text"),
        out,
        threads=args.threads,
        progress=progress_enabled(args),
        allowed_special=() if args.ordinary_specials else "all",
    )
    print(
        f"encoded {size / 1e6:.1f} MB into {n:,} tokens ({token_dtype(tok.vocab_size)}) in "
        f"{seconds:.2f} s: {size / 1e6 / max(seconds, 1e-9):.1f} MB/s, "
        f"{size / max(n, 1):.2f} bytes/token -> {out}"
    )
    return 0
