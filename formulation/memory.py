"""Refuse, before it starts, work that would need more memory than the machine has."""

from __future__ import annotations

import os

from deepopt_mip.formulation.errors import InputError

GB = 2**30


def available_bytes() -> int | None:
    """Memory the system can give a new workload: MemAvailable of /proc/meminfo (Linux), else free
    physical pages; None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(estimate_bytes: int, what: str, available: int | None = None) -> None:
    """One line (:class:`InputError`) when ``estimate_bytes`` exceed the memory available."""
    available = available_bytes() if available is None else available
    if available is not None and estimate_bytes > available:
        raise InputError(f"{what} would need about {estimate_bytes / GB:.1f} GB of memory, more than the "
                         f"{available / GB:.1f} GB available")
