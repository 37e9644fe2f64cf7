"""The Pyomo model of a study (several networks on one chip, weights, caps, a branch limit).

Hardware as in :mod:`~deepopt_mip.formulation.mip_model`: one-hot axes, the
area constraint, and point[n] in [0, 1] per offered point n, the exact
product of the one-hots. Per network w and distinct layer l of w (occurring
n_wl times):

* count[w, l, b] in 0..n_wl, integer: how many of those layers run branch b;
  sum_b count[w, l, b] = n_wl;
* choice[w, l, b, n] >= 0 for each branch b offered at point n (below), with
  sum_b choice[w, l, b, n] = n_wl point[n] and choice[w, l, b, n] <= count[w, l, b]:
  with the point chosen, choice[., ., ., n] = count, and every other point's
  choices are 0;
* E_w = sum E_wlbn choice[w, l, b, n], D_w likewise, and for a network whose
  metric is separable and that has no cap, M_w = sum m(E_wlbn, D_wlbn) choice
  (its layer-sum or its E or D, the metric taken per layer);
* caps: E_w <= max_energy_w, D_w <= max_delay_w;
* branch limit N: use[b] binary, sum_b use[b] <= N, count[w, l, b] <= n_wl use[b].

Offered branches at a point: for an uncapped network with a separable
metric, those with a finite per-layer metric (only the least one per layer
without a branch limit); otherwise those that can run (finite E and D), and
without a branch limit only the undominated ones (a dominated branch is
never needed: swapping it for its dominator lowers neither E nor D).

Objective, by ``kind``:

* ``linear`` (E, D or layer-sum metrics): sum_w weight_w * M_w, or E_w / D_w
  for a capped network;
* ``box`` (network products Y^p X^q, see :mod:`~deepopt_mip.solvers.study_mip`):
  sum_w (coef_w * Y_w + coef_x_w * X_w) with mutable coefficients, and mutable limits lo_w <= X_w <= hi_w;
* ``frontier`` (the weighted energy-delay frontier): sum_w weight_w E_w subject
  to sum_w weight_w D_w <= ``delay_limit`` (mutable, epsilon-constraint).

Energies, delays and the objective are scaled by reference values of order
of the optimum, so every coefficient is of order 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.mip_model import NO_LIMIT, add_hardware, undominated_branches
from deepopt_mip.formulation.mip_points import PointSet
from deepopt_mip.formulation.problem import Problem


@dataclass(frozen=True)
class NetworkTables:
    """One network's distinct layers on the offered points: counts[l], energy_j[l, b, n], delay_cycles[l, b, n]."""

    counts: np.ndarray
    energy_j: np.ndarray
    delay_cycles: np.ndarray


def product_roles(metric: str) -> tuple[str, str, int]:
    """For a product E^a D^b with one exponent 1: (Y, X, q) with metric = Y * X^q, Y the quantity the
    box model minimises and X the one it bounds: (energy, delay, b) when a = 1, else (delay, energy, a)."""
    a, b = check_metric(metric)
    return ("energy", "delay", b) if a == 1 else ("delay", "energy", a)


def _offered(problem: Problem, item, tables: NetworkTables) -> tuple[np.ndarray, np.ndarray | None]:
    """Mask [l, b, n] of offered branches, and the per-layer metric where it is the objective (else None)."""
    energy, delay = tables.energy_j, tables.delay_cycles
    with np.errstate(invalid="ignore"):
        if not item.capped and (problem.aggregate == "layer-sum" or 0 in check_metric(problem.metric)):
            per_layer = np.asarray(metric_value(energy, delay, problem.metric), dtype=float)
            per_layer = np.where(np.isnan(per_layer), np.inf, per_layer)
            mask = np.isfinite(per_layer)
            if problem.max_branches is None:
                best = np.argmin(per_layer, axis=1)
                mask = mask & (np.arange(energy.shape[1])[None, :, None] == best[:, None, :])
            return mask, per_layer
        if problem.max_branches is None:
            return undominated_branches(energy, delay), None
        return np.isfinite(energy) & np.isfinite(delay), None


@dataclass(frozen=True)
class StudyScale:
    """Reference values: per network energy (J) and delay (cycles), the objective's, and (frontier model) the
    weighted total delay's."""

    energy_j: tuple[float, ...]
    delay_cycles: tuple[float, ...]
    objective: float
    delay_total_cycles: float = 1.0
    """The weighted total delay's reference value (frontier model only)."""


def study_model(problem: Problem, points: PointSet, tables: list[NetworkTables], scale: StudyScale,
                kind: str) -> pyo.ConcreteModel:
    """The model over the offered ``points`` (see the module docstring); ``kind`` is linear or box."""
    if kind not in ("linear", "box", "frontier"):
        raise ValueError(f"unknown study model kind {kind!r}")
    m = pyo.ConcreteModel(name=f"deepopt-study-{kind}")
    add_hardware(m, points)
    m.scale = scale
    m.NETWORK = pyo.RangeSet(0, len(tables) - 1)
    branches = tables[0].energy_j.shape[1]
    if problem.max_branches is not None:
        m.use = pyo.Var(range(branches), domain=pyo.Binary)
        m.branch_limit = pyo.Constraint(expr=sum(m.use[b] for b in range(branches)) <= problem.max_branches)
    m.nets = pyo.Block(m.NETWORK)
    objective_terms, delay_terms = [], []
    for w, (item, table) in enumerate(zip(problem.networks, tables)):
        block = m.nets[w]
        mask, per_layer = _offered(problem, item, table)
        layers, branch, where = np.nonzero(mask)
        used = sorted(set(zip(layers.tolist(), branch.tolist())))
        block.USED = pyo.Set(initialize=used, dimen=2)
        block.count = pyo.Var(block.USED, domain=pyo.NonNegativeIntegers,
                              bounds=lambda _, l, b, c=table.counts: (0, int(c[l])))
        block.LAYER = pyo.RangeSet(0, table.counts.size - 1)
        by_layer: dict[int, list] = {l: [] for l in range(table.counts.size)}
        for l, b in used:
            by_layer[l].append(block.count[l, b])
        block.all_layers = pyo.Constraint(block.LAYER, rule=lambda _, l, c=table.counts, g=by_layer: sum(g[l]) == int(c[l]))
        if problem.max_branches is not None:
            block.limit = pyo.Constraint(block.USED, rule=lambda _, l, b, c=table.counts: block.count[l, b] <= int(
                c[l]) * m.use[b])
        triples = list(zip(layers.tolist(), branch.tolist(), where.tolist()))
        block.CHOICE = pyo.Set(initialize=triples, dimen=3)
        block.choice = pyo.Var(block.CHOICE, domain=pyo.NonNegativeReals)
        block.within_count = pyo.Constraint(block.CHOICE, rule=lambda b_, l, b, n: b_.choice[l, b, n] <= b_.count[l, b])
        per_layer_point = {(l, n): [] for l in range(table.counts.size) for n in range(points.size)}
        for key in triples:
            per_layer_point[key[0], key[2]].append(block.choice[key])
        block.LAYER_POINT = pyo.Set(initialize=sorted(per_layer_point), dimen=2)
        block.at_point = pyo.Constraint(block.LAYER_POINT, rule=lambda _, l, n, c=table.counts, g=per_layer_point: (
            sum(g[l, n]) == int(c[l]) * m.point[n]))
        choices = [block.choice[k] for k in triples]
        e_scaled = table.energy_j[layers, branch, where] / scale.energy_j[w]
        d_scaled = table.delay_cycles[layers, branch, where] / scale.delay_cycles[w]
        finite_e, finite_d = np.isfinite(e_scaled), np.isfinite(d_scaled)
        if finite_e.all():
            block.energy = pyo.Expression(expr=sum(float(c) * v for c, v in zip(e_scaled, choices)))
        if finite_d.all():
            block.delay = pyo.Expression(expr=sum(float(c) * v for c, v in zip(d_scaled, choices)))
        if item.max_energy_j is not None:
            block.energy_cap = pyo.Constraint(expr=block.energy <= item.max_energy_j / scale.energy_j[w])
        if item.max_delay_cycles is not None:
            block.delay_cap = pyo.Constraint(expr=block.delay <= item.max_delay_cycles / scale.delay_cycles[w])
        if kind == "linear":
            if per_layer is not None:
                coefficient = per_layer[layers, branch, where] * item.weight / scale.objective
                objective_terms.append(sum(float(c) * v for c, v in zip(coefficient, choices)))
            else:
                quantity, unit = ((block.energy, scale.energy_j[w]) if problem.metric == "energy"
                                  else (block.delay, scale.delay_cycles[w]))
                objective_terms.append(item.weight * unit / scale.objective * quantity)
        elif kind == "frontier":
            objective_terms.append(item.weight * scale.energy_j[w] / scale.objective * block.energy)
            delay_terms.append(item.weight * scale.delay_cycles[w] / scale.delay_total_cycles * block.delay)
        else:
            y, x, _ = product_roles(problem.metric)
            block.coef = pyo.Param(mutable=True, initialize=1.0)
            block.coef_x = pyo.Param(mutable=True, initialize=0.0)
            block.limit_x = pyo.Param(mutable=True, initialize=NO_LIMIT)
            block.floor_x = pyo.Param(mutable=True, initialize=0.0)
            block.x_within = pyo.Constraint(expr=getattr(block, x) <= block.limit_x)
            block.x_above = pyo.Constraint(expr=getattr(block, x) >= block.floor_x)
            objective_terms.append(block.coef * getattr(block, y) + block.coef_x * getattr(block, x))
    if kind == "frontier":
        m.delay_limit = pyo.Param(mutable=True, initialize=NO_LIMIT)
        m.epsilon = pyo.Constraint(expr=sum(delay_terms) <= m.delay_limit)
    m.objective = pyo.Objective(expr=sum(objective_terms))
    return m


def chosen_counts(m: pyo.ConcreteModel, network: int, layers: int, branches: int) -> np.ndarray:
    """[L, B] branch counts of one network in a solved study model."""
    block = m.nets[network]
    counts = np.zeros((layers, branches), dtype=np.int64)
    for (l, b) in block.USED:
        counts[l, b] = int(round(pyo.value(block.count[l, b])))
    return counts
