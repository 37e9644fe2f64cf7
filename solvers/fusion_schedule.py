"""The exact best fusion and branches on one hardware point (docs/model.md section 11.6).

A dynamic program over the layers in execution order. The decisions are
the binaries x_m of the fusable consumers (:class:`~deepopt_mip.formulation.costmodel.fusion.FusionGraph`);
x_m is decided at m's first producer, the layer where the first tensor m
would read becomes live. The state between layer l and l + 1 is the set of
consumers m > l already decided fused. Given the state entering l and the
decisions taken at l, everything layer l costs is known: its resident bits
R_l (the versions read by fused m >= l and produced at or before l), whether
it is fused in (l in the state) and whether it is fused out (all its
readers decided, since each reader's first producer is at or before l).
Layer costs therefore add up along the path, and each state keeps

* separable objectives (``layer-sum``, network energy or delay): the least
  sum of per-layer metric values (the per-layer best branch is optimal
  once R_l and the fusion flags are fixed);
* network products E^a D^b: the Pareto frontier of (sum E, sum D), since
  E^a D^b is increasing in both.

Every consistent decision vector is one path (each x_m is set exactly once,
all-or-none per consumer by construction), every path's cost is the sum of
its layer costs, and a dropped partial path is dominated by a kept one with
the same state (same future): the result is the exact optimum over all
fusion sets and branches. The unfused optimum (:func:`~.schedule.best_schedule`)
is one of the paths; where it is no worse than the path found (equal up to
rounding) it is returned, so fusion never makes a point worse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import (FusionGraph, counts_beside, fused_costs_of_counts,
                                                      resident_capacity_bits)
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, BranchCost
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.fusion_grid import decisions as fusion_decisions
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import check_aggregate, check_metric, metric_value
from deepopt_mip.solvers.schedule import aggregate_objective, best_schedule


@dataclass(frozen=True)
class FusionSchedule:
    """A fusion set and a branch per layer on one hardware point, with what they cost.

    ``fused`` lists the fused consumers (layer indices), ``fused_edges`` their
    edges as (producer, consumer) names; per layer: ``reserved_bits`` (R_l),
    ``fused_in``, ``fused_out``, the chosen branch's :class:`BranchCost`.
    """

    fused: tuple[int, ...]
    fused_edges: tuple[tuple[str, str], ...]
    branch_index: tuple[int, ...]
    layer_costs: tuple[BranchCost, ...]
    reserved_bits: tuple[float, ...]
    fused_in: tuple[bool, ...]
    fused_out: tuple[bool, ...]
    energy_j: float
    delay_cycles: float
    objective: float

    @property
    def layer_energy_j(self) -> tuple[float, ...]:
        return tuple(float(c.energy_j) for c in self.layer_costs)

    @property
    def layer_delay_cycles(self) -> tuple[float, ...]:
        return tuple(float(c.delay_cycles) for c in self.layer_costs)

    def dram_bits(self, hardware: HardwarePoint) -> float:
        """Bits moved over the DRAM link per image: sum of D_f b_f + D_i b_i + D_o b_o."""
        hw = hardware.arrays()
        return float(sum(c.counts.dram_filter * hw.bits_filter + c.counts.dram_ifmap * hw.bits_ifmap
                         + c.counts.dram_ofmap * hw.bits_ofmap for c in self.layer_costs))

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.objective))


@dataclass(frozen=True)
class FusionAllocation:
    """An allocation with fusion: the optimum (``solution``, its ``fused`` schedule) and the best unfused
    schedule of the same hardware (``unfused``)."""

    solution: object
    fused: FusionSchedule
    unfused: FusionSchedule


class FusionCosts:
    """Cached layer costs on one hardware point: per (layer, R_l, fused in, fused out) every branch.

    :meth:`prepare` evaluates a layer's branch functions once for all the
    R_l values it is asked for (the ifmap SRAM size as an array); R_l = 0 is
    evaluated on the scalar hardware, exactly as the unfused model.
    """

    def __init__(self, network, hardware: HardwarePoint, tech) -> None:
        self.layers = network.layers
        shapes: dict = {}
        self.keys = [shapes.setdefault(replace(layer, name="-"), len(shapes)) for layer in network.layers]
        self.hw = hardware.arrays()
        self.tech = tech
        self._counts: dict = {}
        self._cache: dict = {}

    def prepare(self, layer: int, reserved_bits) -> None:
        key = self.keys[layer]
        missing = sorted({float(r) for r in reserved_bits} - {r for (k, r) in self._counts if k == key})
        if 0.0 in missing:
            self._counts[key, 0.0] = counts_beside(self.layers[layer], self.hw)
            missing.remove(0.0)
        if not missing:
            return
        counts = counts_beside(self.layers[layer], self.hw, np.array(missing))
        for n, reserved in enumerate(missing):
            self._counts[key, reserved] = {
                b: c.map(lambda v, n=n: float(np.broadcast_to(v, (len(missing),))[n])) for b, c in counts.items()}

    def branches(self, layer: int, reserved_bits: float, fused_in: bool, fused_out: bool) -> dict[str, BranchCost]:
        key = (self.keys[layer], float(reserved_bits), fused_in, fused_out)
        if key not in self._cache:
            self.prepare(layer, [reserved_bits])
            self._cache[key] = fused_costs_of_counts(self._counts[key[:2]], self.layers[layer], self.hw,
                                                     self.tech, fused_in, fused_out)
        return self._cache[key]

    def energy_delay(self, layer: int, reserved_bits: float, fused_in: bool,
                     fused_out: bool) -> tuple[np.ndarray, np.ndarray]:
        costs = self.branches(layer, reserved_bits, fused_in, fused_out)
        return (np.array([float(costs[b].energy_j) for b in BRANCHES]),
                np.array([float(costs[b].delay_cycles) for b in BRANCHES]))


def fusion_tables(graph: FusionGraph, costs: FusionCosts, fused) -> tuple[np.ndarray, np.ndarray, list] | None:
    """L x B energy and delay of every layer with the consumers ``fused`` fused, and (R_l, in, out) per
    layer; ``None`` if some layer's resident tensors exceed the capacity (F2)."""
    fused = frozenset(fused)
    graph.check(fused)
    cap = float(resident_capacity_bits(costs.hw))
    energy, delay, flags = [], [], []
    for l in range(len(graph)):
        reserved = graph.resident_bits(l, fused, float(costs.hw.bits_ofmap))
        if reserved > cap:
            return None
        state = (reserved, l in fused, graph.fused_out(l, fused))
        e, d = costs.energy_delay(l, *state)
        energy.append(e)
        delay.append(d)
        flags.append(state)
    return np.array(energy), np.array(delay), flags


def fusion_schedule(graph: FusionGraph, costs: FusionCosts, fused, branch_index, metric: str,
                    aggregate: str) -> FusionSchedule:
    """What the consumers ``fused`` fused and the branches ``branch_index`` cost (must fit, F2)."""
    tables = fusion_tables(graph, costs, fused)
    if tables is None:
        raise ValueError("the fused tensors do not fit the ifmap SRAM")
    energy, delay, flags = tables
    rows = np.arange(len(graph))
    index = np.asarray(branch_index)
    e, d = energy[rows, index], delay[rows, index]
    return FusionSchedule(
        fused=tuple(sorted(fused)), fused_edges=tuple(graph.fused_edges(fused)),
        branch_index=tuple(int(i) for i in index),
        layer_costs=tuple(costs.branches(l, *flags[l])[BRANCHES[int(index[l])]] for l in rows),
        reserved_bits=tuple(f[0] for f in flags), fused_in=tuple(f[1] for f in flags),
        fused_out=tuple(f[2] for f in flags), energy_j=float(np.sum(e)), delay_cycles=float(np.sum(d)),
        objective=aggregate_objective(e, d, metric, aggregate))


def best_for_fusion_set(graph: FusionGraph, costs: FusionCosts, fused, metric: str,
                        aggregate: str) -> FusionSchedule | None:
    """The best branches for one fusion set (``None`` if it does not fit): the brute force's inner step."""
    tables = fusion_tables(graph, costs, fused)
    if tables is None:
        return None
    schedule = best_schedule(tables[0], tables[1], metric, aggregate)
    return fusion_schedule(graph, costs, fused, schedule.branch_index, metric, aggregate)


def _prune(energy, delay, key, state, separable: bool) -> np.ndarray:
    """Indices of the candidates kept: per state the least key (separable) or the (E, D) frontier."""
    if separable:
        order = np.lexsort((key, state))
        first = np.ones(order.size, dtype=bool)
        first[1:] = state[order][1:] != state[order][:-1]
        return np.sort(order[first])
    order = np.lexsort((delay, energy, state))
    s, d = state[order], delay[order]
    keep = np.zeros(order.size, dtype=bool)
    best = np.inf
    for k in range(order.size):
        if k == 0 or s[k] != s[k - 1]:
            best = np.inf
        if d[k] < best:
            keep[k] = True
            best = d[k]
    return np.sort(order[keep])


@dataclass(frozen=True)
class _Program:
    """The program's final candidates (energy, delay, key per kept path) and how to trace each back."""

    energy_j: np.ndarray
    delay_cycles: np.ndarray
    key: np.ndarray
    history: list
    decisions: list

    def trace(self, row: int) -> tuple[frozenset[int], list[int]]:
        """The fused consumers and the branch per layer of the kept path ``row``."""
        fused: set[int] = set()
        branches = [0] * len(self.history)
        for l in range(len(self.history) - 1, -1, -1):
            parent, branch, choice = self.history[l]
            branches[l] = int(branch[row])
            fused |= self.decisions[l][int(choice[row])]
            row = int(parent[row])
        return frozenset(fused), branches


def _program(graph: FusionGraph, costs: FusionCosts, metric: str, separable: bool) -> _Program | None:
    """The dynamic program of the module docstring; ``None`` if no path runs every layer."""
    cap = float(resident_capacity_bits(costs.hw))
    bits_o = float(costs.hw.bits_ofmap)
    decisions = fusion_decisions(graph)
    states = [frozenset()]
    cur_e, cur_d, cur_k, cur_s = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.int64)
    history = []
    for l in range(len(graph)):
        next_states: dict[frozenset, int] = {}
        cand = {"e": [], "d": [], "k": [], "s": [], "parent": [], "branch": [], "choice": []}
        needed = {graph.resident_bits(l, entering | taken, bits_o) for entering in states for taken in decisions[l]}
        costs.prepare(l, [r for r in needed if r <= cap])
        for sid, entering in enumerate(states):
            rows = np.flatnonzero(cur_s == sid)
            if rows.size == 0:
                continue
            for t, taken in enumerate(decisions[l]):
                fused = entering | taken
                reserved = graph.resident_bits(l, fused, bits_o)
                if reserved > cap:
                    continue
                e_b, d_b = costs.energy_delay(l, reserved, l in entering, graph.fused_out(l, fused))
                k_b = metric_value(e_b, d_b, metric)
                usable = np.isfinite(k_b) if separable else np.isfinite(e_b) & np.isfinite(d_b)
                options = np.flatnonzero(usable)
                if options.size == 0:
                    continue
                nid = next_states.setdefault(frozenset(m for m in fused if m > l), len(next_states))
                cand["e"].append((cur_e[rows][:, None] + e_b[options][None, :]).ravel())
                cand["d"].append((cur_d[rows][:, None] + d_b[options][None, :]).ravel())
                cand["k"].append((cur_k[rows][:, None] + k_b[options][None, :]).ravel())
                cand["parent"].append(np.repeat(rows, options.size))
                cand["branch"].append(np.tile(options, rows.size))
                cand["choice"].append(np.full(rows.size * options.size, t))
                cand["s"].append(np.full(rows.size * options.size, nid))
        if not next_states:
            return None
        arrays = {name: np.concatenate(parts) for name, parts in cand.items()}
        keep = _prune(arrays["e"], arrays["d"], arrays["k"], arrays["s"], separable)
        arrays = {name: values[keep] for name, values in arrays.items()}
        history.append((arrays["parent"], arrays["branch"], arrays["choice"]))
        states = list(next_states)
        cur_e, cur_d, cur_k, cur_s = arrays["e"], arrays["d"], arrays["k"], arrays["s"]
    return _Program(energy_j=cur_e, delay_cycles=cur_d, key=cur_k, history=history, decisions=decisions)


def best_fusion(network, hardware: HardwarePoint, tech, metric: str, aggregate: str,
                graph: FusionGraph | None = None, costs: FusionCosts | None = None) -> FusionSchedule:
    """The exact optimum of ``metric`` over every fusion set and branch choice on ``hardware``."""
    a, b = check_metric(metric)
    check_aggregate(aggregate)
    separable = aggregate == "layer-sum" or a == 0 or b == 0
    graph = graph or FusionGraph.of(network)
    costs = costs or FusionCosts(network, hardware, tech)
    program = _program(graph, costs, metric, separable)
    if program is None:
        return _unfused(graph, costs, network, hardware, tech, metric, aggregate)
    final = program.key if separable else metric_value(program.energy_j, program.delay_cycles, metric)
    fused, branches = program.trace(int(np.argmin(final)))
    found = fusion_schedule(graph, costs, fused, branches, metric, aggregate)
    unfused = _unfused(graph, costs, network, hardware, tech, metric, aggregate)
    return unfused if not found.objective < unfused.objective else found


@dataclass(frozen=True)
class FusionFrontier:
    """The exact Pareto frontier of (sum E, sum D) over every fusion set and every branch choice with finite
    energy and delay on one hardware point (the program's final candidates in its Pareto mode), sorted by
    increasing energy (so strictly decreasing delay); empty if no such schedule runs every layer."""

    energy_j: np.ndarray
    delay_cycles: np.ndarray
    program: _Program | None
    graph: FusionGraph
    costs: FusionCosts

    def schedule(self, index: int, metric: str, aggregate: str) -> FusionSchedule:
        """The fusion set and branches of frontier point ``index``, priced by the cost model."""
        order = np.argsort(self.program.energy_j, kind="stable")
        fused, branches = self.program.trace(int(order[index]))
        return fusion_schedule(self.graph, self.costs, fused, branches, metric, aggregate)


def fusion_frontier(network, hardware: HardwarePoint, tech, graph: FusionGraph | None = None,
                    costs: FusionCosts | None = None) -> FusionFrontier:
    """The program in its Pareto mode (module docstring): after the last layer there is one state, so the kept
    candidates are the frontier of every consistent fusion set and branch choice."""
    graph = graph or FusionGraph.of(network)
    costs = costs or FusionCosts(network, hardware, tech)
    program = _program(graph, costs, "edp", separable=False)
    if program is None:
        return FusionFrontier(np.zeros(0), np.zeros(0), None, graph, costs)
    order = np.argsort(program.energy_j, kind="stable")
    return FusionFrontier(program.energy_j[order], program.delay_cycles[order], program, graph, costs)


def _unfused(graph, costs, network, hardware, tech, metric, aggregate) -> FusionSchedule:
    """The best schedule with nothing fused (the existing LOS), as a :class:`FusionSchedule`."""
    tables = cost_tables(network.layers, hardware.arrays(), tech)
    los = best_schedule(tables.energy_j, tables.delay_cycles, metric, aggregate)
    return fusion_schedule(graph, costs, (), los.branch_index, metric, aggregate)


def unfused_schedule(network, hardware: HardwarePoint, tech, metric: str, aggregate: str) -> FusionSchedule:
    """The best unfused schedule of ``hardware`` (the existing LOS) with its per-layer costs."""
    graph = FusionGraph.of(network)
    return _unfused(graph, FusionCosts(network, hardware, tech), network, hardware, tech, metric, aggregate)
