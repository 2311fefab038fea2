"""`bpelm tokenizer stats`: compression, longest tokens and throughput of a trained tokenizer
(an action of `bpelm tokenizer`, in a module of its own: it is a study, not a tool)."""

from __future__ import annotations

import argparse
import statistics

from bpelm.cli.common import END_OF_TEXT, CliError


def add_parser(actions: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    """`stats` among the actions of `bpelm tokenizer`."""
    st = actions.add_parser(
        "stats",
        help="bytes per token, longest tokens and throughput of a trained tokenizer",
        description="Bytes per token on DOCS documents sampled from --input (split on the "
        "special token), the longest tokens, encoding throughput on the whole file (MB/s, and "
        "the time the Pile's 825 GB would take), and with --compare the same documents through "
        "a second tokenizer (compression side by side, vocabulary overlap).",
        formatter_class=fmt,
    )
    st.add_argument("--tokenizer", required=True, help="directory from `bpelm tokenizer train`")
    st.add_argument("--input", required=True, help="text file (plain, .gz, .xz or .bz2)")
    st.add_argument("--docs", type=int, default=10, help="documents to sample")
    st.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    st.add_argument(
        "--separator",
        default=END_OF_TEXT,
        help="the string documents are split on (empty: the whole prefix is one document)",
    )
    st.add_argument(
        "--read-mb",
        type=float,
        default=64.0,
        help="documents are sampled from this many MB at the start of the file",
    )
    st.add_argument("--longest", type=int, default=10, help="longest tokens to list")
    st.add_argument("--threads", type=int, default=None, help="encoding threads (default: all)")
    st.add_argument(
        "--no-throughput", action="store_true", help="skip encoding the whole file for MB/s"
    )
    st.add_argument("--compare", default=None, metavar="DIR2", help="a second tokenizer")
    st.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from bpelm.experiments import tokenizer_stats as ts
    from bpelm.tokenizer.corpus import load_tokenizer

    if args.docs <= 0 or args.read_mb <= 0 or args.longest < 0:
        raise CliError("--docs and --read-mb must be positive, --longest >= 0")
    tok = load_tokenizer(args.tokenizer)
    other = load_tokenizer(args.compare) if args.compare else None
    path = ts.check_input(args.input)
    text = ts.read_prefix(path, int(args.read_mb * 1e6))
    all_docs = len([d for d in text.split(args.separator) if d.strip()]) if args.separator else 1
    docs = ts.sample_documents(text, args.separator or None, args.docs, args.seed)
    if not docs:
        raise CliError(f"{path}: no non-empty documents in its first {args.read_mb:g} MB")
    comp = ts.compression(tok, docs)
    per_doc = comp.per_document
    print(
        f"tokenizer {args.tokenizer}: {tok.vocab_size:,} tokens ({len(tok.special_tokens)} "
        f"special), split pattern {tok.pattern if len(tok.pattern) <= 60 else 'a custom regex'}"
    )
    print(
        f"documents: {len(docs)} sampled of {all_docs:,} in the first {args.read_mb:g} MB of "
        f"{path} (split on {args.separator!r}), {comp.bytes:,} bytes"
    )
    print(
        f"bytes per token: {comp.bytes_per_token:.3f} ({comp.tokens:,} tokens); per document "
        f"min {min(per_doc):.2f}, median {statistics.median(per_doc):.2f}, max {max(per_doc):.2f}"
    )
    if args.longest:
        print(f"longest tokens ({args.longest}):")
        for i, b in ts.longest_tokens(tok, args.longest):
            print(f"  {i:>7}  {len(b):>3} bytes  {ts.show_token(b)}")
    if not args.no_throughput:
        th = ts.throughput(tok, path, args.threads)
        print(
            f"throughput: {th.mb_per_s:.2f} MB/s encoding {path} ({th.bytes / 1e6:.2f} MB, "
            f"{th.tokens:,} tokens, {th.threads or 'all'} threads): the Pile (825 GB) would take "
            f"{th.pile_hours:,.1f} h"
        )
    if other is not None:
        oc = ts.compression(other, docs)
        both, share_a, share_b = ts.vocabulary_overlap(tok, other)
        print(f"compared with {args.compare} on the same {len(docs)} documents:")
        print(f"  {'':<18}{'tokenizer':>14}{'--compare':>14}")
        print(f"  {'vocabulary':<18}{tok.vocab_size:>14,}{other.vocab_size:>14,}")
        print(f"  {'tokens':<18}{comp.tokens:>14,}{oc.tokens:>14,}")
        print(f"  {'bytes per token':<18}{comp.bytes_per_token:>14.3f}{oc.bytes_per_token:>14.3f}")
        print(
            f"  vocabulary overlap: {both:,} tokens ({100 * share_a:.1f}% of the first, "
            f"{100 * share_b:.1f}% of the second)"
        )
    return 0
