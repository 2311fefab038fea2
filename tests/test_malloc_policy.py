"""On a CPU, training keeps the memory of freed tensors for the next step (glibc's mallopt):
a step's tensors then reuse pages instead of faulting fresh ones in."""

from __future__ import annotations

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

# One tensor of a step, made and freed, with glibc's own account of where its memory came
# from (`mallinfo2`): `hblkhd` is memory in blocks mapped for themselves, which `free` gives
# back to the kernel (the next step faults them in again); `fordblks` is free memory the heap
# keeps for the next allocation.
STEP = textwrap.dedent(
    """
    import ctypes, sys, torch
    from bpelm.training.runtime import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    changed = keep_freed_memory() if sys.argv[1] == "keep" else False
    before = libc.mallinfo2().hblkhd  # blocks torch's import mapped
    x = torch.ones(2 << 20)  # 8 MB, as a step's activations are
    mapped = libc.mallinfo2().hblkhd - before
    del x
    print(changed, mapped, libc.mallinfo2().fordblks)
    """
)
MB = 1 << 20


def step(mode: str) -> tuple[bool, int, int]:
    """(whether keep_freed_memory changed anything, bytes mapped for blocks of their own
    while the tensor lived, bytes the heap kept free after it was freed)."""
    out = subprocess.run(
        [sys.executable, "-c", STEP, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@glibc_only
def test_a_freed_tensor_stays_in_the_heap_for_the_next_step():
    changed, mapped, kept = step("keep")
    assert changed
    assert mapped < MB  # from the heap, not a mapping of its own
    assert kept >= 8 * MB  # and still there once freed
    _, mapped, _ = step("default")
    assert mapped >= 8 * MB  # glibc's default: mapped alone, unmapped when freed


@glibc_only
@pytest.mark.parametrize(
    "name, value",
    [("MALLOC_TRIM_THRESHOLD_", "131072"), ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536")],
)
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch, name, value):
    from bpelm.training.runtime import keep_freed_memory

    monkeypatch.setenv(name, value)
    assert not keep_freed_memory()  # returns before any mallopt: this process is unchanged
