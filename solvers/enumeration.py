"""Exhaustive enumeration of a hardware space, vectorised over the grid.

Every point of the space's grid (J/K pairs x filter x ifmap x psum SRAM sizes)
is evaluated with the cost model, in chunks so memory stays bounded (split
over worker processes for large grids); layers of identical shape are
evaluated once and weighted by their count. Every point is computed on its
own and its layers are summed in the network's order, so the numbers do not
depend on the chunks or the workers.

* Separable objectives (``layer-sum``, and ``network`` energy or delay): the
  optimum schedule of a point is the per-layer best branch, so one pass gives
  every point's exact objective.
* ``network`` products (E*D, E^2*D, E*D^2): the branch choices couple through
  the totals. One pass gives, per point, a lower bound
  LB = (sum_l min_b E_lb)^a (sum_l min_b D_lb)^b and an upper bound (the best
  of three feasible schedules: per-layer least energy, least delay and least
  E_l^a D_l^b). Points are then solved exactly (Pareto merge over layers,
  :func:`deepopt_mip.solvers.schedule.pareto_schedule`) in increasing LB
  until no unsolved point's LB can beat the k-th best exact value: the result
  is exact (bound and prune). The worst point is found the same way from the
  top, in decreasing UB.

Ties between hardware points break as in the reference's search: smaller
area first, then grid order (J, K, filter, ifmap, psum).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import fields, replace
from functools import partial, reduce
from typing import Callable

import numpy as np

from deepopt_mip.formulation.costmodel.common import ArrayHardware
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_energy_delay
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import array_hardware, registers_fit
from deepopt_mip.formulation.metrics import check_aggregate, check_metric, metric_value
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import HardwareSpace, grid_chunks, grid_point, grid_shape
from deepopt_mip.formulation.technology import Technology
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.schedule import pareto_schedule
from deepopt_mip.solvers.solution import RankedPoint, Solution

Progress = Callable[[int, int], None]
"""Called with (points done, points in all) after each chunk."""

UM2_PER_MM2 = 1e6


def distinct_layers(network: Network) -> list[tuple[object, int]]:
    """Layers of distinct shape (the name aside) with how often each occurs."""
    counts: dict[object, int] = {}
    for layer in network.layers:
        key = replace(layer, name="-")
        counts[key] = counts.get(key, 0) + 1
    return list(counts.items())


def _usable(energy: np.ndarray, delay: np.ndarray) -> np.ndarray:
    return np.isfinite(energy) & np.isfinite(delay)


def _pairs_last(hw: ArrayHardware) -> ArrayHardware:
    """A chunk's hardware with the J/K-pair axis moved last: (filter, ifmap, psum, pairs).

    Same values, other memory order: numpy runs its inner loops along the last
    axis, and with the pairs there (hundreds long, rather than 7 SRAM sizes)
    an operation on broadcast operands costs a fraction as much.
    """
    def moved(value):
        return np.moveaxis(value, 0, -1) if isinstance(value, np.ndarray) and value.ndim == 4 else value

    return ArrayHardware(*(moved(getattr(hw, f.name)) for f in fields(ArrayHardware)))


def _layer_terms(layer, count: int, hw: ArrayHardware, tech: Technology, metric: str, separable: bool,
                 shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """One distinct layer's contribution to :func:`grid_bounds`' sums, each times ``count``.

    Separable: ``(count * min_b metric,)``. Otherwise ``count`` times the
    least usable energy and delay, then energy and delay of the three
    schedules (least energy, least delay, least per-layer metric).
    """
    costs = branch_energy_delay(layer, hw, tech)
    if separable:
        # the minimum over the branches, taken in their order (as np.min over a stack of them would)
        best = reduce(np.minimum, (metric_value(*costs[x], metric) for x in BRANCHES))
        return (count * np.broadcast_to(best, shape),)
    # Per branch: energy and delay where both are finite (else inf), and the per-layer metric there.
    e_use, d_use, per_layer = [], [], []
    for x in BRANCHES:
        energy, delay = (np.broadcast_to(v, shape) for v in costs[x])
        usable = _usable(energy, delay)
        e_use.append(np.where(usable, energy, np.inf))
        d_use.append(np.where(usable, delay, np.inf))
        per_layer.append(np.where(usable, metric_value(energy, delay, metric), np.inf))
    # For each key, the first branch with the least key (np.argmin's choice; the keys hold no NaN),
    # found branch by branch instead of on stacked arrays.
    least, picked = [], []
    for keys in (e_use, d_use, per_layer):
        best, pick_e, pick_d = keys[0], e_use[0], d_use[0]
        for key, energy, delay in zip(keys[1:], e_use[1:], d_use[1:]):
            better = key < best
            best = np.where(better, key, best)
            pick_e = np.where(better, energy, pick_e)
            pick_d = np.where(better, delay, pick_d)
        least.append(best)
        picked += [pick_e, pick_d]
    return tuple(count * v for v in least[:2] + picked)


def _chunk_bounds(hardware: ArrayHardware, layers: list[tuple[object, int]], tech: Technology, metric: str,
                  separable: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Lower and upper bound of one chunk of the grid (``upper`` None where it is ``lower``), pairs first."""
    hw = _pairs_last(hardware)
    block_shape = np.broadcast_shapes(*(np.shape(getattr(hw, f.name)) for f in fields(ArrayHardware)))
    # Sums over the layers, in the network's order, so every point's sum is the same whatever the chunks.
    sums = [np.zeros(block_shape) for _ in range(1 if separable else 8)]
    for layer, count in layers:
        for acc, term in zip(sums, _layer_terms(layer, count, hw, tech, metric, separable, block_shape)):
            acc += term
    if separable:
        return np.moveaxis(sums[0], -1, 0), None
    e_min, d_min, *schedule_sums = sums
    lo = metric_value(e_min, d_min, metric)
    hi = np.min([metric_value(e, d, metric) for e, d in zip(schedule_sums[::2], schedule_sums[1::2])], axis=0)
    return np.moveaxis(lo, -1, 0), np.moveaxis(hi, -1, 0)


def _start_worker() -> None:
    """A forked worker keeps no allocation trace: tracemalloc, if the parent runs it, would only slow it down
    (the child's trace is never read; the parent's peak does not include it)."""
    tracemalloc.stop()


PARALLEL_MIN_POINTS = 20_000
"""Grids at least this large are split over the CPUs by default (smaller ones are not worth a process)."""


def _worker_count(workers: int | None, points: int) -> int:
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


def grid_bounds(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 300_000, workers: int | None = None):
    """One pass over the grid.

    Returns (lower, upper, area_um2, valid), each of the grid's shape. For
    separable objectives ``lower`` is the exact objective and ``upper`` is it too.

    The grid is cut into chunks of at most ``max_points`` points (and at least
    one per worker); with ``workers`` > 1 (default: one per CPU for grids of
    :data:`PARALLEL_MIN_POINTS` points or more) the chunks are evaluated by
    that many processes. Every point is computed on its own, with the layers
    summed in the network's order, so the result is the same bit for bit
    whatever the chunks and the number of workers.
    """
    a, b = check_metric(metric)
    separable = aggregate == "layer-sum" or a == 0 or b == 0
    shape = grid_shape(space)
    lower = np.full(shape, np.inf)
    upper = np.full(shape, np.inf)
    area = np.zeros(shape)
    valid = np.zeros(shape, dtype=bool)
    layers = distinct_layers(network)
    total = int(np.prod(shape))
    workers = _worker_count(workers, total)
    pairs, per_pair = shape[0], int(np.prod(shape[1:]))
    pairs_per_chunk = max(1, min(max_points // max(per_pair, 1), -(-pairs // workers)))
    chunks = list(grid_chunks(space, pairs_per_chunk * per_pair))
    work = partial(_chunk_bounds, layers=layers, tech=tech, metric=metric, separable=separable)
    done = 0
    with ExitStack() as stack:
        if workers > 1 and len(chunks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(
                max_workers=min(workers, len(chunks)), mp_context=multiprocessing.get_context("fork"),
                initializer=_start_worker))
            bounds = pool.map(work, [chunk.hardware for chunk in chunks])
        else:
            bounds = (work(chunk.hardware) for chunk in chunks)
        for chunk, (lo, hi) in zip(chunks, bounds):
            lower[chunk.pairs] = np.where(chunk.valid, lo, np.inf)
            upper[chunk.pairs] = lower[chunk.pairs] if hi is None else np.where(chunk.valid, hi, np.inf)
            area[chunk.pairs] = chunk.area_um2
            valid[chunk.pairs] = chunk.valid
            done += chunk.valid.size
            if progress:
                progress(done, total)
    return lower, upper, area, valid


def _exact_objectives(network: Network, space: HardwareSpace, tech: Technology, metric: str,
                      flat_indices: np.ndarray) -> np.ndarray:
    """Exact network-aggregated optimum of each listed grid point (Pareto merge per point)."""
    points = [grid_point(space, int(i)) for i in flat_indices]
    hw = array_hardware(
        np.array([p.rows for p in points], float), np.array([p.cols for p in points], float),
        np.array([p.fsram_kb for p in points]), np.array([p.isram_kb for p in points]),
        np.array([p.psram_kb for p in points]), bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
        dram_block_bits=space.dram_block_bits)
    tables = cost_tables(network.layers, hw, tech)
    return np.array([pareto_schedule(tables.energy_j[..., n], tables.delay_cycles[..., n], metric).objective
                     for n in range(len(points))])


def _rank_key(objective: np.ndarray, area: np.ndarray, order: np.ndarray, worst: bool = False) -> np.ndarray:
    """Indices sorted best first: objective, then smaller area, then grid order."""
    primary = -objective if worst else objective
    return np.lexsort((order, area, primary))


def _candidate_order(lower: np.ndarray, upper: np.ndarray, valid: np.ndarray, worst: bool):
    """Points that may be the best (or worst), by their bound, most promising first, and the bounds."""
    flat_lower, flat_upper = lower.ravel(), upper.ravel()
    candidates = np.flatnonzero(valid.ravel() & np.isfinite(flat_upper))
    bound = flat_upper if worst else flat_lower
    order = candidates[np.argsort(-bound[candidates] if worst else bound[candidates], kind="stable")]
    return order, bound


def _first_batch(k: int) -> int:
    """Points solved exactly in the first batch of a search for ``k`` points (the bounds are tight:
    a handful beyond ``k`` usually settle it); later batches double."""
    return 2 * k + 4


def _refine(network, space, tech, metric, order, bound, k, worst, exact: dict[int, float]) -> dict[int, float]:
    """Exact objectives of the best (or worst) ``k`` points by bound and prune.

    ``order`` and ``bound`` come from :func:`_candidate_order`. ``exact`` holds
    the exact objectives known so far (of any points); it is extended in place
    and returned. Every point whose bound can reach the k-th best exact value
    is solved, so the k best among ``exact`` are the k best of the grid,
    however many other points ``exact`` holds.
    """
    position, batch = 0, _first_batch(k)
    while position < order.size:
        kth = sorted(exact.values(), reverse=worst)[k - 1] if len(exact) >= k else None
        next_bound = bound[order[position]]
        if kth is not None and ((next_bound < kth) if worst else (next_bound > kth)):
            break
        take = order[position:position + batch]
        missing = np.array([i for i in take if int(i) not in exact], dtype=np.int64)
        if missing.size:
            for index, value in zip(missing, _exact_objectives(network, space, tech, metric, missing)):
                exact[int(index)] = float(value)
        position += take.size
        batch *= 2
    return exact


def enumerate_space(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                    top_k: int = 5, progress: Progress | None = None, max_points: int = 300_000,
                    workers: int | None = None) -> Solution:
    """The exact optimum of ``metric`` over every point of ``space`` (``workers``: see :func:`grid_bounds`)."""
    check_metric(metric)
    check_aggregate(aggregate)
    start = time.perf_counter()
    lower, upper, area, valid = grid_bounds(network, space, tech, metric, aggregate, progress, max_points, workers)
    if not valid.any():
        raise InputError(infeasible_budget_message(space))
    a, b = check_metric(metric)
    separable = aggregate == "layer-sum" or a == 0 or b == 0
    flat_area = area.ravel()
    order = np.arange(flat_area.size)
    if separable:
        objective = lower.ravel()
        finite = np.flatnonzero(np.isfinite(objective))
        best_first = finite[_rank_key(objective[finite], flat_area[finite], order[finite])]
        worst_first = finite[_rank_key(objective[finite], flat_area[finite], order[finite], worst=True)]
        exact_best = {int(i): float(objective[i]) for i in best_first[:top_k + 1]}
        exact_worst = {int(worst_first[0]): float(objective[worst_first[0]])} if finite.size else {}
    else:
        best_order, best_bound = _candidate_order(lower, upper, valid, worst=False)
        worst_order, worst_bound = _candidate_order(lower, upper, valid, worst=True)
        # The first batches of both searches in one evaluation of the model.
        first = np.union1d(best_order[:_first_batch(top_k + 1)], worst_order[:_first_batch(1)])
        exact = {} if first.size == 0 else dict(
            zip(map(int, first), map(float, _exact_objectives(network, space, tech, metric, first))))
        exact_best = _refine(network, space, tech, metric, best_order, best_bound, top_k + 1, False, exact)
        exact_worst = _refine(network, space, tech, metric, worst_order, worst_bound, 1, True, exact)
    if not exact_best:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                         f"(every point has a layer with no feasible branch)")
    ranked = _ranked(exact_best, flat_area)
    best_index = ranked[0]
    hardware = grid_point(space, best_index)
    evaluation = evaluate_point(network, hardware, tech, metric, aggregate)
    schedule = evaluation.los
    worst_index = _ranked(exact_worst, flat_area, worst=True)[0] if exact_worst else None
    wall = time.perf_counter() - start
    return Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(flat_area[best_index]) / UM2_PER_MM2, objective=schedule.objective,
        energy_j=schedule.energy_j, delay_cycles=schedule.delay_cycles,
        layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in schedule.branch_index),
        layer_energy_j=tuple(float(evaluation.tables.energy_j[l, i]) for l, i in enumerate(schedule.branch_index)),
        layer_delay_cycles=tuple(float(evaluation.tables.delay_cycles[l, i])
                                 for l, i in enumerate(schedule.branch_index)),
        solver="enumerate", status="optimal", wall_s=wall, gap=0.0, best_bound=schedule.objective,
        solve_s=wall, points=int(valid.sum()),
        runners_up=tuple(RankedPoint(grid_point(space, i), exact_best[i], float(flat_area[i]) / UM2_PER_MM2)
                         for i in ranked[1:top_k + 1]),
        worst=None if worst_index is None else RankedPoint(
            grid_point(space, worst_index), exact_worst[worst_index], float(flat_area[worst_index]) / UM2_PER_MM2),
    )


def _ranked(exact: dict[int, float], flat_area: np.ndarray, worst: bool = False) -> list[int]:
    indices = np.array(sorted(exact), dtype=np.int64)
    values = np.array([exact[i] for i in indices])
    finite = np.isfinite(values)
    indices, values = indices[finite], values[finite]
    return [int(i) for i in indices[_rank_key(values, flat_area[indices], indices, worst)]]


def infeasible_budget_message(space: HardwareSpace) -> str:
    """Why no point fits, with the smallest area any point of the space's axes needs.

    Area grows with J, K and every SRAM size, so the smallest point uses the
    smallest J/K pair obeying the aspect rule and, for it, the smallest SRAM
    of each list that still holds the array's registers.
    """
    rows = space.rows.min + space.rows.step * np.arange(64.0)
    cols = space.cols.min + space.cols.step * np.arange(64.0)
    j, k = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
    keep = np.minimum(j, k) >= space.aspect_min_ratio * np.maximum(j, k)
    j, k = j[keep][:, None, None, None], k[keep][:, None, None, None]
    f = np.asarray(space.fsram_kb)[None, :, None, None]
    i = np.asarray(space.isram_kb)[None, None, :, None]
    p = np.asarray(space.psram_kb)[None, None, None, :]
    hw = array_hardware(j, k, f, i, p, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
                        bits_psum=space.bits_psum)
    area = np.where(registers_fit(hw), space.area_um2(j, k, f, i, p), np.inf)
    smallest = float(area.min()) if area.size else np.inf
    need = ("no point of the grid holds the array's registers" if not np.isfinite(smallest)
            else f"the smallest point needs {smallest / UM2_PER_MM2:.3f} mm^2")
    return (f"space {space.name!r}: no hardware point fits the area budget of {space.budget_mm2:g} mm^2 "
            f"(tolerance {space.tolerance:g}); {need}")
