"""A study with fusion (several networks, weights, caps) by mixed-integer programming, linear objectives.

Points are offered lazily by the fused lower bounds of
:mod:`~deepopt_mip.formulation.study_fusion_bounds`, as without fusion
(:mod:`~.study_mip`): the model over the offered points
(:func:`~deepopt_mip.formulation.study_fusion_model.fused_study_model`) is
solved; its solution, priced again by the cost model, is the study's
optimum once no point left out has a bound below it; otherwise the points
with a bound below it (at least twice as many as before) are offered and
the model is built again. With every network uncapped the bounds are the
exact fused optima, so the first round's points hold the optimum.

Covered: network energy or delay, and every ``layer-sum`` metric (the
objective is linear). Network products with fusion are refused in one line
(the enumeration solves them).
"""

from __future__ import annotations

import math
import time

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import resident_capacity_bits
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_mip import chosen_fusion
from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.mip_model import chosen_point
from deepopt_mip.formulation.mip_points import point_set
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point, points_hardware
from deepopt_mip.formulation.study_bounds import exact_per_network, no_point_error
from deepopt_mip.formulation.study_fusion_bounds import fused_study_candidates
from deepopt_mip.formulation.study_fusion_model import chosen_branches, fused_study_model, network_modes
from deepopt_mip.solvers.fusion_schedule import FusionCosts, best_for_fusion_set, fusion_schedule
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions, SolverFailure
from deepopt_mip.solvers.solution import Solution
from deepopt_mip.solvers.study_mip import FIRST_OFFER, is_linear
from deepopt_mip.solvers.study_solution import solution_from_fusion_schedules


def check_fused_mip(problem: Problem) -> None:
    """Refuse in one line what the MIP with fusion does not cover (network products)."""
    if not is_linear(problem):
        raise InputError(f"the MIP with fusion covers energy, delay and layer-sum metrics, not {problem.metric} "
                         f"under network aggregation (use --solver enumerate)")


def _decode(problem: Problem, model, modes, points):
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
    return n, schedules


def mip_fused_study(problem: Problem, options: MipOptions | None = None,
                    progress: Progress | None = None) -> Solution:
    """The optimum of ``problem`` (``problem.fusion``, a linear objective) by MIP (module docstring)."""
    check_fused_mip(problem)
    options = options or MipOptions()
    start = time.perf_counter()
    bounds, order = fused_study_candidates(problem, progress)
    lower, area = bounds.lower, bounds.area_um2
    driver = HighsDriver(options)
    offered = min(FIRST_OFFER, order.size)
    build_s = time.perf_counter() - start
    solve_s, proven, best = 0.0, True, None
    while True:
        built = time.perf_counter()
        flat = order[:offered]
        points = point_set(problem.space, flat, area, bounds.valid)
        hw = points_hardware(problem.space, flat)
        capacity = np.asarray(resident_capacity_bits(hw), dtype=float)
        modes = [network_modes(problem, item, hw, capacity) for item in problem.networks]
        energy_ref = [bounds.least_energy_j.get(item.name, 1.0) or 1.0 for item in problem.networks]
        delay_ref = [bounds.least_delay_cycles.get(item.name, 1.0) or 1.0 for item in problem.networks]
        least = float(np.min(lower[flat]))
        model = fused_study_model(problem, points, modes, capacity, energy_ref, delay_ref,
                                  least if math.isfinite(least) and least > 0 else 1.0)
        build_s += time.perf_counter() - built
        remaining = None if options.time_limit_s is None else max(
            options.time_limit_s - (time.perf_counter() - start), 1e-3)
        result = driver.solve(model, remaining)
        solve_s += result.solve_s
        if result.status not in ("optimal", "infeasible"):
            proven = False
        round_bound = math.inf if result.status == "infeasible" else (
            result.bound * model.objective_ref if result.bound is not None else -math.inf)
        if result.status != "infeasible":
            if not result.has_solution:
                raise SolverFailure(f"HiGHS found no solution for the study {problem.label} with fusion: "
                                    f"{result.status} (raise --time-limit)")
            n, schedules = _decode(problem, model, modes, points)
            value = float(sum(item.weight * s.objective for item, s in zip(problem.networks, schedules)))
            if best is None or value < best[0]:
                best = (value, int(flat[n]), schedules)
        left_out = lower[order[offered]] if offered < order.size else math.inf
        best_value = best[0] if best is not None else math.inf
        if left_out >= best_value or offered == order.size or not proven:
            break
        below = int(np.searchsorted(lower[order], best_value, side="left"))
        offered = min(order.size, max(2 * offered, below))
    if best is None or not math.isfinite(best[0]):
        raise no_point_error(problem, bounds)
    value, index, schedules = best
    bound = min(round_bound, left_out, value)
    gap = max(0.0, value - bound) / abs(value) if math.isfinite(bound) else math.inf
    return solution_from_fusion_schedules(
        problem, grid_point(problem.space, index), float(area[index]) / UM2_PER_MM2, schedules, solver="mip",
        status="optimal" if proven else "time limit", wall_s=build_s + solve_s, gap=gap, best_bound=bound,
        build_s=build_s, solve_s=solve_s, points=int(bounds.valid.sum()))
