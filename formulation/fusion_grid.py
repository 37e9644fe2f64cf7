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

Layer costs come from :func:`~.costmodel.fusion.counts_beside` (the branch
functions at i - R_l) and :func:`~.costmodel.fusion.fused_costs_of_counts`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import reduce
from itertools import combinations

import numpy as np

from deepopt_mip.formulation.costmodel.common import quiet
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


def layer_keys(layer, hw, tech, reserved: float, fused_in: bool, fused_out: bool, metric: str,
                separable: bool) -> list[np.ndarray]:
    """min over branches of the key(s) of ``layer`` beside ``reserved`` bits (``inf`` where it does not fit)."""
    with quiet:
        costs = fused_costs_of_counts(counts_beside(layer, hw, reserved), layer, hw, tech, fused_in, fused_out)
        fits = reserved <= resident_capacity_bits(hw)
        if separable:
            best = reduce(np.minimum, (metric_value(costs[b].energy_j, costs[b].delay_cycles, metric)
                                       for b in BRANCHES))
            return [np.where(fits, best, np.inf)]
        keys = []
        for pick in (lambda c: c.energy_j, lambda c: c.delay_cycles):
            values = [np.where(np.isfinite(costs[b].energy_j) & np.isfinite(costs[b].delay_cycles),
                               pick(costs[b]), np.inf) for b in BRANCHES]
            keys.append(np.where(fits, reduce(np.minimum, values), np.inf))
        return keys


def chunk_values(network, graph: FusionGraph, moves, hw, tech: Technology, metric: str, separable: bool,
                 shape) -> list[np.ndarray]:
    """The program's least sums (1 or 2 arrays of ``shape``) on one chunk of the grid."""
    shapes: dict = {}
    keys = [shapes.setdefault(replace(layer, name="-"), len(shapes)) for layer in network.layers]
    cache: dict = {}
    values = {frozenset(): [np.zeros(shape) for _ in range(1 if separable else 2)]}
    for l, layer_moves in enumerate(moves):
        new: dict = {}
        for t in layer_moves:
            if t.source not in values:
                continue
            key = (keys[l], t.reserved_bits, t.fused_in, t.fused_out)
            if key not in cache:
                cache[key] = layer_keys(network.layers[l], hw, tech, t.reserved_bits, t.fused_in, t.fused_out,
                                         metric, separable)
            cand = [v + np.broadcast_to(c, shape) for v, c in zip(values[t.source], cache[key])]
            new[t.target] = cand if t.target not in new else [np.minimum(a, b) for a, b in zip(new[t.target], cand)]
        values = new
    return values[frozenset()]


def fusion_sums(network, space: HardwareSpace, tech: Technology, metric: str, aggregate: str,
                progress: Progress | None = None, max_points: int = 50_000):
    """(sums, area_um2, valid): per point the program's least sums, ``[sum of m(E_l, D_l)]`` (separable) or
    ``[sum E_l, sum D_l]`` (products: the fused ideal corner, every fused schedule of the point lies at or
    above it). Every sum is ``inf`` outside ``valid`` and where no schedule can run.
    """
    check_metric(metric)
    separable = is_separable(metric, aggregate)
    graph = FusionGraph.of(network)
    shape = grid_shape(space)
    sums = [np.full(shape, np.inf) for _ in range(1 if separable else 2)]
    area = np.zeros(shape)
    valid = np.zeros(shape, dtype=bool)
    largest = float(max(space.fitting_sizes()[1])) * 8 * 1024
    moves = transitions(graph, float(space.bits_ifmap), largest)
    total, done = int(np.prod(shape)), 0
    for chunk in grid_chunks(space, max_points):
        block = np.broadcast_shapes(chunk.area_um2.shape, chunk.valid.shape)
        for out, value in zip(sums, chunk_values(network, graph, moves, chunk.hardware, tech, metric, separable,
                                                 block)):
            out[chunk.pairs] = np.where(chunk.valid, value, np.inf)
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
