"""What the sweep sets up in each Dask worker process (imported only where Dask is installed).

Dask's nanny starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``.
Setting that glibc variable turns off glibc's adaptive mmap threshold, so
every numpy array above 128 kB is mapped and unmapped afresh, and the cost
model's many temporary arrays page-fault on each use: a cell of alexnet at
16 mm^2 ran 3 to 4 times slower in a worker than in a plain process
(docs/sweep.md). :class:`AllocatorPlugin` restores fast reuse in each worker,
including workers that start later: arrays up to 32 MB come from the heap
again (``M_MMAP_THRESHOLD``) and 64 MB of free heap is kept (``M_TOP_PAD``);
memory beyond that is still returned to the system. Without glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from distributed.diagnostics.plugin import WorkerPlugin

M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TOP_PAD_BYTES = 64 * 2**20


def tune_allocator() -> bool:
    """Set glibc's mmap threshold and top pad (see the module docstring); False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TOP_PAD, TOP_PAD_BYTES))


class AllocatorPlugin(WorkerPlugin):
    """Runs :func:`tune_allocator` in every worker of the cluster, now and when a worker (re)starts."""

    name = "deepopt-mip-allocator"

    def setup(self, worker) -> None:
        tune_allocator()
