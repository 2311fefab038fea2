"""Ctrl-C stops a long encode_file soon, leaving neither the output nor a temporary file;
a temporary file orphaned by a killed run is removed by the next run on the same output.
Ctrl-C stops train_bpe soon too, while it counts and while it merges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A child started where SIGINT is ignored (a job in the background of a non-interactive
# shell, as CI may run it) inherits that, and Python then installs no KeyboardInterrupt
# handler: Ctrl-C is what these tests send, so each child restores Python's own handler.
RESTORE_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"

CHILD = RESTORE_SIGINT + textwrap.dedent(
    """
    import os, sys, time
    from bpelm import Tokenizer, _core, train_bpe

    folder = sys.argv[1]
    src = os.path.join(folder, "big.txt")
    # Random words (hex digits, cut at "0" and "a"): few repeat, so the word cache cannot
    # make the encode fast, and it lasts seconds on one thread.
    with open(src, "w") as f:
        for _ in range(int(sys.argv[2])):
            f.write(os.urandom(1 << 19).hex().replace("0", " ").replace("a", "\\n"))
    small = os.path.join(folder, "small.txt")
    with open(small, "w") as f:
        f.write(os.urandom(1 << 16).hex().replace("0", " "))
    vocab, merges = train_bpe(small, 300, [], num_threads=1)
    tok = Tokenizer(vocab, merges, [])
    print("started", flush=True)
    t0 = time.monotonic()
    try:
        _core.encode_file(tok._core, src, os.path.join(folder, "big.npy"), num_threads=1)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - t0:.2f}", flush=True)
    """
)


def start(folder, repeats: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(repeats)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    return proc


def temporaries(folder) -> list[str]:
    return [p for p in os.listdir(folder) if p.endswith(".tmp")]


def writing(folder) -> None:
    """Waits until the encode has written a few MB of its temporary output."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sizes = [os.path.getsize(folder / p) for p in temporaries(folder)]
        if sizes and max(sizes) > 4 << 20:
            return
        time.sleep(0.01)
    raise AssertionError("the encode never started writing")


def test_sigint_stops_encode_file_cleanly(tmp_path):
    proc = start(tmp_path, 100)  # 100 MB: seconds of encoding on one thread
    writing(tmp_path)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    waited = time.monotonic() - sent
    assert "interrupted" in out, out
    assert waited < 5, waited
    assert not (tmp_path / "big.npy").exists()
    assert temporaries(tmp_path) == []


def test_a_killed_runs_temporary_is_removed_by_the_next_run(tmp_path):
    proc = start(tmp_path, 100)
    writing(tmp_path)
    proc.kill()
    proc.wait(timeout=30)
    orphans = temporaries(tmp_path)
    assert orphans, "the killed run left no temporary file to clean"
    # A run on another output leaves it alone; a run on the same output removes it.
    from bpelm import Tokenizer, _core

    small = tmp_path / "small.txt"
    small.write_text("a b c\n")
    tok = Tokenizer({i: bytes([i]) for i in range(256)}, [], [])
    _core.encode_file(tok._core, str(small), str(tmp_path / "other.npy"))
    assert temporaries(tmp_path) == orphans
    _core.encode_file(tok._core, str(small), str(tmp_path / "big.npy"))
    assert temporaries(tmp_path) == []


TRAIN_CHILD = RESTORE_SIGINT + textwrap.dedent(
    """
    import os, sys, time
    from bpelm import train_bpe

    src, threads = sys.argv[1], int(sys.argv[2])
    # 60 MB of random words (as above): counting takes a second or two, and hardly a word
    # repeats, so the merges go on for seconds more (about a million of them at most).
    with open(src, "w") as f:
        for _ in range(60):
            f.write(os.urandom(1 << 19).hex().replace("0", " ").replace("a", "\\n"))
    # How long counting takes here (one merge after it), for the parent to time its signal.
    t0 = time.monotonic()
    train_bpe(src, 257, [], num_threads=threads)
    print("started", time.monotonic() - t0, flush=True)
    t0 = time.monotonic()
    try:
        train_bpe(src, 2**32, [], num_threads=threads)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - t0:.2f}", flush=True)
    # The pool works on after the interruption.
    small = src + ".small"
    with open(small, "w") as f:
        f.write("the cat sat on the mat " * 100)
    vocab, merges = train_bpe(small, 300, [], num_threads=threads)
    print("then trained", len(merges), flush=True)
    """
)


@pytest.mark.parametrize(("phase", "threads"), [("count", 2), ("merge", 1)])
def test_sigint_stops_train_bpe(tmp_path, phase, threads):
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_CHILD, str(tmp_path / "big.txt"), str(threads)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    word, counting = proc.stdout.readline().split()
    assert word == "started"
    # Early in the counting, or half a second into the merges (which last several seconds
    # more: uninterrupted, this call runs on for seconds after the signal).
    time.sleep(float(counting) * 0.3 if phase == "count" else float(counting) + 0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    line = proc.stdout.readline()
    waited = time.monotonic() - sent
    rest, _ = proc.communicate(timeout=60)
    assert line.startswith("interrupted"), line
    assert waited < 1.5, waited  # 0.05 s counting, 0.2 s merging here (2 loaded CPUs)
    assert "then trained" in rest, rest
    assert proc.returncode == 0
