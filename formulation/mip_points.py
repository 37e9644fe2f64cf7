"""The hardware points the MIP chooses from, with the cost-model numbers it needs.

The model's stall cycles couple all five hardware axes (docs/model.md
section 6), and not additively: on AlexNet's layers the delay of a branch
is not a sum of an (f, ...) and an (i, ...) or (p, ...) term in up to 32 %
of the grid's cells. A MIP that is exact on the grid therefore needs the
cost of every layer on every point it may choose; those come from one
streaming pass of the cost model over the points within the budget
(:mod:`~deepopt_mip.formulation.grid_stream`, the enumeration's pass), and
for the network products from
:func:`~deepopt_mip.formulation.costmodel.network_cost.cost_tables` on the
points that survive the screening below. The pass keeps per block only the
points that can still be offered, so its memory is that of a block
(:func:`~deepopt_mip.formulation.grid_stream.stream_memory_bytes`), whatever
the grid.

Screening for separable objectives (exact): the grid pass gives every
point's exact objective c_n, so only the points of least c_n are offered
(ties ranked as the enumeration ranks them); every point left out has c_n at
least that of every offered point, so none beats the offered optimum
(:func:`screen_least`).

Screening for the energy-delay frontier (exact): a point's schedules all lie
at or above its *ideal corner* (sum_l min_b E_lb, sum_l min_b D_lb). If
another point has a feasible schedule (least energy, least delay or least
per-layer metric, from the grid pass) at or below that corner and different
from it, every schedule of the point is dominated: the point holds no
frontier point and is left out. For a product E^a D^b, a point whose corner's
product already exceeds the best product of any known feasible schedule is
left out too (bound and prune). Streamed (:class:`CornerScreen`), each block
is screened against its own schedules and the kept points again against
every schedule seen so far; docs/mip.md section 3 shows why the points left
at the end are exactly those the screen over the whole grid keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_stream import block_sums, stream_blocks, stream_candidates
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers, is_separable
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import (HardwareSpace, grid_point, grid_shape, infeasible_budget_message,
                                           points_hardware)
from deepopt_mip.formulation.technology import Technology

BLOCK_POINTS = 300_000
"""Most points of a block of the streaming pass (its memory: :func:`~.grid_stream.stream_memory_bytes`)."""


@dataclass(frozen=True)
class PointSet:
    """Grid points offered to the MIP: flat grid indices and the index of each along every axis.

    ``axes[k]`` holds, per point, the index into the space's k-th axis
    (0: J/K pair, 1: filter, 2: ifmap, 3: psum SRAM size); ``grid_points``
    counts the valid points of the grid (within the budget, registers fit).
    """

    space: HardwareSpace
    flat_index: np.ndarray
    axes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    area_um2: np.ndarray
    grid_points: int

    @property
    def size(self) -> int:
        return int(self.flat_index.size)

    def hardware(self, n: int) -> HardwarePoint:
        return grid_point(self.space, int(self.flat_index[n]))


def listed_points(space: HardwareSpace, flat: np.ndarray, area_um2: np.ndarray, grid_points: int) -> PointSet:
    """The points at flat indices ``flat`` (ascending), of area ``area_um2`` each."""
    return PointSet(space=space, flat_index=flat, axes=tuple(np.unravel_index(flat, grid_shape(space))),
                    area_um2=area_um2, grid_points=int(grid_points))


def point_set(space: HardwareSpace, flat: np.ndarray, area: np.ndarray, valid: np.ndarray) -> PointSet:
    """The points at flat indices ``flat`` of grid-shaped ``area`` and ``valid`` arrays."""
    return listed_points(space, flat, area.ravel()[flat], int(valid.sum()))


def _no_point(space: HardwareSpace, network: Network, valid_points: int) -> InputError:
    if valid_points == 0:
        return InputError(infeasible_budget_message(space))
    return InputError(f"no point of space {space.name!r} can run every layer of {network.name} "
                      f"(every point has a layer with no feasible branch)")


SEPARABLE_OFFER = 64
"""Points of least objective offered to the separable model."""


@dataclass(frozen=True)
class SeparableData:
    """Offered points with their exact separable objective: sum_l n_l min_b m(E_lb, D_lb).

    ``runnable_points``: valid points where every layer has a feasible
    branch (all of them candidates); ``screen_objective``: the least
    objective of a candidate left out (``inf`` if none was), never below any
    offered point's objective.
    """

    points: PointSet
    objective: np.ndarray
    runnable_points: int
    screen_objective: float


def screen_least(objective: np.ndarray, area: np.ndarray, offer: int) -> tuple[np.ndarray, float]:
    """Indices (ascending) of the ``offer`` best finite entries of ``objective``, ranked as the
    enumeration ranks points (objective, then smaller ``area``, then index), and the least value left
    out (``inf`` if none is).

    The screen is exact for a separable objective because each entry is the
    point's exact optimum (docs/mip.md section 3): every left-out point's
    objective is at least the largest offered one, hence at least the
    optimum over the offered points, which is therefore the grid's optimum.
    """
    finite = np.flatnonzero(np.isfinite(objective))
    if finite.size <= offer:
        return finite, np.inf
    ranked = finite[np.lexsort((finite, area[finite], objective[finite]))]
    return np.sort(ranked[:offer]), float(objective[ranked[offer]])


def separable_data(network: Network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                   progress: Progress | None = None, workers: int | None = None,
                   offer: int | None = SEPARABLE_OFFER, max_points: int = BLOCK_POINTS) -> SeparableData:
    """The ``offer`` valid points of least objective where each layer has a feasible branch
    (:func:`screen_least`; ``offer`` None offers every such point), with their objective.

    The streaming pass (:func:`~.grid_stream.stream_candidates`) keeps per
    block the ``offer + 1`` best points (and the worst): those hold the
    offered points and the least objective left out, ranked as over the
    whole grid.
    """
    if not is_separable(metric, aggregate):
        raise ValueError(f"{metric} under {aggregate} aggregation is not separable")
    keep = np.iinfo(np.int64).max if offer is None else offer + 1
    streamed = stream_candidates(network, space, tech, metric, True, keep, progress, max_points, workers)
    if streamed.runnable_points == 0:
        raise _no_point(space, network, streamed.valid_points)
    found = streamed.candidates
    offered, screen = screen_least(found.lower, found.area_um2,
                                   streamed.runnable_points if offer is None else offer)
    points = listed_points(space, found.index[offered], found.area_um2[offered], streamed.valid_points)
    return SeparableData(points=points, objective=found.lower[offered], runnable_points=streamed.runnable_points,
                         screen_objective=screen)


@dataclass(frozen=True)
class FrontierData:
    """Screened points with every distinct layer's energy and delay on every branch there.

    ``energy_j[l, b, n]`` and ``delay_cycles[l, b, n]`` for distinct layer l
    (occurring ``counts[l]`` times), branch b and point n; ``inf`` where the
    branch cannot run. ``delay_floor_cycles`` is the least delay any schedule
    of any point of the grid reaches (the smallest ideal-corner delay).
    """

    points: PointSet
    energy_j: np.ndarray
    delay_cycles: np.ndarray
    counts: np.ndarray
    delay_floor_cycles: float

    def ideal_corners(self) -> tuple[np.ndarray, np.ndarray]:
        """Per point, (sum_l n_l min_b E_lb, sum_l n_l min_b D_lb) over the branches that can run there:
        no schedule of the point has less energy, or less delay."""
        ok = np.isfinite(self.energy_j) & np.isfinite(self.delay_cycles)
        e_min = np.where(ok, self.energy_j, np.inf).min(axis=1)
        d_min = np.where(ok, self.delay_cycles, np.inf).min(axis=1)
        return self.counts @ e_min, self.counts @ d_min


def undominated_corners(e_min, d_min, achievable_e, achievable_d) -> np.ndarray:
    """Per corner: True unless some achievable (E', D') <= corner differs from it.

    Achievable pairs sorted by energy; for each corner, the least delay among
    pairs with E' <= E_min: dominated if that delay is below D_min, or equal
    to it with some such pair's energy below E_min.
    """
    if achievable_e.size == 0:
        return np.ones(np.shape(e_min), dtype=bool)
    order = np.lexsort((achievable_d, achievable_e))
    se, sd = achievable_e[order], achievable_d[order]
    best_d = np.minimum.accumulate(sd)
    at_or_below = np.searchsorted(se, e_min, side="right") - 1
    strictly_below = np.searchsorted(se, e_min, side="left") - 1
    least_d = np.where(at_or_below >= 0, best_d[np.maximum(at_or_below, 0)], np.inf)
    least_d_cheaper = np.where(strictly_below >= 0, best_d[np.maximum(strictly_below, 0)], np.inf)
    dominated = (least_d < d_min) | (least_d_cheaper <= d_min)
    return ~dominated


def least_pairs(energy: np.ndarray, delay: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto-minimal pairs of (``energy``, ``delay``), once each, by increasing energy.

    A corner is dominated by some pair (at or below it, different from it)
    exactly when it is dominated by one of these: every pair lies at or above
    a minimal one, which differs from the corner unless the pair is the
    corner itself.
    """
    order = np.lexsort((delay, energy))
    e, d = energy[order], delay[order]
    keep = np.ones(e.size, dtype=bool)
    keep[1:] = d[1:] < np.minimum.accumulate(d)[:-1]
    return e[keep], d[keep]


@dataclass(frozen=True)
class CornerScreen:
    """The frontier screen of a set of points (a block, or the blocks streamed so far).

    Kept points (flat index, area, ideal corner); the Pareto-minimal feasible
    schedules (E, D) of every runnable point seen; the least product of those
    (``inf`` without a product metric); the least corner delay; how many
    points were valid. Every point left out is dominated by a kept schedule
    or its corner's product exceeds ``best_metric``.
    """

    index: np.ndarray
    area_um2: np.ndarray
    e_min: np.ndarray
    d_min: np.ndarray
    schedule_e: np.ndarray
    schedule_d: np.ndarray
    best_metric: float
    delay_floor_cycles: float
    valid_points: int

    def screened(self, metric: str | None) -> "CornerScreen":
        """The kept points that pass the screen against this set's schedules and best product."""
        keep = undominated_corners(self.e_min, self.d_min, self.schedule_e, self.schedule_d)
        if metric is not None:
            keep &= metric_value(self.e_min, self.d_min, metric) <= self.best_metric
        return CornerScreen(self.index[keep], self.area_um2[keep], self.e_min[keep], self.d_min[keep],
                            self.schedule_e, self.schedule_d, self.best_metric, self.delay_floor_cycles,
                            self.valid_points)

    def merged(self, other: "CornerScreen", metric: str | None) -> "CornerScreen":
        """The screen of the union of both sets (kept points in grid order)."""
        schedule_e, schedule_d = least_pairs(np.concatenate([self.schedule_e, other.schedule_e]),
                                             np.concatenate([self.schedule_d, other.schedule_d]))
        order = np.argsort(np.concatenate([self.index, other.index]), kind="stable")
        joined = CornerScreen(
            *(np.concatenate([getattr(self, name), getattr(other, name)])[order]
              for name in ("index", "area_um2", "e_min", "d_min")),
            schedule_e, schedule_d, min(self.best_metric, other.best_metric),
            min(self.delay_floor_cycles, other.delay_floor_cycles), self.valid_points + other.valid_points)
        return joined.screened(metric)


def corner_screen(index: np.ndarray, area_um2: np.ndarray, sums: list[np.ndarray],
                  metric: str | None) -> CornerScreen:
    """The screen of valid points with their eight sums (:func:`~.grid_sums.chunk_sums`)."""
    e_min, d_min, *schedules = sums
    finite = np.isfinite(e_min) & np.isfinite(d_min)
    schedule_e, schedule_d = least_pairs(np.concatenate([s[finite] for s in schedules[0::2]]),
                                         np.concatenate([s[finite] for s in schedules[1::2]]))
    best = np.inf
    if metric is not None and schedule_e.size:
        best = float(np.min(metric_value(schedule_e, schedule_d, metric)))
    floor = float(d_min[finite].min()) if finite.any() else np.inf
    return CornerScreen(index[finite], area_um2[finite], e_min[finite], d_min[finite], schedule_e, schedule_d,
                        best, floor, int(index.size)).screened(metric)


def block_screen(block, space: HardwareSpace, layers, tech: Technology, metric: str | None) -> CornerScreen:
    """One block of the streaming pass, screened on its own (what it returns is all its worker keeps)."""
    index, area, sums = block_sums(block, space, layers, tech, metric or "edp", False)
    return corner_screen(index, area, sums, metric)


def frontier_data(network: Network, space: HardwareSpace, tech: Technology, metric: str | None = None,
                  progress: Progress | None = None, workers: int | None = None,
                  max_points: int = BLOCK_POINTS) -> FrontierData:
    """The points that can hold a point of the energy-delay frontier (or, given a product
    ``metric``, its optimum), with their per-layer tables.

    One streaming pass (:func:`~.grid_stream.stream_blocks`): each block is
    screened by its worker, and the kept points of all blocks again against
    every schedule seen (:meth:`CornerScreen.merged`).
    """
    layers = distinct_layers(network)
    work = partial(block_screen, space=space, layers=layers, tech=tech, metric=metric)
    screen = None
    for _, part in stream_blocks(space, work, progress, max_points, workers):
        screen = part if screen is None else screen.merged(part, metric)
    if screen is None or screen.index.size == 0:
        raise _no_point(space, network, 0 if screen is None else screen.valid_points)
    points = listed_points(space, screen.index, screen.area_um2, screen.valid_points)
    energy, delay = point_tables([layer for layer, _ in layers], points, tech)
    return FrontierData(points=points, energy_j=energy, delay_cycles=delay,
                        counts=np.array([count for _, count in layers]),
                        delay_floor_cycles=screen.delay_floor_cycles)


def point_tables(layers, points: PointSet, tech: Technology) -> tuple[np.ndarray, np.ndarray]:
    """Energy (J) and delay (cycles) of every layer and branch on every point: arrays [L, B, n]."""
    tables = cost_tables(layers, points_hardware(points.space, points.flat_index), tech)
    return tables.energy_j, tables.delay_cycles
