"""The points of a study's frontier in bounded memory: a streamed, exact screen of the weighted ideal corners.

The study frontier (weighted total energy sum_w weight_w E_w against weighted
total delay sum_w weight_w D_w, each network within its caps and the branch
limit; :func:`~deepopt_mip.solvers.study_mip.study_frontier`) offers points
to its epsilon-constraint solves by their *weighted ideal corner*
(CE, CD) = (sum_w weight_w E_min,w, sum_w weight_w D_min,w), E_min,w and
D_min,w the network's ideal corner (sum_l min_b E_lb, sum_l min_b D_lb over
the branches that can run). A point is *feasible* where every network's
corner is finite and within its caps (:func:`~.study_bounds.corner_bound`):
elsewhere some network meets its caps with no schedule at all. Every
schedule of a feasible point has weighted totals (E, D) >= (CE, CD).

The screen (exact): a pair (E', D') is *achievable* when some point has a
schedule of every network, each within its caps, whose weighted totals are
(E', D'). A feasible point with an achievable pair D' <= CD and
E' (1 + margin) < CE is left out: at every delay limit eps at which the point
has a schedule (D <= eps), the achievable pair meets the limit too
(D' <= CD <= D <= eps) with less weighted energy than any of the point's
schedules (E' < CE / (1 + margin) <= E / (1 + margin)), so no solve returns
the point: not at the least energy, nor within a relative MIP gap up to
``margin``. Its solves' optima are the same with or without it, so the
frontier is.

Achievable pairs come from the pass itself: per point and network, the three
schedules of :mod:`~deepopt_mip.formulation.grid_sums` (per-layer least
energy, least delay, least E*D), each kept where its totals are finite and
within the network's caps; per point, every mix of one schedule per network
(:data:`MIXED_NETWORKS` networks at most; beyond, the three mixes of one kind
for all), weighted and summed. A mix may use all five branches, so with a
branch limit below five no pair is known to be achievable and the screen
keeps every feasible point.

Streamed (:func:`study_corners`): each block (:func:`~.grid_stream.stream_blocks`,
the in-budget blocks) is evaluated network by network with
:func:`~.grid_stream.block_sums`, the corners weighted and summed in the
networks' order exactly as :func:`~.study_bounds.study_bounds` sums them
(so every corner is the same bit for bit), and screened against its own
achievable pairs; the parent merges the blocks and screens the kept points
again against the Pareto-minimal achievable pairs of all blocks so far
(:meth:`StudyCorners.merged`). Being dominated is monotone in the set of
pairs (a point dropped against a block's pairs is dropped against any larger
set), and a pair meets the condition only if a Pareto-minimal pair at or
below it does, so the points kept at the end are exactly those the screen
over the whole grid keeps, whatever the blocks.

Peak memory: each worker holds one block of at most ``block_points`` points,
one network's evaluation at a time plus every network's three weighted
schedules, :func:`frontier_bytes_per_point` bytes per block point; the parent
holds the kept points and pairs, :data:`KEPT_BYTES_PER_POINT` bytes each,
with a branch limit below five every feasible point (checked up front:
:func:`study_corners_memory_bytes`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.grid_blocks import Block, budget_blocks
from deepopt_mip.formulation.grid_stream import BYTES_PER_POINT, block_sums, stream_blocks, stream_memory_bytes
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers
from deepopt_mip.formulation.mip_points import BLOCK_POINTS, least_pairs
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.study_bounds import corner_bound

MIXED_NETWORKS = 3
"""Up to this many networks, every mix of one schedule per network (3^3 = 27) gives an achievable pair per
point; beyond, only the three mixes of one kind (each network's least energy, least delay or least E*D)."""
KEPT_BYTES_PER_POINT = 96
"""Peak bytes the parent holds per kept point or pair: index, area, corner (32 bytes) and, while merging a
block, both sets and the sort's permutation."""


def frontier_bytes_per_point(networks: int) -> int:
    """Peak bytes a worker holds per block point: one network's evaluation
    (:data:`~.grid_stream.BYTES_PER_POINT`), every network's three weighted schedules (48 bytes each), the
    running corner, indices and areas, and one mix's pair with its sort (80 bytes). Measured: 224 MB peak
    resident memory with one worker for a two-network frontier on a space of 1.25 M block points
    (``benchmarks/bench_studies.py --scale --solver pareto``, ``sram16``), against the estimate's 0.42 GB."""
    return BYTES_PER_POINT + 48 * networks + 80


def screens(problem: Problem) -> bool:
    """Whether achievable pairs are known from the pass: no branch limit below the five branches."""
    return problem.max_branches is None or problem.max_branches >= len(BRANCHES)


def study_corners_memory_bytes(problem: Problem, block_points: int, workers: int, kept_points: int) -> int:
    """Estimated peak memory of :func:`study_corners`: the workers' blocks and ``kept_points`` in the parent."""
    return (stream_memory_bytes(block_points, workers, frontier_bytes_per_point(len(problem.networks)))
            + KEPT_BYTES_PER_POINT * kept_points)


def dominated(energy: np.ndarray, delay: np.ndarray, pair_energy: np.ndarray, pair_delay: np.ndarray,
              margin: float) -> np.ndarray:
    """Per corner (``energy``, ``delay``): True where some pair has delay <= ``delay`` and energy times
    (1 + ``margin``) < ``energy`` (the least energy among the pairs at or below each delay, by a sort)."""
    if pair_energy.size == 0:
        return np.zeros(energy.shape, dtype=bool)
    order = np.lexsort((pair_energy, pair_delay))
    sorted_delay = pair_delay[order]
    least_energy = np.minimum.accumulate(pair_energy[order])
    at = np.searchsorted(sorted_delay, delay, side="right") - 1
    least = np.where(at >= 0, least_energy[np.maximum(at, 0)], np.inf)
    return least * (1 + margin) < energy


@dataclass(frozen=True)
class StudyCorners:
    """Screened feasible points (module docstring) by increasing (weighted corner energy, flat index):
    ``index`` (flat grid indices), ``area_um2``, ``energy_j`` and ``delay_cycles`` (the weighted ideal
    corner); the Pareto-minimal achievable weighted pairs seen; the least weighted corner delay of any
    feasible point (kept or not; ``inf`` if none); the valid points (within the budget, registers fit); per
    network the least corner delay (cycles) and energy (J) over the valid points."""

    index: np.ndarray
    area_um2: np.ndarray
    energy_j: np.ndarray
    delay_cycles: np.ndarray
    pair_energy_j: np.ndarray
    pair_delay_cycles: np.ndarray
    delay_floor_cycles: float
    valid_points: int
    least_delay_cycles: dict[str, float] = field(default_factory=dict)
    least_energy_j: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.index.size)

    def screened(self, margin: float) -> "StudyCorners":
        """The kept points not dominated by this set's pairs, by increasing (corner energy, index)."""
        keep = ~dominated(self.energy_j, self.delay_cycles, self.pair_energy_j, self.pair_delay_cycles, margin)
        keep = np.flatnonzero(keep)
        keep = keep[np.lexsort((self.index[keep], self.energy_j[keep]))]
        return StudyCorners(self.index[keep], self.area_um2[keep], self.energy_j[keep], self.delay_cycles[keep],
                            self.pair_energy_j, self.pair_delay_cycles, self.delay_floor_cycles, self.valid_points,
                            self.least_delay_cycles, self.least_energy_j)

    def merged(self, other: "StudyCorners", margin: float) -> "StudyCorners":
        """The screen of the union of both sets."""
        pair_energy, pair_delay = least_pairs(np.concatenate([self.pair_energy_j, other.pair_energy_j]),
                                              np.concatenate([self.pair_delay_cycles, other.pair_delay_cycles]))
        least = {}
        for quantity in ("least_delay_cycles", "least_energy_j"):
            mine, theirs = getattr(self, quantity), getattr(other, quantity)
            least[quantity] = {name: min(mine.get(name, math.inf), theirs.get(name, math.inf))
                               for name in {**mine, **theirs}}
        joined = StudyCorners(
            *(np.concatenate([getattr(self, name), getattr(other, name)])
              for name in ("index", "area_um2", "energy_j", "delay_cycles")),
            pair_energy, pair_delay, min(self.delay_floor_cycles, other.delay_floor_cycles),
            self.valid_points + other.valid_points, **least)
        return joined.screened(margin)


def weighted_schedules(item: StudyNetwork, sums: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The three schedules of :func:`~.grid_sums.chunk_sums` (``sums[2:]``), weighted by ``item.weight``, each
    ``inf`` where its totals are not finite or break one of ``item``'s caps."""
    out = []
    for energy, delay in zip(sums[2::2], sums[3::2]):
        ok = np.isfinite(energy) & np.isfinite(delay)
        if item.max_delay_cycles is not None:
            ok &= delay <= item.max_delay_cycles
        if item.max_energy_j is not None:
            ok &= energy <= item.max_energy_j
        out.append((item.weight * np.where(ok, energy, np.inf), item.weight * np.where(ok, delay, np.inf)))
    return out


def achievable_pairs(schedules: list[list[tuple[np.ndarray, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto-minimal weighted pairs of every mix of one schedule per network (module docstring):
    ``schedules[w][k]`` is network w's k-th weighted schedule (energy, delay) on every point."""
    kinds = range(len(schedules[0]))
    if len(schedules) <= MIXED_NETWORKS:
        mixes = itertools.product(kinds, repeat=len(schedules))
    else:
        mixes = ((kind,) * len(schedules) for kind in kinds)
    pair_energy, pair_delay = np.zeros(0), np.zeros(0)
    for mix in mixes:
        energy = delay = None
        for network, kind in zip(schedules, mix):
            e, d = network[kind]
            energy = e if energy is None else energy + e
            delay = d if delay is None else delay + d
        finite = np.isfinite(energy) & np.isfinite(delay)
        pair_energy, pair_delay = least_pairs(np.concatenate([pair_energy, energy[finite]]),
                                              np.concatenate([pair_delay, delay[finite]]))
    return pair_energy, pair_delay


def block_study_corners(block: Block, problem: Problem, layers: list, margin: float) -> StudyCorners:
    """Evaluate one block for every network and screen it on its own (module docstring)."""
    space, tech = problem.space, problem.tech
    corner_e = corner_d = index = area = None
    least_delay, least_energy = {}, {}
    schedules = []
    for item, network_layers in zip(problem.networks, layers):
        index, area, sums = block_sums(block, space, network_layers, tech, "edp", False)
        e_min, d_min = sums[0], sums[1]
        feasible = np.isfinite(corner_bound(e_min, d_min, item, "edp"))
        if index.size:
            least_delay[item.name] = float(np.min(d_min))
            least_energy[item.name] = float(np.min(e_min))
        weighted_e = item.weight * np.where(feasible, e_min, np.inf)
        weighted_d = item.weight * np.where(feasible, d_min, np.inf)
        corner_e = weighted_e if corner_e is None else corner_e + weighted_e
        corner_d = weighted_d if corner_d is None else corner_d + weighted_d
        if screens(problem):
            schedules.append(weighted_schedules(item, sums))
        del sums, e_min, d_min, feasible, weighted_e, weighted_d
    pair_energy, pair_delay = achievable_pairs(schedules) if schedules and index.size else (np.zeros(0),) * 2
    del schedules
    feasible = np.flatnonzero(np.isfinite(corner_e) & np.isfinite(corner_d))
    floor = float(corner_d[feasible].min()) if feasible.size else math.inf
    return StudyCorners(index[feasible], area[feasible], corner_e[feasible], corner_d[feasible], pair_energy,
                        pair_delay, floor, int(index.size), least_delay, least_energy).screened(margin)


def study_corners(problem: Problem, margin: float, progress: Progress | None = None, workers: int | None = None,
                  block_points: int = BLOCK_POINTS) -> StudyCorners:
    """The screened feasible points of ``problem``'s frontier (module docstring), streamed over the in-budget
    blocks of at most ``block_points`` points; the result does not depend on ``block_points`` or ``workers``.
    Its memory is checked up front (:func:`study_corners_memory_bytes`; a pass too large is refused in one
    line)."""
    layers = [distinct_layers(item.network) for item in problem.networks]
    work = partial(block_study_corners, problem=problem, layers=layers, margin=margin)
    networks = len(problem.networks)
    scaled = None if progress is None else (lambda done, total: progress(done * networks, total * networks))
    kept_points = 0 if screens(problem) else sum(block.size for block in budget_blocks(problem.space, block_points))
    corners = None
    for _, found in stream_blocks(problem.space, work, scaled, block_points, workers,
                                  frontier_bytes_per_point(networks), KEPT_BYTES_PER_POINT * kept_points):
        corners = found if corners is None else corners.merged(found, margin)
    if corners is None:
        corners = StudyCorners(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0),
                               np.zeros(0), math.inf, 0)
    return corners
