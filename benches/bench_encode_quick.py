"""Quick single-thread encode throughput: bpelm vs tiktoken vs gigatoken, same process.

Each contender encodes the first MB of the web and books corpora (documents separated by
`<|endoftext|>`, encoded as one string with that special token allowed) on one thread; the
best of a few interleaved rounds is reported in MB/s, with ratios against gigatoken measured
in the same run. All ids are checked equal to bpelm's. Missing contenders are skipped.

The best-of-N repeats one string, which flatters caches: per-word caches are warm, and a
Python str keeps the UTF-8 copy an extension asks for. The "fresh" column is one call per
contender on the next quarter as many MB, unseen and in its own new str object.

    python benches/bench_encode_quick.py [--mb 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import lzma
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import machine
import numpy as np
from bpelm.tokenizer.gpt2 import EOT, load_vocab_json, mergeable_ranks, tiktoken_encoding

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CORPORA = {"web": "web_128M.txt.xz", "books": "books_train.txt.xz"}


def head_texts(path: Path, n_bytes: int, n_more: int) -> tuple[str, str]:
    """The first `n_bytes` of an .xz text and the `n_more` after them (cut characters
    at the edges are dropped)."""
    with lzma.open(path, "rb") as f:
        raw = f.read(n_bytes + n_more)
    return (
        raw[:n_bytes].decode("utf-8", errors="ignore"),
        raw[n_bytes:].decode("utf-8", errors="ignore"),
    )


def load_encoders(vocab_json: Path, merges_txt: Path) -> dict[str, Callable[[str], np.ndarray]]:
    """Each available contender as `text -> uint32 ids`, loaded outside the timing."""
    return encoders_of(load_libraries(vocab_json, merges_txt))


def encoders_of(libraries: dict[str, Any]) -> dict[str, Callable[[str], np.ndarray]]:
    """Each of `libraries` (as `load_libraries` gives them) as `text -> uint32 ids`."""
    bp = libraries["bpelm"]
    encoders: dict[str, Callable[[str], np.ndarray]] = {
        "bpelm": lambda t: bp.encode_to_array(t, allowed_special="all"),
        "bpelm.encode(list)": lambda t: bp.encode(t, allowed_special="all"),
    }
    if "tiktoken" in libraries:
        enc = libraries["tiktoken"]
        encoders["tiktoken"] = lambda t: enc.encode(t, allowed_special="all")
    if "gigatoken" in libraries:
        encoders["gigatoken"] = libraries["gigatoken"].encode
    return encoders


def load_libraries(vocab_json: Path, merges_txt: Path) -> dict[str, Any]:
    """Each available library's tokenizer for GPT-2's vocabulary with `<|endoftext|>` as a
    special token: bpelm's `Tokenizer`, tiktoken's `Encoding`, gigatoken's `Tokenizer`."""
    from bpelm import Tokenizer

    libraries: dict[str, Any] = {
        "bpelm": Tokenizer.from_files(vocab_json, merges_txt, special_tokens=[EOT])
    }
    ranks = mergeable_ranks(vocab_json)
    eot_id = load_vocab_json(vocab_json)[EOT]
    try:
        libraries["tiktoken"] = tiktoken_encoding(vocab_json)
    except ImportError:
        print("tiktoken not installed: skipped")
    try:
        import gigatoken

        # gigatoken loads a .tiktoken ranks file; write one from the same vocab.
        tmp = Path(tempfile.mkdtemp()) / "gpt2.tiktoken"
        lines = [
            f"{base64.b64encode(b).decode()} {r}"
            for b, r in sorted(ranks.items(), key=lambda kv: kv[1])
        ]
        tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
        libraries["gigatoken"] = gigatoken.Tokenizer.from_tiktoken(
            str(tmp), pretokenizer="gpt2", special_tokens={EOT: eot_id}
        )
    except ImportError:
        print("gigatoken not installed: skipped")
    return libraries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="MB of each corpus (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    parser.add_argument("--only", default="", help="comma-separated contenders to run")
    args = parser.parse_args()
    gpt2 = DATA / "gpt2"
    encoders = load_encoders(gpt2 / "vocab.json", gpt2 / "merges.txt")
    if args.only:
        keep = set(args.only.split(","))
        encoders = {k: v for k, v in encoders.items() if k in keep}
    print(f"machine: {machine.describe()}; 1 thread; best of {args.rounds}")
    for corpus, fname in CORPORA.items():
        path = DATA / fname
        if not path.exists():
            print(f"{corpus}: {path} missing, skipped")
            continue
        text, fresh = head_texts(path, int(args.mb * 1e6), int(args.mb * 0.25e6))
        n_bytes = len(text.encode("utf-8"))
        n_fresh = len(fresh.encode("utf-8"))
        best = dict.fromkeys(encoders, float("inf"))
        reference = None
        for _ in range(args.rounds):
            for name, encode in encoders.items():
                start = time.perf_counter()
                ids = encode(text)
                best[name] = min(best[name], time.perf_counter() - start)
                ids = np.asarray(ids, dtype=np.uint32)
                if reference is None:
                    reference = ids
                elif not np.array_equal(ids, reference):
                    raise SystemExit(f"{name} disagrees with {next(iter(encoders))} on {corpus}")
                # Freed here, not inside the next contender's timing when it is replaced.
                del ids
        first = {}
        for name, encode in encoders.items():
            if name == "bpelm.encode(list)":
                continue  # shares the cache the line above just warmed
            copy = (fresh + " ")[:-1]  # a new str: no UTF-8 copy cached in it yet
            start = time.perf_counter()
            encode(copy)
            first[name] = time.perf_counter() - start
        giga, giga_first = best.get("gigatoken"), first.get("gigatoken")
        print(
            f"{corpus} ({n_bytes / 1e6:.1f} MB, {len(reference)} tokens, ids equal; "
            f"fresh: {n_fresh / 1e6:.1f} MB):"
        )
        for name, secs in best.items():
            ratio = f" (x{giga / secs:.2f} vs gigatoken)" if giga else ""
            fresh_col = ""
            if name in first:
                fresh_ratio = f" (x{giga_first / first[name]:.2f})" if giga_first else ""
                fresh_col = f"   fresh {n_fresh / first[name] / 1e6:7.1f} MB/s{fresh_ratio}"
            print(f"  {name:20s} best {n_bytes / secs / 1e6:7.1f} MB/s{ratio}{fresh_col}")


if __name__ == "__main__":
    main()
