"""Exhaustive enumeration split into independent grid chunks and reduced exactly.

A space's grid (J/K pairs x filter x ifmap x psum SRAM sizes, see
:mod:`deepopt_mip.formulation.spaces`) is covered by the blocks of its
in-budget points (:func:`chunk_blocks`: the
:func:`~deepopt_mip.formulation.grid_blocks.budget_blocks` cover, each block
some pairs x a range of each SRAM's sizes, never the over-budget cube).
:func:`chunk_best` evaluates one block on its own (any process or machine:
it needs only the network, the space and the technology) and returns the
block's best point; :func:`reduce_bests` picks the best of the blocks'
bests. Memory is bounded by one block, whatever the grid.

The reduction is exact, with the enumeration's tie-breaking
(:mod:`deepopt_mip.solvers.enumeration`): least objective, then smaller
area, then grid order (the flat index of the (pairs, filter, ifmap, psum)
grid). Each block returns its best under that order, so the best of the
blocks' bests is the best of the grid.

The block's points are evaluated by the streaming pass's
:func:`~deepopt_mip.formulation.grid_stream.block_candidates` with k = 1:

* Separable objectives (``layer-sum``, network E or D): the kept points carry
  their exact objectives, and the block's best is among them.
* ``network`` products (E*D, E^2*D, E*D^2): bound and prune inside the block.
  Each point has a lower bound LB (metric of the ideal corner) and an upper
  bound UB (best of three feasible schedules); the kept points are those
  with LB <= the least UB (and the worst point's). They are solved exactly
  (Pareto merge over the layers,
  :func:`~deepopt_mip.solvers.schedule.pareto_schedule`) in increasing LB
  until the next LB exceeds the best exact value found: the block's optimum
  has LB <= its exact value <= the least UB, so it is kept and, ties
  included, solved.

The per-point sums do not depend on the blocks (every point is computed on
its own, layers summed in the network's order), so the result equals
:func:`~deepopt_mip.solvers.enumeration.enumerate_space`'s optimum bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_blocks import Block, budget_blocks
from deepopt_mip.formulation.grid_stream import block_candidates
from deepopt_mip.formulation.grid_sums import distinct_layers, is_separable
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import (UM2_PER_MM2, HardwareSpace, grid_point, infeasible_budget_message,
                                           points_hardware)
from deepopt_mip.formulation.technology import Technology
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.schedule import pareto_schedule
from deepopt_mip.solvers.solution import Solution

FIRST_BATCH = 8
"""Points solved exactly in a block's first batch of a network product (later batches double)."""


@dataclass(frozen=True)
class ChunkBest:
    """A block's result: its best point (``flat_index`` None if it has no point with a finite objective),
    the points within the budget it evaluated, and the points it solved exactly (products only)."""

    objective: float
    area_um2: float
    flat_index: int | None
    valid_points: int
    exact_solves: int = 0


def chunk_blocks(space: HardwareSpace, max_points: int) -> list[Block]:
    """Blocks covering every in-budget point of the grid once, each of at most ``max_points`` points."""
    if max_points < 1:
        raise InputError(f"a grid chunk must hold at least one point, got {max_points}")
    return list(budget_blocks(space, max_points))


def _best_of(objective: np.ndarray, area: np.ndarray, index: np.ndarray) -> int | None:
    """Position of the best entry: least objective, then smaller area, then smaller grid index."""
    finite = np.flatnonzero(np.isfinite(objective))
    if finite.size == 0:
        return None
    return int(finite[np.lexsort((index[finite], area[finite], objective[finite]))[0]])


def _exact(network: Network, space: HardwareSpace, tech: Technology, metric: str, flat: np.ndarray) -> np.ndarray:
    """Exact network-aggregated optimum of each listed grid point (Pareto merge per point)."""
    tables = cost_tables(network.layers, points_hardware(space, flat), tech)
    return np.array([pareto_schedule(tables.energy_j[..., n], tables.delay_cycles[..., n], metric).objective
                     for n in range(len(flat))])


def chunk_best(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
               block: Block) -> ChunkBest:
    """The best point of ``block`` of ``space``'s grid (see the module docstring)."""
    check_metric(metric)
    check_aggregate(aggregate)
    separable = is_separable(metric, aggregate)
    kept, valid_points, _, _ = block_candidates(block, space, distinct_layers(network), tech, metric, separable,
                                                k=1)
    if separable:
        best = _best_of(kept.lower, kept.area_um2, kept.index)
        if best is None:
            return ChunkBest(np.inf, np.inf, None, valid_points)
        return ChunkBest(float(kept.lower[best]), float(kept.area_um2[best]), int(kept.index[best]), valid_points)
    order = np.flatnonzero(np.isfinite(kept.lower))
    order = order[np.argsort(kept.lower[order], kind="stable")]
    solved: dict[int, float] = {}
    position, batch = 0, FIRST_BATCH
    while position < order.size:
        if kept.lower[order[position]] > min(solved.values(), default=np.inf):
            break
        take = order[position:position + batch]
        for local, value in zip(take, _exact(network, space, tech, metric, kept.index[take])):
            solved[int(local)] = float(value)
        position += take.size
        batch *= 2
    local = np.array(sorted(solved), dtype=np.int64)
    values = np.array([solved[i] for i in local])
    best = _best_of(values, kept.area_um2[local], kept.index[local]) if local.size else None
    if best is None:
        return ChunkBest(np.inf, np.inf, None, valid_points, len(solved))
    position = local[best]
    return ChunkBest(float(values[best]), float(kept.area_um2[position]), int(kept.index[position]), valid_points,
                     len(solved))


def reduce_bests(bests: list[ChunkBest]) -> ChunkBest:
    """The best of the blocks' bests (same order as :func:`chunk_best`); point counts add up."""
    found = [b for b in bests if b.flat_index is not None]
    valid = sum(b.valid_points for b in bests)
    solves = sum(b.exact_solves for b in bests)
    if not found:
        return ChunkBest(np.inf, np.inf, None, valid, solves)
    position = _best_of(np.array([b.objective for b in found]), np.array([b.area_um2 for b in found]),
                        np.array([b.flat_index for b in found], dtype=np.int64))
    winner = found[position]
    return ChunkBest(winner.objective, winner.area_um2, winner.flat_index, valid, solves)


def chunked_solution(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                     best: ChunkBest, wall_s: float) -> Solution:
    """The :class:`Solution` of a reduced grid: the winning point's LOS schedule (no runners-up, no worst)."""
    if best.valid_points == 0:
        raise InputError(infeasible_budget_message(space))
    if best.flat_index is None:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                         f"(every point has a layer with no feasible branch)")
    hardware = grid_point(space, best.flat_index)
    evaluation = evaluate_point(network, hardware, tech, metric, aggregate)
    schedule = evaluation.los
    chosen = schedule.branch_index
    return Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=best.area_um2 / UM2_PER_MM2, objective=schedule.objective, energy_j=schedule.energy_j,
        delay_cycles=schedule.delay_cycles, layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in chosen),
        layer_energy_j=tuple(float(evaluation.tables.energy_j[l, i]) for l, i in enumerate(chosen)),
        layer_delay_cycles=tuple(float(evaluation.tables.delay_cycles[l, i]) for l, i in enumerate(chosen)),
        solver="enumerate", status="optimal", wall_s=wall_s, gap=0.0, best_bound=schedule.objective,
        solve_s=wall_s, points=best.valid_points)


def chunked_optimum(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                    max_points: int = 300_000, map_blocks=map) -> Solution:
    """The exact optimum of ``space`` by blocks of at most ``max_points`` points.

    ``map_blocks(function, blocks)`` evaluates the blocks (default: one after
    another here; pass e.g. a process pool's or a Dask client's map) and
    returns their :class:`ChunkBest` in any order.
    """
    start = time.perf_counter()
    blocks = chunk_blocks(space, max_points)
    bests = list(map_blocks(_BlockTask(network, space, tech, metric, aggregate), blocks))
    return chunked_solution(network, space, tech, metric, aggregate, reduce_bests(bests),
                            time.perf_counter() - start)


@dataclass(frozen=True)
class _BlockTask:
    """:func:`chunk_best` with the problem bound, picklable for other processes."""

    network: Network
    space: HardwareSpace
    tech: Technology
    metric: str
    aggregate: str

    def __call__(self, block: Block) -> ChunkBest:
        return chunk_best(self.network, self.space, self.tech, self.metric, self.aggregate, block)
