"""Exact enumeration of a study (several networks, weights, caps, a branch limit) over a space.

A streaming pass over the in-budget blocks, every network on each block,
gives every point a valid lower bound of the study's objective
(:mod:`~deepopt_mip.formulation.study_bounds`; exact when no network has a
cap and there is no branch limit) and keeps a window of the points of least
bound (:mod:`~deepopt_mip.formulation.study_stream`). Points are then solved
exactly in increasing bound, in doubling batches, until no unsolved point's
bound can beat the k-th best exact value (bound and prune, as for the
network products of one network); when the window ends before that proof,
another pass widens it (:meth:`~.study_stream.StudyWindow.extend`), so the
answer never depends on the window size.

The exact objective of one point h (:func:`solve_point_tables`): for each set
B of ``max_branches`` branches (all branches without a limit), each
network's best schedule on B within its caps
(:func:`~deepopt_mip.solvers.schedule.constrained_schedule`: per-layer
minimum, or a scan of the energy-delay frontier on B), weighted and summed;
the least sum over the sets B. The networks share nothing but h and B, so
for fixed (h, B) they are independent, and a limit of N branches is met by
some set of exactly N branches (fewer is never better than a superset).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point, points_hardware
from deepopt_mip.formulation.study_bounds import no_point_error
from deepopt_mip.formulation.study_stream import WINDOW_POINTS, StudyWindow, study_stream
from deepopt_mip.solvers.enumeration import ranked_points, refine_by_bound
from deepopt_mip.solvers.schedule import Schedule, constrained_schedule
from deepopt_mip.solvers.solution import RankedPoint, Solution
from deepopt_mip.solvers.study_solution import solution_from_schedules


@dataclass(frozen=True)
class PointOptimum:
    """The exact optimum of a study on one hardware point: the branch set used, each network's
    schedule, and the weighted objective (inf when no schedule meets the caps)."""

    branches: tuple[int, ...]
    schedules: tuple[Schedule, ...]
    objective: float


def solve_point_tables(problem: Problem, energy_j: list[np.ndarray], delay_cycles: list[np.ndarray]) -> PointOptimum:
    """The study's optimum on one point, given each network's L x B energy and delay tables."""
    best = None
    for subset in problem.branch_subsets:
        schedules = tuple(
            constrained_schedule(e, d, problem.metric, problem.aggregate, item.max_delay_cycles, item.max_energy_j,
                                 None if problem.max_branches is None else subset)
            for item, e, d in zip(problem.networks, energy_j, delay_cycles))
        total = float(sum(item.weight * s.objective for item, s in zip(problem.networks, schedules)))
        if best is None or total < best.objective:
            best = PointOptimum(branches=subset, schedules=schedules, objective=total)
    return best


def _objectives(problem: Problem, flat_indices: np.ndarray) -> np.ndarray:
    """Exact objective of each listed grid point."""
    hw = points_hardware(problem.space, flat_indices)
    tables = [cost_tables(item.network.layers, hw, problem.tech) for item in problem.networks]
    return np.array([solve_point_tables(problem, [t.energy_j[..., n] for t in tables],
                                        [t.delay_cycles[..., n] for t in tables]).objective
                     for n in range(len(flat_indices))])


def study_solution(problem: Problem, hardware: HardwarePoint, area_mm2: float, **solver_fields) -> Solution:
    """A :class:`Solution` describing the study's optimum on ``hardware`` (solved exactly here), with the
    solver's own fields (solver, status, times, bound, points, runners-up) passed through."""
    arrays = hardware.arrays()
    tables = [cost_tables(item.network.layers, arrays, problem.tech) for item in problem.networks]
    optimum = solve_point_tables(problem, [t.energy_j for t in tables], [t.delay_cycles for t in tables])
    return solution_from_schedules(problem, hardware, area_mm2, optimum.schedules, tables, **solver_fields)


def best_in_window(window: StudyWindow, k: int, objectives) -> dict[int, float]:
    """Exact objectives, keyed by position in ``window``, of a set of points that holds the ``k`` best of
    the grid (ties included): bound and prune over the window
    (:func:`~deepopt_mip.solvers.enumeration.refine_by_bound`), widened while the proof is not reached.
    ``objectives(flat_indices)`` gives the exact objective of each listed grid point."""
    if window.exact:
        while window.size < k and window.more:
            window.extend()
        return {n: float(window.lower[n]) for n in range(min(k, window.size))}
    exact: dict[int, float] = {}

    def solve(positions: np.ndarray):
        return objectives(window.index[positions])

    while True:
        exact = refine_by_bound(solve, np.arange(window.size), window.lower, k, False, exact)
        values = sorted(exact.values())
        if not window.more or (len(values) >= k and window.beyond > values[k - 1]):
            return exact
        window.extend()


def enumerate_study(problem: Problem, top_k: int = 5, progress: Progress | None = None,
                    workers: int | None = None, window_points: int = WINDOW_POINTS) -> Solution:
    """The exact optimum of ``problem`` over its space, with up to ``top_k`` runners-up. ``window_points``:
    the candidates the first pass keeps (:func:`~.study_stream.study_stream`; the result does not depend
    on it)."""
    start = time.perf_counter()
    window = study_stream(problem, progress, workers, window_points)
    if window.size == 0:
        raise no_point_error(problem, window)
    exact = best_in_window(window, top_k + 1, lambda flat: _objectives(problem, flat))
    ranked = ranked_points(exact, window.area_um2, grid_order=window.index)
    if not ranked:
        raise no_point_error(problem, window)
    best = ranked[0]

    def area_mm2(n: int) -> float:
        return float(window.area_um2[n]) / UM2_PER_MM2

    wall = time.perf_counter() - start
    solution = study_solution(
        problem, grid_point(problem.space, int(window.index[best])), area_mm2(best), solver="enumerate",
        status="optimal", wall_s=wall, solve_s=wall, points=window.valid_points,
        runners_up=tuple(RankedPoint(grid_point(problem.space, int(window.index[n])), exact[n], area_mm2(n))
                         for n in ranked[1:top_k + 1]))
    return replace(solution, best_bound=solution.objective)
