"""`bpelm tokenizer train|encode`: a vocabulary from a text file, a text file to token ids."""

from __future__ import annotations

import argparse
from pathlib import Path

from bpelm.cli import tokenizer_stats
from bpelm.cli.common import END_OF_TEXT, CliError, add_progress_argument, progress_enabled
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
    source = tt.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="training text")
    source.add_argument(
        "--counts",
        nargs="+",
        metavar="FILE",
        help="train from pretoken count files of `bpelm tokenizer count --shard` instead (their "
        "sum: the same vocabulary as the whole file; their special tokens are used)",
    )
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
    add_pattern_argument(tt, "; default gpt2, or with --counts the count files' pattern")
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
        "--shard",
        metavar="I/N",
        default=None,
        help="encode only the I-th of N byte ranges of the input (0-based; cut where the "
        "tokens cannot change), to its own .npy; `bpelm tokenizer concat` joins them",
    )
    te.add_argument(
        "--ordinary-specials",
        action="store_true",
        help="encode special tokens found in the text as ordinary text, not as their ids",
    )
    add_progress_argument(te)
    te.set_defaults(func=cmd_encode)

    tc = tsub.add_parser(
        "concat",
        help="join token arrays (e.g. shards) in order",
        description="Join .npy token arrays in the order given into one .npy: the shards of "
        "`bpelm tokenizer encode --shard i/n` give the whole file's ids.",
        formatter_class=fmt,
    )
    tc.add_argument("inputs", nargs="+", metavar="ARRAY", help=".npy token arrays, in order")
    tc.add_argument("--out", required=True, help="output FILE.npy")
    tc.set_defaults(func=cmd_concat)

    tn = tsub.add_parser(
        "count",
        help="pretoken counts of a shard, for training on many machines",
        description="Count the pretokens of the I-th of N byte ranges of a text file (split "
        "on the special tokens, which are not counted) into a JSON file; `bpelm tokenizer "
        "train --counts FILE...` trains on their sum.",
        formatter_class=fmt,
    )
    tn.add_argument("--input", required=True, help="text file")
    tn.add_argument("--shard", metavar="I/N", default="0/1", help="which slice (default: all)")
    tn.add_argument(
        "--special",
        action="append",
        default=None,
        help=f"special token (repeatable; default {END_OF_TEXT})",
    )
    add_pattern_argument(tn, "; default gpt2; `train --counts` trains with it")
    tn.add_argument("--out", required=True, help="output count file (.json)")
    tn.set_defaults(func=cmd_count)
    tokenizer_stats.add_parser(tsub, fmt)


PATTERN_HELP = (
    "how text is split into pretokens before merging, recorded in bpelm.json and used by "
    "every later encode: gpt2 (GPT-2's pattern), cl100k (GPT-4's cl100k_base: numbers in "
    "groups of up to three digits, case-insensitive contractions), o200k (GPT-4o's "
    "o200k_base: case-aware word pieces, marks kept with letters), or any other regular "
    "expression (the slow path, on fancy-regex; text between matches is kept as pretokens)"
)


def add_pattern_argument(p: argparse.ArgumentParser, default_help: str) -> None:
    p.add_argument(
        "--pattern",
        default=None,
        metavar="{gpt2,cl100k,o200k,REGEX}",
        help=PATTERN_HELP + default_help,
    )


def _checked_pattern(pattern: str) -> str:
    """`pattern`, or a CliError giving the reason it cannot be used."""
    from bpelm import _core

    try:
        _core.split_pattern(pattern)
    except ValueError as e:
        raise CliError(f"--pattern: {e}") from None
    return pattern


def cmd_train(args: argparse.Namespace) -> int:
    if args.counts:
        return _train_from_counts(args)
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
        pattern=_checked_pattern(args.pattern or "gpt2"),
    )
    return 0


def _train_from_counts(args: argparse.Namespace) -> int:
    from bpelm.tokenizer import Tokenizer
    from bpelm.tokenizer.shards import load_counts, train_from_counts

    counts, specials, pattern = load_counts(existing(p, "count file") for p in args.counts)
    if args.special is not None and args.special != specials:
        raise CliError(f"--special {args.special} differs from the count files' {specials}")
    if args.pattern is not None:
        from bpelm import _core

        if _core.split_pattern(_checked_pattern(args.pattern)) != _core.split_pattern(pattern):
            raise CliError(f"--pattern {args.pattern!r} differs from the count files' {pattern!r}")
    vocab, merges = train_from_counts(counts, args.vocab_size, specials)
    Tokenizer(vocab, merges, specials, pattern).save(Path(args.out))
    print(
        f"trained a {len(vocab):,}-token vocabulary ({len(merges):,} merges) on the counts of "
        f"{len(args.counts)} files ({sum(counts.values()):,} pretokens) -> {args.out}"
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    from bpelm.tokenizer.shards import count_shard, parse_shard, save_counts

    specials = args.special if args.special is not None else [END_OF_TEXT]
    shard = parse_shard(args.shard)
    pattern = _checked_pattern(args.pattern or "gpt2")
    counts = count_shard(existing(args.input, "input text"), shard, specials, pattern)
    save_counts(counts, specials, args.out, pattern)
    print(f"shard {args.shard}: {sum(counts.values()):,} pretokens, {len(counts):,} distinct")
    return 0


def cmd_concat(args: argparse.Namespace) -> int:
    from bpelm.tokenizer.shards import concat_token_arrays

    total = concat_token_arrays([existing(p, "token array") for p in args.inputs], args.out)
    print(f"joined {len(args.inputs)} arrays: {total:,} tokens -> {args.out}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    out = Path(args.out)
    if args.shard is not None:
        return _encode_shard(args, tok, out)
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


def _encode_shard(args: argparse.Namespace, tok, out: Path) -> int:
    from bpelm.tokenizer.shards import encode_shard, parse_shard

    if out.suffix != ".npy":
        raise CliError(f"{out}: a shard is written as .npy (`bpelm tokenizer concat` joins them)")
    shard = parse_shard(args.shard)
    src = existing(args.input, "input text")
    if src.suffix in (".gz", ".xz", ".bz2"):
        raise CliError(f"{src}: shards are byte ranges of a plain text file; decompress it first")
    out.parent.mkdir(parents=True, exist_ok=True)
    n, piece = encode_shard(
        tok,
        src,
        out,
        shard,
        dtype=token_dtype(tok.vocab_size),
        num_threads=args.threads,
        progress=progress_enabled(args),
        allowed_special=() if args.ordinary_specials else "all",
    )
    print(
        f"shard {args.shard}: bytes {piece.start:,}-{piece.stop:,} of {src} -> {n:,} tokens "
        f"-> {out}"
    )
    return 0
