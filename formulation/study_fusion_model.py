"""The Pyomo model of a study with fusion, for linear objectives (docs/studies.md, "Fusion"; docs/mip.md 7).

One shared hardware block (:func:`~.mip_model.add_hardware`: one-hot axes,
area, point[n] per offered point n). Per network w, the fusion model of
:func:`~.fusion_mip.fusion_model` as a sub-block ``net{w}`` (its fusion
binaries x_m, live/out variables, mode binaries per layer, capacity tied to
its own point variables, and w[l, k, n] = mode[l, k] * point[n]); its own
objective is switched off and its points are tied to the shared ones,
``net{w}.point[n] = point[n]``, which ties its one-hot axes too (the points
are the exact product of the one-hots). Then, by network:

* uncapped with a separable metric (E or D alone, ``layer-sum``):
  M_w = sum c[l, k, n] w[l, k, n], c the least per-layer metric over the
  branches of layer l in mode k at point n (the branch choice is separable
  once the mode is fixed, docs/mip.md 9);
* capped (E or D of the network's totals; c above is then the least
  energy over the branches that can run, which only decides where w exists):
  branch[l, b] binary with
  sum_b branch[l, b] = 1, and y[l, k, b, n] >= 0 per cell of w and branch b
  offered there (finite E and D, undominated within the cell: a dominated
  branch is never needed, swapping it for its dominator lowers neither E
  nor D), sum_b y[l, k, b, n] = w[l, k, n], y[l, k, b, n] <= branch[l, b].
  With integral w and branches, y = w * branch, so
  E_w = sum E[l, k, b, n] y and D_w = sum D[l, k, b, n] y are the network's
  totals; caps E_w <= max_energy_w, D_w <= max_delay_w; M_w = E_w or D_w.

Objective: sum_w weight_w M_w, scaled by a reference value of the order of
the optimum. Network products (``kind="box"``): every network has the branch
variables and totals of the capped case, and the objective is the box
model's sum_w (coef_w Y_w + coef_x_w X_w) with mutable limits
lo_w <= X_w <= hi_w, exactly as in :mod:`~.study_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.costmodel.common import quiet
from deepopt_mip.formulation.costmodel.fusion import FusionGraph, counts_beside, fused_costs_of_counts
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.fusion_grid import layer_keys, transitions
from deepopt_mip.formulation.fusion_mip import fusion_model
from deepopt_mip.formulation.mip_model import NO_LIMIT, add_hardware
from deepopt_mip.formulation.mip_points import PointSet
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.study_bounds import exact_per_network
from deepopt_mip.formulation.study_model import StudyScale, product_roles


@dataclass(frozen=True)
class NetworkModes:
    """One network's fusion graph, transitions and modes on the offered points, with the per-mode costs:
    ``least[l, k]`` over points (the least metric, or for a capped network the least energy over branches that
    can run; inf where none) and, capped only, ``energy_j[l, k]`` / ``delay_cycles[l, k]`` as B x points."""

    graph: FusionGraph
    moves: list
    modes: list
    least: dict
    energy_j: dict | None
    delay_cycles: dict | None


def network_modes(problem: Problem, item, points_hw, capacity_bits: np.ndarray) -> NetworkModes:
    """The costs of every mode of every layer of one network on the offered points (cost model calls only)."""
    graph = FusionGraph.of(item.network)
    moves = transitions(graph, float(problem.space.bits_ifmap), float(np.max(capacity_bits)))
    modes = [sorted({(t.reserved_bits, t.fused_in, t.fused_out) for t in layer_moves}) for layer_moves in moves]
    separable = exact_per_network(problem, item)
    least, energy, delay = {}, ({} if not separable else None), ({} if not separable else None)
    for l, layer in enumerate(item.network.layers):
        for k, (reserved, fused_in, fused_out) in enumerate(modes[l]):
            if separable:
                (least[l, k],) = layer_keys(layer, points_hw, problem.tech, reserved, fused_in, fused_out,
                                            problem.metric, True)
                continue
            with quiet:
                costs = fused_costs_of_counts(counts_beside(layer, points_hw, reserved), layer, points_hw,
                                              problem.tech, fused_in, fused_out)
                shape = np.shape(capacity_bits)
                energy[l, k] = np.array([np.broadcast_to(costs[b].energy_j, shape) for b in BRANCHES], dtype=float)
                delay[l, k] = np.array([np.broadcast_to(costs[b].delay_cycles, shape) for b in BRANCHES], dtype=float)
                runs = np.isfinite(energy[l, k]) & np.isfinite(delay[l, k])
                least[l, k] = np.where(reserved <= capacity_bits, np.min(np.where(runs, energy[l, k], np.inf), axis=0),
                                       np.inf)
    return NetworkModes(graph=graph, moves=moves, modes=modes, least=least, energy_j=energy, delay_cycles=delay)


def _undominated(energy: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """Branches (indices) that can run and that no other dominates (ties: the earlier branch is kept)."""
    ok = np.flatnonzero(np.isfinite(energy) & np.isfinite(delay))
    keep = []
    for b in ok:
        dominated = any((energy[c] <= energy[b] and delay[c] <= delay[b])
                        and (energy[c] < energy[b] or delay[c] < delay[b] or c < b) for c in ok if c != b)
        if not dominated:
            keep.append(int(b))
    return np.array(keep, dtype=int)


def fused_study_model(problem: Problem, points: PointSet, modes: list[NetworkModes], capacity_bits: np.ndarray,
                      energy_ref_j: list[float], delay_ref_cycles: list[float], objective_ref: float,
                      kind: str = "linear") -> pyo.ConcreteModel:
    """The model (module docstring) over the offered ``points``; references scale energies, delays, objective.
    ``kind`` ``box``: network products, every network with its branch variables and the mutable box terms of
    :func:`~.study_model.study_model` (solved by the box branch and bound of :mod:`~deepopt_mip.solvers.study_mip`)."""
    m = pyo.ConcreteModel(name="deepopt-study-fusion")
    add_hardware(m, points)
    m.objective_ref = objective_ref
    terms = []
    for w, (item, net) in enumerate(zip(problem.networks, modes)):
        sub = fusion_model(net.graph, net.moves, points, net.least, capacity_bits, scale=1.0)
        sub.objective.deactivate()
        m.add_component(f"net{w}", sub)
        m.add_component(f"net{w}_tie", pyo.Constraint(m.POINT, rule=lambda _, n, s=sub: s.point[n] == m.point[n]))
        if net.energy_j is None:
            terms.append(item.weight / objective_ref * sum(float(net.least[l, k][n]) * sub.w[l, k, n]
                                                            for (l, k, n) in sub.CELL))
            continue
        cells = []
        for (l, k, n) in sub.CELL:
            for b in _undominated(net.energy_j[l, k][:, n], net.delay_cycles[l, k][:, n]):
                cells.append((l, k, int(b), n))
        pairs = sorted({(l, b) for (l, _, b, _) in cells})
        sub.BRANCH = pyo.Set(initialize=pairs, dimen=2)
        sub.branch = pyo.Var(sub.BRANCH, domain=pyo.Binary)
        layers = len(item.network.layers)
        sub.one_branch = pyo.Constraint(range(layers), rule=lambda s, l: sum(
            s.branch[ll, b] for (ll, b) in pairs if ll == l) == 1)
        sub.YCELL = pyo.Set(initialize=cells, dimen=4)
        sub.y = pyo.Var(sub.YCELL, bounds=(0, 1))
        by_cell: dict = {}
        for (l, k, b, n) in cells:
            by_cell.setdefault((l, k, n), []).append(sub.y[l, k, b, n])
        sub.y_cell = pyo.Constraint(sub.CELL, rule=lambda s, l, k, n, g=by_cell: sum(g.get((l, k, n), [])) == s.w[l, k, n])
        sub.y_branch = pyo.Constraint(sub.YCELL, rule=lambda s, l, k, b, n: s.y[l, k, b, n] <= s.branch[l, b])
        sub.energy = pyo.Expression(expr=sum(float(net.energy_j[l, k][b, n] / energy_ref_j[w]) * sub.y[l, k, b, n]
                                             for (l, k, b, n) in cells))
        sub.delay = pyo.Expression(expr=sum(float(net.delay_cycles[l, k][b, n] / delay_ref_cycles[w])
                                            * sub.y[l, k, b, n] for (l, k, b, n) in cells))
        if item.max_energy_j is not None:
            sub.energy_cap = pyo.Constraint(expr=sub.energy <= item.max_energy_j / energy_ref_j[w])
        if item.max_delay_cycles is not None:
            sub.delay_cap = pyo.Constraint(expr=sub.delay <= item.max_delay_cycles / delay_ref_cycles[w])
        if kind == "box":
            terms.append(_box_terms(problem, sub))
            continue
        quantity, unit = ((sub.energy, energy_ref_j[w]) if problem.metric == "energy"
                          else (sub.delay, delay_ref_cycles[w]))
        terms.append(item.weight * unit / objective_ref * quantity)
    m.objective = pyo.Objective(expr=sum(terms))
    m.scale = StudyScale(energy_j=tuple(energy_ref_j), delay_cycles=tuple(delay_ref_cycles), objective=objective_ref)
    m.network_blocks = [m.component(f"net{w}") for w in range(len(modes))]
    return m


def _box_terms(problem: Problem, sub):
    """The box model's per-network objective term and limits (as :func:`~.study_model.study_model`'s ``box``):
    coef * Y + coef_x * X with lo <= X <= hi, all mutable."""
    y, x, _ = product_roles(problem.metric)
    sub.coef = pyo.Param(mutable=True, initialize=1.0)
    sub.coef_x = pyo.Param(mutable=True, initialize=0.0)
    sub.limit_x = pyo.Param(mutable=True, initialize=NO_LIMIT)
    sub.floor_x = pyo.Param(mutable=True, initialize=0.0)
    sub.x_within = pyo.Constraint(expr=getattr(sub, x) <= sub.limit_x)
    sub.x_above = pyo.Constraint(expr=getattr(sub, x) >= sub.floor_x)
    return sub.coef * getattr(sub, y) + sub.coef_x * getattr(sub, x)


def chosen_branches(m: pyo.ConcreteModel, network: int, layers: int) -> list[int]:
    """The branch per layer a solved model chose for a capped network."""
    sub = m.component(f"net{network}")
    out = [0] * layers
    for (l, b) in sub.BRANCH:
        if pyo.value(sub.branch[l, b]) > 0.5:
            out[l] = int(b)
    return out
