"""The core's worker threads: they survive fork (a forked child gets pools of its own), there
are never more than a couple of pools, `num_threads` is capped at a few per CPU and checked by
one rule whichever entry point it reaches, and a huge `vocab_size` is refused or trained
without allocating for it.

Whatever could hang or abort runs in a subprocess with a timeout, so a regression fails the
test instead of stalling or killing the test run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import bpelm._core as core
import pytest

# A small corpus and a tokenizer trained on it, made the same way in this process and in the
# subprocesses below (which import nothing but `bpelm._core`).
SETUP = textwrap.dedent(
    """
    import os, sys
    import bpelm._core as core
    corpus = sys.argv[1]
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(3000):
            f.write(f"Doc {i}: the quick brown fox {i % 37} jumps over caf\\u00e9 \\u20ac.\\n")
            f.write("<|endoftext|>")
    vocab, merges = core.train_bpe(corpus, 400, ["<|endoftext|>"], num_threads=2)
    tok = core.CoreTokenizer(vocab, merges, ["<|endoftext|>"])
    line = "text {} with caf\\u00e9 and \\u20ac and \\U0001f600 "
    texts = [line.format(i) * (i % 50 + 1) for i in range(400)]
    """
)


def run_script(tmp_path: Path, body: str, timeout: float, env: dict | None = None) -> str:
    """Runs SETUP + `body` in a fresh interpreter; fails (never hangs) if it times out or
    exits non-zero. Returns its stdout."""
    script = tmp_path / "script.py"
    script.write_text(SETUP + textwrap.dedent(body), encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "corpus.txt")],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            f"timed out after {timeout} s (a hang?); output so far: {e.stdout!r} {e.stderr!r}"
        )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_encodes_and_trains_after_the_parent_ran_the_pools(tmp_path):
    out = run_script(
        tmp_path,
        """
        want = tok.encode_batch(texts, num_threads=2)
        tok.encode_batch_flat(texts)                    # the default pool too
        core.encode_file(tok, corpus, corpus + ".npy", num_threads=2)
        pid = os.fork()
        if pid == 0:
            ok = tok.encode_batch(texts, num_threads=2) == want
            ok &= tok.encode_batch(texts) == want
            core.encode_file(tok, corpus, corpus + ".child.npy", num_threads=2)
            core.encode_file(tok, corpus, corpus + ".child1.npy", num_threads=1)
            ok &= core.train_bpe(corpus, 400, ["<|endoftext|>"], num_threads=2)[1] == merges
            ok &= core.train_bpe(corpus, 400, ["<|endoftext|>"])[1] == merges
            ok &= len(core.read_corpus(corpus)) > 0
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status))
        # The parent's own pools still work.
        assert tok.encode_batch(texts, num_threads=2) == want
        """,
        timeout=120,
    )
    assert "child exit 0" in out


@pytest.mark.skipif(sys.platform != "linux", reason="DataLoader workers fork on Linux")
def test_a_dataloader_with_two_workers_encodes_after_the_parent_did(tmp_path):
    pytest.importorskip("torch")
    out = run_script(
        tmp_path,
        """
        import torch
        from torch.utils.data import DataLoader, Dataset

        class Texts(Dataset):
            def __len__(self):
                return 8

            def __getitem__(self, i):
                ids = tok.encode_batch(texts[i * 50 : (i + 1) * 50], num_threads=2)
                return torch.tensor([len(x) for x in ids])

        want = [torch.tensor([len(x) for x in tok.encode_batch(texts[i * 50 : (i + 1) * 50])])
                for i in range(8)]
        loader = DataLoader(Texts(), batch_size=None, num_workers=2,
                            multiprocessing_context="fork")
        got = list(loader)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), "ids differ"
        print("batches", len(got))
        """,
        timeout=180,
    )
    assert "batches 8" in out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_threads_are_capped_and_at_most_two_pools_are_kept(tmp_path):
    cap = 4 * cpus()
    out = run_script(
        tmp_path,
        f"""
        import time
        def threads():
            return len(os.listdir("/proc/self/task"))

        def settled(limit):
            # Dropped pools' threads end once idle: give them a moment.
            for _ in range(100):
                if threads() <= limit:
                    return True
                time.sleep(0.05)
            return False

        base = threads()
        want = tok.encode_batch(texts, num_threads=1)
        limit = base + 2 * {cap}
        for n in range(1, {cap} + 4):
            assert tok.encode_batch(texts, num_threads=n) == want, n
            core.encode_file(tok, corpus, corpus + ".npy", num_threads=n)
        assert settled(limit), f"{{threads()}} threads after 1..{cap + 3}: more than 2 pools"
        # Far more than the CPUs: capped, not 10,000 threads.
        assert tok.encode_batch(texts, num_threads=10_000) == want
        core.train_bpe(corpus, 300, ["<|endoftext|>"], num_threads=10_000)
        assert threads() <= limit, f"{{threads()}} threads after num_threads=10_000"
        print("ok")
        """,
        timeout=180,
    )
    assert out.strip().endswith("ok")


def entry_points(tmp_path: Path):
    """Every `_core` function that takes `num_threads`, as `num_threads -> None`."""
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world " * 100, encoding="utf-8")
    vocab, merges = core.train_bpe(corpus, 300, [])
    tok = core.CoreTokenizer(vocab, merges, [])
    return {
        "encode_batch": lambda n: tok.encode_batch(["a b", "c"], n),
        "encode_batch_flat": lambda n: tok.encode_batch_flat(["a b", "c"], num_threads=n),
        "encode_file": lambda n: core.encode_file(tok, corpus, tmp_path / "c.npy", num_threads=n),
        "train_bpe": lambda n: core.train_bpe(corpus, 300, [], num_threads=n),
    }


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "num_threads must be at least 1, or None for one thread per CPU; got 0"),
        (-3, ValueError, "num_threads must be at least 1, or None for one thread per CPU; got -3"),
        (
            -(2**70),
            ValueError,
            f"num_threads must be at least 1, or None for one thread per CPU; got {-(2**70)}",
        ),
        (1.5, TypeError, "num_threads must be an int or None, not float"),
        ("2", TypeError, "num_threads must be an int or None, not str"),
        (True, TypeError, "num_threads must be an int or None, not bool"),
    ],
)
def test_num_threads_is_checked_by_one_rule_everywhere(tmp_path, value, error, message):
    for name, call in entry_points(tmp_path).items():
        with pytest.raises(error) as info:
            call(value)
        assert str(info.value) == message, name


def test_num_threads_over_the_cap_or_none_is_fine(tmp_path):
    for name, call in entry_points(tmp_path).items():
        for n in (None, 1, 2, 2**70):
            call(n)  # no error: capped at 4 per CPU
        assert name


def test_a_huge_vocab_size_is_refused_or_trained_without_allocating_it(tmp_path):
    # Before the fix both calls aborted the process asking for 32-40 GB.
    out = run_script(
        tmp_path,
        """
        for size in (2**32 + 5, 5_000_000_000):
            try:
                core.train_bpe(corpus, size, [])
            except ValueError as e:
                assert "too large" in str(e), e
            else:
                raise AssertionError(f"vocab_size {size} accepted")
        # 2**32 ids fit 32 bits: trains until no pair is left.
        vocab, merges = core.train_bpe(corpus, 2**32, ["<|endoftext|>"])
        assert 0 < len(merges) < 100_000 and len(vocab) == 256 + len(merges) + 1
        print("ok")
        """,
        timeout=120,
    )
    assert out.strip().endswith("ok")
