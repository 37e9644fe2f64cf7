"""The optimal hardware point with fusion, by enumeration (docs/model.md section 11.7).

* Separable objectives: :func:`~deepopt_mip.formulation.fusion_grid.fusion_grid`
  gives every point's exact fused optimum in one pass; the best ``top_k + 1``
  points are then solved by :func:`~.fusion_schedule.best_fusion` for their
  schedules.
* Network products: the same pass gives a lower bound per point; points are
  solved exactly by :func:`~.fusion_schedule.best_fusion` in increasing bound
  until no unsolved point's bound can beat the k-th best exact value
  (:func:`~.enumeration.refine_by_bound`).

Ties between points break as the unfused enumeration's: smaller area, then
grid order.
"""

from __future__ import annotations

import time
import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import fusion_grid
from deepopt_mip.formulation.grid_sums import Progress, is_separable
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.spaces import UM2_PER_MM2, HardwareSpace, grid_point, infeasible_budget_message
from deepopt_mip.solvers.enumeration import rank_key, ranked_points, refine_by_bound
from deepopt_mip.solvers.fusion_schedule import FusionAllocation, FusionSchedule, best_fusion, unfused_schedule
from deepopt_mip.solvers.solution import RankedPoint, Solution


def enumerate_fusion(network, space: HardwareSpace, tech, metric: str, aggregate: str, top_k: int = 5,
                     progress: Progress | None = None) -> FusionAllocation:
    """The exact optimum of ``metric`` over every point of ``space``, every fusion set and every branch."""
    check_metric(metric)
    check_aggregate(aggregate)
    start = time.perf_counter()
    values, area, valid = fusion_grid(network, space, tech, metric, aggregate, progress)
    if not valid.any():
        raise InputError(infeasible_budget_message(space))
    flat_area = area.ravel()
    flat = values.ravel()
    order = np.arange(flat.size)
    schedules: dict[int, FusionSchedule] = {}

    def solve(indices) -> list[float]:
        out = []
        for index in indices:
            schedule = best_fusion(network, grid_point(space, int(index)), tech, metric, aggregate)
            schedules[int(index)] = schedule
            out.append(schedule.objective)
        return out

    finite = np.flatnonzero(np.isfinite(flat))
    if is_separable(metric, aggregate):
        best_first = finite[rank_key(flat[finite], flat_area[finite], order[finite])][:top_k + 1]
        exact = dict(zip(map(int, best_first), solve(best_first)))
    else:
        candidates = finite[np.argsort(flat[finite], kind="stable")]
        exact = refine_by_bound(solve, candidates, flat, top_k + 1, False, {})
    ranked = ranked_points(exact, flat_area)
    if not ranked:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                         f"(every point has a layer with no feasible branch)")
    best_index = ranked[0]
    hardware = grid_point(space, best_index)
    fused = schedules[best_index]
    wall = time.perf_counter() - start
    solution = Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(flat_area[best_index]) / UM2_PER_MM2, objective=fused.objective, energy_j=fused.energy_j,
        delay_cycles=fused.delay_cycles, layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in fused.branch_index), layer_energy_j=fused.layer_energy_j,
        layer_delay_cycles=fused.layer_delay_cycles, solver="enumerate", status="optimal", wall_s=wall,
        best_bound=fused.objective, solve_s=wall, points=int(valid.sum()),
        runners_up=tuple(RankedPoint(grid_point(space, i), exact[i], float(flat_area[i]) / UM2_PER_MM2)
                         for i in ranked[1:top_k + 1]))
    return FusionAllocation(solution=solution, fused=fused,
                            unfused=unfused_schedule(network, hardware, tech, metric, aggregate))
