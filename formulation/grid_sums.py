"""One pass of the cost model over a hardware space's grid: per-point sums over the layers.

Both solvers start here. The enumeration turns the sums into each point's
objective (or its bounds); the MIP builder takes its per-point coefficients
and screens points from them. Every point is computed on its own and its
layers are summed in the network's order, so the sums do not depend on the
chunks or the workers.

Per point, for a network with layers l (each distinct shape once, times its
count n_l) and branches b:

* separable objectives (``layer-sum``, or a metric that is E or D alone):
  one sum, sum_l n_l min_b m(E_lb, D_lb), with m the metric;
* otherwise eight sums: sum_l n_l min_b E_lb and sum_l n_l min_b D_lb (the
  ideal corner, a lower bound on every schedule), then energy and delay of
  three feasible schedules: per-layer least energy, least delay and least
  E_l^a D_l^b (each an achievable point, ties broken by branch order).

Branches whose energy or delay is infinite (infeasible) never win a minimum;
a point where some layer has no feasible branch sums to ``inf``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import fields, replace
from functools import partial
from typing import Callable

import numpy as np

from deepopt_mip.formulation.allocator import keep_freed_memory
from deepopt_mip.formulation.costmodel.common import ArrayHardware
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_energy_delay
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.memory import check_memory
from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import HardwareSpace, grid_chunks, grid_shape
from deepopt_mip.formulation.technology import Technology

Progress = Callable[[int, int], None]
"""Called with (points done, points in all) after each chunk."""

PARALLEL_MIN_POINTS = 20_000
"""Grids at least this large are split over the CPUs by default (smaller ones are not worth a process)."""


def is_separable(metric: str, aggregate: str) -> bool:
    """True where the best schedule of a point is the per-layer best branch (layer-sum, or E or D alone)."""
    a, b = check_metric(metric)
    return aggregate == "layer-sum" or a == 0 or b == 0


def distinct_layers(network: Network) -> list[tuple[object, int]]:
    """Layers of distinct shape (the name aside) with how often each occurs."""
    counts: dict[object, int] = {}
    for layer in network.layers:
        key = replace(layer, name="-")
        counts[key] = counts.get(key, 0) + 1
    return list(counts.items())


def usable(energy: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Where a branch can run: both its energy and its delay are finite."""
    return np.isfinite(energy) & np.isfinite(delay)


def pairs_last(hw: ArrayHardware) -> ArrayHardware:
    """A chunk's hardware with the J/K-pair axis moved last: (filter, ifmap, psum, pairs).

    Same values, other memory order: numpy runs its inner loops along the last
    axis, and with the pairs there (hundreds long, rather than 7 SRAM sizes)
    an operation on broadcast operands costs a fraction as much.
    """
    def moved(value):
        return np.moveaxis(value, 0, -1) if isinstance(value, np.ndarray) and value.ndim == 4 else value

    return ArrayHardware(*(moved(getattr(hw, f.name)) for f in fields(ArrayHardware)))


def layer_terms(layer, count: int, hw: ArrayHardware, tech: Technology, metric: str, separable: bool,
                shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """One distinct layer's contribution to the sums (see the module docstring), each times ``count``.

    Selections are ``np.where`` into new arrays (the allocator keeps freed
    memory for reuse, :mod:`~deepopt_mip.formulation.allocator`), which numpy
    runs at about twice the speed of a masked ``np.copyto`` into an existing
    one; a factor of 1 is not multiplied (x * 1 is x). The operations on each
    number are those of the plain expressions, so the numbers are the same bit
    for bit.
    """
    if separable:
        # a metric of energy alone needs no delay, so no stall model (the one part of the counts that
        # depends on all five hardware axes)
        costs = branch_energy_delay(layer, hw, tech, with_delay=check_metric(metric)[1] != 0)
        # the minimum over the branches, taken in their order (as np.min over a stack of them would)
        best = None
        for x in BRANCHES:
            value = metric_value(*costs[x], metric)
            if best is None:
                best = np.array(np.broadcast_to(value, shape))
            else:
                np.minimum(best, value, out=best)
        return (best if count == 1 else np.multiply(best, count, out=best),)
    costs = branch_energy_delay(layer, hw, tech)
    # Per branch: energy and delay where both are finite (else inf), and the per-layer metric there
    # (E^a D^b of two infs is inf, as the metric of an unusable branch must be: a, b >= 1 here).
    e_use, d_use, per_layer = [], [], []
    for x in BRANCHES:
        energy, delay = (np.broadcast_to(v, shape) for v in costs[x])
        ok = usable(energy, delay)
        e_use.append(np.where(ok, energy, np.inf))
        d_use.append(np.where(ok, delay, np.inf))
        per_layer.append(metric_value(e_use[-1], d_use[-1], metric))

    def first_least(keys: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Energy and delay of the first branch with the least key (np.argmin's choice; the keys hold no
        NaN), found branch by branch instead of on stacked arrays: a later branch replaces the pick where
        its key is less than the least so far."""
        pick_e, pick_d, best = e_use[0], d_use[0], keys[0]
        last = len(keys) - 1
        for b in range(1, last + 1):
            better = keys[b] < best
            pick_e = np.where(better, e_use[b], pick_e)
            pick_d = np.where(better, d_use[b], pick_d)
            if b < last:
                best = pick_e if keys is e_use else pick_d if keys is d_use else np.where(better, keys[b], best)
        return pick_e, pick_d

    picks = first_least(e_use) + first_least(d_use) + first_least(per_layer)
    if count != 1:
        picks = tuple(v * count for v in picks)
    # the least energy is the energy of the least-energy branch, and likewise for the delay
    return (picks[0], picks[3]) + picks


def chunk_sums(hardware: ArrayHardware, layers: list[tuple[object, int]], tech: Technology, metric: str,
               separable: bool) -> list[np.ndarray]:
    """The sums of one chunk of the grid (1 or 8 arrays, J/K pairs first)."""
    hw = pairs_last(hardware)
    block_shape = np.broadcast_shapes(*(np.shape(getattr(hw, f.name)) for f in fields(ArrayHardware)))
    # Sums over the layers, in the network's order, so every point's sum is the same whatever the chunks.
    sums = [np.zeros(block_shape) for _ in range(1 if separable else 8)]
    for layer, count in layers:
        for acc, term in zip(sums, layer_terms(layer, count, hw, tech, metric, separable, block_shape)):
            acc += term
    return [np.moveaxis(s, -1, 0) for s in sums]


def sums_bounds(sums: list[np.ndarray], valid: np.ndarray, metric: str, separable: bool):
    """(lower, upper) bounds of each point's objective from its sums, ``inf`` outside ``valid``.

    Separable: both are the exact objective. Otherwise ``lower`` is the
    metric of the ideal corner and ``upper`` the best metric of the three
    feasible schedules summed.
    """
    if separable:
        exact = np.where(valid, sums[0], np.inf)
        return exact, exact
    e_min, d_min, *schedule_sums = sums
    with np.errstate(invalid="ignore"):
        lower = np.where(valid, metric_value(e_min, d_min, metric), np.inf)
        upper = np.min([metric_value(e, d, metric) for e, d in zip(schedule_sums[::2], schedule_sums[1::2])],
                       axis=0)
    return lower, np.where(valid, upper, np.inf)


MATERIALISED_BYTES_PER_POINT = 8
"""Bytes per grid point of each array :func:`grid_sums` returns (float64; the valid mask takes 1)."""


def grid_sums_memory_bytes(shape: tuple[int, ...], separable: bool, chunk_points: int, workers: int) -> int:
    """Estimated peak memory of :func:`grid_sums`: its arrays of the whole grid (the sums, the area and
    the mask), twice over for the caller's derived arrays, plus the workers' chunks of ``chunk_points``."""
    from deepopt_mip.formulation.grid_stream import stream_memory_bytes

    arrays = (1 if separable else 8) + 1
    return 2 * int(np.prod(shape)) * (arrays * MATERIALISED_BYTES_PER_POINT + 1) \
        + stream_memory_bytes(chunk_points, workers)


def _start_worker() -> None:
    """A forked worker keeps no allocation trace: tracemalloc, if the parent runs it, would only slow it down
    (the child's trace is never read; the parent's peak does not include it); and it keeps freed memory for
    reuse (:func:`~deepopt_mip.formulation.allocator.keep_freed_memory`)."""
    tracemalloc.stop()
    keep_freed_memory()


@contextmanager
def worker_map(work, items: list, workers: int, space: HardwareSpace):
    """The results of ``work`` over ``items``, in order: in ``workers`` forked processes when there are
    more than one and more than one item, else in this process. A worker that dies or runs out of memory
    ends the grid pass over ``space`` with one line (an :class:`InputError`), never a traceback."""
    try:
        with ExitStack() as stack:
            if workers > 1 and len(items) > 1:
                pool = stack.enter_context(ProcessPoolExecutor(
                    max_workers=min(workers, len(items)), mp_context=multiprocessing.get_context("fork"),
                    initializer=_start_worker))
                yield pool.map(work, items)
            else:
                yield map(work, items)
    except BrokenProcessPool:
        raise InputError(f"a worker process of the grid pass over space {space.name!r} died (out of memory?): "
                         f"use fewer --workers") from None
    except MemoryError:
        raise InputError(f"out of memory in the grid pass over space {space.name!r}: "
                         f"use fewer --workers") from None


def worker_count(workers: int | None, points: int) -> int:
    """How many processes evaluate the grid: ``workers``, or by default every usable CPU for a large grid.

    Worker processes are forked (they inherit the loaded package and start at
    once), which is done on Linux only (elsewhere forking is unsafe or
    unavailable): on other platforms the grid is evaluated in this process.
    """
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if workers is None:
        if points < PARALLEL_MIN_POINTS:
            return 1
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(workers))


def grid_sums(network: Network, space: HardwareSpace, tech: Technology, metric: str, separable: bool,
              progress: Progress | None = None, max_points: int = 300_000, workers: int | None = None):
    """The sums of every grid point: (sums, area_um2, valid), each of the grid's shape.

    ``sums`` is a list of 1 (separable) or 8 arrays, ``inf`` outside ``valid``
    (points within the area limit whose SRAMs hold the array's registers).
    The grid is cut into chunks of at most ``max_points`` points (and at least
    one per worker); with ``workers`` > 1 (default: one per CPU for grids of
    :data:`PARALLEL_MIN_POINTS` points or more) the chunks are evaluated by
    that many processes. The result is the same bit for bit whatever the
    chunks and the number of workers.

    This pass holds arrays of the whole grid cube (over-budget points
    included): before it starts, its memory (:func:`grid_sums_memory_bytes`)
    is checked against what the machine has, and a grid too large is refused
    in one line. The single-network enumeration streams over the in-budget
    points instead (:mod:`~deepopt_mip.formulation.grid_stream`).
    """
    shape = grid_shape(space)
    total = int(np.prod(shape))
    workers = worker_count(workers, total)
    pairs, per_pair = shape[0], int(np.prod(shape[1:]))
    pairs_per_chunk = max(1, min(max_points // max(per_pair, 1), -(-pairs // workers)))
    # a chunk holds whole pairs: one pair's SRAM cube may exceed max_points
    check_memory(grid_sums_memory_bytes(shape, separable, pairs_per_chunk * per_pair, workers),
                 f"the full grid of space {space.name!r} ({total:,} points)")
    sums = [np.full(shape, np.inf) for _ in range(1 if separable else 8)]
    area = np.zeros(shape)
    valid = np.zeros(shape, dtype=bool)
    layers = distinct_layers(network)
    chunks = list(grid_chunks(space, pairs_per_chunk * per_pair))
    work = partial(chunk_sums, layers=layers, tech=tech, metric=metric, separable=separable)
    done = 0
    with worker_map(work, [chunk.hardware for chunk in chunks], workers, space) as results:
        for chunk, chunk_result in zip(chunks, results):
            for total_sum, part in zip(sums, chunk_result):
                total_sum[chunk.pairs] = np.where(chunk.valid, part, np.inf)
            area[chunk.pairs] = chunk.area_um2
            valid[chunk.pairs] = chunk.valid
            done += chunk.valid.size
            if progress:
                progress(done, total)
    return sums, area, valid
