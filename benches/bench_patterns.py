"""cl100k and o200k side by side: bpelm vs gigatoken vs tiktoken, same ranks, same text.

For each of OpenAI's two modern encodings (rank files from ../shared/data/tiktoken), on the
first MB of the web and books corpora, one thread:

* whole text: the corpus as one string (documents separated by `<|endoftext|>`, allowed);
* one document at a time: a Python loop over the documents, one call each;
* batch: all documents in one call at 1 and at every thread count up to the CPUs;
* pathological: 1 MB of one long run (spaces, newlines, one word, digits, ...), bpelm only,
  milliseconds per call;
* with `--cold`: each contender in a fresh process pinned to one CPU, one pass over the
  text, as a user encoding a corpus once sees it (the project's headline measure).

"best" is the best of a few interleaved rounds on the same text, which flatters per-word
caches (every word was seen); "fresh" is one call per contender on the next, unseen text, in
a new str object. All ids are checked equal to bpelm's (best rounds); ratios are against
gigatoken in the same run. Missing contenders are skipped.

Interleaved "best" rows flatter bpelm twice over. Each contender's round evicts the others'
word caches from the processor's caches, which costs gigatoken more than bpelm. And CPython
keeps a str's UTF-8 inside the str once a library asks for it (`PyUnicode_AsUTF8AndSize`):
gigatoken and tiktoken ask, bpelm reads the code units and makes UTF-8 itself every call, so
on the same str objects bpelm reads the copies the others left. `--isolated` prints only the
warm whole-text and one-document-a-call rows, each contender in a process of its own (for
each row, the contenders one after another, twice over: A B C A B C), after two calls to
warm up, its best round of both passes kept, in two columns: on the same str objects every round
("same objs"), and on new str objects of the same text each round, made before the clock
starts ("new objs"). Ids are checked in each process against bpelm's.

    python benches/bench_patterns.py [--mb 10] [--rounds 3] [--patterns cl100k,o200k]
        [--cold | --isolated]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402
from isolation import OTHER_LIBRARIES, PASSES, alternated_results, keep_out_all_but  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CORPORA = {"web": "web_128M.txt.xz", "books": "books_train.txt.xz"}
EOT = "<|endoftext|>"
EOT_IDS = {"cl100k": 100257, "o200k": 199999}


def head_texts(path: Path, n_bytes: int, n_more: int) -> tuple[str, str]:
    """The first `n_bytes` of an .xz text, and the `n_more` after them."""
    with lzma.open(path, "rb") as f:
        raw = f.read(n_bytes + n_more)
    return (
        raw[:n_bytes].decode("utf-8", errors="ignore"),
        raw[n_bytes:].decode("utf-8", errors="ignore"),
    )


def load(pattern: str, rank_file: Path) -> dict[str, object]:
    """The contenders for `pattern`, built from the same ranks, outside any timing: bpelm
    through its public preset (`Tokenizer.cl100k(path=...)`), tiktoken and gigatoken from
    the same rank file."""
    from bpelm import Tokenizer
    from bpelm.tokenizer import tiktoken_ranks

    raw = tiktoken_ranks.read_rank_bytes(rank_file)
    ranks = tiktoken_ranks.parse_ranks(raw, rank_file)
    eot_id = EOT_IDS[pattern]
    out: dict[str, object] = {"bpelm": getattr(Tokenizer, pattern)(path=rank_file)}
    try:
        import tiktoken

        out["tiktoken"] = tiktoken.Encoding(
            pattern,
            pat_str=out["bpelm"].pattern_regex,  # type: ignore[attr-defined]
            mergeable_ranks=ranks,
            special_tokens={EOT: eot_id},
        )
    except ImportError:
        print("tiktoken not installed: skipped")
    try:
        import gigatoken

        plain = Path(tempfile.mkdtemp()) / f"{pattern}_base.tiktoken"
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
        "bpelm (array)": lambda t: bp.encode_to_array(t, allowed_special="all"),  # type: ignore[attr-defined]
        "bpelm (list)": lambda t: bp.encode(t, allowed_special="all"),  # type: ignore[attr-defined]
    }
    if "gigatoken" in c:
        encoders["gigatoken"] = c["gigatoken"].encode  # type: ignore[attr-defined]
    if "tiktoken" in c:
        tk = c["tiktoken"]
        encoders["tiktoken"] = lambda t: tk.encode(t, allowed_special="all")  # type: ignore[attr-defined]
    return encoders


def per_doc_encoders(c: dict[str, object]) -> dict[str, Callable[[list[str]], list]]:
    """Each contender's one-document call: arrays where the contender returns them
    (bpelm's `encode_to_array` with no special-token check, as gigatoken's `encode`),
    tiktoken's lists."""
    bp = c["bpelm"]

    def bpelm_docs(ds: list[str]) -> list:
        return [bp.encode_to_array(d, disallowed_special=()) for d in ds]  # type: ignore[attr-defined]

    encoders: dict[str, Callable[[list[str]], list]] = {"bpelm": bpelm_docs}
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
            # Freed here, not when the next contender's result replaces it inside that
            # contender's timing (a list of millions of ints takes tens of ms to free).
            del out
            if reference is None:
                reference = flat
            elif not np.array_equal(flat, reference):
                raise SystemExit(f"{name} disagrees with bpelm")
    return best


def new_str_objects(arg: str | list[str]) -> str | list[str]:
    """The same text as `arg` in new str objects: a new str holds no UTF-8 copy that an
    earlier call made CPython keep in it."""
    if isinstance(arg, str):
        return (arg + " ")[:-1]
    return [(d + " ")[:-1] for d in arg]


def fresh_of(fns: dict[str, Callable], arg: object) -> dict[str, float]:
    """One call each on `arg`, text none of them has seen, each given its own copy (a new
    str holds no UTF-8 copy that an earlier call made)."""
    out = {}
    for name, fn in fns.items():
        copy = new_str_objects(arg)  # type: ignore[arg-type]
        start = time.perf_counter()
        fn(copy)
        out[name] = time.perf_counter() - start
    return out


def report(
    title: str,
    n_bytes: int,
    best: dict[str, float],
    fresh: dict[str, float] | None = None,
    n_fresh: int = 0,
    labels: tuple[str, str] = ("best", "fresh"),
) -> None:
    """Prints a row block: each contender's MB/s and ratio to gigatoken, in the `labels[0]`
    column (`best`) and, where given, the `labels[1]` one (`fresh`)."""
    giga = best.get("gigatoken")
    print(f"  {title}:")
    for name, secs in best.items():
        ratio = f"  (x{giga / secs:.2f} vs gigatoken)" if giga else ""
        line = f"    {name:16s} {labels[0]} {n_bytes / secs / 1e6:8.1f} MB/s{ratio}"
        if fresh and name in fresh:
            g = fresh.get("gigatoken")
            fresh_ratio = f"  (x{g / fresh[name]:.2f})" if g else ""
            line += f"   {labels[1]} {n_fresh / fresh[name] / 1e6:7.1f} MB/s{fresh_ratio}"
        print(line)


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
            bp.encode_to_array(text)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
        print(f"    {name:14s} {min(times) * 1e3:7.1f} ms")


COLD_CONTENDERS = ("bpelm", "gigatoken", "tiktoken")


def cold_worker(pattern: str, corpus: str, contender: str, mode: str, mb: float) -> None:
    """One pass of `contender` over the corpus (`whole`: one string; `docs`: one call a
    document), in this fresh process on one CPU; prints the seconds."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    text, _ = head_texts(DATA / CORPORA[corpus], int(mb * 1e6), 0)
    c = load(pattern, DATA / "tiktoken" / f"{pattern}_base.tiktoken.gz")
    if contender not in c:
        print("nan")
        return
    if mode == "whole":
        encode = whole_text_encoders(c)["bpelm (array)" if contender == "bpelm" else contender]
        arg: object = text
    else:
        encode = per_doc_encoders(c)[contender]
        arg = [d for d in text.split(EOT) if d]
    start = time.perf_counter()
    encode(arg)  # type: ignore[arg-type]
    print(time.perf_counter() - start)


def cold_rows(pattern: str, corpus: str, mb: float, rounds: int) -> None:
    """The `--cold` rows: best of `rounds` fresh processes per contender and mode."""
    text, _ = head_texts(DATA / CORPORA[corpus], int(mb * 1e6), 0)
    n_bytes = len(text.encode("utf-8"))
    n_doc_bytes = sum(len(d.encode("utf-8")) for d in text.split(EOT) if d)
    for mode, size in (("whole", n_bytes), ("docs", n_doc_bytes)):
        best: dict[str, float] = {}
        for _ in range(rounds):
            for contender in COLD_CONTENDERS:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", pattern, corpus, contender, mode],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "RAYON_NUM_THREADS": "1", "BPELM_BENCH_MB": str(mb)},
                ).stdout.split()[-1]
                if out != "nan":
                    best[contender] = min(best.get(contender, float("inf")), float(out))
        title = "whole text" if mode == "whole" else "one document a call"
        report(f"cold process, {title}, 1 CPU", size, best)


NAMES = {  # --isolated: each mode's contenders, as whole_text_encoders / per_doc_encoders name them
    "whole": ("bpelm (array)", "bpelm (list)", "gigatoken", "tiktoken"),
    "docs": ("bpelm", "gigatoken", "tiktoken"),
}
REFERENCE = {"whole": "bpelm (array)", "docs": "bpelm"}  # the ids each mode's contenders match
TITLES = {"whole": "whole text, 1 thread", "docs": "one document a call, 1 thread"}


def isolated_words(rounds: int) -> str:
    """The header's account of an `--isolated` run: which processes, and which texts."""
    return (
        f"isolated: each contender of each row in a process of its own, {PASSES} passes in "
        f"alternation, best of {PASSES} x {rounds} rounds after two to warm up in each "
        "process (one a variant; the variants take turns going first); same objs: the "
        "same str objects every round; new objs: new str objects of the same text each "
        "round, made before the clock starts"
    )


def library(name: str) -> str:
    """The library a contender's name stands for (`bpelm (array)` is bpelm's)."""
    return name.split()[0]


def installed_names(mode: str) -> list[str]:
    """`mode`'s contenders whose library is installed, found without importing them: the
    parent of isolated children loads none of the libraries."""
    return [n for n in NAMES[mode] if importlib.util.find_spec(library(n)) is not None]


def isolated_encoders(pattern: str, mode: str, only: str) -> tuple[Callable, Callable]:
    """`only`'s encoder for `mode` and bpelm's reference one, the other libraries kept out."""
    keep_out_all_but(library(only))
    # load()'s "not installed: skipped" lines would only mislead, and stdout carries the JSON.
    with contextlib.redirect_stdout(io.StringIO()):
        c = load(pattern, DATA / "tiktoken" / f"{pattern}_base.tiktoken.gz")
    encoders = whole_text_encoders(c) if mode == "whole" else per_doc_encoders(c)
    if only not in encoders:
        sys.exit(f"{only}: its library did not load")
    return encoders[only], encoders[REFERENCE[mode]]


def check_ids(out: object, want: np.ndarray, name: str) -> None:
    """Stops the run if contender `name`'s ids `out` are not bpelm's, `want`."""
    if not np.array_equal(flat_ids(out), want):
        raise SystemExit(f"{name} disagrees with bpelm")


def timed(fn: Callable, arg: object) -> tuple[float, object]:
    """Seconds for `fn(arg)`, and its result (to be checked and freed outside the clock)."""
    start = time.perf_counter()
    out = fn(arg)
    return time.perf_counter() - start, out


def isolated_rounds(
    fn: Callable, arg: str | list[str], want: np.ndarray, rounds: int, name: str
) -> dict[str, list[float]]:
    """`fn`'s seconds in each of `rounds` rounds, after untimed calls to warm up: each round
    one call on `arg`, the same str objects every round ("same"), and one on new str objects
    of the same text ("new"), made before the clock. Both variants warm up and take turns
    going first, so that neither always meets the caches as the other left them. Every
    call's ids are checked."""
    check_ids(fn(arg), want, name)
    check_ids(fn(new_str_objects(arg)), want, name)
    times: dict[str, list[float]] = {"same": [], "new": []}
    for r in range(rounds):
        for variant in ("same", "new") if r % 2 == 0 else ("new", "same"):
            arg_now = arg if variant == "same" else new_str_objects(arg)
            secs, out = timed(fn, arg_now)
            times[variant].append(secs)
            check_ids(out, want, name)
            del out, arg_now  # freed here, outside the next clock
    return times


def isolated_child(pattern: str, corpus: str, mode: str, only: str, mb: float, rounds: int) -> None:
    """An `--isolated` child: contender `only`'s rounds of `mode`'s row, alone in this
    process; prints one JSON line for the parent: the bytes encoded, each variant's seconds."""
    text, _ = head_texts(DATA / CORPORA[corpus], int(mb * 1e6), 0)
    arg: str | list[str] = text if mode == "whole" else [d for d in text.split(EOT) if d]
    fn, reference = isolated_encoders(pattern, mode, only)
    # bpelm's ids are the ones to match: bpelm is tested exact against tiktoken in
    # tests/test_patterns.py, so they stand for tiktoken's, also in a child without tiktoken.
    # Made from new str objects, so that `arg` is untouched when the warm-up meets it.
    want = flat_ids(reference(new_str_objects(arg)))
    times = isolated_rounds(fn, arg, want, rounds, only)
    docs = [arg] if isinstance(arg, str) else arg
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)  # keeps no UTF-8 copy in the strs
    print(json.dumps({"bytes": n_bytes, **times}))


def isolated_rows(pattern: str, corpus: str, mb: float, rounds: int) -> None:
    """The `--isolated` rows of `corpus`: per mode, each contender in processes of its own,
    the contenders one after another PASSES times over (A B C A B C), so that a slow spell of
    the machine is shared out rather than falling on one contender's every round."""
    command = [sys.executable, __file__, "--patterns", pattern, "--corpus", corpus]
    command += ["--mb", str(mb), "--rounds", str(rounds)]
    for mode, title in TITLES.items():
        names = installed_names(mode)
        results = alternated_results(command + ["--mode", mode], names)
        best = {
            v: {n: min(t for r in rs for t in r[v]) for n, rs in results.items()}
            for v in ("same", "new")
        }
        n_bytes = results[names[0]][0]["bytes"]
        labels = ("same objs", "new objs")
        report(f"isolated, {title}", n_bytes, best["same"], best["new"], n_bytes, labels)


def isolated_main(
    patterns: list[str], texts: dict[str, tuple[str, str]], args: argparse.Namespace
) -> None:
    """The `--isolated` run: for each pattern and corpus, only the isolated rows."""
    for lib in OTHER_LIBRARIES:
        if importlib.util.find_spec(lib) is None:
            print(f"{lib} not installed: skipped")
    for pattern in patterns:
        rank_file = DATA / "tiktoken" / f"{pattern}_base.tiktoken.gz"
        if not rank_file.exists():
            print(f"{pattern}: {rank_file} missing, skipped")
            continue
        print(f"== {pattern}")
        for corpus, (text, _) in texts.items():
            n_docs = sum(1 for d in text.split(EOT) if d)
            print(f" {corpus}: {len(text.encode('utf-8')) / 1e6:.1f} MB, {n_docs} documents")
            isolated_rows(pattern, corpus, args.mb, args.rounds)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        pattern, corpus, contender, mode = sys.argv[2:6]
        cold_worker(pattern, corpus, contender, mode, float(os.environ["BPELM_BENCH_MB"]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="MB of each corpus (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    parser.add_argument("--patterns", default="cl100k,o200k")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch rows")
    only_rows = parser.add_mutually_exclusive_group()
    only_rows.add_argument("--cold", action="store_true", help="only the fresh-process rows")
    only_rows.add_argument(
        "--isolated",
        action="store_true",
        help="only the warm whole-text and one-document-a-call rows, each contender in a "
        f"process of its own, {PASSES} passes in alternation, on the same and on new str objects",
    )
    # An isolated child: one contender of one row (its pattern is --patterns).
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", choices=CORPORA, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is not None:
        isolated_child(args.patterns, args.corpus, args.mode, args.only, args.mb, args.rounds)
        return
    mode = isolated_words(args.rounds) if args.isolated else f"best of {args.rounds}"
    print(f"machine: {machine.describe()}; {mode}")
    texts = {
        name: head_texts(DATA / fname, int(args.mb * 1e6), int(args.mb * 1e6))
        for name, fname in CORPORA.items()
        if (DATA / fname).exists()
    }
    if args.isolated:
        isolated_main(args.patterns.split(","), texts, args)
        return
    for pattern in args.patterns.split(","):
        rank_file = DATA / "tiktoken" / f"{pattern}_base.tiktoken.gz"
        if not rank_file.exists():
            print(f"{pattern}: {rank_file} missing, skipped")
            continue
        print(f"== {pattern}")
        if args.cold:
            for corpus in texts:
                print(f" {corpus}: {args.mb:g} MB")
                cold_rows(pattern, corpus, args.mb, args.rounds)
            continue
        contenders = load(pattern, rank_file)
        for corpus, (text, unseen) in texts.items():
            n_bytes = len(text.encode("utf-8"))
            docs = [d for d in text.split(EOT) if d]
            # Unseen text for the fresh column: half for whole text, half for documents.
            half = len(unseen) // 2
            fresh_text, fresh_docs = unseen[:half], [d for d in unseen[half:].split(EOT) if d]
            print(
                f" {corpus}: {n_bytes / 1e6:.1f} MB, {len(docs)} documents "
                f"(fresh: {len(fresh_text.encode()) / 1e6:.1f} MB each)"
            )
            whole = whole_text_encoders(contenders)
            best = best_of(args.rounds, whole, text, flat_ids)
            fresh = fresh_of({k: v for k, v in whole.items() if k != "bpelm (list)"}, fresh_text)
            report("whole text, 1 thread", n_bytes, best, fresh, len(fresh_text.encode()))
            n_doc_bytes = sum(len(d.encode("utf-8")) for d in docs)
            per_doc = per_doc_encoders(contenders)
            best = best_of(args.rounds, per_doc, docs, flat_ids)
            fresh = fresh_of(per_doc, fresh_docs)
            n_fresh = sum(len(d.encode("utf-8")) for d in fresh_docs)
            report("one document a call, 1 thread", n_doc_bytes, best, fresh, n_fresh)
            if args.no_batch:
                continue
            for threads in sorted({1, machine.usable_cpus()}):
                bp = contenders["bpelm"]
                batch: dict[str, Callable] = {
                    "bpelm": lambda ds, t=threads, bp=bp: bp.encode_batch(ds, num_threads=t)  # type: ignore[attr-defined]
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
