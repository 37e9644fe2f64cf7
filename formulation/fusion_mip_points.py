"""The points offered to the MIP with fusion for the network products and the frontier, with their tables.

docs/mip.md section 9. The grid program with product keys, streamed over
the in-budget points (:func:`~deepopt_mip.formulation.fusion_stream.stream_fusion`),
gives every point's *fused ideal corner* (least sum E, least sum D over
every consistent fusion set and branch choice, each minimum on its own):
every fused schedule of the point lies at or above it in both.

Screening, exact in both uses:

* Products E^a D^b: no schedule of point n has a product below
  LB_n = corner_E^a corner_D^b. The solver offers points in increasing
  LB_n and stops once every point left out has LB_n at least the optimum
  over the offered ones (:func:`product_order`); the pass keeps only the
  points a round may offer (:func:`fused_corners` with a keep rule).
* The frontier: an unfused schedule is a fused schedule with nothing fused,
  so the unfused grid pass's achievable schedules (least energy, least delay,
  least per-layer E*D, streamed as the unfused MIP's frontier screen keeps
  them, :mod:`~deepopt_mip.formulation.mip_points`) are achievable with
  fusion too. A point whose fused corner lies at or above
  one of them (and differs from it) has every schedule dominated: it holds no
  frontier point and is left out, by the fused pass's slabs themselves
  (:func:`frontier_corners`).

The tables: per layer l and mode k (R_l, fused in, fused out), every
branch's energy and delay on every offered point, from
:func:`~.costmodel.fusion.counts_beside` and
:func:`~.costmodel.fusion.fused_costs_of_counts` (the cost model; no
equation here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from deepopt_mip.formulation.costmodel.common import quiet
from deepopt_mip.formulation.costmodel.fusion import (FusionGraph, counts_beside, fused_costs_of_counts,
                                                      resident_capacity_bits)
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import transitions
from deepopt_mip.formulation.fusion_mip import layer_modes
from deepopt_mip.formulation.fusion_stream import FUSION_BLOCK_POINTS, KeepRule, stream_fusion
from deepopt_mip.formulation.grid_stream import stream_blocks
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.mip_model import FrontierScale, undominated_branches
from deepopt_mip.formulation.mip_points import BLOCK_POINTS, PointSet, block_screen, listed_points
from deepopt_mip.formulation.spaces import HardwareSpace, infeasible_budget_message, points_hardware


@dataclass(frozen=True)
class FusedCorners:
    """Listed valid grid points (flat indices, ascending) with their fused ideal corner (``inf`` where no
    schedule runs) and area; how many points of the grid are valid; the least LB_n (of the metric the
    points were kept for) of a runnable point not listed, ``inf`` if none was left out."""

    index: np.ndarray
    energy_j: np.ndarray
    delay_cycles: np.ndarray
    area_um2: np.ndarray
    valid_points: int
    left_out: float = np.inf

    @property
    def runnable(self) -> np.ndarray:
        """Flat indices of the listed points where some schedule runs."""
        return self.index[np.isfinite(self.energy_j) & np.isfinite(self.delay_cycles)]

    def positions(self, flat: np.ndarray) -> np.ndarray:
        """Where the listed flat indices ``flat`` are in :attr:`index`."""
        return np.searchsorted(self.index, flat)


def fused_corners(network, space: HardwareSpace, tech, progress: Progress | None = None,
                  metric: str = "edp", rule: KeepRule | None = None, workers: int | None = None,
                  max_points: int = FUSION_BLOCK_POINTS) -> FusedCorners:
    """The grid program's fused ideal corner (docs/model.md section 11.7) of the valid points ``rule`` keeps
    by LB_n of ``metric`` (:func:`~.fusion_stream.stream_fusion`; by default every point), streamed over the
    in-budget points. A rule with ``uppers`` evaluates the unfused bound from above at each slab's points of
    least bound (:func:`~.fusion_stream.slab_points`)."""
    rule = KeepRule.everything() if rule is None else rule
    streamed = stream_fusion(network, space, tech, metric, "network", rule, "least" if rule.uppers else "none",
                             progress, max_points, workers)
    points = streamed.points
    corners = FusedCorners(index=points.index, energy_j=points.sums[0], delay_cycles=points.sums[1],
                           area_um2=points.area_um2, valid_points=streamed.valid_points, left_out=streamed.left_out)
    if streamed.valid_points == 0:
        raise InputError(infeasible_budget_message(space))
    if corners.runnable.size == 0:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name}")
    return corners


def product_order(corners: FusedCorners, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(runnable points (flat indices) in increasing LB_n = corner_E^a corner_D^b, their LB_n)."""
    runnable = np.flatnonzero(np.isfinite(corners.energy_j) & np.isfinite(corners.delay_cycles))
    bound = metric_value(corners.energy_j[runnable], corners.delay_cycles[runnable], metric)
    order = np.argsort(bound, kind="stable")
    return corners.index[runnable[order]], bound[order]


def achievable_pairs(network, space: HardwareSpace, tech, workers: int | None = None):
    """(energy, delay) of the Pareto-minimal achievable unfused schedules of the grid, ``None`` if no point can
    run unfused: the streaming pass of the unfused MIP's frontier screen (:func:`~.mip_points.block_screen`,
    :meth:`~.mip_points.CornerScreen.merged`), which keeps the Pareto-minimal schedules of every runnable
    point, so that a corner is dominated by some schedule exactly when it is dominated by one of these
    (:func:`~.mip_points.least_pairs`)."""
    work = partial(block_screen, space=space, layers=distinct_layers(network), tech=tech, metric=None)
    screen = None
    for _, part in stream_blocks(space, work, max_points=BLOCK_POINTS, workers=workers):
        screen = part if screen is None else screen.merged(part, None)
    return None if screen is None else (screen.schedule_e, screen.schedule_d)


def frontier_corners(network, space: HardwareSpace, tech, progress: Progress | None = None,
                     workers: int | None = None, max_points: int = FUSION_BLOCK_POINTS) -> FusedCorners:
    """The fused corners of the points that may hold a frontier point (see module): the unfused screen's
    pairs (:func:`achievable_pairs`) first, then the grid program's pass, whose slabs keep only the corners
    none of them dominates (:class:`~.fusion_stream.KeepRule` ``dominating``), so the parent never holds
    the corners of the other points. Its :attr:`~FusedCorners.runnable` points are the candidates."""
    rule = KeepRule(threshold=np.inf, dominating=achievable_pairs(network, space, tech, workers))
    return fused_corners(network, space, tech, progress, rule=rule, workers=workers, max_points=max_points)


@dataclass(frozen=True)
class FusionFrontierData:
    """Offered points with every layer's energy and delay per mode and branch (docs/mip.md section 9).

    ``modes[l]``: layer l's (R_l, fused in, fused out) triples;
    ``energy_j[l, k]`` and ``delay_cycles[l, k]``: arrays [branch, point]
    (``inf`` where the branch cannot run); ``capacity_bits[n]`` = i_n - J_n b_i;
    ``corner_energy_j``/``corner_delay_cycles``: each point's fused ideal
    corner from the grid program (no schedule of the point is below it).
    """

    points: PointSet
    graph: FusionGraph
    modes: list
    energy_j: dict
    delay_cycles: dict
    capacity_bits: np.ndarray
    corner_energy_j: np.ndarray
    corner_delay_cycles: np.ndarray

    @property
    def delay_floor_cycles(self) -> float:
        """The least delay any schedule of an offered point reaches (at least)."""
        return float(np.min(self.corner_delay_cycles))

    @property
    def scale(self) -> FrontierScale:
        """Reference energy and delay (the least corners), so the model's coefficients are of order 1."""
        return FrontierScale(energy_j=float(np.min(self.corner_energy_j)),
                             delay_cycles=float(np.min(self.corner_delay_cycles)))

    def ideal_corners(self) -> tuple[np.ndarray, np.ndarray]:
        return self.corner_energy_j, self.corner_delay_cycles

    def cells(self) -> list[tuple[int, int, int, int]]:
        """(l, k, b, n) where branch b runs layer l in mode k on point n, no other branch of (l, k, n) is
        at most as costly in both (:func:`~.mip_model.undominated_branches`), and R_k fits point n (F2)."""
        out = []
        for (l, k), energy in self.energy_j.items():
            keep = undominated_branches(energy[None], self.delay_cycles[l, k][None])[0]
            keep &= self.modes[l][k][0] <= self.capacity_bits[None, :]
            out += [(l, k, int(b), int(n)) for b, n in zip(*np.nonzero(keep))]
        return sorted(out)

    def at(self, n: int) -> "FusionFrontierData":
        """The data of offered point ``n`` alone (its hardware fixed)."""
        pick = slice(n, n + 1)
        points = replace(self.points, flat_index=self.points.flat_index[pick],
                         axes=tuple(a[pick] for a in self.points.axes), area_um2=self.points.area_um2[pick])
        return replace(self, points=points, energy_j={key: v[:, pick] for key, v in self.energy_j.items()},
                       delay_cycles={key: v[:, pick] for key, v in self.delay_cycles.items()},
                       capacity_bits=self.capacity_bits[pick], corner_energy_j=self.corner_energy_j[pick],
                       corner_delay_cycles=self.corner_delay_cycles[pick])


def mode_tables(network, modes, hw, tech) -> tuple[dict, dict]:
    """Energy and delay [branch, point] of every layer in every mode on the points of ``hw`` (arrays): the
    branch functions at i - R_l (:func:`~.costmodel.fusion.counts_beside`, once per layer shape and R_l),
    the fusion changes and the energy (:func:`~.costmodel.fusion.fused_costs_of_counts`)."""
    size = int(np.size(hw.isram_bits))
    shapes: dict = {}
    keys = [shapes.setdefault(replace(layer, name="-"), len(shapes)) for layer in network.layers]
    counts: dict = {}
    tables: dict = {}
    energy, delay = {}, {}
    with quiet:
        for l, layer in enumerate(network.layers):
            for k, (reserved, fused_in, fused_out) in enumerate(modes[l]):
                key = (keys[l], reserved, fused_in, fused_out)
                if key not in tables:
                    if key[:2] not in counts:
                        counts[key[:2]] = counts_beside(layer, hw, reserved)
                    costs = fused_costs_of_counts(counts[key[:2]], layer, hw, tech, fused_in, fused_out)
                    tables[key] = tuple(
                        np.array([np.broadcast_to(np.asarray(pick(costs[b]), float), (size,)) for b in BRANCHES])
                        for pick in (lambda c: c.energy_j, lambda c: c.delay_cycles))
                e, d = tables[key]
                ok = np.isfinite(e) & np.isfinite(d)
                energy[l, k], delay[l, k] = np.where(ok, e, np.inf), np.where(ok, d, np.inf)
    return energy, delay


def frontier_modes(graph: FusionGraph, space: HardwareSpace, capacity_bits: np.ndarray) -> list:
    """Every layer's modes (R_l, fused in, fused out) on points of resident capacities ``capacity_bits``: the
    transitions whose R_l fits the largest (:func:`~.fusion_grid.transitions`, F2)."""
    return layer_modes(transitions(graph, float(space.bits_ifmap), float(np.max(capacity_bits))))


def fusion_frontier_data(network, space: HardwareSpace, tech, corners: FusedCorners,
                         flat: np.ndarray, modes: list | None = None) -> FusionFrontierData:
    """:class:`FusionFrontierData` of the grid points ``flat`` (flat indices, ascending); ``modes``: the
    layers' modes (by default :func:`frontier_modes` of these points)."""
    flat = np.sort(np.asarray(flat, dtype=np.int64))
    at = corners.positions(flat)
    points = listed_points(space, flat, corners.area_um2[at], corners.valid_points)
    hw = points_hardware(space, flat)
    capacity = np.broadcast_to(np.asarray(resident_capacity_bits(hw), float), (flat.size,)).copy()
    graph = FusionGraph.of(network)
    if modes is None:
        modes = frontier_modes(graph, space, capacity)
    energy, delay = mode_tables(network, modes, hw, tech)
    return FusionFrontierData(points=points, graph=graph, modes=modes, energy_j=energy, delay_cycles=delay,
                              capacity_bits=capacity, corner_energy_j=corners.energy_j[at],
                              corner_delay_cycles=corners.delay_cycles[at])


TABLE_BATCH = 64
"""Points whose tables :meth:`FrontierDataOnDemand.at` builds at a time: the cost model's passes over the
layers and modes cost about as much for one point as for a few hundred (SqueezeNet-v1.1: 0.44 s for one,
0.98 s for 1,000), and the points the merge asks for next are often among the next of least corner energy."""


class FrontierDataOnDemand:
    """The offered points of the fused frontier, whose tables are built only for the points the sweep solves.

    The merge of the sweep (:class:`~deepopt_mip.solvers.mip.MergedFrontier`) solves a point's model only
    while the point can still win, and needs its tables only then (:meth:`at`); a sweep over tens of
    thousands of offered points solved a few dozen of them (SqueezeNet-v1.1 with fusion on SRAMs in 16 kB
    steps, 10 delay limits: 37 of 39,662). :meth:`at` builds the tables of the point asked for and of the
    next :data:`TABLE_BATCH` - 1 of least corner energy not built yet (the merge tries points in about
    that order), with the modes of every offered point (:func:`frontier_modes`), so the data of each
    point is the one :func:`fusion_frontier_data` over all of them gives (its :meth:`~FusionFrontierData.at`),
    value for value: the cost model computes every point on its own.
    """

    def __init__(self, network, space: HardwareSpace, tech, corners: FusedCorners, flat: np.ndarray,
                 batch: int = TABLE_BATCH) -> None:
        flat = np.sort(np.asarray(flat, dtype=np.int64))
        at = corners.positions(flat)
        self.network, self.space, self.tech, self.corners, self.batch = network, space, tech, corners, batch
        self.points = listed_points(space, flat, corners.area_um2[at], corners.valid_points)
        self.corner_energy_j = corners.energy_j[at]
        self.corner_delay_cycles = corners.delay_cycles[at]
        capacity = np.broadcast_to(np.asarray(resident_capacity_bits(points_hardware(space, flat)), float),
                                   (flat.size,))
        self.graph = FusionGraph.of(network)
        self.modes = frontier_modes(self.graph, space, capacity)
        self._by_energy = np.argsort(self.corner_energy_j, kind="stable")
        self._built = np.zeros(flat.size, dtype=bool)
        self._ready: dict[int, FusionFrontierData] = {}

    @property
    def delay_floor_cycles(self) -> float:
        """The least delay any schedule of an offered point reaches (at least)."""
        return float(np.min(self.corner_delay_cycles))

    def every(self) -> FusionFrontierData:
        """The data of every offered point at once (for one model over all of them)."""
        return fusion_frontier_data(self.network, self.space, self.tech, self.corners, self.points.flat_index,
                                    self.modes)

    def at(self, n: int) -> FusionFrontierData:
        """The data of offered point ``n`` alone (its hardware fixed); handed out once per point."""
        if n not in self._ready:
            rest = self._by_energy[~self._built[self._by_energy]]
            batch = np.unique(np.concatenate([[n], rest[rest != n][:self.batch - 1]]))
            data = fusion_frontier_data(self.network, self.space, self.tech, self.corners,
                                        self.points.flat_index[batch], self.modes)
            for j, m in enumerate(batch.tolist()):
                self._ready[m] = data.at(j)
            self._built[batch] = True
        return self._ready.pop(n)
