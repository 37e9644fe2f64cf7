"""The hardware points the MIP chooses from, with the cost-model numbers it needs.

The model's stall cycles couple all five hardware axes (docs/model.md
section 6), and not additively: on AlexNet's layers the delay of a branch
is not a sum of an (f, ...) and an (i, ...) or (p, ...) term in up to 32 %
of the grid's cells. A MIP that is exact on the grid therefore needs the
cost of every layer on every point it may choose; those come from one pass
of the cost model (:mod:`~deepopt_mip.formulation.grid_sums`), and for the
network products from :func:`~deepopt_mip.formulation.costmodel.network_cost.cost_tables`
on the points that survive the screening below.

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
left out too (bound and prune).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers, grid_sums, is_separable
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import (HardwareSpace, grid_point, grid_shape, infeasible_budget_message,
                                           points_hardware)
from deepopt_mip.formulation.technology import Technology


@dataclass(frozen=True)
class PointSet:
    """Grid points offered to the MIP: flat grid indices and the index of each along every axis.

    ``axes[k]`` holds, per point, the index into the space's k-th axis
    (0: J/K pair, 1: filter, 2: ifmap, 3: psum SRAM size).
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


def point_set(space: HardwareSpace, flat: np.ndarray, area: np.ndarray, valid: np.ndarray) -> PointSet:
    return PointSet(space=space, flat_index=flat, axes=tuple(np.unravel_index(flat, grid_shape(space))),
                    area_um2=area.ravel()[flat], grid_points=int(valid.sum()))


def _no_point(space: HardwareSpace, network: Network, valid: np.ndarray) -> InputError:
    if not valid.any():
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
                   offer: int | None = SEPARABLE_OFFER) -> SeparableData:
    """The ``offer`` valid points of least objective where each layer has a feasible branch
    (:func:`screen_least`; ``offer`` None offers every such point), with their objective."""
    if not is_separable(metric, aggregate):
        raise ValueError(f"{metric} under {aggregate} aggregation is not separable")
    (objective,), area, valid = grid_sums(network, space, tech, metric, True, progress, workers=workers)
    flat_objective = np.where(valid.ravel(), objective.ravel(), np.inf)
    runnable = int(np.isfinite(flat_objective).sum())
    if runnable == 0:
        raise _no_point(space, network, valid)
    flat, screen = screen_least(flat_objective, area.ravel(), runnable if offer is None else offer)
    return SeparableData(points=point_set(space, flat, area, valid), objective=flat_objective[flat],
                         runnable_points=runnable, screen_objective=screen)


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
    order = np.lexsort((achievable_d, achievable_e))
    se, sd = achievable_e[order], achievable_d[order]
    best_d = np.minimum.accumulate(sd)
    at_or_below = np.searchsorted(se, e_min, side="right") - 1
    strictly_below = np.searchsorted(se, e_min, side="left") - 1
    least_d = np.where(at_or_below >= 0, best_d[np.maximum(at_or_below, 0)], np.inf)
    least_d_cheaper = np.where(strictly_below >= 0, best_d[np.maximum(strictly_below, 0)], np.inf)
    dominated = (least_d < d_min) | (least_d_cheaper <= d_min)
    return ~dominated


def frontier_data(network: Network, space: HardwareSpace, tech: Technology, metric: str | None = None,
                  progress: Progress | None = None, workers: int | None = None) -> FrontierData:
    """The points that can hold a point of the energy-delay frontier (or, given a product
    ``metric``, its optimum), with their per-layer tables."""
    sums, area, valid = grid_sums(network, space, tech, metric or "edp", False, progress, workers=workers)
    e_min, d_min, *schedules = (s.ravel() for s in sums)
    finite = np.flatnonzero(valid.ravel() & np.isfinite(e_min) & np.isfinite(d_min))
    if finite.size == 0:
        raise _no_point(space, network, valid)
    pairs_e = np.concatenate([schedules[k][finite] for k in (0, 2, 4)])
    pairs_d = np.concatenate([schedules[k][finite] for k in (1, 3, 5)])
    keep = undominated_corners(e_min[finite], d_min[finite], pairs_e, pairs_d)
    if metric is not None:
        best_known = float(np.min(metric_value(pairs_e, pairs_d, metric)))
        keep &= metric_value(e_min[finite], d_min[finite], metric) <= best_known
    flat = finite[keep]
    points = point_set(space, flat, area, valid)
    layers = distinct_layers(network)
    energy, delay = point_tables([layer for layer, _ in layers], points, tech)
    return FrontierData(points=points, energy_j=energy, delay_cycles=delay,
                        counts=np.array([count for _, count in layers]),
                        delay_floor_cycles=float(d_min[finite].min()))


def point_tables(layers, points: PointSet, tech: Technology) -> tuple[np.ndarray, np.ndarray]:
    """Energy (J) and delay (cycles) of every layer and branch on every point: arrays [L, B, n]."""
    tables = cost_tables(layers, points_hardware(points.space, points.flat_index), tech)
    return tables.energy_j, tables.delay_cycles
