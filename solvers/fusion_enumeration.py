"""The optimal hardware point with fusion, by enumeration (docs/model.md section 11.7).

The fusion program runs over the in-budget points slab by slab
(:func:`~deepopt_mip.formulation.fusion_stream.stream_fusion`), keeping only
the candidates:

* Separable objectives: the program gives every point's exact fused
  optimum; the best ``top_k + 1`` points (ties included) are kept, then
  solved by :func:`~.fusion_schedule.best_fusion` for their schedules.
* Network products: the program gives a lower bound per point, and the
  unfused pass on the same slab a bound from above (an unfused schedule is
  a fused one with nothing fused); a point whose lower bound exceeds the
  ``top_k + 1``-th least bound from above (times 1 + the rounding margin of
  :mod:`~deepopt_mip.formulation.grid_bounds`) is never among the best and
  is dropped. The kept points are solved exactly in increasing lower bound
  until no unsolved point's bound can beat the k-th best exact value
  (:func:`~.enumeration.refine_by_bound`); the kept points are the first in
  that order, so the same points are solved as over the whole grid. Should a
  dropped point's bound not exceed the k-th best exact value, the search
  runs again over every point.

Ties between points break as the unfused enumeration's: smaller area, then
grid order.
"""

from __future__ import annotations

import time
import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import fusion_grid
from deepopt_mip.formulation.fusion_stream import (FUSION_BLOCK_POINTS, FusedPoints, FusionStream, KeepRule,
                                                   stream_fusion)
from deepopt_mip.formulation.grid_bounds import ROUNDING_MARGIN
from deepopt_mip.formulation.grid_sums import Progress, is_separable
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.spaces import UM2_PER_MM2, HardwareSpace, grid_point, infeasible_budget_message
from deepopt_mip.solvers.enumeration import rank_key, ranked_points, refine_by_bound
from deepopt_mip.solvers.fusion_schedule import FusionAllocation, FusionSchedule, best_fusion, unfused_schedule
from deepopt_mip.solvers.solution import RankedPoint, Solution

UPPER_MARGIN = ROUNDING_MARGIN
"""Relative slack on the unfused bound from above before a point is dropped (the program's bound, the exact
fused optimum and the unfused bound sum in different orders)."""


def enumerate_fusion(network, space: HardwareSpace, tech, metric: str, aggregate: str, top_k: int = 5,
                     progress: Progress | None = None, max_points: int = FUSION_BLOCK_POINTS,
                     workers: int | None = None, full_grid: bool = False) -> FusionAllocation:
    """The exact optimum of ``metric`` over every point of ``space``, every fusion set and every branch.

    By default the program streams over the in-budget points
    (:func:`~deepopt_mip.formulation.fusion_stream.stream_fusion`, memory bounded by ``max_points`` per
    worker) and keeps only the candidates (module docstring); ``full_grid`` runs it over the whole grid
    cube at once (:func:`~deepopt_mip.formulation.fusion_grid.fusion_grid`: the reference, memory of the
    cube). Both give the same optimum, runners-up and schedule.
    """
    check_metric(metric)
    check_aggregate(aggregate)
    start = time.perf_counter()
    separable = is_separable(metric, aggregate)
    if full_grid:
        values, area, valid = fusion_grid(network, space, tech, metric, aggregate, progress)
        flat = np.flatnonzero(valid.ravel())
        found = FusionStream(FusedPoints(flat, area.ravel()[flat], values.ravel()[flat], ()), np.zeros(0), np.inf,
                             int(flat.size))
    else:
        rule = KeepRule(first=top_k + 1) if separable else KeepRule(uppers=top_k + 1, margin=UPPER_MARGIN)
        found = stream_fusion(network, space, tech, metric, aggregate, rule, "none" if separable else "least",
                              progress, max_points, workers)
    if found.valid_points == 0:
        raise InputError(infeasible_budget_message(space))
    schedules: dict[int, FusionSchedule] = {}

    def solve(flat_indices) -> list[float]:
        out = []
        for index in map(int, flat_indices):
            if index not in schedules:
                schedules[index] = best_fusion(network, grid_point(space, index), tech, metric, aggregate)
            out.append(schedules[index].objective)
        return out

    exact = _search(found.points, solve, top_k, separable)
    if not separable and not full_grid and not _settled(exact, found.left_out, top_k + 1):
        # a point left out could still be among the best (the unfused bound fell below the fused optimum by
        # more than the margin): search again over every point
        found = stream_fusion(network, space, tech, metric, aggregate, KeepRule.everything(), "none", None,
                              max_points, workers)
        exact = _search(found.points, solve, top_k, separable)
    points = found.points
    ranked = ranked_points(exact, points.area_um2)
    if not ranked:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                         f"(every point has a layer with no feasible branch)")
    best = ranked[0]
    hardware = grid_point(space, int(points.index[best]))
    fused = schedules[int(points.index[best])]
    wall = time.perf_counter() - start
    solution = Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(points.area_um2[best]) / UM2_PER_MM2, objective=fused.objective, energy_j=fused.energy_j,
        delay_cycles=fused.delay_cycles, layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in fused.branch_index), layer_energy_j=fused.layer_energy_j,
        layer_delay_cycles=fused.layer_delay_cycles, solver="enumerate", status="optimal", wall_s=wall,
        best_bound=fused.objective, solve_s=wall, points=int(found.valid_points),
        runners_up=tuple(RankedPoint(grid_point(space, int(points.index[n])), exact[n],
                                     float(points.area_um2[n]) / UM2_PER_MM2) for n in ranked[1:top_k + 1]))
    return FusionAllocation(solution=solution, fused=fused,
                            unfused=unfused_schedule(network, hardware, tech, metric, aggregate))


def _search(points: FusedPoints, solve, top_k: int, separable: bool) -> dict[int, float]:
    """Exact objectives of the best ``top_k + 1`` points, keyed by position in ``points`` (grid order):
    separable, the first by (value, area, grid order); products, by bound and prune in increasing bound."""
    position = np.arange(points.index.size)
    finite = position[np.isfinite(points.value)]
    if separable:
        best_first = finite[rank_key(points.value[finite], points.area_um2[finite], finite)][:top_k + 1]
        return dict(zip(map(int, best_first), solve(points.index[best_first])))
    candidates = finite[np.argsort(points.value[finite], kind="stable")]
    return refine_by_bound(lambda where: solve(points.index[where]), candidates, points.value, top_k + 1, False, {})


def _settled(exact: dict[int, float], left_out: float, k: int) -> bool:
    """Whether no point left out can be among the ``k`` best: its bound exceeds the k-th best exact value
    (as :func:`~.enumeration.refine_by_bound` stops), or none was left out."""
    if np.isinf(left_out):
        return True
    values = sorted(v for v in exact.values() if np.isfinite(v))
    return len(values) >= k and left_out > values[k - 1]
