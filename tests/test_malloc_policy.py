"""On a CPU, training keeps the memory of freed tensors for the next step (glibc's mallopt):
a step's tensors then reuse pages instead of faulting fresh ones in."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="the policy is glibc's malloc's; elsewhere keep_freed_memory changes nothing",
)

# Steps of a toy training loop's allocations: three 8 MB tensors made, touched and freed.
STEPS = textwrap.dedent(
    """
    import resource, sys, torch
    from bpelm.training.runtime import keep_freed_memory
    changed = keep_freed_memory() if sys.argv[1] == "keep" else False

    def step():
        xs = [torch.ones(2 << 20) for _ in range(3)]  # 8 MB each
        return sum(float(x[-1]) for x in xs)

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    print(changed, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(mode: str, env: dict[str, str] | None = None) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", STEPS, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout.split()
    return out[0] == "True", int(out[1])


@glibc_only
def test_freed_tensors_are_reused_instead_of_faulted_in_again():
    changed, kept = faults("keep")
    _, default = faults("default")
    assert changed
    # 20 steps x 24 MB is 120k pages; kept, the pages of the first step serve them all.
    assert default > 20_000, default
    assert kept * 4 < default, (kept, default)  # measured: 6k against 83k


@glibc_only
@pytest.mark.parametrize(
    "name, value",
    [("MALLOC_TRIM_THRESHOLD_", "131072"), ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")],
)
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch, name, value):
    from bpelm.training.runtime import keep_freed_memory

    monkeypatch.setenv(name, value)
    assert not keep_freed_memory()  # returns before any mallopt: this process is unchanged
