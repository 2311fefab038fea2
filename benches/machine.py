"""The machine a benchmark ran on, in words, for its report's header.

Results differ by processor, not only by its count (GPT-2 encoding's ratios to gigatoken on
an AMD EPYC and an Intel Xeon, both 2 vCPUs, differ by up to 0.3: `RESULTS.md`), so every
report names the model."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The processor's model name as Linux gives it (`/proc/cpuinfo`), else what `platform`
    says, else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def describe() -> str:
    """One line: model, architecture and usable CPUs, e.g. "Intel(R) Xeon(R) Processor @
    2.80GHz (x86_64), 2 CPUs"."""
    return f"{cpu_model()} ({platform.machine()}), {usable_cpus()} CPUs"
