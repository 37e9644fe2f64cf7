"""Pyomo models of the hardware allocation and the per-layer branch choice (docs/mip.md sections 2 to 4).

Hardware (both models). One-hot binaries over the space's J/K pairs (the
pairs already obey the aspect rule) and over the sizes of each SRAM;
``area``: sum_a A_a x_a + sum_s A_s u_s <= budget * (1 + tolerance), in mm^2.
A continuous ``point[n]`` in [0, 1] per offered grid point n = (a, f, i, p)
is tied to the one-hots by marginal (transportation) constraints: for every
axis and value v, sum of point[n] over the points with that value = the
value's binary. With the binaries integral this forces point[n] = x_a u_f
u_i u_p: the points are the exact product of the four encodings, so any
per-point cost enters linearly. Points outside the budget, with SRAMs too
small for the array's registers, or where some layer has no feasible
branch, are not offered: choosing them is impossible.

Separable model (network E or D, every ``layer-sum`` metric): minimise
sum_n c_n point[n], c_n the point's objective with each layer on its best
branch (:func:`~deepopt_mip.formulation.mip_points.separable_data`). The
inner minimum over branches is taken in closed form per point, so the LP
relaxation is already integral: its optimum is a single point.

Frontier model (network products, the energy-delay frontier): per distinct
layer l (occurring n_l times) an integer y[l, b] in 0..n_l, how many of its
layers run branch b, sum_b y[l, b] = n_l; per point n and branch b feasible
and not dominated there (some other branch no worse in E and D), a
continuous w[l, b, n] >= 0 with sum_b w[l, b, n] = n_l point[n] and
w[l, b, n] <= y[l, b] (with the point chosen, w[., ., n] = y and every
other point's w = 0). Energy E = sum E_lbn w[l, b, n], delay D likewise;
minimise E subject to D <= ``delay_limit`` (epsilon-constraint). Energies
and delays are scaled by reference values so every coefficient is of
order 1.

Point frontier model (:func:`point_frontier_model`): the frontier model
with the hardware fixed to one offered point, as arrays for HiGHS; the
frontier sweep merges these per point (docs/mip.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from deepopt_mip.formulation.mip_points import FrontierData, PointSet
from deepopt_mip.formulation.spaces import UM2_PER_MM2

NO_LIMIT = 1e9
"""The scaled delay limit that means "none" (scaled delays are of order 1)."""


def _groups(values: np.ndarray) -> dict[int, np.ndarray]:
    """Indices of ``values`` grouped by value."""
    order = np.argsort(values, kind="stable")
    keys, starts = np.unique(values[order], return_index=True)
    return {int(k): order[s:e] for k, s, e in zip(keys, starts, list(starts[1:]) + [values.size])}


def add_hardware(m: pyo.ConcreteModel, points: PointSet) -> None:
    """One-hot axes, the area constraint and the point variables with their marginal constraints."""
    space = points.space
    rows, cols = space.array_pairs()
    sizes = space.fitting_sizes()
    axis_area_mm2 = [rows * cols * space.pe_um2 / UM2_PER_MM2] + [
        np.asarray(s) * 1024 * space.sram_um2_per_byte / UM2_PER_MM2 for s in sizes]
    m.POINT = pyo.RangeSet(0, points.size - 1)
    m.point = pyo.Var(m.POINT, bounds=(0, 1))
    m.axes = pyo.Block(["pair", "fsram", "isram", "psram"])
    area = 0
    for name, values, area_mm2 in zip(["pair", "fsram", "isram", "psram"], points.axes, axis_area_mm2):
        block = m.axes[name]
        groups = _groups(values)
        block.VALUE = pyo.Set(initialize=sorted(groups))
        block.pick = pyo.Var(block.VALUE, domain=pyo.Binary)
        block.one_hot = pyo.Constraint(expr=sum(block.pick[v] for v in block.VALUE) == 1)
        block.marginal = pyo.Constraint(
            block.VALUE, rule=lambda b, v, g=groups: sum(m.point[int(n)] for n in g[v]) == b.pick[v])
        area += sum(float(area_mm2[v]) * block.pick[v] for v in block.VALUE)
    m.area = pyo.Constraint(expr=area <= space.limit_um2 / UM2_PER_MM2)


def separable_model(points: PointSet, objective: np.ndarray) -> pyo.ConcreteModel:
    """Minimise the per-point objective (scaled by its least value) over the offered points."""
    m = pyo.ConcreteModel(name="deepopt-separable")
    add_hardware(m, points)
    m.scale = float(np.min(objective))
    # The LP relaxation is integral: HiGHS's presolve and feasibility-jump heuristic only cost time here
    # (3.2 s and 1 s of its 5 s on AlexNet at deepopt-16mm2; 0.8 s without them).
    m.highs_options = {"presolve": "off", "mip_heuristic_run_feasibility_jump": False}
    m.objective = pyo.Objective(expr=sum(float(c / m.scale) * m.point[n] for n, c in enumerate(objective)))
    return m


def undominated_branches(energy: np.ndarray, delay: np.ndarray) -> np.ndarray:
    """[L, B, n] mask of branches that can run and that no other branch dominates
    (no worse in both energy and delay, and better in one or earlier in branch order)."""
    ok = np.isfinite(energy) & np.isfinite(delay)
    e = np.where(ok, energy, np.inf)
    d = np.where(ok, delay, np.inf)
    keep = ok.copy()
    branches = energy.shape[1]
    for b in range(branches):
        for other in range(branches):
            if other == b:
                continue
            no_worse = (e[:, other] <= e[:, b]) & (d[:, other] <= d[:, b]) & ok[:, other]
            better = (e[:, other] < e[:, b]) | (d[:, other] < d[:, b]) | (other < b)
            keep[:, b] &= ~(no_worse & better)
    return keep


@dataclass(frozen=True)
class FrontierScale:
    energy_j: float
    delay_cycles: float


def frontier_model(data: FrontierData) -> pyo.ConcreteModel:
    """Minimise network energy subject to network delay <= ``m.delay_limit`` (scaled; see module)."""
    m = pyo.ConcreteModel(name="deepopt-frontier")
    points = data.points
    add_hardware(m, points)
    keep = undominated_branches(data.energy_j, data.delay_cycles)
    with np.errstate(invalid="ignore"):
        e_best = np.where(keep, data.energy_j, np.inf).min(axis=1)
        d_best = np.where(keep, data.delay_cycles, np.inf).min(axis=1)
    m.scale = FrontierScale(energy_j=float(np.min(data.counts @ e_best)),
                            delay_cycles=float(np.min(data.counts @ d_best)))
    layers, branches, where = np.nonzero(keep)
    used = sorted(set(zip(layers.tolist(), branches.tolist())))
    m.USED = pyo.Set(initialize=used, dimen=2)
    m.branch_count = pyo.Var(m.USED, domain=pyo.NonNegativeIntegers,
                             bounds=lambda _, l, b: (0, int(data.counts[l])))
    m.LAYER = pyo.RangeSet(0, data.counts.size - 1)
    m.all_layers = pyo.Constraint(m.LAYER, rule=lambda _, l: sum(
        m.branch_count[l, b] for (ll, b) in used if ll == l) == int(data.counts[l]))
    m.CHOICE = pyo.Set(initialize=list(zip(layers.tolist(), branches.tolist(), where.tolist())), dimen=3)
    m.choice = pyo.Var(m.CHOICE, domain=pyo.NonNegativeReals)
    m.choice_within_count = pyo.Constraint(m.CHOICE, rule=lambda _, l, b, n: m.choice[l, b, n] <= m.branch_count[l, b])
    per_layer_point: dict[tuple[int, int], list] = {}
    for l, b, n in zip(layers.tolist(), branches.tolist(), where.tolist()):
        per_layer_point.setdefault((l, n), []).append(m.choice[l, b, n])
    m.LAYER_POINT = pyo.Set(initialize=sorted(per_layer_point), dimen=2)
    m.choice_at_point = pyo.Constraint(m.LAYER_POINT, rule=lambda _, l, n: sum(per_layer_point[l, n]) == int(
        data.counts[l]) * m.point[n])
    e_scaled = data.energy_j[layers, branches, where] / m.scale.energy_j
    d_scaled = data.delay_cycles[layers, branches, where] / m.scale.delay_cycles
    choices = [m.choice[k] for k in zip(layers.tolist(), branches.tolist(), where.tolist())]
    m.energy = pyo.Expression(expr=sum(float(c) * v for c, v in zip(e_scaled, choices)))
    m.delay = pyo.Expression(expr=sum(float(c) * v for c, v in zip(d_scaled, choices)))
    m.delay_limit = pyo.Param(mutable=True, initialize=NO_LIMIT)
    m.epsilon = pyo.Constraint(expr=m.delay <= m.delay_limit)
    m.objective = pyo.Objective(expr=m.energy)
    return m


@dataclass(frozen=True)
class PointFrontierModel:
    """The frontier model with the hardware fixed to one offered point n, as arrays for HiGHS.

    Fixing the point fixes every one-hot and point variable, and the choice
    variables to w[l, b, n] = y[l, b] (0 at every other point). What is left:
    integers y[l, b] in 0..n_l, one per column, for the branches b that can
    run layer l at n and that no other branch dominates there; per distinct
    layer sum_b y[l, b] = n_l; minimise E = sum_c energy[c] y[c] subject to
    D = sum_c delay[c] y[c] <= the delay limit, both scaled by ``scale``
    (the point's ideal corner, so every coefficient is of order 1).
    """

    point: int
    layer: np.ndarray
    branch: np.ndarray
    energy: np.ndarray
    delay: np.ndarray
    counts: np.ndarray
    scale: FrontierScale

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The constraint matrix in compressed rows (starts, column indices, values): one row per distinct
        layer (its columns, coefficient 1), then the delay row."""
        order = np.argsort(self.layer, kind="stable")
        starts = np.searchsorted(self.layer[order], np.arange(self.counts.size))
        columns = self.delay.size
        return (np.append(starts, columns).astype(np.int32), np.concatenate([order, np.arange(columns)]).astype(
            np.int32), np.concatenate([np.ones(columns), self.delay]))


def point_frontier_model(data: FrontierData, n: int) -> PointFrontierModel:
    """:class:`PointFrontierModel` of offered point ``n`` (an index into ``data.points``)."""
    energy, delay = data.energy_j[..., n:n + 1], data.delay_cycles[..., n:n + 1]
    layers, branches = np.nonzero(undominated_branches(energy, delay)[..., 0])
    e_corner, d_corner = data.ideal_corners()
    scale = FrontierScale(energy_j=float(e_corner[n]), delay_cycles=float(d_corner[n]))
    return PointFrontierModel(point=n, layer=layers, branch=branches,
                              energy=data.energy_j[layers, branches, n] / scale.energy_j,
                              delay=data.delay_cycles[layers, branches, n] / scale.delay_cycles,
                              counts=data.counts, scale=scale)


def chosen_point(m: pyo.ConcreteModel) -> int:
    """Index (into the offered points) of the point a solved model chose."""
    values = np.array([pyo.value(m.point[n]) for n in m.POINT])
    return int(np.argmax(values))


def chosen_branch_counts(m: pyo.ConcreteModel, layers: int, branches: int) -> np.ndarray:
    """[L, B] how many layers of each distinct shape run each branch, in a solved frontier model."""
    counts = np.zeros((layers, branches), dtype=np.int64)
    for (l, b) in m.USED:
        counts[l, b] = int(round(pyo.value(m.branch_count[l, b])))
    return counts


def fix_hardware(m: pyo.ConcreteModel, points: PointSet, n: int) -> None:
    """Fix the one-hot encodings to offered point ``n`` (the model must then take that point)."""
    for name, values in zip(["pair", "fsram", "isram", "psram"], points.axes):
        block = m.axes[name]
        for v in block.VALUE:
            block.pick[v].fix(1 if v == int(values[n]) else 0)
