"""The `bpelm` command line: download, tokenizer train/encode, train, generate, eval, demo."""

from __future__ import annotations

import argparse
import bz2
import contextlib
import gzip
import lzma
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Callable

SPECIAL = "<|endoftext|>"
OPENERS: dict[str, Callable[..., IO[bytes]]] = {
    ".gz": gzip.open,
    ".xz": lzma.open,
    ".bz2": bz2.open,
}


class CliError(Exception):
    """An error to report in one line, without a traceback."""


# -----------------------------------------------------------------------------
# Helpers shared by the subcommands and the demo


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CliError(f"{p}: {what} not found")
    return p


@contextlib.contextmanager
def plain_text(path: Path, scratch_dir: Path, log: Callable[[str], None] = print) -> Iterator[Path]:
    """`path` itself, or for .gz/.xz/.bz2 a decompressed copy in `scratch_dir` that is
    removed afterwards (streamed, so memory stays flat)."""
    opener = OPENERS.get(path.suffix)
    if opener is None:
        yield path
        return
    scratch_dir.mkdir(parents=True, exist_ok=True)
    tmp = scratch_dir / f".{path.stem}.{os.getpid()}.tmp"
    log(f"decompressing {path} to {tmp} (removed afterwards)")
    try:
        with opener(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def load_tokenizer(directory: str | os.PathLike[str]):
    """The tokenizer saved in `directory` (vocab.json + merges.txt + bpelm.json)."""
    from bpelm.tokenizer import Tokenizer

    d = _existing(directory, "tokenizer directory")
    vocab, merges = d / "vocab.json", d / "merges.txt"
    for p in (vocab, merges):
        if not p.exists():
            raise CliError(
                f"{p}: not found (is {d} a directory written by `bpelm tokenizer train`?)"
            )
    return Tokenizer.from_files(vocab, merges)


def token_dtype(vocab_size: int) -> str:
    """The smallest unsigned dtype that holds every id."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def train_tokenizer(
    input_path: Path,
    vocab_size: int,
    specials: list[str],
    out_dir: Path,
    *,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> float:
    """Train and save a tokenizer into `out_dir`; returns the training seconds."""
    from bpelm.tokenizer import Tokenizer
    from bpelm.trainer import train_bpe

    out_dir.mkdir(parents=True, exist_ok=True)
    with plain_text(input_path, out_dir, log) as text:
        size = text.stat().st_size
        t0 = time.perf_counter()
        vocab, merges = train_bpe(
            text, vocab_size, specials, num_threads=threads, progress=sys.stderr.isatty()
        )
        seconds = time.perf_counter() - t0
    Tokenizer(vocab, merges, specials).save(out_dir / "vocab.json", out_dir / "merges.txt")
    log(
        f"trained a {len(vocab):,}-token vocabulary ({len(merges):,} merges) on "
        f"{size / 1e6:.1f} MB in {seconds:.2f} s -> {out_dir}/vocab.json, merges.txt, bpelm.json"
    )
    return seconds


def encode_corpus(
    tokenizer: Any,
    input_path: Path,
    out_path: Path,
    *,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[int, int, float]:
    """Encode a text file to a token array; returns (tokens, input bytes, seconds)."""
    from bpelm.tokenizer import encode_file

    if out_path.suffix not in (".npy", ".bin"):
        raise CliError(f"{out_path}: the output must end in .npy or .bin")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(tokenizer.vocab_size)
    with plain_text(input_path, out_path.parent, log) as text:
        size = text.stat().st_size
        t0 = time.perf_counter()
        n = encode_file(
            tokenizer,
            text,
            out_path,
            dtype=dtype,
            num_threads=threads,
            progress=sys.stderr.isatty(),
        )
        seconds = time.perf_counter() - t0
    return n, size, seconds


def load_model(checkpoint: str | os.PathLike[str], device: str = "auto"):
    """(model, extra) rebuilt from the config a training run stored in the checkpoint."""
    from bpelm.checkpoint import load_checkpoint, read_checkpoint_extra
    from bpelm.config import model_config_from_dict
    from bpelm.train import build_model, latest_checkpoint, resolve_device

    path = latest_checkpoint(_existing(checkpoint, "checkpoint"))
    extra = read_checkpoint_extra(path)
    if "model_config" not in extra:
        raise CliError(f"{path}: holds no model config (not written by `bpelm train`?)")
    dev = resolve_device(device)
    model = build_model(model_config_from_dict(extra["model_config"]), dev)
    load_checkpoint(path, model)
    model.eval()
    return model, extra, dev


def _tokenizer_for(args_tokenizer: str | None, extra: dict[str, Any], checkpoint: str):
    directory = args_tokenizer or extra.get("tokenizer") or ""
    if not directory:
        raise CliError(f"{checkpoint}: records no tokenizer directory; pass --tokenizer DIR")
    return load_tokenizer(directory)


class IncrementalDecoder:
    """Turns a stream of token ids into text pieces. A character split across tokens
    (a partial UTF-8 sequence decodes to U+FFFD) is held back until it completes."""

    # A UTF-8 character has at most 4 bytes, so at most 4 byte-level tokens can be pending.
    MAX_PENDING = 4

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.pending: list[int] = []

    def push(self, token_id: int) -> str:
        self.pending.append(token_id)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd") and len(self.pending) < self.MAX_PENDING:
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text = self.tokenizer.decode(self.pending) if self.pending else ""
        self.pending = []
        return text


def sample_text(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 0.9,
    top_k: int = 0,
    num_samples: int = 1,
    seed: int | None = 0,
    out: IO[str] | None = None,
) -> list[str]:
    """Generate continuations of `prompt`, stopping at <|endoftext|>. With one sample the text
    is streamed to `out` as it is produced; with several, each is printed when all are done."""
    import torch

    from bpelm.generate import generate

    out = sys.stdout if out is None else out
    prompt_ids = tokenizer.encode(prompt)
    if not prompt_ids:
        raise CliError("the prompt encodes to no tokens; give a non-empty --prompt")
    try:
        eos: int | None = tokenizer.token_to_id(SPECIAL)
    except KeyError:
        eos = None  # a vocabulary without <|endoftext|>: stop only at max_new_tokens
    vocab_size = tokenizer.vocab_size
    ids: list[list[int]] = [[] for _ in range(num_samples)]
    done = [False] * num_samples
    stream = IncrementalDecoder(tokenizer) if num_samples == 1 else None
    if stream is not None:
        out.write(prompt)
        out.flush()
    with torch.no_grad():
        for step_ids in generate(
            model,
            prompt_ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            num_samples=num_samples,
            eos_id=eos,
            seed=seed,
        ):
            for i, t in enumerate(step_ids.tolist()):
                if done[i] or t >= vocab_size:
                    continue  # ids past the tokenizer's vocabulary (model padding) carry no text
                if eos is not None and t == eos:
                    done[i] = True
                    continue
                ids[i].append(t)
                if stream is not None:
                    out.write(stream.push(t))
                    out.flush()
            if all(done):
                break
    texts = [tokenizer.decode(s) for s in ids]
    if stream is not None:
        out.write(stream.flush() + "\n")
    else:
        for i, text in enumerate(texts):
            out.write(f"--- sample {i + 1}/{num_samples} ---\n{prompt}{text}\n")
    out.flush()
    return texts


# -----------------------------------------------------------------------------
# Subcommands


def cmd_download(args: argparse.Namespace) -> int:
    from bpelm.download import download_dataset

    download_dataset(args.dataset, Path(args.out), base_url=args.base_url, timeout=args.timeout)
    return 0


def cmd_tokenizer_train(args: argparse.Namespace) -> int:
    specials = args.special if args.special is not None else [SPECIAL]
    train_tokenizer(
        _existing(args.input, "input text"),
        args.vocab_size,
        specials,
        Path(args.out),
        threads=args.threads,
    )
    return 0


def cmd_tokenizer_encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(args.tokenizer)
    out = Path(args.out)
    n, size, seconds = encode_corpus(
        tok, _existing(args.input, "input text"), out, threads=args.threads
    )
    print(
        f"encoded {size / 1e6:.1f} MB into {n:,} tokens ({token_dtype(tok.vocab_size)}) in "
        f"{seconds:.2f} s: {size / 1e6 / max(seconds, 1e-9):.1f} MB/s, "
        f"{size / max(n, 1):.2f} bytes/token -> {out}"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from bpelm.train import latest_checkpoint, train

    config_path = args.config
    resume = None
    if args.resume is not None:
        resume_from = args.resume or args.out
        if not resume_from:
            raise CliError("--resume without a path needs --out (the run directory to resume)")
        resume = latest_checkpoint(resume_from)
        if config_path is None:
            config_path = resume.parent / "config.json"
    if config_path is None:
        raise CliError("--config FILE.toml is required (or --resume a run)")
    overrides = list(args.set or [])
    if args.max_minutes is not None:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    model_cfg, train_cfg = _load_any_config(Path(config_path), overrides)
    if args.out:
        out = Path(args.out)
    elif resume is not None:
        out = resume.parent
    else:
        out = Path("runs") / f"{Path(config_path).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    train(model_cfg, train_cfg, out, resume=resume, progress=not args.quiet)
    return 0


def _load_any_config(path: Path, overrides: list[str]):
    """A TOML config, or the config.json a previous run wrote (for --resume)."""
    import json

    from bpelm.config import build_config, load_config

    if path.suffix == ".json":
        data = json.loads(_existing(path, "config").read_text())
        return build_config(data, overrides, source=str(path))
    return load_config(path, overrides)


def cmd_generate(args: argparse.Namespace) -> int:
    model, extra, _ = load_model(args.checkpoint, args.device)
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
    import math

    from bpelm.data import load_tokens
    from bpelm.train import autocast_dtype, window_loss

    model, extra, dev = load_model(args.checkpoint, args.device)
    data = load_tokens(_existing(args.data, "token array"))
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
        progress=sys.stderr.isatty(),
    )
    print(
        f"{args.data}: loss {loss:.4f} nats/token, perplexity {math.exp(loss):.2f} "
        f"over {tokens:,} tokens ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bpelm.demo import run_demo

    run_demo(args)
    return 0


# -----------------------------------------------------------------------------
# Parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where there is one and the help text does not already say it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text


def build_parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    p = argparse.ArgumentParser(
        prog="bpelm",
        description="Byte-level BPE tokenizer (Rust core) and a small Transformer LM.",
        formatter_class=fmt,
    )
    p.add_argument("--version", action="version", version=f"bpelm {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
        help=f"special token (repeatable; default {SPECIAL})",
    )
    tt.add_argument("--out", required=True, help="output directory")
    tt.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    tt.set_defaults(func=cmd_tokenizer_train)
    te = tsub.add_parser(
        "encode",
        help="encode a text file to a token array",
        description="Encode a UTF-8 text file (plain, .gz, .xz or .bz2) to a .npy or raw .bin "
        "array (uint16 when the vocabulary fits, else uint32).",
        formatter_class=fmt,
    )
    te.add_argument("--tokenizer", required=True, help="directory from `bpelm tokenizer train`")
    te.add_argument("--input", required=True, help="text to encode")
    te.add_argument("--out", required=True, help="output FILE.npy or FILE.bin")
    te.add_argument("--threads", type=int, default=None, help="worker threads (default: all)")
    te.set_defaults(func=cmd_tokenizer_encode)

    tr = sub.add_parser(
        "train",
        help="train a Transformer LM from a TOML config",
        description="Train a Transformer LM. Everything (model shape, optimizer, schedule, data, "
        "run settings) is in one TOML file with [model] and [train] tables; see configs/.",
        formatter_class=fmt,
    )
    tr.add_argument("--config", default=None, help="TOML config file")
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
        help="time budget; the LR decay follows wall-clock so the run ends on time",
    )
    tr.add_argument("--device", default=None, help="cuda, cuda:N, cpu or mps (default: auto)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train)

    g = sub.add_parser(
        "generate",
        help="sample text from a trained model",
        description="Sample from a checkpoint; the model is rebuilt from the config stored in it, "
        f"and sampling stops at {SPECIAL}.",
        formatter_class=fmt,
    )
    g.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    g.add_argument("--prompt", default="Once upon a time", help="text to continue")
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
        "array (deterministic).",
        formatter_class=fmt,
    )
    e.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    e.add_argument("--data", required=True, help="token array (.npy or .bin)")
    e.add_argument("--batches", type=int, default=None, help="at most this many batches (all)")
    e.add_argument("--batch-size", type=int, default=None, help="(default: the training batch)")
    e.add_argument("--device", default="auto", help="cuda, cpu, mps or auto")
    e.set_defaults(func=cmd_eval)

    from bpelm.demo import add_demo_arguments

    dm = sub.add_parser(
        "demo",
        help="the main job: tokenizer, encoding throughput, a short training run, a sample",
        description="Train a tokenizer on the bundled corpus, encode it and report throughput "
        "(and what it means for the 825 GB Pile), then train a small model briefly and sample.",
        formatter_class=fmt,
    )
    add_demo_arguments(dm)
    dm.set_defaults(func=cmd_demo)
    return p


def _version() -> str:
    try:
        from bpelm import __version__

        return __version__
    except ImportError:  # pragma: no cover - extension not built
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bpelm` script; returns the exit status."""
    from bpelm.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("bpelm: interrupted", file=sys.stderr)
        return 130
    except (CliError, ConfigError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        if os.environ.get("BPELM_DEBUG"):
            raise
        print(f"bpelm {args.command}: error: {e}", file=sys.stderr)
        print("(set BPELM_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
