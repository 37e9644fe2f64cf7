"""Hardware allocation by mixed-integer programming: build the Pyomo model, solve it with HiGHS.

* Separable objectives (network E or D, every ``layer-sum`` metric): one
  solve of :func:`~deepopt_mip.formulation.mip_model.separable_model`.
* Network products E^a D^b: epsilon-constraint solves of
  :func:`~deepopt_mip.formulation.mip_model.frontier_model` (least energy
  with delay <= eps). The product's optimum lies on the energy-delay
  frontier; :func:`product_search` finds it by branch and bound over delay
  intervals instead of sweeping the whole frontier: an interval [lo, hi)
  whose frontier points all have E >= e_floor cannot beat the incumbent once
  e_floor^a lo^b does; otherwise it is split at eps (its middle, or just
  below hi once narrow) and "min E s.t. D <= eps" gives its next frontier
  point (E_m, D_m), leaving [lo, D_m) with floor E_m and (eps, hi) with the
  old floor. A solve stopped by a limit contributes its proven lower bound
  as the floor, so the bound stays valid.
* :func:`mip_frontier` sweeps the whole frontier (:func:`sweep_frontier`):
  eps = the last point's delay, less a relative 1e-7, until no point is
  left. Each "min E s.t. D <= eps" is answered by :class:`PointwiseFrontier`
  (a :class:`MergedFrontier`): the frontier model at one fixed hardware
  point per solve (its branch counts only), solved only for points whose
  bound can still win, merged exactly (docs/mip.md section 4).

The MIP with fusion (:mod:`~deepopt_mip.solvers.fusion_mip`) reuses
:func:`product_search` (its model's ``read`` gives the chosen schedule),
:class:`MergedFrontier` and :func:`sweep_frontier`.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers, is_separable
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import check_aggregate, check_metric, metric_value
from deepopt_mip.formulation.mip_model import (NO_LIMIT, PointFrontierModel, chosen_branch_counts, chosen_point,
                                               frontier_model, point_frontier_model, separable_model)
from deepopt_mip.formulation.mip_points import FrontierData, SeparableData, frontier_data, separable_data
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import UM2_PER_MM2, HardwareSpace
from deepopt_mip.formulation.technology import Technology
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.highs_driver import ArrayHighs, HighsDriver, MipOptions, SolverFailure
from deepopt_mip.solvers.solution import Solution

SWEEP_STEP = 1e-7
"""Relative decrease of the delay limit below the last frontier point's delay (ten times HiGHS's MIP
feasibility tolerance on the scaled delay, :data:`~.highs_driver.MIP_FEASIBILITY_TOLERANCE`, so the same point
is never returned twice)."""
ENERGY_TIE = 1e-12
"""Two frontier energies this close (relative) are the same energy summed in another order."""
NARROW = 1e-3
"""An interval of the product search narrower than this (relative) is searched from its top, not split."""


@dataclass
class BuiltModel:
    """A model ready to solve, with the data it was built from and how long building took (s)."""

    kind: str
    data: SeparableData | FrontierData
    model: pyo.ConcreteModel
    build_s: float
    merged: "MergedFrontier | None" = None
    """If set, :func:`product_search` asks it (per-point models merged, with what earlier solves found)
    instead of solving ``model``."""
    read: "Callable[[BuiltModel], object] | None" = None
    """The frontier point of a solved ``model`` (with energy_j and delay_cycles); None: the frontier
    model's (:func:`_frontier_point`)."""


class FrontierTimeLimit(Exception):
    """The time limit stopped a search of the merged frontier; ``floor_j`` is a proven lower bound (J) of
    the least energy within the delay limit being searched."""

    def __init__(self, floor_j: float) -> None:
        super().__init__(f"time limit (least energy at least {floor_j:.6g} J)")
        self.floor_j = floor_j


def build(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
          progress: Progress | None = None, workers: int | None = None) -> BuiltModel:
    """The model for ``metric`` under ``aggregate`` (frontier model for network products)."""
    check_metric(metric)
    check_aggregate(aggregate)
    start = time.perf_counter()
    if is_separable(metric, aggregate):
        data = separable_data(network, space, tech, metric, aggregate, progress, workers)
        model = separable_model(data.points, data.objective)
        kind = "separable"
    else:
        data = frontier_data(network, space, tech, metric, progress, workers)
        model = frontier_model(data)
        kind = "frontier"
    return BuiltModel(kind=kind, data=data, model=model, build_s=time.perf_counter() - start)


@dataclass(frozen=True)
class FrontierPoint:
    """One point of the energy-delay frontier: hardware, the branch count per distinct layer, totals."""

    point: int
    hardware: HardwarePoint
    branch_counts: np.ndarray
    energy_j: float
    delay_cycles: float


def _frontier_point(built: BuiltModel) -> FrontierPoint:
    data: FrontierData = built.data
    n = chosen_point(built.model)
    counts = chosen_branch_counts(built.model, data.counts.size, len(BRANCHES))
    return _schedule_point(data, n, counts)


def _schedule_point(data: FrontierData, n: int, counts: np.ndarray) -> FrontierPoint:
    """The frontier point of offered point ``n`` running ``counts[l, b]`` layers of shape l on branch b."""
    with np.errstate(invalid="ignore"):
        energy = float(np.sum(np.where(counts > 0, counts * data.energy_j[..., n], 0.0)))
        delay = float(np.sum(np.where(counts > 0, counts * data.delay_cycles[..., n], 0.0)))
    return FrontierPoint(point=n, hardware=data.points.hardware(n), branch_counts=counts, energy_j=energy,
                         delay_cycles=delay)


def _solve_limited(built: BuiltModel, driver: HighsDriver, delay_limit_cycles: float, deadline: float | None):
    """min E s.t. D <= limit: (frontier point or None if infeasible, proven energy floor in J, result)."""
    scale = built.model.scale
    built.model.delay_limit.set_value(
        NO_LIMIT if math.isinf(delay_limit_cycles) else delay_limit_cycles / scale.delay_cycles)
    remaining = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)
    result = driver.solve(built.model, remaining)
    if result.status == "infeasible":
        return None, math.inf, result
    if not result.has_solution:
        raise SolverFailure(f"HiGHS found no solution within the delay limit {delay_limit_cycles:.6g}: "
                            f"{result.status} (raise --time-limit)")
    floor = (result.bound if result.bound is not None else 0.0) * scale.energy_j
    return (built.read or _frontier_point)(built), min(floor, result.objective * scale.energy_j), result


@dataclass(frozen=True)
class SearchOutcome:
    best: FrontierPoint
    objective: float
    bound: float
    proven: bool
    solves: int
    solve_s: float


def product_search(built: BuiltModel, metric: str, driver: HighsDriver,
                   time_limit_s: float | None = None) -> SearchOutcome:
    """The least E^a D^b on the frontier (see the module docstring)."""
    check_metric(metric)
    data: FrontierData = built.data
    deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
    solves, solve_s, proven = 0, 0.0, True

    merged = built.merged
    if merged is not None:
        merged.deadline = deadline

    def run(limit):
        """(frontier point or None, proven energy floor in J, whether the answer is complete)."""
        nonlocal solves, solve_s, proven
        if merged is not None:
            before, before_s = merged.solves, merged.solve_s
            try:
                point, floor, complete = merged.least_energy(limit), None, True
            except FrontierTimeLimit as exc:
                point, floor, complete = None, exc.floor_j, False
            solves += merged.solves - before
            solve_s += merged.solve_s - before_s
            proven &= complete
            return point, (math.inf if point is None else point.energy_j) if floor is None else floor, complete
        point, floor, result = _solve_limited(built, driver, limit, deadline)
        solves += 1
        solve_s += result.solve_s
        proven &= result.status in ("optimal", "infeasible")
        return point, floor, True

    best, _, complete = run(math.inf)
    if best is None:
        raise SolverFailure("the frontier model is infeasible (no point can run every layer)" if complete else
                            "the time limit was reached before a frontier point was found (raise --time-limit)")
    best_value = float(metric_value(best.energy_j, best.delay_cycles, metric))
    floor_delay = data.delay_floor_cycles
    heap = [(float(metric_value(best.energy_j, floor_delay, metric)), floor_delay, best.delay_cycles,
             best.energy_j)]
    while heap:
        lower, lo, hi, e_floor = heap[0]
        if lower >= best_value * (1 - 1e-12) or hi <= lo:
            heapq.heappop(heap)
            continue
        if deadline is not None and time.perf_counter() >= deadline:
            proven = False
            break
        heapq.heappop(heap)
        narrow = hi - lo <= NARROW * hi
        eps = hi * (1 - SWEEP_STEP) if narrow else 0.5 * (lo + hi)
        point, floor, complete = run(eps)
        if not narrow:
            heapq.heappush(heap, (float(metric_value(e_floor, eps, metric)), eps, hi, e_floor))
        if not complete and point is None:
            # stopped by the time limit: [lo, eps] keeps the floor proven so far
            heapq.heappush(heap, (float(metric_value(max(floor, e_floor), lo, metric)), lo, min(eps, hi),
                                  max(floor, e_floor)))
            break
        if point is None or point.delay_cycles >= hi:
            continue
        value = float(metric_value(point.energy_j, point.delay_cycles, metric))
        if value < best_value:
            best, best_value = point, value
        heapq.heappush(heap, (float(metric_value(floor, lo, metric)), lo, point.delay_cycles, floor))
    bound = min([best_value] + [entry[0] for entry in heap if entry[2] > entry[1]])
    return SearchOutcome(best=best, objective=best_value, bound=bound, proven=proven, solves=solves,
                         solve_s=solve_s)


def layer_branches(network: Network, counts: np.ndarray) -> tuple[str, ...]:
    """Spread each distinct layer's branch counts over its occurrences, in branch order."""
    index = {key: l for l, (key, _) in enumerate(distinct_layers(network))}
    left = counts.copy()
    out = []
    for layer in network.layers:
        l = index[replace(layer, name="-")]
        b = int(np.flatnonzero(left[l] > 0)[0])
        left[l, b] -= 1
        out.append(BRANCHES[b])
    return tuple(out)


def solve_built(built: BuiltModel, network: Network, tech: Technology, metric: str, aggregate: str,
                options: MipOptions | None = None) -> Solution:
    """Solve a built model and describe the optimum as a :class:`Solution`."""
    options = options or MipOptions()
    driver = HighsDriver(options)
    if built.kind == "separable":
        data: SeparableData = built.data
        result = driver.solve_or_fail(built.model, f"{metric} of {network.name}")
        n = chosen_point(built.model)
        hardware = data.points.hardware(n)
        evaluation = evaluate_point(network, hardware, tech, metric, aggregate)
        schedule = evaluation.los
        branches = tuple(BRANCHES[i] for i in schedule.branch_index)
        status, solve_s = result.status, result.solve_s
        bound = None if result.bound is None else result.bound * built.model.scale
        objective = schedule.objective
    else:
        data: FrontierData = built.data
        if built.merged is None:
            # per-point models merged (array solves, no Pyomo overhead per solve): the same least energy
            # within each delay limit as the model over all offered points
            built.merged = PointwiseFrontier(data, options, None)
        outcome = product_search(built, metric, driver, options.time_limit_s)
        n = outcome.best.point
        hardware = outcome.best.hardware
        evaluation = evaluate_point(network, hardware, tech, metric, aggregate)
        branches = layer_branches(network, outcome.best.branch_counts)
        status = "optimal" if outcome.proven else "time limit"
        solve_s, bound = outcome.solve_s, outcome.bound
        objective = None
    index = [BRANCHES.index(x) for x in branches]
    layer_e = tuple(float(evaluation.tables.energy_j[l, i]) for l, i in enumerate(index))
    layer_d = tuple(float(evaluation.tables.delay_cycles[l, i]) for l, i in enumerate(index))
    energy, delay = float(np.sum(layer_e)), float(np.sum(layer_d))
    if objective is None:
        objective = float(metric_value(energy, delay, metric))
    gap = 0.0 if bound is None else max(0.0, objective - bound) / abs(objective)
    if status != "optimal" and bound is None:
        gap = math.inf
    return Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(data.points.area_um2[n]) / UM2_PER_MM2, objective=objective, energy_j=energy,
        delay_cycles=delay, layer_names=tuple(layer.name for layer in network.layers), branches=branches,
        layer_energy_j=layer_e, layer_delay_cycles=layer_d, solver="mip", status=status,
        wall_s=built.build_s + solve_s, gap=gap, best_bound=bound, build_s=built.build_s, solve_s=solve_s,
        points=data.points.grid_points)


def mip_allocate(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                 options: MipOptions | None = None, progress: Progress | None = None,
                 workers: int | None = None) -> Solution:
    """The optimum of ``metric`` over ``space`` by MIP (build, then solve)."""
    built = build(network, space, tech, metric, aggregate, progress, workers)
    return solve_built(built, network, tech, metric, aggregate, options)


class MergedFrontier:
    """min E s.t. D <= eps over many hardware points, by per-point MIPs merged best first.

    The least energy within a delay limit over the grid, F(eps), is the least
    over the points of f_n(eps), the least energy at point n within the limit.
    Each f_n is one frontier model restricted to point n (its hardware fixed),
    solved by HiGHS (:meth:`_solve_point`, given by the subclass). What is
    known about f_n without a solve:

    * f_n(eps) = inf for eps below the point's ideal-corner delay (no
      schedule of n is that fast) or at or below a limit at which n's model
      was infeasible;
    * a solve at eps_s that returned (E, D), D <= eps_s, gives f_n = E on
      all of [D, eps_s] (that schedule is feasible there, and nothing better
      is, as f_n does not increase with eps);
    * below D, f_n >= E (f_n does not decrease as the limit tightens); before
      any solve, f_n >= the ideal-corner energy.

    :meth:`least_energy` takes the point of least known value or bound; if
    its value is exact there it is F(eps) (every other point's value is at
    least its bound), otherwise that point is solved at eps and the search
    repeats. Points of equal exact energy are taken in order of delay.
    """

    def __init__(self, energy_floor_j: np.ndarray, delay_floor_cycles: np.ndarray, deadline: float | None) -> None:
        self.deadline = deadline
        self.energy_floor = np.asarray(energy_floor_j, dtype=float)
        self.delay_floor = np.asarray(delay_floor_cycles, dtype=float)
        self.infeasible_to = np.full(self.energy_floor.size, -math.inf)
        self.known: dict[int, tuple[float, float, object]] = {}
        self.solves = 0
        self.solve_s = 0.0

    def _solve_point(self, n: int, limit: float, remaining_s: float | None):
        """(result, the frontier point found or None, energy scale in J) of min E s.t. D <= limit at point n;
        ``result`` is a :class:`~.highs_driver.MipResult` whose bound is in units of the energy scale."""
        raise NotImplementedError

    def _value(self, n: int, limit: float) -> tuple[float, bool]:
        """(f_n(limit) or a lower bound of it, whether it is exact)."""
        if limit < self.delay_floor[n] or limit <= self.infeasible_to[n]:
            return math.inf, True
        if n in self.known:
            low, high, point = self.known[n]
            if limit <= high:
                return point.energy_j, low <= limit
        return float(self.energy_floor[n]), False

    def _solve(self, n: int, limit: float) -> None:
        """Solve point n at ``limit`` and record what it shows about f_n."""
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise FrontierTimeLimit(self._value(n, limit)[0])
        remaining = None if self.deadline is None else max(self.deadline - time.perf_counter(), 1e-3)
        result, point, energy_scale = self._solve_point(n, limit, remaining)
        self.solves += 1
        self.solve_s += result.solve_s
        if result.status == "infeasible":
            self.infeasible_to[n] = max(self.infeasible_to[n], limit)
            return
        if result.status == "time limit":
            bound = -math.inf if result.bound is None else result.bound * energy_scale
            raise FrontierTimeLimit(max(bound, self._value(n, limit)[0]))
        if result.status != "optimal" or point is None:
            raise SolverFailure(f"HiGHS stopped at the delay limit {limit:.6g}: {result.status}")
        # D may exceed the limit by HiGHS's feasibility tolerance (1e-8 of the scaled delay): the solve
        # still answers the limit it was given
        self.known[n] = (min(point.delay_cycles, limit), limit, point)

    def least_energy(self, limit: float):
        """The least-energy schedule of any screened point with delay <= ``limit`` (None if there is none)."""
        heap = []
        for n in np.flatnonzero(self.delay_floor <= limit).tolist():
            value, exact = self._value(n, limit)
            if math.isfinite(value):
                heap.append(self._entry(n, value, exact))
        heapq.heapify(heap)
        while heap:
            _, inexact, _, n = heapq.heappop(heap)
            if not inexact:
                return self.known[n][2]
            try:
                self._solve(n, limit)
            except FrontierTimeLimit as exc:
                raise FrontierTimeLimit(min([exc.floor_j] + [entry[0] for entry in heap])) from None
            value, exact = self._value(n, limit)
            if math.isfinite(value):
                heapq.heappush(heap, self._entry(n, value, exact))
        return None

    def frontier_point(self, limit: float):
        """The frontier point within ``limit``: of the least-energy schedules with delay <= ``limit``, one of
        least delay. (HiGHS may return a least-energy schedule of more delay than another of the same energy;
        that one is weakly dominated, so the limit is tightened below it until the energy rises.)"""
        best = self.least_energy(limit)
        while best is not None:
            tighter = self.least_energy(best.delay_cycles * (1 - SWEEP_STEP))
            if tighter is None or tighter.energy_j > best.energy_j * (1 + ENERGY_TIE):
                return best
            best = tighter
        return None

    def _entry(self, n: int, value: float, exact: bool) -> tuple[float, bool, float, int]:
        delay = self.known[n][2].delay_cycles if exact else 0.0
        return value, not exact, delay, n


class PointwiseFrontier(MergedFrontier):
    """:class:`MergedFrontier` of the frontier model's points: f_n is
    :func:`~deepopt_mip.formulation.mip_model.point_frontier_model` (a few dozen integers: how many layers
    of each shape run each branch), passed to HiGHS as arrays."""

    def __init__(self, data: FrontierData, options: MipOptions, deadline: float | None) -> None:
        super().__init__(*data.ideal_corners(), deadline)
        self.data = data
        self.options = options
        self.counts = data.counts
        self.models: dict[int, PointFrontierModel] = {}
        self.highs = ArrayHighs(options)

    def _solve_point(self, n: int, limit: float, remaining_s: float | None):
        if n not in self.models:
            self.models[n] = point_frontier_model(self.data, n)
        model = self.models[n]
        rows = self.counts.size
        row_upper = np.append(self.counts.astype(float), limit / model.scale.delay_cycles)
        result, y = self.highs.solve(model.energy, self.counts[model.layer], model.rows(),
                                     np.append(self.counts.astype(float), -math.inf), row_upper, remaining_s)
        if result.status != "optimal" or y is None:
            return result, None, model.scale.energy_j
        counts = np.zeros((rows, len(BRANCHES)), dtype=np.int64)
        counts[model.layer, model.branch] = np.rint(y).astype(np.int64)
        return result, _schedule_point(self.data, n, counts), model.scale.energy_j


def sweep_frontier(merged: MergedFrontier, delay_floor_cycles: float, max_points: int | None = None,
                   on_point=None) -> list:
    """Frontier points of ``merged``, least energy first (see :func:`mip_frontier` for ``max_points``)."""
    if max_points is not None and max_points < 2:
        raise ValueError(f"a frontier needs at least 2 points, got {max_points}")
    points: list = []

    def solve_at(limit: float):
        try:
            point = merged.frontier_point(limit)
        except (SolverFailure, FrontierTimeLimit) as exc:
            raise SolverFailure(f"the frontier sweep stopped after {len(points)} points: {exc} "
                                f"(raise --time-limit)") from None
        if point is not None and not any(p.delay_cycles == point.delay_cycles for p in points):
            points.append(point)
            if on_point:
                on_point(point)
        return point

    first = solve_at(math.inf)
    if first is None:
        raise SolverFailure("the frontier model is infeasible (no point can run every layer)")
    if max_points is None:
        last = first
        while last is not None:
            last = solve_at(last.delay_cycles * (1 - SWEEP_STEP))
    else:
        top, bottom = first.delay_cycles, delay_floor_cycles
        for limit in np.linspace(top, bottom, max_points)[1:]:
            solve_at(max(limit, bottom))
    points.sort(key=lambda p: (p.energy_j, p.delay_cycles))
    return points


def mip_frontier(network: Network, space: HardwareSpace, tech: Technology, options: MipOptions | None = None,
                 progress: Progress | None = None, workers: int | None = None, max_points: int | None = None,
                 on_point=None) -> tuple[list[FrontierPoint], BuiltModel, float]:
    """Points of the exact energy-delay frontier, least energy first, by epsilon-constraint solves
    (:class:`PointwiseFrontier`; the returned model carries it, so a later :func:`product_search` reuses
    its solves).

    ``max_points`` None: the whole frontier (eps = the last point's delay less
    a relative 1e-7, until nothing is left). Otherwise at most that many
    frontier points, from delay limits spread evenly between the least-energy
    point's delay and the least delay of the grid (both ends included).
    Returns (points, the built model, total solve seconds); ``on_point`` is
    called with each point as it is found.
    """
    if max_points is not None and max_points < 2:
        raise ValueError(f"a frontier needs at least 2 points, got {max_points}")
    options = options or MipOptions()
    start = time.perf_counter()
    data = frontier_data(network, space, tech, None, progress, workers)
    built = BuiltModel(kind="frontier", data=data, model=frontier_model(data), build_s=time.perf_counter() - start)
    deadline = None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s
    merged = PointwiseFrontier(data, options, deadline)
    points = sweep_frontier(merged, data.delay_floor_cycles, max_points, on_point)
    built.merged = merged
    return points, built, merged.solve_s
