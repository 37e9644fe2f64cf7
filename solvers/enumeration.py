"""Exhaustive enumeration of a hardware space, vectorised over the grid.

Every point of the space's grid (J/K pairs x filter x ifmap x psum SRAM sizes)
is evaluated with the cost model, in chunks so memory stays bounded; layers of
identical shape are evaluated once and weighted by their count.

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

import time
from dataclasses import replace
from typing import Callable

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_costs
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


def grid_bounds(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 300_000):
    """One pass over the grid.

    Returns (lower, upper, area_um2, valid), each of the grid's shape. For
    separable objectives ``lower`` is the exact objective and ``upper`` is it too.
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
    done = 0
    for chunk in grid_chunks(space, max_points):
        hw = chunk.hardware
        block_shape = chunk.valid.shape
        if separable:
            objective = np.zeros(block_shape)
        else:
            e_min = np.zeros(block_shape)
            d_min = np.zeros(block_shape)
            schedule_sums = [[np.zeros(block_shape), np.zeros(block_shape)] for _ in range(3)]
        for layer, count in layers:
            costs = branch_costs(layer, hw, tech)
            energy = np.stack([np.broadcast_to(costs[x].energy_j, block_shape) for x in BRANCHES])
            delay = np.stack([np.broadcast_to(costs[x].delay_cycles, block_shape) for x in BRANCHES])
            if separable:
                objective += count * np.min(metric_value(energy, delay, metric), axis=0)
                continue
            usable = _usable(energy, delay)
            e_use = np.where(usable, energy, np.inf)
            d_use = np.where(usable, delay, np.inf)
            e_min += count * e_use.min(axis=0)
            d_min += count * d_use.min(axis=0)
            per_layer = np.where(usable, metric_value(energy, delay, metric), np.inf)
            for sums, key in zip(schedule_sums, (e_use, d_use, per_layer)):
                pick = np.argmin(key, axis=0)[None]
                sums[0] += count * np.take_along_axis(e_use, pick, axis=0)[0]
                sums[1] += count * np.take_along_axis(d_use, pick, axis=0)[0]
        if separable:
            lo = hi = objective
        else:
            lo = metric_value(e_min, d_min, metric)
            hi = np.min([metric_value(e, d, metric) for e, d in schedule_sums], axis=0)
        lower[chunk.pairs] = np.where(chunk.valid, lo, np.inf)
        upper[chunk.pairs] = np.where(chunk.valid, hi, np.inf)
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


def _refine(network, space, tech, metric, lower, upper, valid, k, worst, batch=64):
    """Exact objectives of the best (or worst) ``k`` points by bound and prune."""
    flat_lower, flat_upper = lower.ravel(), upper.ravel()
    candidates = np.flatnonzero(valid.ravel() & np.isfinite(flat_upper))
    if candidates.size == 0:
        return {}
    bound = flat_upper if worst else flat_lower
    order = candidates[np.argsort(-bound[candidates] if worst else bound[candidates], kind="stable")]
    exact: dict[int, float] = {}
    position = 0
    while position < order.size:
        kth = sorted(exact.values(), reverse=worst)[k - 1] if len(exact) >= k else None
        next_bound = bound[order[position]]
        if kth is not None and ((next_bound < kth) if worst else (next_bound > kth)):
            break
        take = order[position:position + batch]
        for index, value in zip(take, _exact_objectives(network, space, tech, metric, take)):
            exact[int(index)] = float(value)
        position += take.size
    return exact


def enumerate_space(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                    top_k: int = 5, progress: Progress | None = None, max_points: int = 300_000) -> Solution:
    """The exact optimum of ``metric`` over every point of ``space``."""
    check_metric(metric)
    check_aggregate(aggregate)
    start = time.perf_counter()
    lower, upper, area, valid = grid_bounds(network, space, tech, metric, aggregate, progress, max_points)
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
        exact_best = _refine(network, space, tech, metric, lower, upper, valid, top_k + 1, worst=False)
        exact_worst = _refine(network, space, tech, metric, lower, upper, valid, 1, worst=True)
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
