"""`bpelm generate` and `bpelm eval`: use a trained checkpoint."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from bpelm.cli.common import END_OF_TEXT, CliError, add_progress_argument, progress_enabled
from bpelm.tokenizer.corpus import existing, load_tokenizer


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    g = sub.add_parser(
        "generate",
        help="sample text from a trained model",
        description="Sample from a checkpoint; the model is rebuilt from the config stored in it, "
        f"and sampling stops at {END_OF_TEXT}.",
        formatter_class=fmt,
    )
    g.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    g.add_argument(
        "--prompt",
        default="Once upon a time",
        help="text to continue (user text: spelling a special token such as "
        f"{END_OF_TEXT} in it is refused, as tiktoken refuses it)",
    )
    g.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer directory (default: the one recorded in training)",
    )
    g.add_argument("--max-new-tokens", type=int, default=256, help="tokens to generate at most")
    g.add_argument("--temperature", type=float, default=0.8, help="0 means greedy")
    g.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling mass (1 disables)")
    g.add_argument("--top-k", type=int, default=0, help="keep the k likeliest tokens (0 disables)")
    g.add_argument("--num-samples", type=int, default=1, help="samples drawn as one batch")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same text)")
    g.add_argument("--device", default="auto", help="cuda, cpu, mps or auto")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser(
        "eval",
        help="validation loss and perplexity of a checkpoint",
        description="Loss over consecutive non-overlapping windows from the start of a token "
        "array (deterministic), in nats per token, bits per byte of text (comparable across "
        "tokenizers; needs the tokenizer) and perplexity.",
        formatter_class=fmt,
    )
    e.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    e.add_argument("--data", required=True, help="token array (.npy or .bin)")
    e.add_argument("--batches", type=int, default=None, help="at most this many batches (all)")
    e.add_argument("--batch-size", type=int, default=None, help="(default: the training batch)")
    e.add_argument("--device", default="auto", help="cuda, cpu, mps or auto")
    e.add_argument(
        "--tokenizer",
        default=None,
        help="tokenizer directory, for bits per byte (default: the one recorded in training)",
    )
    add_progress_argument(e)
    e.set_defaults(func=cmd_eval)


def _tokenizer_for(args_tokenizer: str | None, extra: dict[str, Any], checkpoint: str):
    directory = args_tokenizer or extra.get("tokenizer") or ""
    if not directory:
        raise CliError(f"{checkpoint}: records no tokenizer directory; pass --tokenizer DIR")
    return load_tokenizer(directory)


def cmd_generate(args: argparse.Namespace) -> int:
    from bpelm.generate import sample_text
    from bpelm.training import load_model

    model, extra, _ = load_model(existing(args.checkpoint, "checkpoint"), args.device)
    tok = _tokenizer_for(args.tokenizer, extra, args.checkpoint)
    sample_text(
        model,
        tok,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        num_samples=args.num_samples,
        seed=args.seed,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bpelm.training import load_model, load_tokens
    from bpelm.training.data import check_tokens
    from bpelm.training.evaluation import bits_per_byte, window_loss
    from bpelm.training.runtime import autocast_dtype

    model, extra, dev = load_model(existing(args.checkpoint, "checkpoint"), args.device)
    data = load_tokens(existing(args.data, "token array"))
    check_tokens(data, model.vocab_size, f"--data ({args.data})", model.context_length + 1)
    train_cfg = extra.get("config", {}).get("train", {})
    batch_size = args.batch_size or int(train_cfg.get("batch_size", 32))
    amp = autocast_dtype(train_cfg.get("dtype", "auto"), dev)
    t0 = time.perf_counter()
    loss, tokens = window_loss(
        model,
        data,
        context_length=model.context_length,
        batch_size=batch_size,
        max_batches=args.batches,
        device=dev,
        amp=amp,
        progress=progress_enabled(args),
    )
    seconds = time.perf_counter() - t0
    bpb = ""
    if args.tokenizer or extra.get("tokenizer"):
        tok = _tokenizer_for(args.tokenizer, extra, args.checkpoint)
        lengths = np.zeros(max(tok.vocab_size, model.vocab_size), dtype=np.int64)
        for i, token in tok.vocab.items():
            lengths[i] = len(token)
        bpb = f", {bits_per_byte(loss, data[1 : tokens + 1], lengths):.4f} bits/byte"
    print(
        f"{args.data}: loss {loss:.4f} nats/token{bpb}, perplexity {math.exp(loss):.2f} "
        f"over {tokens:,} tokens ({seconds:.1f} s)"
    )
    return 0
