"""cl100k and o200k side by side: bpelm vs gigatoken vs tiktoken, same ranks, same text.

For each of OpenAI's two modern encodings (rank files from ../shared/data/tiktoken), on the
first MB of the web and books corpora, one thread:

* whole text: the corpus as one string (documents separated by `<|endoftext|>`, allowed);
* one document at a time: a Python loop over the documents, one call each;
* batch: all documents in one call at 1 and at every thread count up to the CPUs;
* pathological: 1 MB of one long run (spaces, newlines, one word, digits, ...), bpelm only,
  milliseconds per call.

Best of a few interleaved rounds; all ids are checked equal to bpelm's; ratios are against
gigatoken in the same run. Missing contenders are skipped.

    python benches/bench_patterns.py [--mb 10] [--rounds 3] [--patterns cl100k,o200k]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import lzma
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from bpelm import _core
from bpelm.tokenizer import tiktoken_ranks

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CORPORA = {"web": "web_128M.txt.xz", "books": "books_train.txt.xz"}
EOT = "<|endoftext|>"
EOT_IDS = {"cl100k": 100257, "o200k": 199999}


def head_text(path: Path, n_bytes: int) -> str:
    with lzma.open(path, "rb") as f:
        return f.read(n_bytes).decode("utf-8", errors="ignore")


def load(pattern: str, rank_file: Path) -> dict[str, object]:
    """The contenders for `pattern`, built from the same ranks, outside any timing."""
    raw = gzip.decompress(rank_file.read_bytes())
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    eot_id = EOT_IDS[pattern]
    vocab = {rank: token for token, rank in ranks.items()} | {eot_id: EOT.encode()}
    merges = tiktoken_ranks.merges_from_ranks(ranks)
    out: dict[str, object] = {"bpelm": _core.CoreTokenizer(vocab, merges, [EOT], pattern)}
    try:
        import tiktoken

        regex = _core.split_pattern(pattern)[1]
        out["tiktoken"] = tiktoken.Encoding(
            pattern, pat_str=regex, mergeable_ranks=ranks, special_tokens={EOT: eot_id}
        )
    except ImportError:
        print("tiktoken not installed: skipped")
    try:
        import gigatoken

        plain = Path(f"/tmp/bpelm_bench_{pattern}_base.tiktoken")
        plain.write_bytes(raw)
        out["gigatoken"] = gigatoken.Tokenizer.from_tiktoken(
            str(plain), pretokenizer=pattern, special_tokens={EOT: eot_id}
        )
    except ImportError:
        print("gigatoken not installed: skipped")
    return out


def whole_text_encoders(c: dict[str, object]) -> dict[str, Callable[[str], object]]:
    bp = c["bpelm"]
    encoders: dict[str, Callable[[str], object]] = {
        "bpelm (array)": bp.encode_to_ids,  # type: ignore[attr-defined]
        "bpelm (list)": bp.encode,  # type: ignore[attr-defined]
    }
    if "gigatoken" in c:
        encoders["gigatoken"] = c["gigatoken"].encode  # type: ignore[attr-defined]
    if "tiktoken" in c:
        tk = c["tiktoken"]
        encoders["tiktoken"] = lambda t: tk.encode(t, allowed_special="all")  # type: ignore[attr-defined]
    return encoders


def per_doc_encoders(c: dict[str, object]) -> dict[str, Callable[[list[str]], list]]:
    bp = c["bpelm"].encode  # type: ignore[attr-defined]
    encoders: dict[str, Callable[[list[str]], list]] = {"bpelm": lambda ds: [bp(d) for d in ds]}
    if "gigatoken" in c:
        gt = c["gigatoken"].encode  # type: ignore[attr-defined]
        encoders["gigatoken"] = lambda ds: [gt(d) for d in ds]
    if "tiktoken" in c:
        tk = c["tiktoken"].encode_ordinary  # type: ignore[attr-defined]
        encoders["tiktoken"] = lambda ds: [tk(d) for d in ds]
    return encoders


def best_of(rounds: int, fns: dict[str, Callable], arg: object, same: Callable) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    reference = None
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            out = fn(arg)
            best[name] = min(best[name], time.perf_counter() - start)
            flat = same(out)
            if reference is None:
                reference = flat
            elif not np.array_equal(flat, reference):
                raise SystemExit(f"{name} disagrees with bpelm")
    return best


def report(title: str, n_bytes: int, best: dict[str, float]) -> None:
    giga = best.get("gigatoken")
    print(f"  {title}:")
    for name, secs in best.items():
        ratio = f"  (x{giga / secs:.2f} vs gigatoken)" if giga else ""
        print(f"    {name:16s} {n_bytes / secs / 1e6:8.1f} MB/s{ratio}")


def flat_ids(out: object) -> np.ndarray:
    if isinstance(out, list) and out and isinstance(out[0], (list, np.ndarray)):
        return np.concatenate([np.asarray(x, dtype=np.uint32) for x in out])
    return np.asarray(out, dtype=np.uint32)


def pathological(bp: object) -> None:
    n = 1 << 20
    runs = {
        "spaces": " " * n,
        "spaces+x": " " * n + "x",
        "newlines": "\n" * n,
        "space-newline": " \n" * (n // 2),
        "one word": "a" * n,
        "UPPER word": "A" * n,
        "digits": "7" * n,
        "punctuation": "!?" * (n // 2),
        "CJK": "中" * (n // 3),
        "marks": "a\u0301" * (n // 3),
        "apostrophes": "'s" * (n // 2),
        "slashes": "\n/" * (n // 2),
    }
    print("  pathological 1 MB inputs (bpelm, best of 3, ms):")
    for name, text in runs.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            bp.encode_to_ids(text)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
        print(f"    {name:14s} {min(times) * 1e3:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="MB of each corpus (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    parser.add_argument("--patterns", default="cl100k,o200k")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch rows")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    machine = f"{platform.machine()} {platform.processor()}".strip()
    print(f"machine: {machine}, {cpus} cpus; best of {args.rounds}")
    texts = {
        name: head_text(DATA / fname, int(args.mb * 1e6))
        for name, fname in CORPORA.items()
        if (DATA / fname).exists()
    }
    for pattern in args.patterns.split(","):
        rank_file = DATA / "tiktoken" / f"{pattern}_base.tiktoken.gz"
        if not rank_file.exists():
            print(f"{pattern}: {rank_file} missing, skipped")
            continue
        contenders = load(pattern, rank_file)
        print(f"== {pattern}")
        for corpus, text in texts.items():
            n_bytes = len(text.encode("utf-8"))
            docs = [d for d in text.split(EOT) if d]
            print(f" {corpus}: {n_bytes / 1e6:.1f} MB, {len(docs)} documents")
            whole = whole_text_encoders(contenders)
            report("whole text, 1 thread", n_bytes, best_of(args.rounds, whole, text, flat_ids))
            n_doc_bytes = sum(len(d.encode("utf-8")) for d in docs)
            per_doc = per_doc_encoders(contenders)
            report(
                "one document a call, 1 thread",
                n_doc_bytes,
                best_of(args.rounds, per_doc, docs, flat_ids),
            )
            if args.no_batch:
                continue
            for threads in sorted({1, cpus}):
                bp = contenders["bpelm"]
                batch: dict[str, Callable] = {
                    "bpelm": lambda ds, t=threads, bp=bp: bp.encode_batch(ds, t)  # type: ignore[attr-defined]
                }
                if "gigatoken" in contenders:
                    gt = contenders["gigatoken"]
                    batch["gigatoken"] = lambda ds, t=threads, gt=gt: gt.encode_batch_list(  # type: ignore[attr-defined]
                        ds, parallel=t > 1
                    )
                report(
                    f"batch of documents, {threads} thread(s)",
                    n_doc_bytes,
                    best_of(args.rounds, batch, docs, flat_ids),
                )
        pathological(contenders["bpelm"])


if __name__ == "__main__":
    main()
