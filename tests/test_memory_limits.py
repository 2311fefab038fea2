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
    vocab, merges = train_bpe(corpus, 300, ["<|endoftext|>"], num_threads=1)
    tok = Tokenizer(vocab, merges, ["<|endoftext|>"])
    ids = list(range(256)) * 8000                      # 2M ids
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
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (size() + headroom, hard))
    try:
        ops[op]()
        outcome = "ok"
    except MemoryError:
        outcome = "memory"
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print("outcome:", outcome)
    """
)


@pytest.mark.parametrize("op", ["encode", "encode_to_array", "decode", "encode_file"])
@pytest.mark.parametrize(
    ("base", "headroom"), [("rss", 1 << 20), ("vm", 1 << 20), ("vm", 8 << 20), ("vm", 64 << 20)]
)
def test_memory_limit_gives_memory_error_or_success(op, base, headroom):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, op, base, str(headroom)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "PanicException" not in proc.stderr
    assert "outcome: ok" in proc.stdout or "outcome: memory" in proc.stdout, proc.stdout
