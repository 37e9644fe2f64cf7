"""The grid pass in bounded memory: stream over the in-budget blocks and keep only the candidates.

:func:`~deepopt_mip.formulation.grid_sums.grid_sums` returns arrays of the
whole grid cube. A search for the best ``k`` points (and the worst one)
needs far less: :func:`stream_candidates` evaluates the blocks of
:func:`~deepopt_mip.formulation.grid_blocks.budget_blocks` (the points within
the area budget, never the over-budget cube), each with the same
:func:`~deepopt_mip.formulation.grid_sums.chunk_sums` as the full pass (so
every number is the same, bit for bit), and keeps per block only the points
that can still be among the best ``k`` or be the worst (:func:`keep_candidates`).

Peak memory: each worker holds one block of at most ``max_points`` points
and the cost model's temporaries on it, about :data:`BYTES_PER_POINT` bytes
per point (:func:`stream_memory_bytes`); the parent holds the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_blocks import Block, budget_blocks
from deepopt_mip.formulation.grid_sums import (Progress, chunk_sums, distinct_layers, sums_bounds,
                                              worker_count, worker_map)
from deepopt_mip.formulation.memory import check_memory
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import HardwareSpace, grid_shape
from deepopt_mip.formulation.technology import Technology

BYTES_PER_POINT = 600
"""Peak bytes a worker holds per point of its block (the cost model's temporaries and 1 or 8 running
sums; measured on AlexNet and GoogleNet, energy and E*D, blocks of 300 000 points: 340-450 bytes)."""
BASE_BYTES = 100 * 2**20
"""Memory of a process before it evaluates anything (Python, numpy, the package: about 64 MB measured)."""


@dataclass(frozen=True)
class Candidates:
    """Grid points (flat indices into :func:`~.spaces.grid_shape`, ascending) with their bounds and area."""

    index: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    area_um2: np.ndarray

    @staticmethod
    def empty() -> "Candidates":
        return Candidates(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))

    @staticmethod
    def joined(parts: list["Candidates"]) -> "Candidates":
        return Candidates(*(np.concatenate([getattr(c, name) for c in parts])
                            for name in ("index", "lower", "upper", "area_um2")))

    def take(self, where: np.ndarray) -> "Candidates":
        return Candidates(self.index[where], self.lower[where], self.upper[where], self.area_um2[where])


@dataclass(frozen=True)
class StreamResult:
    candidates: Candidates
    valid_points: int
    evaluated_points: int
    grid_points: int
    runnable_points: int
    """Valid points where every layer has a feasible branch (a finite bound)."""


def keep_candidates(found: Candidates, k: int, separable: bool) -> Candidates:
    """The points of ``found`` that can be among the ``k`` best or be the worst point of any grid
    containing them, sorted by flat index.

    Separable objectives (``lower`` = ``upper`` = the exact objective): the
    first ``k`` by (objective, area, index) and the last one by (objective
    descending, area, index), among finite objectives.

    Products (``lower`` <= exact objective <= ``upper``, points with a finite
    ``upper``): the k-th least exact objective is at most the k-th least
    ``upper`` U_k, so a point with ``lower`` > U_k is never among the k best;
    the worst exact objective is at least the greatest ``lower`` L_max, so a
    point with ``upper`` < L_max is never the worst. Kept: ``lower`` <= U_k or
    ``upper`` >= L_max. The points that fix U_k and L_max are kept, so keeping
    from a union of kept sets keeps what keeping from the union would.
    """
    if separable:
        finite = np.flatnonzero(np.isfinite(found.lower))
        value, area, index = found.lower[finite], found.area_um2[finite], found.index[finite]
        best = finite[np.lexsort((index, area, value))[:k]]
        worst = finite[np.lexsort((index, area, -value))[:1]]
        keep = np.union1d(best, worst)
    else:
        finite = np.flatnonzero(np.isfinite(found.upper))
        if finite.size == 0:
            return Candidates.empty()
        upper, lower = found.upper[finite], found.lower[finite]
        kth_upper = np.partition(upper, k - 1)[k - 1] if upper.size >= k else np.inf
        keep = finite[(lower <= kth_upper) | (upper >= lower.max())]
    kept = found.take(keep)
    return kept.take(np.argsort(kept.index, kind="stable"))


def block_hardware(space: HardwareSpace, block: Block):
    """The hardware of a block, broadcast as (pairs, filter, ifmap, psum), its area and its valid mask."""
    from deepopt_mip.formulation.hardware import array_hardware, registers_fit

    rows, cols = space.array_pairs()
    f_kb, i_kb, p_kb = (np.asarray(s) for s in space.fitting_sizes())
    j = rows[block.pairs][:, None, None, None]
    k = cols[block.pairs][:, None, None, None]
    f = f_kb[block.f][None, :, None, None]
    i = i_kb[block.i][None, None, :, None]
    p = p_kb[block.p][None, None, None, :]
    hw = array_hardware(j, k, f, i, p, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
                        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
                        dram_block_bits=space.dram_block_bits)
    area = space.area_um2(j, k, f, i, p)
    return hw, area, (area <= space.limit_um2) & registers_fit(hw)


def block_flat_index(space: HardwareSpace, block: Block) -> np.ndarray:
    """Flat grid indices of a block's points, in the block's (pairs, filter, ifmap, psum) order."""
    shape = grid_shape(space)
    a = block.pairs[:, None, None, None]
    b = np.arange(block.f.start, block.f.stop)[None, :, None, None]
    c = np.arange(block.i.start, block.i.stop)[None, None, :, None]
    d = np.arange(block.p.start, block.p.stop)[None, None, None, :]
    return ((a * shape[1] + b) * shape[2] + c) * shape[3] + d


def block_sums(block: Block, space: HardwareSpace, layers, tech: Technology, metric: str,
               separable: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Evaluate one block: its valid points' flat indices, area (um^2) and sums
    (:func:`~deepopt_mip.formulation.grid_sums.chunk_sums`), each a 1-D array over those points."""
    try:
        hw, area, valid = block_hardware(space, block)
        where = np.flatnonzero(valid.ravel())
        if where.size == 0:
            return np.zeros(0, np.int64), np.zeros(0), [np.zeros(0) for _ in range(1 if separable else 8)]
        sums = chunk_sums(hw, layers, tech, metric, separable)
        return (block_flat_index(space, block).ravel()[where], np.broadcast_to(area, valid.shape).ravel()[where],
                [s.ravel()[where] for s in sums])
    except MemoryError:
        raise InputError(f"out of memory evaluating a block of {block.size:,} points of space {space.name!r}: "
                         f"use fewer --workers") from None


def block_candidates(block: Block, space: HardwareSpace, layers, tech: Technology, metric: str, separable: bool,
                     k: int) -> tuple[Candidates, int, int]:
    """Evaluate one block; its kept candidates, its number of valid points and of runnable ones (valid, and
    every layer has a feasible branch: a finite bound)."""
    index, area, sums = block_sums(block, space, layers, tech, metric, separable)
    lower, upper = sums_bounds(sums, np.ones(index.size, dtype=bool), metric, separable)
    found = Candidates(index, lower, upper, area)
    return keep_candidates(found, k, separable), int(index.size), int(np.isfinite(lower).sum())


def stream_memory_bytes(max_points: int, workers: int) -> int:
    """Estimated peak memory of :func:`stream_candidates`: per process the base, per worker a block."""
    return (workers + 1) * BASE_BYTES + workers * BYTES_PER_POINT * max_points


def stream_blocks(space: HardwareSpace, work, progress: Progress | None = None, max_points: int = 300_000,
                  workers: int | None = None):
    """Yield ``(block, work(block))`` for every block of :func:`~.grid_blocks.budget_blocks`, in order, evaluated by
    ``workers`` processes (:func:`~.grid_sums.worker_map`), after checking :func:`stream_memory_bytes`.

    ``work`` must hold no more than a block's evaluation (:func:`block_sums`)
    and return only what its caller keeps. ``progress(done, total)`` counts
    evaluated points (in-budget points and the few over-budget ones the
    blocks hold).
    """
    blocks = list(budget_blocks(space, max_points))
    total = sum(block.size for block in blocks)
    workers = worker_count(workers, total)
    check_memory(stream_memory_bytes(max_points, workers), f"the grid pass over space {space.name!r} "
                 f"({workers} worker{'s' if workers > 1 else ''} x blocks of {max_points:,} points)")
    done = 0
    with worker_map(work, blocks, workers, space) as results:
        for block, result in zip(blocks, results):
            done += block.size
            yield block, result
            if progress:
                progress(done, total)


def stream_candidates(network: Network, space: HardwareSpace, tech: Technology, metric: str, separable: bool,
                      k: int, progress: Progress | None = None, max_points: int = 300_000,
                      workers: int | None = None) -> StreamResult:
    """Every in-budget point evaluated once, block by block; the candidates for the ``k`` best and the worst.

    The result does not depend on ``max_points`` or ``workers``.
    """
    work = partial(block_candidates, space=space, layers=distinct_layers(network), tech=tech, metric=metric,
                   separable=separable, k=k)
    kept, valid_points, runnable_points, evaluated = Candidates.empty(), 0, 0, 0
    for block, (found, valid, runnable) in stream_blocks(space, work, progress, max_points, workers):
        kept = keep_candidates(Candidates.joined([kept, found]), k, separable)
        valid_points += valid
        runnable_points += runnable
        evaluated += block.size
    return StreamResult(kept, valid_points, evaluated, int(np.prod(grid_shape(space))), runnable_points)
