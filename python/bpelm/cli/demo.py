"""`bpelm demo`, the README's first command: train a tokenizer on the bundled corpus, encode it
and report the throughput (and what it means for the 825 GB Pile), then train a small model
briefly and print a sample from it.

The corpus is `../shared/data/books_train.txt.xz` beside the checkout when present, else the
small original text shipped in `bpelm/data/sample.txt`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bpelm.tokenizer.corpus import encode_corpus, load_tokenizer, plain_copy, train_tokenizer

PILE_BYTES = 825e9  # The Pile (Gao et al., 2020): 825 GiB of text, counted here as 825e9 bytes
REPO_ROOT = Path(__file__).resolve().parents[3]  # python/bpelm/cli/demo.py -> a checkout
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.txt"
SPECIAL = "<|endoftext|>"


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    """The `bpelm demo` subcommand."""
    p = sub.add_parser(
        "demo",
        help="the main job: tokenizer, encoding throughput, a short training run, a sample",
        description="Train a tokenizer on the bundled corpus, encode it and report throughput "
        "(and what it means for the 825 GB Pile), then train a small model briefly and sample.",
        formatter_class=fmt,
    )
    p.add_argument("--work", default="runs/demo", help="directory for everything the demo writes")
    p.add_argument(
        "--data",
        default=None,
        help="training text (plain, .gz, .xz or .bz2); default "
        "../shared/data/books_train.txt.xz when present, else the bundled sample",
    )
    p.add_argument("--val-data", default=None, help="validation text (default: matching file)")
    p.add_argument(
        "--vocab-size", type=int, default=None, help="(default 2048 on CPU, 10000 on CUDA)"
    )
    p.add_argument("--threads", type=int, default=None, help="encoder threads (default: all)")
    p.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the tokenizer, train a small model and sample from it",
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training time budget (default 1.5 on CPU: configs/tiny-cpu.toml; 5 on CUDA: "
        "configs/tinystories-17m.toml)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--prompt", default="Once upon a time", help="prompt for the final sample")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo(args)
    return 0


def _shared_data(name: str) -> Path | None:
    for base in (Path.cwd().parent, REPO_ROOT.parent):
        path = base / "shared" / "data" / name
        if path.exists():
            return path
    return None


def _split_sample(src: Path, train: Path, val: Path, val_fraction: float = 0.1) -> None:
    """Hold out the end of a single corpus for validation: its last documents, or for a text
    with few <|endoftext|> separators, its last lines."""
    text = src.read_text(encoding="utf-8")
    docs = [d.strip() for d in text.split(SPECIAL) if d.strip()]
    if len(docs) >= 10:
        n_val = max(1, int(len(docs) * val_fraction))
        sep = f"\n{SPECIAL}\n"
        train_text, val_text = sep.join(docs[:-n_val]) + sep, sep.join(docs[-n_val:]) + sep
    else:
        cut = text.find("\n", int(len(text) * (1 - val_fraction)))
        cut = int(len(text) * (1 - val_fraction)) if cut < 0 else cut + 1
        train_text, val_text = text[:cut], text[cut:]
    if not train_text.strip() or not val_text.strip():
        raise ValueError(f"{src}: too little text to hold out a validation part")
    train.write_text(train_text, encoding="utf-8")
    val.write_text(val_text, encoding="utf-8")


def prepare_corpus(args: argparse.Namespace, work: Path) -> tuple[Path, Path, str]:
    """(train text, validation text, description) in `work`."""
    train_txt, val_txt = work / "train.txt", work / "valid.txt"
    if args.data:
        src = Path(args.data)
        if not src.exists():
            raise FileNotFoundError(f"{src}: --data file not found")
        if args.val_data:
            plain_copy(src, train_txt)
            plain_copy(Path(args.val_data), val_txt)
        else:
            _split_sample(plain_copy(src, work / "given.txt"), train_txt, val_txt)
        return train_txt, val_txt, str(src)
    books = _shared_data("books_train.txt.xz")
    books_val = _shared_data("books_valid.txt.xz")
    if books is not None and books_val is not None:
        print(f"corpus: {books} (public-domain books), validation {books_val.name}")
        plain_copy(books, train_txt)
        plain_copy(books_val, val_txt)
        return train_txt, val_txt, f"{books.name} (public-domain books)"
    print(f"corpus: ../shared/data is absent; using the bundled sample {SAMPLE}")
    _split_sample(SAMPLE, train_txt, val_txt)
    return train_txt, val_txt, "the bundled sample text"


def _mb_per_s(nbytes: int, seconds: float) -> float:
    return nbytes / 1e6 / max(seconds, 1e-9)


def _best_encode(tok, src: Path, out: Path, threads: int, repeats: int = 2):
    """(tokens, bytes, seconds): the fastest of `repeats` encodings (the machine may be busy)."""
    runs = [encode_corpus(tok, src, out, threads=threads) for _ in range(repeats)]
    return min(runs, key=lambda r: r[2])


# Rates are timed on at least this much text: a small corpus is repeated up to it, so the
# Pile estimate is not extrapolated from a few milliseconds.
MIN_TIMED_BYTES = 10_000_000
# ... and on at most this much for the one-thread run (its first part), to keep the demo short.
MAX_ONE_THREAD_BYTES = 64_000_000


def _timing_text(train_txt: Path, work: Path) -> Path:
    """`train_txt`, or for a corpus under MIN_TIMED_BYTES a copy repeated up to that size."""
    size = train_txt.stat().st_size
    if size >= MIN_TIMED_BYTES:
        return train_txt
    repeated = work / "timing.txt"
    data = train_txt.read_bytes()
    with open(repeated, "wb") as f:
        for _ in range(-(-MIN_TIMED_BYTES // max(size, 1))):
            f.write(data)
    return repeated


def measure_encoding(tok, train_txt: Path, work: Path, threads: int | None) -> dict[str, float]:
    """Encode the corpus to train.npy, then time encoding with all threads and with one (best
    of two runs each) on at least MIN_TIMED_BYTES of it."""
    n_threads = threads or os.cpu_count() or 1
    n_tokens, size, _ = encode_corpus(tok, train_txt, work / "train.npy", threads=n_threads)
    timed = _timing_text(train_txt, work)
    if timed != train_txt:
        print(f"timing on the corpus repeated to {timed.stat().st_size / 1e6:.1f} MB")
    timed_tokens, timed_size, seconds = _best_encode(tok, timed, work / "timed.npy", n_threads)
    all_rate = _mb_per_s(timed_size, seconds)
    print(
        f"encode, {n_threads} threads: {timed_size / 1e6:.1f} MB -> {timed_tokens:,} tokens in "
        f"{seconds:.2f} s = {all_rate:.1f} MB/s ({size / max(n_tokens, 1):.2f} bytes/token)"
    )
    # One thread on the same text, or its first MAX_ONE_THREAD_BYTES when it is larger.
    one_src = timed
    if timed_size > MAX_ONE_THREAD_BYTES:
        one_src = work / "slice.txt"
        with open(timed, "rb") as f:
            data = f.read(MAX_ONE_THREAD_BYTES)
        one_src.write_bytes(data.decode("utf-8", errors="ignore").encode("utf-8"))
    _, one_size, one_s = _best_encode(tok, one_src, work / "timed.npy", 1)
    one_rate = _mb_per_s(one_size, one_s)
    print(f"encode, 1 thread: {one_size / 1e6:.1f} MB in {one_s:.2f} s = {one_rate:.1f} MB/s")
    (work / "timed.npy").unlink(missing_ok=True)
    for scratch in {one_src, timed} - {train_txt}:
        scratch.unlink()
    print(
        f"the Pile (825 GB) at these rates: {PILE_BYTES / 1e6 / one_rate / 60:,.0f} min on 1 "
        f"core, {PILE_BYTES / 1e6 / all_rate / 60:,.0f} min on {n_threads} "
        f"(measured on {platform.machine()} with {os.cpu_count()} logical CPUs)"
    )
    return {"tokens": n_tokens, "one_thread_mb_s": one_rate, "all_threads_mb_s": all_rate}


def run_demo(args: argparse.Namespace) -> None:
    import torch

    from bpelm.generate import sample_text
    from bpelm.training import load_config, load_model, train
    from bpelm.training.runtime import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    print("== 1. corpus")
    train_txt, val_txt, desc = prepare_corpus(args, work)
    print(
        f"training text {train_txt} ({train_txt.stat().st_size / 1e6:.1f} MB), "
        f"validation {val_txt} ({val_txt.stat().st_size / 1e6:.1f} MB)"
    )

    print("== 2. tokenizer")
    vocab_size = args.vocab_size or (10_000 if cuda else 2048)
    tok_dir = work / "tokenizer"
    train_tokenizer(train_txt, vocab_size, [SPECIAL], tok_dir, threads=args.threads)
    tok = load_tokenizer(tok_dir)

    print("== 3. encoding throughput")
    measure_encoding(tok, train_txt, work, args.threads)
    n_val, _, _ = encode_corpus(tok, val_txt, work / "valid.npy", threads=args.threads)
    print(f"validation: {n_val:,} tokens -> {work / 'valid.npy'}")

    if not args.train:
        print(f"done in {time.perf_counter() - t_start:.0f} s (--no-train: skipping the model)")
        return

    config_name = "tinystories-17m.toml" if cuda else "tiny-cpu.toml"
    minutes = args.minutes if args.minutes is not None else (5.0 if cuda else 1.5)
    config_path = _config_file(config_name)
    print(f"== 4. training {config_path.name} on {device} for up to {minutes:g} min")
    model_cfg, train_cfg = load_config(
        config_path,
        [
            f"model.vocab_size={tok.vocab_size}",
            f"train.train_data={work / 'train.npy'}",
            f"train.val_data={work / 'valid.npy'}",
            f"train.tokenizer={tok_dir}",
            f"train.max_minutes={minutes}",
            f"train.device={device}",
        ],
    )
    if not cuda:
        print(f"(torch uses {torch.get_num_threads()} CPU threads)")
    run_dir = work / "run"
    if run_dir.exists():
        for stale in run_dir.glob("*"):  # a fresh run each time; a stale resume would mislead
            if stale.is_file():
                stale.unlink()
    result = train(model_cfg, train_cfg, run_dir)
    print(f"loss curve: {run_dir / 'loss.png'}; metrics: {run_dir / 'metrics.jsonl'}")

    print(f"== 5. a sample from {result.last_checkpoint.name} (corpus: {desc})")
    model, _, _ = load_model(result.last_checkpoint, str(device))
    sample_text(model, tok, args.prompt, max_new_tokens=200, temperature=0.8, top_p=0.9, seed=0)
    print(f"demo finished in {(time.perf_counter() - t_start) / 60:.1f} min")


def _config_file(name: str) -> Path:
    """A config that ships in the package: the demo runs from an installed wheel too."""
    from bpelm.training.config import resolve_config

    return resolve_config(name.removesuffix(".toml"))
