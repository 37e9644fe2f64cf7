"""A study (several networks, weights, caps, a branch limit) by mixed-integer programming.

Points are offered to the model lazily, by the valid lower bounds of
:mod:`~deepopt_mip.formulation.study_bounds`, streamed over the in-budget
blocks into a window of the least bounds
(:mod:`~deepopt_mip.formulation.study_stream`, widened by another pass when a
round needs points beyond it): the model over the offered
points (:func:`~deepopt_mip.formulation.study_model.study_model`) is solved;
its optimum v is the optimum of the study once no point left out has a bound
below v; otherwise the points with a bound below v (at least twice as many
as before) are offered and the model is built again. The MIP decides the
hardware among the offered points, every network's branch per layer, the
caps and the branch limit together.

* E, D and every ``layer-sum`` metric: the objective is linear, one solve
  per round.
* Network products, written Y * X^q (E*D and E*D^2: Y = E, X = D; E^2*D:
  Y = D, X = E): branch and bound over boxes lo_w <= X_w <= hi_w, one
  interval per network. With Ylo_w the least Y_w on the offered points, in a
  box (Y_w - Ylo_w)(X_w^q - lo_w^q) >= 0 and X_w^q >= lo_w^q + q lo_w^(q-1)
  (X_w - lo_w) give Y_w X_w^q >= lo_w^q Y_w + q Ylo_w lo_w^(q-1) X_w
  - q Ylo_w lo_w^q (McCormick's envelope with the tangent of X^q), so the
  least weighted sum of these linear terms within the box (one solve of the
  box model, mutable coefficients and limits) is a valid lower bound of the
  box, and its solution, evaluated exactly, an upper bound (the box
  model also carries X_w >= lo_w, which keeps its solutions in the box and
  only raises the bound). A box is split for the network w whose term the
  bound underestimates most, at the middle of lo_w and the solution's X_w
  when they differ by more than a relative 1e-2, else just below X_w:
  X_w <= cut and X_w >= cut, cut = X_w (1 - 1e-7). A box
  whose solution lies within a relative 1e-7 of its lower corner in every
  network is closed with its bound (so the proven gap is at most about
  q * 1e-7); boxes whose bound cannot beat the incumbent are dropped.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.mip_model import NO_LIMIT, chosen_point
from deepopt_mip.formulation.mip_points import BLOCK_POINTS, listed_points, point_tables
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point
from deepopt_mip.formulation.study_bounds import no_point_error
from deepopt_mip.formulation.study_corners import StudyCorners, study_corners
from deepopt_mip.formulation.study_stream import WINDOW_POINTS, StudyWindow, study_stream
from deepopt_mip.formulation.study_model import NetworkTables, StudyScale, chosen_counts, product_roles, study_model
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions, SolverFailure
from deepopt_mip.solvers.mip import layer_branches
from deepopt_mip.solvers.schedule import Schedule, aggregate_objective
from deepopt_mip.solvers.solution import Solution
from deepopt_mip.solvers.study_solution import solution_from_schedules

FIRST_OFFER = 16
"""Points offered in the first round (the bounds are tight: the optimum is almost always among them)."""
SPLIT = 1e-7
"""Relative step below a box solution's X at which a narrow box is split (far above HiGHS's 1e-9 tolerances)."""
WIDE = 1e-2
"""A box whose solution's X exceeds its lower end by more than this (relative) is bisected between the two."""


def is_linear(problem: Problem) -> bool:
    """E or D alone, or any layer-sum metric: the study's objective is linear in the model."""
    return problem.aggregate == "layer-sum" or 0 in check_metric(problem.metric)


@dataclass(frozen=True)
class Candidate:
    """A solution of the model: offered point index, per-network branch counts [L, B], and per network
    the exact energy (J) and delay (cycles) of those counts, and the study's objective."""

    point: int
    counts: tuple[np.ndarray, ...]
    energy_j: tuple[float, ...]
    delay_cycles: tuple[float, ...]
    objective: float


def _tables(problem: Problem, points) -> list[NetworkTables]:
    out = []
    for item in problem.networks:
        layers = distinct_layers(item.network)
        energy, delay = point_tables([layer for layer, _ in layers], points, problem.tech)
        out.append(NetworkTables(counts=np.array([c for _, c in layers]), energy_j=energy, delay_cycles=delay))
    return out


def _scale(tables: list[NetworkTables], lower: np.ndarray) -> StudyScale:
    energy, delay = [], []
    for t in tables:
        ok = np.isfinite(t.energy_j) & np.isfinite(t.delay_cycles)
        e = (t.counts @ np.where(ok, t.energy_j, np.inf).min(axis=1)).min()
        d = (t.counts @ np.where(ok, t.delay_cycles, np.inf).min(axis=1)).min()
        energy.append(float(e) if np.isfinite(e) and e > 0 else 1.0)
        delay.append(float(d) if np.isfinite(d) and d > 0 else 1.0)
    objective = float(np.min(lower)) if np.isfinite(np.min(lower)) and np.min(lower) > 0 else 1.0
    return StudyScale(energy_j=tuple(energy), delay_cycles=tuple(delay), objective=objective)


def _decode(problem: Problem, model, tables: list[NetworkTables]) -> Candidate:
    """The chosen point and counts, with the exact totals of those counts at that point."""
    n = chosen_point(model)
    counts, energies, delays, value = [], [], [], 0.0
    for w, (item, t) in enumerate(zip(problem.networks, tables)):
        c = chosen_counts(model, w, t.counts.size, len(BRANCHES))
        with np.errstate(invalid="ignore"):
            e_layers = np.where(c > 0, c * t.energy_j[..., n], 0.0)
            d_layers = np.where(c > 0, c * t.delay_cycles[..., n], 0.0)
            if problem.aggregate == "layer-sum":
                per = np.where(c > 0, c * metric_value(t.energy_j[..., n], t.delay_cycles[..., n], problem.metric), 0.0)
                network_value = float(np.sum(per))
            else:
                network_value = float(metric_value(float(np.sum(e_layers)), float(np.sum(d_layers)), problem.metric))
        counts.append(c)
        energies.append(float(np.sum(e_layers)))
        delays.append(float(np.sum(d_layers)))
        value += item.weight * network_value
    return Candidate(point=n, counts=tuple(counts), energy_j=tuple(energies), delay_cycles=tuple(delays),
                     objective=value)


@dataclass
class Search:
    """The running state of one study solve: incumbent, proven bound pieces, time spent."""

    driver: HighsDriver
    deadline: float | None
    best: Candidate | None = None
    best_flat: int | None = None
    solves: int = 0
    solve_s: float = 0.0
    proven: bool = True

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(self.deadline - time.perf_counter(), 1e-3)

    def solve(self, model):
        result = self.driver.solve(model, self.remaining())
        self.solves += 1
        self.solve_s += result.solve_s
        if result.status not in ("optimal", "infeasible"):
            self.proven = False
        return result

    def offer(self, candidate: Candidate, flat: int) -> None:
        if self.best is None or candidate.objective < self.best.objective:
            self.best, self.best_flat = candidate, flat


def _linear_round(problem, model, tables, flat, search: Search) -> float:
    """One solve of the linear model; returns its proven lower bound (inf if infeasible)."""
    solved = _solve_and_offer(problem, model, tables, flat, search)
    return math.inf if solved is None else min(solved[0], solved[1].objective)


def _solve_and_offer(problem, model, tables, flat, search: Search) -> tuple[float, Candidate] | None:
    """Solve the model as it stands and offer its solution to the search: (proven bound of the study's
    objective, the solution), or None if infeasible."""
    result = search.solve(model)
    if result.status == "infeasible":
        return None
    if not result.has_solution:
        raise SolverFailure(f"HiGHS found no solution for the study {problem.label}: {result.status} "
                            f"(raise --time-limit)")
    candidate = _decode(problem, model, tables)
    search.offer(candidate, int(flat[candidate.point]))
    bound = result.bound if result.bound is not None else -math.inf
    return bound * model.scale.objective, candidate


def _box_round(problem, model, tables, flat, search: Search) -> float:
    """Branch and bound over boxes (module docstring) on the offered points; returns its proven bound."""
    y, x, _ = product_roles(problem.metric)

    def least(quantity):
        out = []
        for t in tables:
            values = t.delay_cycles if quantity == "delay" else t.energy_j
            ok = np.isfinite(t.energy_j) & np.isfinite(t.delay_cycles)
            out.append(float((t.counts @ np.where(ok, values, np.inf).min(axis=1)).min()))
        return out

    return box_search(problem, model, list(model.nets.values()), search, least(x), least(y),
                      lambda: _solve_and_offer(problem, model, tables, flat, search))


def box_search(problem, model, blocks, search: Search, floors, y_floors, solve_and_offer) -> float:
    """The branch and bound over boxes of the module docstring on a model whose per-network ``blocks`` carry
    ``coef``, ``coef_x``, ``limit_x``, ``floor_x`` and the scaled ``energy``/``delay`` (``model.scale``);
    ``floors``/``y_floors`` are per network lower bounds of X_w and Y_w over the offered points, and
    ``solve_and_offer()`` solves the model as it stands, offers its solution to ``search`` and returns
    (proven bound, solution with per-network ``energy_j``/``delay_cycles``) or None if infeasible.
    Returns the proven bound of the study's objective on the offered points."""
    y, x, q = product_roles(problem.metric)
    scale = model.scale
    y_unit = scale.energy_j if y == "energy" else scale.delay_cycles
    x_unit = scale.delay_cycles if x == "delay" else scale.energy_j
    tie = itertools.count()
    networks = len(blocks)

    def solve_box(lo, hi):
        constant = 0.0
        for w, block in enumerate(blocks):
            weight = problem.networks[w].weight
            block.coef.set_value(weight * lo[w] ** q * y_unit[w] / scale.objective)
            block.coef_x.set_value(weight * q * y_floors[w] * lo[w] ** (q - 1) * x_unit[w] / scale.objective)
            constant -= weight * q * y_floors[w] * lo[w] ** q
            block.limit_x.set_value(NO_LIMIT if math.isinf(hi[w]) else hi[w] / x_unit[w])
            block.floor_x.set_value(lo[w] / x_unit[w])
        solved = solve_and_offer()
        return None if solved is None else (solved[0] + constant, solved[1])

    closed = []
    heap = []
    root = solve_box(tuple(floors), tuple(math.inf for _ in range(networks)))
    if root is not None:
        heapq.heappush(heap, (root[0], next(tie), tuple(floors), tuple(math.inf for _ in range(networks)), root[1]))
    while heap:
        lower, _, lo, hi, candidate = heap[0]
        if lower >= search.best.objective * (1 - 1e-12):
            break
        if search.deadline is not None and time.perf_counter() >= search.deadline:
            search.proven = False
            break
        heapq.heappop(heap)
        xs = candidate.delay_cycles if x == "delay" else candidate.energy_j
        ys = candidate.energy_j if y == "energy" else candidate.delay_cycles
        gaps = [(problem.networks[w].weight * ys[w] * (xs[w] ** q - lo[w] ** q), w) for w in range(networks)
                if lo[w] < xs[w] * (1 - SPLIT)]
        if not gaps:
            closed.append(lower)
            continue
        _, w = max(gaps)
        cut = 0.5 * (lo[w] + xs[w]) if xs[w] > (1 + WIDE) * lo[w] else xs[w] * (1 - SPLIT)
        for child_lo, child_hi in ((lo, hi[:w] + (cut,) + hi[w + 1:]), (lo[:w] + (cut,) + lo[w + 1:], hi)):
            if child_hi[w] < child_lo[w]:
                continue
            solved = solve_box(child_lo, child_hi)
            if solved is not None and solved[0] < search.best.objective * (1 - 1e-12):
                heapq.heappush(heap, (solved[0], next(tie), child_lo, child_hi, solved[1]))
    return min([search.best.objective if search.best else math.inf] + closed + [entry[0] for entry in heap])


def next_offer(lower: np.ndarray, offered: int, search: Search, beyond: float = math.inf) -> tuple[float, int | None]:
    """After a round over the first ``offered`` points of ``lower`` (the candidates' bounds, increasing): the
    least bound left out, and how many points the next round offers, or None when the round was final (no
    point left out can beat the best found, every point was offered, or the search stopped unproven). The
    next round takes every point whose bound is below the best found, and at least twice as many points.

    ``lower`` may be a prefix of the candidates (a window), ``beyond`` the least bound of those after it
    (``inf``: none). Then the count may exceed ``lower.size`` (the window must grow first): it is
    ``lower.size + 1`` where every point of ``lower`` is below the best found and so is ``beyond``."""
    left_out = lower[offered] if offered < lower.size else beyond
    best_value = search.best.objective if search.best is not None else math.inf
    if left_out >= best_value or not search.proven:
        return left_out, None
    below = int(np.searchsorted(lower, best_value, side="left"))
    if below == lower.size and beyond < best_value:
        below += 1
    wanted = max(2 * offered, below)
    return left_out, min(lower.size, wanted) if math.isinf(beyond) else wanted


def first_offer(window: StudyWindow) -> int:
    """How many of the window's points the first round offers: :data:`FIRST_OFFER`, the window widened
    first if it holds fewer and more points exist."""
    while window.size < FIRST_OFFER and window.more:
        window.extend()
    return min(FIRST_OFFER, window.size)


def next_window_offer(window: StudyWindow, offered: int, search: Search) -> tuple[float, int | None]:
    """:func:`next_offer` over the window's points (in its order), the window widened while the next round
    needs points beyond it: the least bound left out and how many points the next round offers (None when
    the round was final)."""
    while True:
        left_out, wanted = next_offer(window.lower, offered, search, window.beyond)
        if wanted is None or wanted <= window.size or not window.more:
            return left_out, None if wanted is None else min(wanted, window.size)
        window.extend()


def mip_study(problem: Problem, options: MipOptions | None = None, progress: Progress | None = None,
              workers: int | None = None, window_points: int = WINDOW_POINTS) -> Solution:
    """The optimum of ``problem`` by MIP (see the module docstring). ``window_points``: the candidates the
    first pass keeps (:func:`~.study_stream.study_stream`; the result does not depend on it)."""
    options = options or MipOptions()
    start = time.perf_counter()
    window = study_stream(problem, progress, workers, window_points)
    if window.size == 0:
        raise no_point_error(problem, window)
    offered = first_offer(window)
    search = Search(driver=HighsDriver(options),
                    deadline=None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s)
    linear = is_linear(problem)
    build_s = time.perf_counter() - start
    rounds = 0
    while True:
        rounds += 1
        built = time.perf_counter()
        flat = window.index[:offered]
        points = listed_points(problem.space, flat, window.area_um2[:offered], window.valid_points)
        tables = _tables(problem, points)
        model = study_model(problem, points, tables, _scale(tables, window.lower[:offered]),
                            "linear" if linear else "box")
        build_s += time.perf_counter() - built
        round_bound = (_linear_round if linear else _box_round)(problem, model, tables, flat, search)
        left_out, offered = next_window_offer(window, offered, search)
        if offered is None:
            break
    if search.best is None or not math.isfinite(search.best.objective):
        raise no_point_error(problem, window)
    bound = min(round_bound, left_out)
    return _solution(problem, search, bound, window.area_of(search.best_flat), window.valid_points, build_s, rounds)


def _solution(problem: Problem, search: Search, bound: float, area_um2: float, valid_points: int, build_s: float,
              rounds: int) -> Solution:
    best = search.best
    hardware = grid_point(problem.space, search.best_flat)
    arrays = hardware.arrays()
    tables, schedules = [], []
    for item, counts in zip(problem.networks, best.counts):
        table = cost_tables(item.network.layers, arrays, problem.tech)
        index = [BRANCHES.index(b) for b in layer_branches(item.network, counts)]
        e = table.energy_j[np.arange(len(index)), index]
        d = table.delay_cycles[np.arange(len(index)), index]
        schedules.append(Schedule(branch_index=tuple(index), energy_j=float(np.sum(e)), delay_cycles=float(np.sum(d)),
                                  objective=aggregate_objective(e, d, problem.metric, problem.aggregate)))
        tables.append(table)
    objective = float(sum(item.weight * s.objective for item, s in zip(problem.networks, schedules)))
    gap = max(0.0, objective - bound) / abs(objective) if math.isfinite(bound) else math.inf
    status = "optimal" if search.proven else "time limit"
    return solution_from_schedules(
        problem, hardware, area_um2 / UM2_PER_MM2, schedules, tables, solver="mip",
        status=status, wall_s=build_s + search.solve_s, gap=gap, best_bound=min(bound, objective), build_s=build_s,
        solve_s=search.solve_s, points=valid_points)


@dataclass(frozen=True)
class StudyFrontierPoint:
    """A point of a study's frontier of weighted total energy (J) against weighted total delay (cycles):
    its grid index, hardware, area and per-network branch counts [L, B]."""

    flat: int
    hardware: HardwarePoint
    area_mm2: float
    counts: tuple[np.ndarray, ...]
    energy_j: float
    delay_cycles: float


def study_frontier(problem: Problem, options: MipOptions | None = None, progress: Progress | None = None,
                   max_points: int | None = None, on_point=None, workers: int | None = None,
                   block_points: int = BLOCK_POINTS) -> list[StudyFrontierPoint]:
    """The frontier of sum_w weight_w E_w against sum_w weight_w D_w under the study's caps and branch limit,
    by epsilon-constraint solves of the ``frontier`` model (least weighted energy with weighted delay <= eps).

    The points that can hold a frontier point come from one streaming pass over the in-budget blocks of at
    most ``block_points`` points (:func:`~deepopt_mip.formulation.study_corners.study_corners`: each point's
    weighted ideal corner, screened exactly against the achievable pairs the pass finds, with the MIP gap as
    the screen's margin; its memory checked up front), then :func:`corner_frontier` sweeps them.
    """
    if problem.aggregate != "network":
        raise InputError("a frontier is of network totals: use the network aggregation, not layer-sum")
    if max_points is not None and max_points < 2:
        raise ValueError(f"a frontier needs at least 2 points, got {max_points}")
    options = options or MipOptions()
    corners = study_corners(problem, options.mip_gap, progress, workers, block_points)
    return corner_frontier(problem, corners, options, max_points, on_point)


def corner_frontier(problem: Problem, corners: StudyCorners, options: MipOptions, max_points: int | None = None,
                    on_point=None) -> list[StudyFrontierPoint]:
    """The sweep of :func:`study_frontier` over the feasible points ``corners`` (by increasing weighted
    corner energy, then flat index).

    Points are offered lazily for each solve, as in :func:`mip_study`: ordered by their weighted ideal-corner
    energy among those whose weighted corner delay is within eps. ``max_points`` None: the whole frontier
    (eps = the last point's delay less a relative 1e-7); else that many delay limits spread evenly from the
    least-energy point's delay to the least weighted corner delay (``corners.delay_floor_cycles``). Least
    energy first.
    """
    if corners.size == 0:
        raise no_point_error(problem, corners)
    corner_e, corner_d = corners.energy_j, corners.delay_cycles
    order = np.arange(corners.size)
    search = Search(driver=HighsDriver(options),
                    deadline=None if options.time_limit_s is None else time.perf_counter() + options.time_limit_s)
    frontier_problem = replace(problem, metric="edp")
    offered: list[int] = []
    built = {"size": 0}

    def model_over_offered():
        if built["size"] != len(offered):
            kept = np.array(offered)
            flat = corners.index[kept]
            points = listed_points(problem.space, flat, corners.area_um2[kept], corners.valid_points)
            tables = _tables(problem, points)
            base = _scale(tables, np.ones(1))
            scale = replace(base, objective=float(np.min(corner_e[kept])),
                            delay_total_cycles=float(np.min(corner_d[kept])))
            built.update(size=len(offered), kept=kept, tables=tables,
                         model=study_model(frontier_problem, points, tables, scale, "frontier"))
        return built["model"], built["kept"], built["tables"]

    def solve_at(limit: float) -> StudyFrontierPoint | None:
        candidates = order[corner_d[order] <= limit * (1 + 1e-12)]
        if not offered:
            offered.extend(int(i) for i in candidates[:FIRST_OFFER])
        while True:
            model, kept, tables = model_over_offered()
            model.delay_limit.set_value(NO_LIMIT if math.isinf(limit) else limit / model.scale.delay_total_cycles)
            result = search.solve(model)
            if result.status == "infeasible":
                point, value = None, math.inf
            elif not result.has_solution or result.status != "optimal":
                raise SolverFailure(f"the frontier sweep stopped: {result.status} (raise --time-limit)")
            else:
                chosen = _decode(frontier_problem, model, tables)
                energy = float(sum(i.weight * e for i, e in zip(problem.networks, chosen.energy_j)))
                delay = float(sum(i.weight * d for i, d in zip(problem.networks, chosen.delay_cycles)))
                at = int(kept[chosen.point])
                index = int(corners.index[at])
                point = StudyFrontierPoint(flat=index, hardware=grid_point(problem.space, index),
                                           area_mm2=float(corners.area_um2[at]) / UM2_PER_MM2, counts=chosen.counts,
                                           energy_j=energy, delay_cycles=delay)
                value = energy
            taken = set(offered)
            missing = [int(i) for i in candidates if int(i) not in taken]
            if not missing or corner_e[missing[0]] >= value:
                return point
            below = [i for i in missing if corner_e[i] < value]
            offered.extend((below + missing[len(below):])[:max(len(below), len(offered))])

    points: list[StudyFrontierPoint] = []

    def keep(point):
        if point is not None and not any(p.delay_cycles == point.delay_cycles for p in points):
            points.append(point)
            if on_point:
                on_point(point)
        return point

    first = keep(solve_at(math.inf))
    if first is None:
        raise no_point_error(problem, corners)
    if max_points is None:
        last = first
        while last is not None:
            last = keep(solve_at(last.delay_cycles * (1 - SPLIT)))
    else:
        bottom = corners.delay_floor_cycles
        for limit in np.linspace(first.delay_cycles, bottom, max_points)[1:]:
            keep(solve_at(max(limit, bottom)))
    points.sort(key=lambda p: (p.energy_j, p.delay_cycles))
    return points
