"""Under an address-space limit (`RLIMIT_AS`) the core raises MemoryError or succeeds; it never
aborts the process ("memory allocation of N bytes failed", SIGABRT) and never raises pyo3's
PanicException. Each case runs in its own subprocess with a timeout, the limit set there to
the process's current size plus a headroom, as CS336's memory test does (with RSS)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")

SCRIPT = textwrap.dedent(
    """
    import os, resource, sys, tempfile
    import bpelm
    from bpelm import Tokenizer, train_bpe, encode_file

    op, base, headroom = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tmp = tempfile.mkdtemp()
    corpus = os.path.join(tmp, "c.txt")
    words = [f"w{i} the cat{i % 97} sat" for i in range(2000)]
    text = ("\\n".join(words) + "\\n") * 80          # about 3.5 MB
    with open(corpus, "w") as f:
        f.write(text)
    import gzip, lzma
    with open(corpus + ".gz", "wb") as f:
        f.write(gzip.compress(text.encode()))
    with open(corpus + ".xz", "wb") as f:
        f.write(lzma.compress(text.encode()))
    import bz2
    with open(corpus + ".bz2", "wb") as f:
        f.write(bz2.compress(text.encode()))
    vocab, merges = train_bpe(corpus, 300, ["<|endoftext|>"], num_threads=1)
    tok = Tokenizer(vocab, merges, ["<|endoftext|>"])
    ids = list(range(256)) * 8000                      # 2M ids
    one_word = "a" * (8 << 20)                         # one 8 MB pretoken
    tok.encode("warm up the cache and pools")

    def size():
        with open("/proc/self/status") as f:
            for line in f:
                key = "VmRSS:" if base == "rss" else "VmSize:"
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

    ops = {
        "encode": lambda: tok.encode(text),
        "encode_to_array": lambda: tok.encode_to_array(text),
        "decode": lambda: tok.decode(ids),
        "encode_file": lambda: encode_file(tok, corpus, os.path.join(tmp, "o.npy"), num_threads=1),
        # Compressed: a reading thread, decoders, window buffers.
        "encode_file_gz": lambda: encode_file(
            tok, corpus + ".gz", os.path.join(tmp, "o.npy"), num_threads=1
        ),
        "train_bpe_xz": lambda: train_bpe(corpus + ".xz", 1000, ["<|endoftext|>"], num_threads=1),
        # bzip2's block buffer (3.6 MB) failing was reported as bad data: at VmSize + 8 MB
        # with two threads, before room for it and the read buffer was asked for first.
        "train_bpe_bz2_2_threads": lambda: train_bpe(
            corpus + ".bz2", 1000, ["<|endoftext|>"], num_threads=2
        ),
        # Merging one pretoken needs scratch memory in proportion to it.
        "encode_one_long_word": lambda: tok.encode_to_array(one_word),
        # The one-thread pool runs already (trained on above); two threads start under the
        # limit, or fall back to fewer.
        "train_bpe": lambda: train_bpe(corpus, 1000, ["<|endoftext|>"], num_threads=1),
        "train_bpe_2_threads": lambda: train_bpe(corpus, 1000, ["<|endoftext|>"], num_threads=2),
        # The first use of o200k in this process: its character table is built at import,
        # not here under the limit (built here, its megabyte could only abort).
        "train_bpe_o200k": lambda: train_bpe(
            corpus, 1000, ["<|endoftext|>"], num_threads=1, pattern="o200k"
        ),
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size() + headroom, hard))
    try:
        ops[op]()
        outcome = "ok"
    except MemoryError as e:
        outcome = f"memory ({e})"
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print("outcome:", outcome)
    """
)


def run(op: str, base: str, headroom: int) -> str:
    """Runs `op` under the limit in a subprocess; returns its outcome ("ok" or "memory ...")
    after checking that it neither died nor raised anything else."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, op, base, str(headroom)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "PanicException" not in proc.stderr
    outcome = proc.stdout.partition("outcome: ")[2].strip()
    assert outcome == "ok" or outcome.startswith("memory"), proc.stdout
    return outcome


@pytest.mark.parametrize(
    "op",
    [
        "encode",
        "encode_to_array",
        "decode",
        "encode_file",
        "encode_file_gz",
        "train_bpe_xz",
        "train_bpe_bz2_2_threads",
    ],
)
@pytest.mark.parametrize(
    ("base", "headroom"), [("rss", 1 << 20), ("vm", 1 << 20), ("vm", 8 << 20), ("vm", 64 << 20)]
)
def test_memory_limit_gives_memory_error_or_success(op, base, headroom):
    run(op, base, headroom)


@pytest.mark.parametrize("headroom", [96 << 20, 128 << 20])
def test_one_long_pretoken_under_a_memory_limit(headroom):
    """8 MB of one letter is one pretoken: room for its 32 MB of ids, but merging it takes
    some 200 MB of scratch, which the encoder checks it can have before it starts (without
    the check, the merge's own buffers aborted the process)."""
    assert run("encode_one_long_word", "vm", headroom).startswith("memory")


@pytest.mark.parametrize("op", ["train_bpe", "train_bpe_2_threads", "train_bpe_o200k"])
@pytest.mark.parametrize(
    ("base", "headroom"),
    [
        ("rss", 8 << 20),
        ("rss", 64 << 20),
        ("vm", 1 << 20),
        ("vm", 4 << 20),
        ("vm", 8 << 20),
        ("vm", 16 << 20),
        ("vm", 64 << 20),
    ],
)
def test_train_bpe_under_a_memory_limit(op, base, headroom):
    """Counting, the words, the merge structures and the pool's threads: out of memory in
    any of them is a MemoryError; with room enough (64 MB more, where this corpus needs
    about 30 MB), training succeeds."""
    outcome = run(op, base, headroom)
    if (base, headroom) == ("vm", 64 << 20):
        assert outcome == "ok"
