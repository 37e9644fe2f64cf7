"""A study with fusion (several networks, weights, caps) by mixed-integer programming, linear objectives.

Points are offered lazily by the fused lower bounds of
:mod:`~deepopt_mip.formulation.study_fusion_bounds`, streamed over the
in-budget slabs into a window of the least bounds
(:mod:`~deepopt_mip.formulation.study_fusion_stream`, widened by another
pass when a round needs points beyond it), as without fusion
(:mod:`~.study_mip`): the model over the offered points
(:func:`~deepopt_mip.formulation.study_fusion_model.fused_study_model`) is
solved; its solution, priced again by the cost model, is the study's
optimum once no point left out has a bound below it; otherwise the points
with a bound below it (at least twice as many as before) are offered and
the model is built again. With every network uncapped the bounds are the
exact fused optima, so the first round's points hold the optimum.

* network energy or delay, and every ``layer-sum`` metric: the objective
  is linear, one solve per round;
* network products: the box branch and bound of :mod:`~.study_mip`
  (:func:`~.study_mip.box_search`) on the model's ``box`` kind, with the
  fused bounds' least energy and delay of each network as the floors
  lo_w and Ylo_w (lower bounds of X_w and Y_w on every point, so the
  McCormick terms stay valid).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import resident_capacity_bits
from deepopt_mip.formulation.fusion_mip import chosen_fusion
from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.mip_model import chosen_point
from deepopt_mip.formulation.mip_points import listed_points
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point, points_hardware
from deepopt_mip.formulation.study_bounds import exact_per_network, no_point_error
from deepopt_mip.formulation.study_fusion_stream import fused_study_stream
from deepopt_mip.formulation.study_fusion_model import chosen_branches, fused_study_model, network_modes
from deepopt_mip.formulation.study_model import product_roles
from deepopt_mip.formulation.study_stream import WINDOW_POINTS
from deepopt_mip.solvers.fusion_schedule import FusionCosts, best_for_fusion_set, fusion_schedule
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions, SolverFailure
from deepopt_mip.solvers.solution import Solution
from deepopt_mip.solvers.study_mip import Search, box_search, first_offer, is_linear, next_window_offer
from deepopt_mip.solvers.study_solution import solution_from_fusion_schedules


@dataclass(frozen=True)
class FusedCandidate:
    """A solution of the model, priced by the cost model: offered point, each network's fused schedule, its
    totals (J, cycles) and the study's objective."""

    point: int
    schedules: tuple
    energy_j: tuple[float, ...]
    delay_cycles: tuple[float, ...]
    objective: float


def _decode(problem: Problem, model, modes, points) -> FusedCandidate:
    """The chosen offered point and each network's fused schedule there, priced by the cost model."""
    n = chosen_point(model)
    hardware = points.hardware(n)
    schedules = []
    for w, (item, net) in enumerate(zip(problem.networks, modes)):
        sub = model.component(f"net{w}")
        costs = FusionCosts(item.network, hardware, problem.tech)
        fused = chosen_fusion(sub)
        if exact_per_network(problem, item):
            schedules.append(best_for_fusion_set(net.graph, costs, fused, problem.metric, problem.aggregate))
        else:
            schedules.append(fusion_schedule(net.graph, costs, fused, chosen_branches(model, w, len(net.graph)),
                                             problem.metric, problem.aggregate))
    return FusedCandidate(point=n, schedules=tuple(schedules), energy_j=tuple(s.energy_j for s in schedules),
                          delay_cycles=tuple(s.delay_cycles for s in schedules),
                          objective=float(sum(i.weight * s.objective for i, s in zip(problem.networks, schedules))))


def mip_fused_study(problem: Problem, options: MipOptions | None = None, progress: Progress | None = None,
                    workers: int | None = None, window_points: int = WINDOW_POINTS) -> Solution:
    """The optimum of ``problem`` (``problem.fusion``) by MIP (module docstring). ``workers``: the processes
    of the streamed pass; ``window_points``: the candidates its first pass keeps
    (:func:`~.study_fusion_stream.fused_study_stream`; the result does not depend on either)."""
    options = options or MipOptions()
    start = time.perf_counter()
    window = fused_study_stream(problem, progress, workers, window_points)
    if window.size == 0:
        raise no_point_error(problem, window)
    offered = first_offer(window)
    search = Search(driver=HighsDriver(options),
                    deadline=None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s)
    linear = is_linear(problem)
    energy_ref = [window.least_energy_j.get(item.name, 1.0) or 1.0 for item in problem.networks]
    delay_ref = [window.least_delay_cycles.get(item.name, 1.0) or 1.0 for item in problem.networks]
    build_s = time.perf_counter() - start
    while True:
        built = time.perf_counter()
        flat = window.index[:offered]
        points = listed_points(problem.space, flat, window.area_um2[:offered], window.valid_points)
        hw = points_hardware(problem.space, flat)
        capacity = np.asarray(resident_capacity_bits(hw), dtype=float)
        modes = [network_modes(problem, item, hw, capacity) for item in problem.networks]
        least = float(np.min(window.lower[:offered]))
        model = fused_study_model(problem, points, modes, capacity, energy_ref, delay_ref,
                                  least if math.isfinite(least) and least > 0 else 1.0,
                                  "linear" if linear else "box")
        build_s += time.perf_counter() - built

        def solve_and_offer(model=model, modes=modes, points=points, flat=flat):
            result = search.solve(model)
            if result.status == "infeasible":
                return None
            if not result.has_solution:
                raise SolverFailure(f"HiGHS found no solution for the study {problem.label} with fusion: "
                                    f"{result.status} (raise --time-limit)")
            candidate = _decode(problem, model, modes, points)
            search.offer(candidate, int(flat[candidate.point]))
            bound = result.bound if result.bound is not None else -math.inf
            return bound * model.scale.objective, candidate

        if linear:
            solved = solve_and_offer()
            round_bound = math.inf if solved is None else min(solved[0], solved[1].objective)
        else:
            y, x, _ = product_roles(problem.metric)
            floors = [(delay_ref if x == "delay" else energy_ref)[w] for w in range(len(problem.networks))]
            y_floors = [(energy_ref if y == "energy" else delay_ref)[w] for w in range(len(problem.networks))]
            round_bound = box_search(problem, model, model.network_blocks, search, floors, y_floors,
                                     solve_and_offer)
        left_out, offered = next_window_offer(window, offered, search)
        if offered is None:
            break
    if search.best is None or not math.isfinite(search.best.objective):
        raise no_point_error(problem, window)
    best, index = search.best, search.best_flat
    bound = min(round_bound, left_out, best.objective)
    gap = max(0.0, best.objective - bound) / abs(best.objective) if math.isfinite(bound) else math.inf
    return solution_from_fusion_schedules(
        problem, grid_point(problem.space, index), window.area_of(index) / UM2_PER_MM2, best.schedules, solver="mip",
        status="optimal" if search.proven else "time limit", wall_s=build_s + search.solve_s, gap=gap,
        best_bound=bound, build_s=build_s, solve_s=search.solve_s, points=window.valid_points)
