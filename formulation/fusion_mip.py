"""The MIPs of the hardware allocation with fusion (docs/mip.md section 9).

Shared by both models (:func:`add_hardware`, :func:`add_fusion`); variables and constraints (B_v in kbit, R_k likewise; n ranges over the
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

Separable objectives (:func:`fusion_model`): ``w[l, k, n]`` >= 0 with
sum_k w[l, k, n] = point[n] and sum_n w[l, k, n] = mode[l, k]: with
integral modes and points, w = mode * point; w is not created where R_k
exceeds point n's capacity. Objective: sum c[l, k, n] w[l, k, n], c the
least per-layer metric over the branches of layer l in mode k on point n
(the branch choice is separable once the mode is fixed), scaled by the
least offered point value.

Network products and the frontier (:func:`fusion_frontier_model`): a
one-hot branch per layer and a table over (mode, branch, point) whose
marginals are the three one-hots; least energy within a delay limit.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.mip_model import NO_LIMIT, add_hardware
from deepopt_mip.formulation.mip_points import PointSet

KBIT = 1024.0


def layer_modes(moves) -> list[list[tuple[float, bool, bool]]]:
    """Per layer its modes: the distinct (R_l, fused in, fused out) triples of its transitions, sorted."""
    return [sorted({(t.reserved_bits, t.fused_in, t.fused_out) for t in layer_moves}) for layer_moves in moves]


def add_fusion(m: pyo.ConcreteModel, graph, modes, points: PointSet, capacity_bits: np.ndarray) -> None:
    """The fusion binaries, ``live``, ``out``, the one-hot ``mode`` per layer tied to them, and the capacity
    (F2) tied to the chosen point (see the module docstring)."""
    layers = len(graph)
    fusable = [c for c in range(layers) if graph.fusable[c]]
    m.fuse = pyo.Var(fusable, domain=pyo.Binary)
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
    m.modes = modes


def fusion_model(graph, moves, points: PointSet, costs: dict, capacity_bits: np.ndarray,
                 scale: float) -> pyo.ConcreteModel:
    """The model (see the module docstring). ``costs[(l, k)]`` is the array over the offered points of
    layer l's least metric in mode k (``inf`` where it cannot run); ``capacity_bits[n]`` = i_n - J_n b_i."""
    m = pyo.ConcreteModel(name="deepopt-fusion")
    add_hardware(m, points)
    modes = layer_modes(moves)
    add_fusion(m, graph, modes, points, capacity_bits)
    layers = len(graph)
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
    m.scale = scale
    m.objective = pyo.Objective(expr=sum(float(costs[l, k][n] / scale) * m.w[l, k, n] for (l, k, n) in cells))
    return m


def fusion_frontier_model(data) -> pyo.ConcreteModel:
    """Least network energy subject to network delay <= ``m.delay_limit``, with fusion (docs/mip.md
    section 9): :func:`add_hardware` and :func:`add_fusion`, then per layer l a one-hot ``branch[l, b]`` and
    a table ``choice[l, k, b, n]`` >= 0 over the cells where branch b can run layer l in mode k on point n,
    is not dominated there (:func:`~.mip_model.undominated_branches`) and R_k fits the point; its three
    marginals are the one-hots: sum over (k, b) = point[n], over (b, n) = mode[l, k], over (k, n) =
    branch[l, b]. With the one-hots integral the only non-zero entry is the chosen (k, b, n), equal to 1,
    so E = sum E_lkbn choice and D likewise are the chosen schedule's totals. ``data`` is a
    :class:`~.fusion_mip_points.FusionFrontierData`; energies and delays are scaled by its ``scale``."""
    m = pyo.ConcreteModel(name="deepopt-fusion-frontier")
    points = data.points
    add_hardware(m, points)
    add_fusion(m, data.graph, data.modes, points, data.capacity_bits)
    cells = data.cells()
    m.scale = data.scale
    used = sorted({(l, b) for (l, k, b, n) in cells})
    m.BRANCH = pyo.Set(initialize=used, dimen=2)
    m.branch = pyo.Var(m.BRANCH, domain=pyo.Binary)
    m.CHOICE = pyo.Set(initialize=cells, dimen=4)
    m.choice = pyo.Var(m.CHOICE, bounds=(0, 1))
    marginals: tuple[dict, dict, dict] = ({}, {}, {})
    for cell in cells:
        l, k, b, n = cell
        for table, key in zip(marginals, ((l, n), (l, k), (l, b))):
            table.setdefault(key, []).append(m.choice[cell])
    by_point, by_mode, by_branch = marginals
    m.LAYER_POINT = pyo.Set(initialize=[(l, n) for l in range(len(data.graph)) for n in range(points.size)], dimen=2)
    m.choice_point = pyo.Constraint(m.LAYER_POINT, rule=lambda _, l, n: sum(by_point.get((l, n), [])) == m.point[n])
    m.choice_mode = pyo.Constraint(m.MODE, rule=lambda _, l, k: sum(by_mode.get((l, k), [])) == m.mode[l, k])
    m.choice_branch = pyo.Constraint(m.BRANCH, rule=lambda _, l, b: sum(by_branch[l, b]) == m.branch[l, b])
    energy = [float(data.energy_j[l, k][b, n] / m.scale.energy_j) for (l, k, b, n) in cells]
    delay = [float(data.delay_cycles[l, k][b, n] / m.scale.delay_cycles) for (l, k, b, n) in cells]
    m.energy = pyo.Expression(expr=sum(c * m.choice[cell] for c, cell in zip(energy, cells)))
    m.delay = pyo.Expression(expr=sum(c * m.choice[cell] for c, cell in zip(delay, cells)))
    m.delay_limit = pyo.Param(mutable=True, initialize=NO_LIMIT)
    m.epsilon = pyo.Constraint(expr=m.delay <= m.delay_limit)
    m.objective = pyo.Objective(expr=m.energy)
    return m


def chosen_schedule(m: pyo.ConcreteModel) -> tuple[list[int], list[int]]:
    """(mode index, branch index) per layer of a solved :func:`fusion_frontier_model`."""
    layers = len(m.modes)
    mode = [max(range(len(m.modes[l])), key=lambda k, l=l: pyo.value(m.mode[l, k])) for l in range(layers)]
    branch = [0] * layers
    best = [-1.0] * layers
    for (l, b) in m.BRANCH:
        value = pyo.value(m.branch[l, b])
        if value > best[l]:
            best[l], branch[l] = value, b
    return mode, branch


def chosen_fusion(m: pyo.ConcreteModel) -> frozenset[int]:
    """The fused consumers of a solved model."""
    return frozenset(c for c in m.fuse if pyo.value(m.fuse[c]) > 0.5)
