"""The hardware allocation and the energy-delay frontier with fusion by MIP (docs/mip.md section 9).

Separable objectives (network E or D, every ``layer-sum`` metric): the
:data:`OFFERED` valid points with the least fused optimum in the grid pass
of :mod:`~deepopt_mip.formulation.fusion_grid` (exact per point for these
objectives), ties included, and only those whose value is at most the
space's unfused optimum (the grid pass of
:mod:`~deepopt_mip.formulation.grid_sums`; the fused optimum never exceeds
it). The point holding the fused optimum is among them (exact screening).
The model (:func:`~deepopt_mip.formulation.fusion_mip.fusion_model`) then
decides the point, the fusion binaries and every layer's mode; its costs
are the cost model's on the offered points, not the grid pass's values.

Network products E^a D^b: the fusion frontier model
(:func:`~deepopt_mip.formulation.fusion_mip.fusion_frontier_model`, least
energy within a delay limit) searched by :func:`~.mip.product_search`, the
branch and bound over delay intervals of the unfused MIP. Each "min E s.t.
D <= eps" is answered by the model of one offered point at a time, merged
best first (:class:`FusionPointwiseFrontier`; on SqueezeNet at 4 mm^2,
E^2*D, 4 s of solve time against 51 s for the model over all 8 offered
points). Points are offered in rounds, in increasing lower bound LB_n (the fused ideal corner's product,
:mod:`~deepopt_mip.formulation.fusion_mip_points`): the first
:data:`FIRST_OFFER`, then every point with LB_n below the round's optimum
v. A round is final once every point left out has LB_n >= v: none of them
has a schedule below v (at most two rounds: the second offers every point
with LB_n below the first v, and its optimum is at most that v).

The frontier (``pareto --fusion``): :func:`~.mip.sweep_frontier` over
:class:`FusionPointwiseFrontier`, the per-point fusion frontier models
merged best first (:class:`~.mip.MergedFrontier`), over the points that
the exact corner screening keeps.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import FusionGraph, resident_capacity_bits
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import point_keys, transitions
from deepopt_mip.formulation.fusion_mip import (chosen_fusion, chosen_schedule, fusion_frontier_model, fusion_model,
                                                layer_modes)
from deepopt_mip.formulation.fusion_mip_points import (FrontierDataOnDemand, FusionFrontierData, frontier_corners,
                                                       fused_corners, fusion_frontier_data, product_order)
from deepopt_mip.formulation.fusion_stream import KeepRule, stream_fusion
from deepopt_mip.formulation.grid_bounds import ROUNDING_MARGIN
from deepopt_mip.formulation.grid_sums import Progress, is_separable
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.mip_model import NO_LIMIT, chosen_point
from deepopt_mip.formulation.mip_points import listed_points
from deepopt_mip.formulation.spaces import UM2_PER_MM2, HardwareSpace, infeasible_budget_message, points_hardware
from deepopt_mip.solvers.fusion_schedule import (FusionAllocation, FusionCosts, best_for_fusion_set,
                                                 fusion_schedule, unfused_schedule)
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions
from deepopt_mip.solvers.mip import BuiltModel, MergedFrontier, product_search, sweep_frontier
from deepopt_mip.solvers.solution import Solution

OFFERED = 64
"""How many of the best points (by the grid pass) the separable model chooses from."""
FIRST_OFFER = 8
"""Points of least lower bound offered to the first round of a product's model."""
SCREEN_TOLERANCE = 1e-9
"""Relative slack of the screening (the grid pass and the model sum in different orders)."""
UPPER_MARGIN = ROUNDING_MARGIN
"""Relative slack on the least unfused bound from above before a point is left out of the products' pass."""


@dataclass(frozen=True)
class FusionFrontierPoint:
    """One schedule with fusion: offered point ``point`` (index into the data's points), the fused consumers,
    a branch index per layer, the totals (from the model's tables)."""

    point: int
    hardware: HardwarePoint
    fused: frozenset[int]
    branch_index: tuple[int, ...]
    energy_j: float
    delay_cycles: float

    @property
    def branch_counts(self) -> np.ndarray:
        """[layer, branch] one-hot: which branch each layer runs (the frontier table's branch mix)."""
        counts = np.zeros((len(self.branch_index), len(BRANCHES)), dtype=np.int64)
        counts[np.arange(len(self.branch_index)), self.branch_index] = 1
        return counts


def read_schedule(data: FusionFrontierData, model, point: int | None = None) -> FusionFrontierPoint:
    """The schedule a solved :func:`~.fusion_mip.fusion_frontier_model` chose, its totals from ``data``'s
    tables; ``point`` overrides the reported point index (a per-point model's one point)."""
    n = chosen_point(model)
    mode, branch = chosen_schedule(model)
    energy = sum(float(data.energy_j[l, k][b, n]) for l, (k, b) in enumerate(zip(mode, branch)))
    delay = sum(float(data.delay_cycles[l, k][b, n]) for l, (k, b) in enumerate(zip(mode, branch)))
    return FusionFrontierPoint(point=n if point is None else point, hardware=data.points.hardware(n),
                               fused=chosen_fusion(model), branch_index=tuple(branch), energy_j=energy,
                               delay_cycles=delay)


def _read_built(built: BuiltModel) -> FusionFrontierPoint:
    return read_schedule(built.data, built.model)


class FusionPointwiseFrontier(MergedFrontier):
    """:class:`~.mip.MergedFrontier` over offered points with fusion: f_n is the fusion frontier model of
    point n alone (:meth:`FusionFrontierData.at`, or :meth:`FrontierDataOnDemand.at`, which builds the
    tables of the points solved only), kept and re-solved at each delay limit."""

    def __init__(self, data: FusionFrontierData | FrontierDataOnDemand, options: MipOptions,
                 deadline: float | None) -> None:
        super().__init__(data.corner_energy_j, data.corner_delay_cycles, deadline)
        self.data = data
        self.driver = HighsDriver(options)
        self.models: dict[int, tuple[FusionFrontierData, object]] = {}

    def _solve_point(self, n: int, limit: float, remaining_s: float | None):
        if n not in self.models:
            alone = self.data.at(n)
            self.models[n] = (alone, fusion_frontier_model(alone))
        alone, model = self.models[n]
        model.delay_limit.set_value(NO_LIMIT if math.isinf(limit) else limit / model.scale.delay_cycles)
        result = self.driver.solve(model, remaining_s)
        point = read_schedule(alone, model, n) if result.status == "optimal" and result.has_solution else None
        return result, point, model.scale.energy_j


def _allocation(network, space: HardwareSpace, tech, metric: str, aggregate: str, hardware: HardwarePoint,
                area_um2: float, fused, branch_index, status: str, bound, build_s: float, solve_s: float,
                grid_points: int) -> FusionAllocation:
    """The allocation at ``hardware``: the chosen fusion set (and branches, if given) re-evaluated by the cost
    model; where it is no better than the best unfused schedule there (equal up to rounding), that one."""
    graph = FusionGraph.of(network)
    costs = FusionCosts(network, hardware, tech)
    if branch_index is None:
        schedule = best_for_fusion_set(graph, costs, fused, metric, aggregate)
    else:
        schedule = fusion_schedule(graph, costs, fused, branch_index, metric, aggregate)
    unfused = unfused_schedule(network, hardware, tech, metric, aggregate)
    if not schedule.objective < unfused.objective:
        schedule = unfused
    gap = 0.0 if bound is None else max(0.0, schedule.objective - bound) / abs(schedule.objective)
    solution = Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(area_um2) / UM2_PER_MM2, objective=schedule.objective, energy_j=schedule.energy_j,
        delay_cycles=schedule.delay_cycles, layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in schedule.branch_index), layer_energy_j=schedule.layer_energy_j,
        layer_delay_cycles=schedule.layer_delay_cycles, solver="mip", status=status,
        wall_s=build_s + solve_s, gap=gap, best_bound=bound, build_s=build_s, solve_s=solve_s,
        points=grid_points)
    return FusionAllocation(solution=solution, fused=schedule, unfused=unfused)


def mip_fusion_allocate(network, space: HardwareSpace, tech, metric: str, aggregate: str,
                        options: MipOptions | None = None, progress: Progress | None = None,
                        workers: int | None = None) -> FusionAllocation:
    """The optimum of ``metric`` under ``aggregate`` over ``space``, every fusion set and branch, by MIP
    (``workers`` processes for the fusion program's pass)."""
    check_metric(metric)
    check_aggregate(aggregate)
    options = options or MipOptions()
    if not is_separable(metric, aggregate):
        return _product_allocate(network, space, tech, metric, aggregate, options, progress, workers)
    start = time.perf_counter()
    streamed = stream_fusion(network, space, tech, metric, aggregate,
                             KeepRule(first=OFFERED, tolerance=SCREEN_TOLERANCE, uppers=1, bounded_by_uppers=False),
                             "all", progress, workers=workers)
    if streamed.valid_points == 0:
        raise InputError(infeasible_budget_message(space))
    found = streamed.points
    ceiling = float(streamed.least_uppers[0]) * (1 + SCREEN_TOLERANCE) if streamed.least_uppers.size else np.inf
    ranked = np.sort(found.value[found.value <= ceiling])
    if ranked.size > OFFERED:
        ceiling = min(ceiling, float(ranked[OFFERED - 1]) * (1 + SCREEN_TOLERANCE))
    offered = np.flatnonzero(found.value <= ceiling)
    flat = found.index[offered]
    if flat.size == 0:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name}")
    points = listed_points(space, flat, found.area_um2[offered], streamed.valid_points)
    hw = points_hardware(space, flat)
    graph = FusionGraph.of(network)
    moves = transitions(graph, float(space.bits_ifmap), float(np.max(resident_capacity_bits(hw))))
    keys = point_keys(network, moves, hw, tech, metric, True)
    costs = {}
    for l, modes in enumerate(layer_modes(moves)):
        for k, mode in enumerate(modes):
            (costs[l, k],) = keys[l][mode]
    model = fusion_model(graph, moves, points, costs, np.asarray(resident_capacity_bits(hw)),
                         scale=float(np.min(found.value[offered])))
    build_s = time.perf_counter() - start
    result = HighsDriver(options).solve_or_fail(model, f"{metric} of {network.name} with fusion")
    n = chosen_point(model)
    bound = None if result.bound is None else result.bound * model.scale
    return _allocation(network, space, tech, metric, aggregate, points.hardware(n), points.area_um2[n],
                       chosen_fusion(model), None, result.status, bound, build_s, result.solve_s,
                       points.grid_points)


def _product_allocate(network, space: HardwareSpace, tech, metric: str, aggregate: str, options: MipOptions,
                      progress: Progress | None, workers: int | None = None) -> FusionAllocation:
    """A network product with fusion: rounds of the fusion frontier model and its product search (module)."""
    start = time.perf_counter()
    rule = KeepRule(first=FIRST_OFFER, uppers=1, margin=UPPER_MARGIN)
    corners = fused_corners(network, space, tech, progress, metric, rule, workers)
    order, lower = product_order(corners, metric)
    deadline = None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s
    driver = HighsDriver(options)
    offered, solve_s, proven = min(FIRST_OFFER, order.size), 0.0, True
    while True:
        data = fusion_frontier_data(network, space, tech, corners, order[:offered])
        built = BuiltModel(kind="fusion-frontier", data=data, model=None, build_s=0.0, read=_read_built,
                           merged=FusionPointwiseFrontier(data, options, deadline))
        remaining = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)
        outcome = product_search(built, metric, driver, remaining)
        solve_s += outcome.solve_s
        proven &= outcome.proven
        limit = outcome.objective * (1 - SCREEN_TOLERANCE)
        if outcome.proven and corners.left_out < limit:
            # the next round needs points the pass left out (the unfused bound did not settle it): pass again
            corners = fused_corners(network, space, tech, None, metric, replace(rule, threshold=limit), workers)
            order, lower = product_order(corners, metric)
        needed = int(np.searchsorted(lower, limit, side="left"))
        if needed <= offered or not outcome.proven:
            break
        offered = needed
    build_s = time.perf_counter() - start - solve_s
    left_out = float(lower[offered]) if offered < lower.size else corners.left_out
    bound = min(outcome.bound, left_out)
    best = outcome.best
    return _allocation(network, space, tech, metric, aggregate, best.hardware, data.points.area_um2[best.point],
                       best.fused, best.branch_index, "optimal" if proven else "time limit", bound, build_s,
                       solve_s, data.points.grid_points)


def mip_fusion_frontier(network, space: HardwareSpace, tech, options: MipOptions | None = None,
                        progress: Progress | None = None, workers: int | None = None,
                        max_points: int | None = None, on_point=None):
    """Points of the exact energy-delay frontier with fusion, least energy first (``max_points`` as
    :func:`~.mip.mip_frontier`). Returns (points, the built data with the merged per-point models, total
    solve seconds); a later :func:`~.mip.product_search` on it reuses the sweep's solves."""
    if max_points is not None and max_points < 2:
        raise ValueError(f"a frontier needs at least 2 points, got {max_points}")
    options = options or MipOptions()
    start = time.perf_counter()
    corners = frontier_corners(network, space, tech, progress, workers)
    data = FrontierDataOnDemand(network, space, tech, corners, corners.runnable)
    built = BuiltModel(kind="fusion-frontier", data=data, model=None, build_s=time.perf_counter() - start,
                       read=_read_built)
    deadline = None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s
    merged = FusionPointwiseFrontier(data, options, deadline)
    points = sweep_frontier(merged, data.delay_floor_cycles, max_points, on_point)
    built.merged = merged
    return points, built, merged.solve_s
