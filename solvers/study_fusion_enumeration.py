"""Exact enumeration of a study with fusion (several networks, weights, caps) over a space.

The bounds are the fused ones of
:mod:`~deepopt_mip.formulation.study_fusion_bounds` (the unfused bounds
are not lower bounds of fused costs), streamed over the in-budget slabs
into a window of the least bounds
(:mod:`~deepopt_mip.formulation.study_fusion_stream`); points are solved
exactly in increasing bound until no unsolved point's bound can beat the
k-th best exact value, the window widened by another pass when it ends
before that proof (:func:`~.study_enumeration.best_in_window`), as without
fusion.

The exact objective of one point h (:func:`fused_point_optimum`): the
networks share nothing but h, so each is solved alone and the weighted
values added up. Per network:

* uncapped with a separable metric (E or D alone, ``layer-sum``): the
  fusion program's separable mode (:func:`~.fusion_schedule.best_fusion`);
* otherwise: the program's Pareto mode gives the exact (E, D) frontier of
  every fusion set and branch choice (:func:`~.fusion_schedule.fusion_frontier`);
  the best schedule within the caps lies on it (a dominated schedule meets
  every cap its dominator meets and has no smaller metric, the metric being
  non-decreasing in E and D), so the frontier points within the caps are
  scanned for the least metric (ties: least energy), as
  :func:`~.schedule.constrained_schedule` does without fusion.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point
from deepopt_mip.formulation.study_bounds import exact_per_network, no_point_error
from deepopt_mip.formulation.study_fusion_stream import fused_study_stream
from deepopt_mip.formulation.study_stream import WINDOW_POINTS
from deepopt_mip.solvers.enumeration import ranked_points
from deepopt_mip.solvers.fusion_schedule import FusionSchedule, best_fusion, fusion_frontier
from deepopt_mip.solvers.solution import RankedPoint, Solution
from deepopt_mip.solvers.study_enumeration import best_in_window
from deepopt_mip.solvers.study_solution import solution_from_fusion_schedules


@dataclass(frozen=True)
class FusedPointOptimum:
    """The exact optimum of a study with fusion on one point: each network's fused schedule (None where it
    cannot meet its caps) and the weighted objective (inf then)."""

    schedules: tuple[FusionSchedule | None, ...]
    objective: float


def network_fused_optimum(problem: Problem, item, hardware: HardwarePoint) -> FusionSchedule | None:
    """One network's best fused schedule on ``hardware`` within its caps (module docstring); None if none."""
    if exact_per_network(problem, item):
        schedule = best_fusion(item.network, hardware, problem.tech, problem.metric, problem.aggregate)
        return schedule if schedule.feasible else None
    frontier = fusion_frontier(item.network, hardware, problem.tech)
    within = np.ones(frontier.energy_j.size, dtype=bool)
    if item.max_delay_cycles is not None:
        within &= frontier.delay_cycles <= item.max_delay_cycles
    if item.max_energy_j is not None:
        within &= frontier.energy_j <= item.max_energy_j
    if not within.any():
        return None
    with np.errstate(invalid="ignore"):
        values = np.where(within, metric_value(frontier.energy_j, frontier.delay_cycles, problem.metric), np.inf)
    return frontier.schedule(int(np.argmin(values)), problem.metric, problem.aggregate)


def fused_point_optimum(problem: Problem, hardware: HardwarePoint) -> FusedPointOptimum:
    """The study's exact optimum with fusion on one hardware point."""
    schedules = tuple(network_fused_optimum(problem, item, hardware) for item in problem.networks)
    if any(s is None for s in schedules):
        return FusedPointOptimum(schedules=schedules, objective=math.inf)
    return FusedPointOptimum(schedules=schedules,
                             objective=float(sum(i.weight * s.objective for i, s in zip(problem.networks, schedules))))


def enumerate_fused_study(problem: Problem, top_k: int = 5, progress: Progress | None = None,
                          workers: int | None = None, window_points: int = WINDOW_POINTS) -> Solution:
    """The exact optimum of ``problem`` (``problem.fusion``) over its space, with up to ``top_k`` runners-up.
    ``workers``: the processes of the streamed pass; ``window_points``: the candidates its first pass keeps
    (:func:`~.study_fusion_stream.fused_study_stream`; the result does not depend on either)."""
    start = time.perf_counter()
    window = fused_study_stream(problem, progress, workers, window_points)
    if window.size == 0:
        raise no_point_error(problem, window)
    optima: dict[int, FusedPointOptimum] = {}

    def objectives(flat_indices) -> list[float]:
        out = []
        for index in flat_indices:
            optima[int(index)] = fused_point_optimum(problem, grid_point(problem.space, int(index)))
            out.append(optima[int(index)].objective)
        return out

    exact = best_in_window(window, top_k + 1, objectives)
    ranked = ranked_points(exact, window.area_um2, grid_order=window.index)
    if not ranked:
        raise no_point_error(problem, window)
    best = int(window.index[ranked[0]])
    hardware = grid_point(problem.space, best)
    optimum = optima.get(best) or fused_point_optimum(problem, hardware)

    def area_mm2(n: int) -> float:
        return float(window.area_um2[n]) / UM2_PER_MM2

    wall = time.perf_counter() - start
    solution = solution_from_fusion_schedules(
        problem, hardware, area_mm2(ranked[0]), optimum.schedules, solver="enumerate", status="optimal",
        wall_s=wall, solve_s=wall, points=window.valid_points,
        runners_up=tuple(RankedPoint(grid_point(problem.space, int(window.index[n])), exact[n], area_mm2(n))
                         for n in ranked[1:top_k + 1]))
    return replace(solution, best_bound=solution.objective)
