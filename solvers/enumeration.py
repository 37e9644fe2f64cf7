"""Exhaustive enumeration of a hardware space, vectorised over the grid.

Every point of the space's grid (J/K pairs x filter x ifmap x psum SRAM sizes)
within the area budget is evaluated with the cost model, block by block
(:mod:`~deepopt_mip.formulation.grid_stream`: blocks of at most
``max_points`` points, split over worker processes for large grids, and
only the candidates for the answer kept, so memory does not grow with the
grid); layers of identical shape are evaluated once and weighted by their
count. Every point is computed on its own and its layers are summed in the
network's order, so the numbers do not depend on the blocks or the workers.

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

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_stream import Candidates, stream_candidates
from deepopt_mip.formulation.grid_sums import Progress, grid_sums, is_separable, sums_bounds
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import (UM2_PER_MM2, HardwareSpace, grid_point, infeasible_budget_message,
                                           points_hardware)
from deepopt_mip.formulation.technology import Technology
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.schedule import pareto_schedule
from deepopt_mip.solvers.solution import RankedPoint, Solution



def grid_bounds(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 300_000, workers: int | None = None):
    """One pass over the whole grid (:func:`~deepopt_mip.formulation.grid_sums.grid_sums`).

    Returns (lower, upper, area_um2, valid), each of the grid's shape. For
    separable objectives ``lower`` is the exact objective and ``upper`` is it
    too. Otherwise ``lower`` is the metric of the ideal corner and ``upper``
    the best metric of the three feasible schedules summed.
    """
    check_metric(metric)
    separable = is_separable(metric, aggregate)
    sums, area, valid = grid_sums(network, space, tech, metric, separable, progress, max_points, workers)
    lower, upper = sums_bounds(sums, valid, metric, separable)
    return lower, upper, area, valid


def _exact_objectives(network: Network, space: HardwareSpace, tech: Technology, metric: str,
                      flat_indices: np.ndarray) -> np.ndarray:
    """Exact network-aggregated optimum of each listed grid point (Pareto merge per point)."""
    tables = cost_tables(network.layers, points_hardware(space, flat_indices), tech)
    return np.array([pareto_schedule(tables.energy_j[..., n], tables.delay_cycles[..., n], metric).objective
                     for n in range(len(flat_indices))])


def rank_key(objective: np.ndarray, area: np.ndarray, order: np.ndarray, worst: bool = False) -> np.ndarray:
    """Indices sorted best first: objective, then smaller area, then grid order."""
    primary = -objective if worst else objective
    return np.lexsort((order, area, primary))


def _candidate_order(lower: np.ndarray, upper: np.ndarray, worst: bool):
    """Candidates that may be the best (or worst), by their bound, most promising first, and the bounds."""
    candidates = np.flatnonzero(np.isfinite(upper))
    bound = upper if worst else lower
    order = candidates[np.argsort(-bound[candidates] if worst else bound[candidates], kind="stable")]
    return order, bound


def first_batch(k: int) -> int:
    """Points solved exactly in the first batch of a search for ``k`` points (the bounds are tight:
    a handful beyond ``k`` usually settle it); later batches double."""
    return 2 * k + 4


def refine_by_bound(exact_objectives, order, bound, k, worst, exact: dict[int, float]) -> dict[int, float]:
    """Exact objectives of the best (or worst) ``k`` points by bound and prune.

    ``exact_objectives(flat_indices)`` gives the exact objective of each listed
    point. ``order`` lists the candidate points, most promising first by
    ``bound`` (a lower bound of each point's objective, or an upper bound when
    searching for the ``worst``). ``exact`` holds
    the exact objectives known so far (of any points); it is extended in place
    and returned. Every point whose bound can reach the k-th best exact value
    is solved, so the k best among ``exact`` are the k best of the grid,
    however many other points ``exact`` holds.
    """
    position, batch = 0, first_batch(k)
    while position < order.size:
        kth = sorted(exact.values(), reverse=worst)[k - 1] if len(exact) >= k else None
        next_bound = bound[order[position]]
        if kth is not None and ((next_bound < kth) if worst else (next_bound > kth)):
            break
        take = order[position:position + batch]
        missing = np.array([i for i in take if int(i) not in exact], dtype=np.int64)
        if missing.size:
            for index, value in zip(missing, exact_objectives(missing)):
                exact[int(index)] = float(value)
        position += take.size
        batch *= 2
    return exact


def enumerate_space(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                    top_k: int = 5, progress: Progress | None = None, max_points: int = 300_000,
                    workers: int | None = None, full_grid: bool = False, prune: bool | None = None) -> Solution:
    """The exact optimum of ``metric`` over every point of ``space``.

    By default the grid pass streams over the points within the area budget
    (:func:`~deepopt_mip.formulation.grid_stream.stream_candidates`: memory
    bounded by ``max_points`` per worker, whatever the grid) and, with
    ``prune``, evaluates only the blocks whose lower bound can still beat the
    ``top_k + 1``-th best value found (docs/model.md section 6.1); the worst
    point is then not searched (``worst`` is None). ``prune=False`` evaluates
    every in-budget block and finds the worst point too; ``prune=None`` (the
    default) prunes only spaces of more than
    :data:`~deepopt_mip.formulation.grid_stream.PRUNE_AUTO_POINTS` block points; ``full_grid``
    evaluates the whole grid cube at once (:func:`grid_bounds`: the unpruned
    reference, memory of the cube). All give the same optimum and runners-up.
    """
    check_metric(metric)
    check_aggregate(aggregate)
    if top_k < 0:
        raise InputError(f"top_k must be >= 0, got {top_k}")
    start = time.perf_counter()
    separable = is_separable(metric, aggregate)
    if full_grid:
        lower, upper, area, valid = grid_bounds(network, space, tech, metric, aggregate, progress, max_points,
                                                workers)
        flat = np.flatnonzero(valid.ravel())
        found = Candidates(flat, lower.ravel()[flat], upper.ravel()[flat], area.ravel()[flat])
        valid_points, evaluated = flat.size, int(valid.size)
        unpruned, search_worst = evaluated, True
    else:
        streamed = stream_candidates(network, space, tech, metric, separable, top_k + 1, progress, max_points,
                                     workers, prune)
        found, valid_points, evaluated = streamed.candidates, streamed.valid_points, streamed.evaluated_points
        unpruned, search_worst = streamed.block_points, not streamed.pruned
    if valid_points == 0:
        raise InputError(infeasible_budget_message(space))
    exact_best, exact_worst = _search(network, space, tech, metric, separable, found, top_k, search_worst)
    if not exact_best:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                         f"(every point has a layer with no feasible branch)")
    ranked = ranked_points(exact_best, found.area_um2)
    best = ranked[0]
    hardware = grid_point(space, int(found.index[best]))
    evaluation = evaluate_point(network, hardware, tech, metric, aggregate)
    schedule = evaluation.los
    worst = ranked_points(exact_worst, found.area_um2, worst=True)[0] if exact_worst else None

    def ranked_point(n: int, value: float) -> RankedPoint:
        return RankedPoint(grid_point(space, int(found.index[n])), value, float(found.area_um2[n]) / UM2_PER_MM2)

    wall = time.perf_counter() - start
    return Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(found.area_um2[best]) / UM2_PER_MM2, objective=schedule.objective,
        energy_j=schedule.energy_j, delay_cycles=schedule.delay_cycles,
        layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in schedule.branch_index),
        layer_energy_j=tuple(float(evaluation.tables.energy_j[l, i]) for l, i in enumerate(schedule.branch_index)),
        layer_delay_cycles=tuple(float(evaluation.tables.delay_cycles[l, i])
                                 for l, i in enumerate(schedule.branch_index)),
        solver="enumerate", status="optimal", wall_s=wall, gap=0.0, best_bound=schedule.objective,
        solve_s=wall, points=int(valid_points), points_evaluated=int(evaluated), points_unpruned=int(unpruned),
        runners_up=tuple(ranked_point(n, exact_best[n]) for n in ranked[1:top_k + 1]),
        worst=None if worst is None else ranked_point(worst, exact_worst[worst]),
    )


def _search(network: Network, space: HardwareSpace, tech: Technology, metric: str, separable: bool,
            found: Candidates, top_k: int, worst: bool = True) -> tuple[dict[int, float], dict[int, float]]:
    """Exact objectives of the best ``top_k + 1`` candidates and (if ``worst``) of the worst one, keyed by
    position in ``found`` (whose points are in grid order, so positions order as grid indices do)."""
    area = found.area_um2
    position = np.arange(found.index.size)
    if separable:
        objective = found.lower
        finite = np.flatnonzero(np.isfinite(objective))
        best_first = finite[rank_key(objective[finite], area[finite], position[finite])]
        worst_first = finite[rank_key(objective[finite], area[finite], position[finite], worst=True)]
        exact_best = {int(i): float(objective[i]) for i in best_first[:top_k + 1]}
        exact_worst = {int(worst_first[0]): float(objective[worst_first[0]])} if finite.size and worst else {}
        return exact_best, exact_worst

    def solve(positions: np.ndarray) -> np.ndarray:
        return _exact_objectives(network, space, tech, metric, found.index[positions])

    best_order, best_bound = _candidate_order(found.lower, found.upper, worst=False)
    worst_order, worst_bound = _candidate_order(found.lower, found.upper, worst=True)
    # The first batches of both searches in one evaluation of the model.
    first = np.union1d(best_order[:first_batch(top_k + 1)], worst_order[:first_batch(1) if worst else 0])
    exact = {} if first.size == 0 else dict(zip(map(int, first), map(float, solve(first))))
    exact_best = refine_by_bound(solve, best_order, best_bound, top_k + 1, False, exact)
    if not worst:
        return exact_best, {}
    exact_worst = refine_by_bound(solve, worst_order, worst_bound, 1, True, exact)
    return exact_best, exact_worst


def ranked_points(exact: dict[int, float], area: np.ndarray, worst: bool = False,
                  grid_order: np.ndarray | None = None) -> list[int]:
    """Positions with a finite exact objective, best (or worst) first; ties: smaller area, then grid order.

    ``grid_order`` gives each position's place in the grid (its flat index); by default positions index
    candidates in grid order, so grid order is position order.
    """
    positions = np.array(sorted(exact), dtype=np.int64)
    values = np.array([exact[i] for i in positions])
    finite = np.isfinite(values)
    positions, values = positions[finite], values[finite]
    order = positions if grid_order is None else grid_order[positions]
    return [int(i) for i in positions[rank_key(values, area[positions], order, worst)]]
