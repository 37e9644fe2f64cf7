"""The fusion dynamic program on every point of a hardware space's grid at once (docs/model.md section 11.7).

The program of :mod:`~deepopt_mip.solvers.fusion_schedule` has states and
transitions that do not depend on the hardware: entering layer l in state
S (fused consumers m >= l decided earlier) and deciding T at l gives R_l,
the fused-in and fused-out flags and the next state
(:func:`transitions`). Only the layer costs and the capacity test
R_l <= i - J b_i (F2) depend on the point. So, for a per-layer key k(E, D)
that adds up along the layers, the least sum over every consistent fusion
set and branch choice is computed for all points of a chunk together:
value arrays per state, a minimum per transition.

* Separable objectives (``layer-sum``, network E or D): k = m(E_l, D_l),
  and the result is every point's exact fused optimum.
* Network products: k = E_l and k = D_l (over branches where both are
  finite) give min sum E and min sum D; (min E)^a (min D)^b is a lower
  bound of every point's fused optimum (each minimum over the same set of
  schedules), used by bound and prune; :func:`fusion_sums` returns the two
  sums themselves (the fused ideal corner, for the MIP's screening).

:func:`fusion_sums` and :func:`fusion_grid` hold arrays of the whole grid
cube (the reference of the streamed passes); the single-network solvers
and the studies with fusion run :func:`chunk_values` over the in-budget
points in slabs and keep only their candidates
(:mod:`~deepopt_mip.formulation.fusion_stream`,
:mod:`~deepopt_mip.formulation.study_fusion_stream`).

Layer costs come from :func:`~.costmodel.fusion.counts_beside` (the branch
functions at i - R_l) and :func:`~.costmodel.fusion.fused_costs_of_counts`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import reduce
from itertools import combinations

import numpy as np

from deepopt_mip.formulation.costmodel.common import ArrayHardware, quiet
from deepopt_mip.formulation.costmodel.fusion import (FusionGraph, counts_beside, fused_costs_of_counts,
                                                      resident_capacity_bits)
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.grid_sums import Progress, is_separable
from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.spaces import HardwareSpace, grid_chunks, grid_shape
from deepopt_mip.formulation.technology import Technology


def decisions(graph: FusionGraph) -> list[list[frozenset[int]]]:
    """Per layer l, every subset of the consumers decided at l (those whose first producer is l)."""
    out = []
    for l in range(len(graph)):
        decided = [m for m in range(len(graph)) if graph.fusable[m] and graph.first_producer[m] == l]
        out.append([frozenset(c) for k in range(len(decided) + 1) for c in combinations(decided, k)])
    return out


@dataclass(frozen=True)
class Transition:
    """Entering layer ``layer`` in state ``source`` and deciding ``taken``: R_l, the flags, the next state."""

    source: frozenset
    taken: frozenset
    reserved_bits: float
    fused_in: bool
    fused_out: bool
    target: frozenset


def transitions(graph: FusionGraph, bits_ofmap: float, max_reserved_bits: float) -> list[list[Transition]]:
    """Every transition of every layer whose R_l is at most ``max_reserved_bits`` (reachable states only)."""
    options = decisions(graph)
    states = {frozenset()}
    out = []
    for l in range(len(graph)):
        layer_moves = []
        for source in sorted(states, key=sorted):
            for taken in options[l]:
                fused = source | taken
                reserved = graph.resident_bits(l, fused, bits_ofmap)
                if reserved > max_reserved_bits:
                    continue
                layer_moves.append(Transition(source, taken, reserved, l in source, graph.fused_out(l, fused),
                                              frozenset(m for m in fused if m > l)))
        states = {t.target for t in layer_moves}
        out.append(layer_moves)
    return out


def mode_keys(layer, hw, tech, reserved, flags, metric: str, separable: bool) -> dict[tuple, list]:
    """Per (fused in, fused out) pair of ``flags``: min over branches of the key(s) of ``layer`` beside
    ``reserved`` bits (scalar or array), ``inf`` where it does not fit.

    The branch functions run once (:func:`~.costmodel.fusion.counts_beside`); the flags only zero D_i, D_o
    and cycles_write of those counts (:func:`~.costmodel.fusion.fused_costs_of_counts`), so every pair is
    priced from the same counts.
    """
    with quiet:
        counts = counts_beside(layer, hw, reserved)
        fits = reserved <= resident_capacity_bits(hw)
        out = {}
        for fused_in, fused_out in flags:
            costs = fused_costs_of_counts(counts, layer, hw, tech, fused_in, fused_out)
            if separable:
                best = reduce(np.minimum, (metric_value(costs[b].energy_j, costs[b].delay_cycles, metric)
                                           for b in BRANCHES))
                out[fused_in, fused_out] = [np.where(fits, best, np.inf)]
                continue
            keys = []
            for pick in (lambda c: c.energy_j, lambda c: c.delay_cycles):
                values = [np.where(np.isfinite(costs[b].energy_j) & np.isfinite(costs[b].delay_cycles),
                                   pick(costs[b]), np.inf) for b in BRANCHES]
                keys.append(np.where(fits, reduce(np.minimum, values), np.inf))
            out[fused_in, fused_out] = keys
        return out


def layer_keys(layer, hw, tech, reserved: float, fused_in: bool, fused_out: bool, metric: str,
               separable: bool) -> list[np.ndarray]:
    """min over branches of the key(s) of ``layer`` beside ``reserved`` bits (``inf`` where it does not fit)."""
    return mode_keys(layer, hw, tech, reserved, [(fused_in, fused_out)], metric, separable)[fused_in, fused_out]


RESERVED_AXIS = 1
"""The axis of a block's hardware (filter, ifmap, psum, pairs; extent 1 on ifmap) that stacks R_l values."""


def stacked_keys(layer, hw, tech, modes: dict, metric: str, separable: bool, shape,
                 max_points: int) -> dict[tuple, list]:
    """Keys of ``layer`` on a block of ``shape`` for every mode: ``modes`` maps each R_l to its flag pairs.

    The R_l values are stacked on :data:`RESERVED_AXIS` (at most ``max_points`` lanes per call), so the
    branch functions run once per batch of R_l values rather than once per (R_l, flags): every lane is
    computed on its own, so the numbers are those of :func:`layer_keys` at each R_l. Returns
    {(R_l, fused in, fused out): key arrays of ``shape``}.
    """
    reserved = sorted(modes)
    per_call = max(1, max_points // max(1, int(np.prod(shape))))
    out = {}
    for start in range(0, len(reserved), per_call):
        batch = reserved[start:start + per_call]
        stack = np.reshape(np.array(batch), [len(batch) if axis == RESERVED_AXIS else 1 for axis in range(len(shape))])
        flags = sorted(set().union(*(modes[r] for r in batch)))
        keys = mode_keys(layer, hw, tech, stack, flags, metric, separable)
        for n, r in enumerate(batch):
            for flag in modes[r]:
                out[(r,) + flag] = [np.broadcast_to(np.take(k, [n], axis=RESERVED_AXIS)
                                                    if np.shape(k)[RESERVED_AXIS:RESERVED_AXIS + 1] == (len(batch),)
                                                    else k, shape) for k in keys[flag]]
    return out


def point_keys(network, moves, hw: ArrayHardware, tech, metric: str, separable: bool,
               max_points: int = 50_000) -> list[dict]:
    """Per layer, {(R_l, fused in, fused out): key arrays} over the points of ``hw`` (fields of one axis, the
    points), for every mode its transitions ``moves`` take: :func:`stacked_keys` once per layer shape."""
    points = int(np.prod(np.broadcast_shapes(*(np.shape(getattr(hw, f.name)) for f in fields(ArrayHardware)))))
    column = ArrayHardware(*(np.reshape(v, (-1, 1)) if np.ndim(v) == 1 else v
                             for v in (getattr(hw, f.name) for f in fields(ArrayHardware))))
    shape_of = [replace(layer, name="-") for layer in network.layers]
    modes: dict = {}
    for l, layer_moves in enumerate(moves):
        for t in layer_moves:
            modes.setdefault(shape_of[l], {}).setdefault(t.reserved_bits, set()).add((t.fused_in, t.fused_out))
    priced: dict = {}
    out = []
    for l, layer in enumerate(network.layers):
        if shape_of[l] not in priced:
            priced[shape_of[l]] = stacked_keys(layer, column, tech, modes.get(shape_of[l], {}), metric, separable,
                                               (points, 1), max_points)
        out.append({mode: [np.ravel(k) for k in keys] for mode, keys in priced[shape_of[l]].items()})
    return out


def chunk_values(network, graph: FusionGraph, moves, hw, tech: Technology, metric: str, separable: bool,
                 shape, max_points: int = 50_000) -> list[np.ndarray]:
    """The program's least sums (1 or 2 arrays of ``shape``) on one block of the grid.

    Layers of one shape (the name aside) share their keys: at its first layer every mode (R_l, fused in,
    fused out) any layer of that shape takes is priced (:func:`stacked_keys`); a shape's keys are dropped
    after its last layer.
    """
    shapes: dict = {}
    keys = [shapes.setdefault(replace(layer, name="-"), len(shapes)) for layer in network.layers]
    last_use = {key: l for l, key in enumerate(keys)}
    modes: dict = {}
    for l, layer_moves in enumerate(moves):
        for t in layer_moves:
            modes.setdefault(keys[l], {}).setdefault(t.reserved_bits, set()).add((t.fused_in, t.fused_out))
    cache: dict = {}
    values = {frozenset(): [np.zeros(shape) for _ in range(1 if separable else 2)]}
    for l, layer_moves in enumerate(moves):
        if keys[l] not in cache and keys[l] in modes:
            cache[keys[l]] = stacked_keys(network.layers[l], hw, tech, modes[keys[l]], metric, separable, shape,
                                          max_points)
        new: dict = {}
        for t in layer_moves:
            if t.source not in values:
                continue
            cost = cache[keys[l]][t.reserved_bits, t.fused_in, t.fused_out]
            cand = [v + c for v, c in zip(values[t.source], cost)]
            new[t.target] = cand if t.target not in new else [np.minimum(a, b) for a, b in zip(new[t.target], cand)]
        values = new
        if last_use[keys[l]] == l:
            cache.pop(keys[l], None)
    return values[frozenset()]


def _block_hardware(hw: ArrayHardware, index: tuple) -> ArrayHardware:
    """``hw`` (a chunk's hardware, axes (pairs, filter, ifmap, psum)) at the positions ``index`` (an index
    array per axis), with the pairs axis moved last: numpy's inner loops then run along the longest axis.
    Every field keeps its extent-1 axes, so the block broadcasts as the chunk does; the values are the same."""
    def take(value):
        if not isinstance(value, np.ndarray) or value.ndim != len(index):
            return value
        for axis, positions in enumerate(index):
            if value.shape[axis] > 1:
                value = np.take(value, positions, axis=axis)
        return np.moveaxis(value, 0, -1)

    return ArrayHardware(*(take(getattr(hw, f.name)) for f in fields(ArrayHardware)))


def _ifmap_blocks(valid: np.ndarray):
    """Per ifmap SRAM size of a chunk: the index arrays (pairs, filter, [size], psum) of the smallest box
    holding that size's valid points (none where it has no valid point)."""
    for size in range(valid.shape[2]):
        plane = valid[:, :, size, :]
        if plane.any():
            yield (np.flatnonzero(plane.any(axis=(1, 2))), np.flatnonzero(plane.any(axis=(0, 2))),
                   np.array([size]), np.flatnonzero(plane.any(axis=(0, 1))))


def fusion_sums(network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 50_000):
    """(sums, area_um2, valid): per point the program's least sums, ``[sum of m(E_l, D_l)]`` (separable) or
    ``[sum E_l, sum D_l]`` (products: the fused ideal corner, every fused schedule of the point lies at or
    above it). Every sum is ``inf`` outside ``valid`` and where no schedule can run.

    The program runs per ifmap SRAM size i on the box of the valid points with that size (at most
    ``max_points`` points), with only the transitions whose R_l fits some point of the box
    (R_l <= max(i - J b_i), F2): a dropped transition costs ``inf`` at every point of the box, so no
    point's value changes.
    """
    check_metric(metric)
    separable = is_separable(metric, aggregate)
    graph = FusionGraph.of(network)
    shape = grid_shape(space)
    sums = [np.full(shape, np.inf) for _ in range(1 if separable else 2)]
    area = np.zeros(shape)
    valid = np.zeros(shape, dtype=bool)
    moves_by_capacity: dict = {}
    total, done = int(np.prod(shape)), 0
    for chunk in grid_chunks(space, max_points * shape[2]):
        chunk_valid = np.broadcast_to(chunk.valid, np.broadcast_shapes(chunk.area_um2.shape, chunk.valid.shape))
        capacity = np.broadcast_to(resident_capacity_bits(chunk.hardware), chunk_valid.shape)
        targets = [out[chunk.pairs] for out in sums]
        for index in _ifmap_blocks(chunk_valid):
            box = np.ix_(*index)
            block_valid = np.moveaxis(chunk_valid[box], 0, -1)
            largest = float(np.max(capacity[box][chunk_valid[box]]))
            if largest not in moves_by_capacity:
                moves_by_capacity[largest] = transitions(graph, float(space.bits_ifmap), largest)
            block = chunk_values(network, graph, moves_by_capacity[largest], _block_hardware(chunk.hardware, index),
                                 tech, metric, separable, block_valid.shape, max_points)
            for target, value in zip(targets, block):
                target[box] = np.moveaxis(np.where(block_valid, value, np.inf), -1, 0)
        area[chunk.pairs] = chunk.area_um2
        valid[chunk.pairs] = chunk.valid
        done += chunk.valid.size
        if progress:
            progress(done, total)
    return sums, area, valid


def fusion_grid(network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 50_000):
    """(values, area_um2, valid): per point the fused optimum (separable) or its lower bound (products).

    ``values`` is ``inf`` outside ``valid`` and where no schedule can run.
    """
    sums, area, valid = fusion_sums(network, space, tech, metric, aggregate, progress, max_points)
    if len(sums) == 1:
        return sums[0], area, valid
    with np.errstate(invalid="ignore"):
        return metric_value(sums[0], sums[1], metric), area, valid
