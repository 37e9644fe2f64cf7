"""The fusion grid program in bounded memory: stream over the in-budget points and keep only the candidates.

:func:`~deepopt_mip.formulation.fusion_grid.fusion_sums` returns arrays of the
whole grid cube. The searches with fusion need far less (the studies with
fusion evaluate the same slabs with :func:`slab_points` for every network,
:mod:`~deepopt_mip.formulation.study_fusion_stream`): :func:`stream_fusion`
evaluates the points within the area budget only, in *slabs*
(:func:`fusion_slabs`: per ifmap SRAM size, the blocks of
:func:`~.grid_blocks.budget_blocks` covering that size's in-budget points,
at most ``max_points`` points each), each with the per-block function of
the full pass (:func:`~.fusion_grid.chunk_values` on the box of the slab's valid points,
with the transitions whose R_l fits one of them, F2): every point is
computed on its own, so every number is the one the full pass gives, bit
for bit. A worker returns only the points its :class:`KeepRule` keeps; the
parent keeps again from the union.

Where asked (``unfused``), a slab also runs the unfused grid pass
(:func:`~.grid_sums.chunk_sums`, :func:`~.grid_sums.sums_bounds`): on all its
points (``"all"``), or on its :data:`UPPER_POINTS` points of least program
value (``"least"``, the few a search needs). A schedule with nothing fused
is a fused schedule, so the unfused bound from above of a point (for products
the best of its three feasible schedules, docs/model.md section 6) bounds
its fused optimum from above too.

Peak memory: each worker holds one slab of at most ``max_points`` points,
the program's value arrays (one or two per state) and the keys of one layer
shape per mode, about :func:`fusion_bytes_per_point` bytes per point
(:func:`~.grid_stream.stream_memory_bytes`); the parent holds the kept points.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import FusionGraph, resident_capacity_bits
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import chunk_values, transitions
from deepopt_mip.formulation.grid_blocks import Block, budget_blocks
from deepopt_mip.formulation.grid_stream import block_flat_index, block_hardware, live_box, stream_blocks
from deepopt_mip.formulation.grid_sums import (Progress, chunk_sums, distinct_layers, is_separable, pairs_last,
                                              sums_bounds)
from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.mip_points import undominated_corners
from deepopt_mip.formulation.spaces import HardwareSpace, points_hardware
from deepopt_mip.formulation.technology import Technology

FUSION_BLOCK_POINTS = 50_000
"""Most points of a slab (the full pass's box per ifmap SRAM size had at most as many)."""
ARRAY_BYTES = 8
"""Bytes of one float64 value per point."""
UPPER_POINTS = 16
"""Points of least program value per slab whose unfused bound from above ``unfused="least"`` evaluates."""
KEPT_BYTES_PER_POINT = 5 * ARRAY_BYTES
"""What the parent keeps per point: flat index, area, value and up to two sums."""


@dataclass(frozen=True)
class KeepRule:
    """Which points a pass keeps: those with a finite value at most the threshold

    T = max(v_first (1 + tolerance), U_uppers (1 + margin), threshold),

    v_first the ``first``-th least value (``inf`` while fewer are finite; no
    term if ``first`` is 0) and U_uppers the ``uppers``-th least unfused bound
    (``inf`` while fewer are finite; no term if ``uppers`` is 0 or
    ``bounded_by_uppers`` is False: the least bounds are then only tracked).
    Both only fall as points are added, so every point with a value at most
    the final T is kept whatever the order and grouping of the slabs, and the
    kept points are a prefix of the points ordered by value (ties included).

    ``dominating`` (the frontier's screen): achievable (energy, delay) pairs
    fixed before the pass; a point whose two sums (its fused ideal corner)
    one of them dominates (at or below it in both, and different,
    :func:`~.mip_points.undominated_corners`) is dropped as well, and its
    value does not count as left out: no schedule of it is on the frontier.
    """

    first: int = 0
    tolerance: float = 0.0
    uppers: int = 0
    margin: float = 0.0
    threshold: float = -np.inf
    bounded_by_uppers: bool = True
    dominating: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def everything() -> "KeepRule":
        return KeepRule(threshold=np.inf)


@dataclass(frozen=True)
class FusedPoints:
    """Valid grid points (flat indices, ascending) with area, the program's value (the fused optimum, or for
    products the metric of its two sums: a lower bound of the fused optimum) and sums (1 or 2 arrays)."""

    index: np.ndarray
    area_um2: np.ndarray
    value: np.ndarray
    sums: tuple[np.ndarray, ...]

    @staticmethod
    def empty(sums: int) -> "FusedPoints":
        return FusedPoints(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), tuple(np.zeros(0) for _ in range(sums)))

    def take(self, where: np.ndarray) -> "FusedPoints":
        return FusedPoints(self.index[where], self.area_um2[where], self.value[where],
                           tuple(s[where] for s in self.sums))

    @staticmethod
    def joined(parts: list["FusedPoints"]) -> "FusedPoints":
        index = np.concatenate([p.index for p in parts])
        order = np.argsort(index, kind="stable")
        return FusedPoints(index[order], np.concatenate([p.area_um2 for p in parts])[order],
                           np.concatenate([p.value for p in parts])[order],
                           tuple(np.concatenate(s)[order] for s in zip(*(p.sums for p in parts))))


@dataclass(frozen=True)
class FusionStream:
    """What a pass keeps: the points, the least unfused bounds seen (at most the rule's ``uppers``, ascending),
    the least value of a point left out (``inf`` if none was), how many points were valid."""

    points: FusedPoints
    least_uppers: np.ndarray
    left_out: float
    valid_points: int

    def merged(self, other: "FusionStream", rule: KeepRule) -> "FusionStream":
        joined = FusionStream(FusedPoints.joined([self.points, other.points]),
                              np.sort(np.concatenate([self.least_uppers, other.least_uppers])),
                              min(self.left_out, other.left_out), self.valid_points + other.valid_points)
        return joined.kept(rule)

    def threshold(self, rule: KeepRule) -> float:
        """The rule's T over the points held (see :class:`KeepRule`)."""
        terms = [rule.threshold]
        finite = self.points.value[np.isfinite(self.points.value)]
        if rule.first:
            terms.append(float(np.partition(finite, rule.first - 1)[rule.first - 1]) * (1 + rule.tolerance)
                         if finite.size >= rule.first else np.inf)
        if rule.uppers and rule.bounded_by_uppers:
            uppers = self.least_uppers[np.isfinite(self.least_uppers)]
            terms.append(float(uppers[rule.uppers - 1]) * (1 + rule.margin) if uppers.size >= rule.uppers
                         else np.inf)
        return max(terms)

    def kept(self, rule: KeepRule) -> "FusionStream":
        """The points the rule keeps; the value of every finite point dropped goes into ``left_out``."""
        limit = self.threshold(rule)
        value = self.points.value
        finite = np.isfinite(value)
        keep = finite & (value <= limit)
        dropped = value[finite & ~keep]
        left_out = min(self.left_out, float(dropped.min()) if dropped.size else np.inf)
        if rule.dominating is not None and keep.any():
            keep &= undominated_corners(self.points.sums[0], self.points.sums[1], *rule.dominating)
        return FusionStream(self.points.take(keep), self.least_uppers[:rule.uppers], left_out, self.valid_points)


def fusion_slabs(space: HardwareSpace, max_points: int = FUSION_BLOCK_POINTS):
    """Blocks of one ifmap SRAM size each and at most ``max_points`` points covering every in-budget point
    once: per ifmap size, the cover of :func:`~.grid_blocks.budget_blocks` of that size's points."""
    for size in range(len(space.fitting_sizes()[1])):
        yield from budget_blocks(space, max_points, ifmap=size)


_PASSES = itertools.count()
"""Numbers the passes of this process (with its id, the token of a pass's transitions in :data:`_MOVES`)."""
_MOVES: dict = {}
"""Transitions per (pass, network, capacity), kept by each process for the pass it works on (one pass at a
time; a study's pass evaluates several networks)."""


def pass_token() -> tuple[int, int]:
    """A token naming a new pass (this process's id and its count of passes), for :func:`slab_points`."""
    return os.getpid(), next(_PASSES)


def _moves(token, network_name: str, graph: FusionGraph, bits_ifmap: float, capacity: float):
    """:func:`~.fusion_grid.transitions` up to ``capacity``, computed once per pass ``token``, network and
    capacity."""
    key = (token, network_name, capacity)
    if key not in _MOVES:
        if any(k[0] != token for k in _MOVES):
            _MOVES.clear()
        _MOVES[key] = transitions(graph, bits_ifmap, capacity)
    return _MOVES[key]


def slab_points(slab: Block, space: HardwareSpace, network, tech: Technology, metric: str, separable: bool,
                unfused: str, max_points: int, token) -> tuple[FusedPoints, np.ndarray]:
    """The valid points of ``slab`` with the program's value and sums (:func:`~.fusion_grid.chunk_values` on
    the box of its valid points, with the transitions whose R_l fits one of them), and their unfused bound
    from above (:func:`~.grid_sums.sums_bounds`): at every point (``unfused="all"``), at the
    :data:`UPPER_POINTS` of least finite value (``"least"``), ``inf`` elsewhere. ``token`` names the pass
    (:func:`pass_token`). Running out of memory ends the pass in one line (an :class:`InputError`)."""
    try:
        return _slab_points(slab, space, network, tech, metric, separable, unfused, max_points, token)
    except MemoryError:
        raise InputError(f"out of memory evaluating a block of {slab.size:,} points of space {space.name!r} "
                         f"with fusion: use fewer --workers") from None


def _slab_points(slab: Block, space: HardwareSpace, network, tech: Technology, metric: str, separable: bool,
                 unfused: str, max_points: int, token) -> tuple[FusedPoints, np.ndarray]:
    _, _, valid = block_hardware(space, slab)
    if not valid.any():
        return FusedPoints.empty(1 if separable else 2), np.zeros(0)
    box = live_box(slab, np.broadcast_to(valid, (slab.pairs.size, slab.f.stop - slab.f.start, 1,
                                                  slab.p.stop - slab.p.start)))
    hw, area, valid = block_hardware(space, box)
    shape = np.broadcast_shapes(np.shape(area), np.shape(valid))
    valid = np.broadcast_to(valid, shape)
    capacity = float(np.max(np.broadcast_to(resident_capacity_bits(hw), shape)[valid]))
    graph = FusionGraph.of(network)
    moves = _moves(token, network.name, graph, float(space.bits_ifmap), capacity)
    moved = pairs_last(hw)
    sums = chunk_values(network, graph, moves, moved, tech, metric, separable, shape[1:] + shape[:1], max_points)
    where = np.flatnonzero(valid.ravel())
    sums = tuple(np.moveaxis(s, -1, 0).ravel()[where] for s in sums)
    with np.errstate(invalid="ignore"):
        value = sums[0] if separable else metric_value(sums[0], sums[1], metric)
    index = block_flat_index(space, box).ravel()[where]
    upper = np.full(where.size, np.inf)
    if unfused == "all":
        unfused_sums = chunk_sums(hw, distinct_layers(network), tech, metric, separable)
        _, upper = sums_bounds([np.broadcast_to(s, shape).ravel()[where] for s in unfused_sums],
                               np.ones(where.size, dtype=bool), metric, separable)
    elif unfused == "least":
        finite = np.flatnonzero(np.isfinite(value))
        least = finite[np.argsort(value[finite], kind="stable")[:UPPER_POINTS]]
        if least.size:
            unfused_sums = chunk_sums(points_hardware(space, index[least]), distinct_layers(network), tech, metric,
                                      separable)
            upper[least] = sums_bounds(unfused_sums, np.ones(least.size, dtype=bool), metric, separable)[1]
    return FusedPoints(index, np.broadcast_to(area, shape).ravel()[where], value, sums), upper


def slab_stream(slab: Block, space: HardwareSpace, network, tech: Technology, metric: str, separable: bool,
                unfused: str, max_points: int, token, rule: KeepRule) -> FusionStream:
    """One slab, kept by ``rule`` (what its worker returns)."""
    points, upper = slab_points(slab, space, network, tech, metric, separable, unfused, max_points, token)
    least = np.sort(upper[np.isfinite(upper)])[:rule.uppers]
    return FusionStream(points, least, np.inf, int(points.index.size)).kept(rule)


def fusion_bytes_per_point(network, space: HardwareSpace, separable: bool) -> int:
    """Estimated peak bytes a worker holds per point of a slab, at the space's largest capacity (every
    transition kept): per key (1, or 2 for products) one value array per state, twice (the states left
    and entered at the layer with most), plus the keys of every mode of the layer shapes priced
    (:func:`~.fusion_grid.chunk_values` holds a shape's keys from its first layer to its last; counted
    here for every shape at once), plus the cost model's temporaries (:data:`~.grid_stream.BYTES_PER_POINT`)."""
    from deepopt_mip.formulation.grid_stream import BYTES_PER_POINT
    from deepopt_mip.formulation.hardware import array_hardware

    rows, cols = space.array_pairs()
    f_kb, i_kb, p_kb = space.fitting_sizes()
    if not (rows.size and f_kb and i_kb and p_kb):
        return BYTES_PER_POINT
    hw = array_hardware(float(np.min(rows)), float(np.min(cols)), min(f_kb), max(i_kb), min(p_kb),
                        bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap, bits_psum=space.bits_psum)
    moves = transitions(FusionGraph.of(network), float(space.bits_ifmap), float(resident_capacity_bits(hw)))
    states = max((len({t.target for t in layer}) for layer in moves), default=1)
    shapes: dict = {}
    for layer, layer_moves in zip(network.layers, moves):
        shapes.setdefault(replace(layer, name="-"), set()).update(
            (t.reserved_bits, t.fused_in, t.fused_out) for t in layer_moves)
    modes = sum(len(shape_modes) for shape_modes in shapes.values())
    return ARRAY_BYTES * (1 if separable else 2) * (2 * states + modes) + BYTES_PER_POINT


def stream_fusion(network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str, rule: KeepRule,
                  unfused: str = "none", progress: Progress | None = None,
                  max_points: int = FUSION_BLOCK_POINTS, workers: int | None = None) -> FusionStream:
    """The points ``rule`` keeps of the fusion program over every in-budget point, slab by slab
    (:func:`fusion_slabs`), ``workers`` processes (:func:`~.grid_stream.stream_blocks`; by default one per
    CPU for a large space). Before it starts, its memory (:func:`~.grid_stream.stream_memory_bytes` at
    :func:`fusion_bytes_per_point`, plus what the parent may keep: every in-budget point for a rule that
    keeps all by value and has no ``dominating`` pairs, else the few its screen leaves, not counted) is
    checked against the machine's and a pass too large is refused in one line. ``unfused`` (``"none"``,
    ``"all"``, ``"least"``) says where each slab also evaluates the unfused bound from above
    (:func:`slab_points`). The kept points do not depend on ``max_points`` or ``workers`` (with ``"least"``
    the unfused bounds, and so which points beyond those the rule must keep, may).
    ``progress(done, total)`` counts the points of the slabs evaluated."""
    check_metric(metric)
    separable = is_separable(metric, aggregate)
    slabs = list(fusion_slabs(space, max_points))
    keeps_all = np.isinf(rule.threshold) and rule.dominating is None
    kept_bytes = KEPT_BYTES_PER_POINT * sum(slab.size for slab in slabs) if keeps_all else 0
    token = pass_token()
    work = partial(slab_stream, space=space, network=network, tech=tech, metric=metric, separable=separable,
                   unfused=unfused, max_points=max_points, token=token, rule=rule)
    kept = FusionStream(FusedPoints.empty(1 if separable else 2), np.zeros(0), np.inf, 0)
    for _, part in stream_blocks(space, work, progress, max_points, workers,
                                 fusion_bytes_per_point(network, space, separable), kept_bytes, slabs,
                                 "the fusion program"):
        kept = kept.merged(part, rule)
    return kept

