"""Keep freed memory for reuse in the processes that evaluate the grid (glibc only).

The cost model makes many short-lived numpy temporaries of a block's size.
glibc serves each allocation above its mmap threshold (128 kB, raised
dynamically up to 32 MB) with a fresh mmap and returns it on free, so every
temporary page faults again when it is first written: on large grids that
was 35-75% of the pass's CPU time. :func:`keep_freed_memory` raises the mmap
threshold to its 64-bit maximum (32 MB) and the heap trim threshold to
1 GB, so freed temporaries stay in the heap and are reused. Numbers are
unchanged (only where the bytes live); the process keeps its peak heap
until it ends, which for a grid worker is one block's worth
(:data:`~deepopt_mip.formulation.grid_stream.BYTES_PER_POINT` per point).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)."""
TRIM_THRESHOLD_BYTES = 2**30


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as described above; False (and nothing changed) where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                 TRIM_THRESHOLD_BYTES))
