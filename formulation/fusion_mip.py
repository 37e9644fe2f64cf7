"""The MIP of the hardware allocation with fusion, for separable objectives (docs/mip.md section 9).

Variables and constraints (B_v in kbit, R_k likewise; n ranges over the
offered points, k over layer l's *modes*, the distinct (R_l, fused in,
fused out) triples its transitions can take, :func:`~.fusion_grid.transitions`):

* hardware: the one-hot axes and ``point[n]`` of :func:`~.mip_model.add_hardware`;
* ``fuse[m]`` binary per fusable consumer (x_m: every edge into m on chip);
* ``live[v, l]`` in [0, 1] per version v that a fused reader could keep
  resident during l: live >= fuse[m] for every reader m >= l of v
  (producer(v) <= l), live <= their sum (so live = OR of them);
* ``out[l]`` in [0, 1] for a layer without forced write-back: out <= fuse[m]
  for every reader m, out >= sum fuse[m] - (readers - 1) (out = AND);
* ``mode[l, k]`` binary, one per layer, tied to the fusion by
  sum_k R_k mode = sum_v B_v live[v, l],  sum_k in_k mode = fuse[l],
  sum_k out_k mode = out[l]  (the triples are distinct, so the mode is the
  fusion set's);
* capacity (F2) tied to the chosen point: sum_v B_v live[v, l] <= sum_n (i_n - J_n b_i) point[n];
* ``w[l, k, n]`` >= 0 with sum_k w[l, k, n] = point[n] and sum_n w[l, k, n] =
  mode[l, k]: with integral modes and points, w = mode * point; w is not
  created where R_k exceeds point n's capacity.

Objective: sum c[l, k, n] w[l, k, n], c the least per-layer metric over the
branches of layer l in mode k on point n (the branch choice is separable
once the mode is fixed), scaled by the least offered point value.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.mip_model import add_hardware
from deepopt_mip.formulation.mip_points import PointSet

KBIT = 1024.0


def fusion_model(graph, moves, points: PointSet, costs: dict, capacity_bits: np.ndarray,
                 scale: float) -> pyo.ConcreteModel:
    """The model (see the module docstring). ``costs[(l, k)]`` is the array over the offered points of
    layer l's least metric in mode k (``inf`` where it cannot run); ``capacity_bits[n]`` = i_n - J_n b_i."""
    m = pyo.ConcreteModel(name="deepopt-fusion")
    add_hardware(m, points)
    layers = len(graph)
    modes = [sorted({(t.reserved_bits, t.fused_in, t.fused_out) for t in layer_moves}) for layer_moves in moves]
    fusable = [c for c in range(layers) if graph.fusable[c]]
    m.fuse = pyo.Var(fusable, domain=pyo.Binary)

    def fused(c):
        return m.fuse[c] if graph.fusable[c] else 0

    readers_of: dict[tuple[int, int], list[int]] = {}
    for c in fusable:
        for v in graph.edge_version[c]:
            for l in range(graph.version_producer[v], c + 1):
                readers_of.setdefault((v, l), []).append(c)
    m.LIVE = pyo.Set(initialize=sorted(readers_of), dimen=2)
    m.live = pyo.Var(m.LIVE, bounds=(0, 1))
    m.LIVE_READER = pyo.Set(initialize=[(v, l, c) for (v, l), cs in sorted(readers_of.items()) for c in cs], dimen=3)
    m.live_low = pyo.Constraint(m.LIVE_READER, rule=lambda _, v, l, c: m.live[v, l] >= m.fuse[c])
    m.live_high = pyo.Constraint(m.LIVE, rule=lambda _, v, l: m.live[v, l] <= sum(m.fuse[c] for c in readers_of[v, l]))
    outs = [l for l in range(layers) if not graph.writes_back[l]]
    m.out = pyo.Var(outs, bounds=(0, 1))
    m.out_low = pyo.Constraint(outs, rule=lambda _, l: m.out[l] >= sum(m.fuse[c] for c in graph.readers[l])
                               - (len(graph.readers[l]) - 1))
    m.OUT_READER = pyo.Set(initialize=[(l, c) for l in outs for c in graph.readers[l]], dimen=2)
    m.out_high = pyo.Constraint(m.OUT_READER, rule=lambda _, l, c: m.out[l] <= m.fuse[c])
    resident = {l: sum(graph.version_elements[v] * float(points.space.bits_ifmap) / KBIT * m.live[v, ll]
                       for (v, ll) in readers_of if ll == l) for l in range(layers)}
    m.MODE = pyo.Set(initialize=[(l, k) for l in range(layers) for k in range(len(modes[l]))], dimen=2)
    m.mode = pyo.Var(m.MODE, domain=pyo.Binary)
    m.one_mode = pyo.Constraint(range(layers), rule=lambda _, l: sum(m.mode[l, k] for k in range(len(modes[l]))) == 1)
    def tie(l, column, target):
        terms = [(float(modes[l][k][column]) / (KBIT if column == 0 else 1.0), m.mode[l, k])
                 for k in range(len(modes[l])) if modes[l][k][column]]
        if not terms and target is None:
            return pyo.Constraint.Skip
        return sum(c * x for c, x in terms) == (0 if target is None else target)

    m.mode_reserved = pyo.Constraint(range(layers), rule=lambda _, l: tie(
        l, 0, resident[l] if any(ll == l for (_, ll) in readers_of) else None))
    m.mode_in = pyo.Constraint(range(layers), rule=lambda _, l: tie(l, 1, m.fuse[l] if graph.fusable[l] else None))
    m.mode_out = pyo.Constraint(range(layers), rule=lambda _, l: tie(l, 2, m.out[l] if l in outs else None))
    m.capacity = pyo.Constraint(range(layers), rule=lambda _, l: resident[l] <= sum(
        float(capacity_bits[n] / KBIT) * m.point[n] for n in range(points.size))
        if any(ll == l for (_, ll) in readers_of) else pyo.Constraint.Skip)
    cells = [(l, k, n) for l in range(layers) for k in range(len(modes[l])) for n in range(points.size)
             if np.isfinite(costs[l, k][n]) and modes[l][k][0] <= capacity_bits[n]]
    m.CELL = pyo.Set(initialize=cells, dimen=3)
    m.w = pyo.Var(m.CELL, bounds=(0, 1))
    by_layer_point: dict = {}
    by_mode: dict = {}
    for (l, k, n) in cells:
        by_layer_point.setdefault((l, n), []).append(m.w[l, k, n])
        by_mode.setdefault((l, k), []).append(m.w[l, k, n])
    m.LAYER_POINT = pyo.Set(initialize=[(l, n) for l in range(layers) for n in range(points.size)], dimen=2)
    m.w_point = pyo.Constraint(m.LAYER_POINT, rule=lambda _, l, n: sum(by_layer_point.get((l, n), [])) == m.point[n])
    m.w_mode = pyo.Constraint(m.MODE, rule=lambda _, l, k: sum(by_mode.get((l, k), [])) == m.mode[l, k])
    m.modes = modes
    m.scale = scale
    m.objective = pyo.Objective(expr=sum(float(costs[l, k][n] / scale) * m.w[l, k, n] for (l, k, n) in cells))
    return m


def chosen_fusion(m: pyo.ConcreteModel) -> frozenset[int]:
    """The fused consumers of a solved model."""
    return frozenset(c for c in m.fuse if pyo.value(m.fuse[c]) > 0.5)
