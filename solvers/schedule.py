"""Per-layer branch choice on one fixed hardware point.

* Layer-specific optimal scheduling (LOS): the branch per layer that
  minimises the metric under the chosen aggregation.
* Fixed scheduling (FS): one branch for every layer.

For ``layer-sum`` and for ``network`` energy or delay, LOS is separable: the
per-layer minimum, ties broken by branch order as in the reference. For
``network`` products (E*D, E^2*D, E*D^2) it is not: the optimum lies on the
Pareto frontier of (sum E, sum D) over branch combinations, which
:func:`pareto_schedule` builds exactly by merging layers one at a time and
discarding dominated partial sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.metrics import check_aggregate, check_metric, metric_value


@dataclass(frozen=True)
class Schedule:
    """A branch index per layer and what it costs (totals and the metric)."""

    branch_index: tuple[int, ...]
    energy_j: float
    delay_cycles: float
    objective: float

    @property
    def feasible(self) -> bool:
        return bool(np.isfinite(self.objective))


def aggregate_objective(layer_energy_j: np.ndarray, layer_delay_cycles: np.ndarray, metric: str,
                        aggregate: str) -> float:
    """The metric of a schedule given its per-layer energies and delays."""
    check_aggregate(aggregate)
    if aggregate == "layer-sum":
        return float(np.sum(metric_value(layer_energy_j, layer_delay_cycles, metric)))
    return float(metric_value(np.sum(layer_energy_j), np.sum(layer_delay_cycles), metric))


def _schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, choice: np.ndarray, metric: str,
              aggregate: str) -> Schedule:
    layers = np.arange(energy_j.shape[0])
    e = energy_j[layers, choice]
    d = delay_cycles[layers, choice]
    return Schedule(branch_index=tuple(int(c) for c in choice), energy_j=float(np.sum(e)),
                    delay_cycles=float(np.sum(d)), objective=aggregate_objective(e, d, metric, aggregate))


def fixed_schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, branch: int, metric: str,
                   aggregate: str) -> Schedule:
    """Every layer on branch ``branch`` (column of the L x B tables)."""
    choice = np.full(energy_j.shape[0], branch)
    return _schedule(energy_j, delay_cycles, choice, metric, aggregate)


def best_schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, metric: str, aggregate: str) -> Schedule:
    """LOS on an L x B table of layer energies (J) and delays (cycles)."""
    a, b = check_metric(metric)
    check_aggregate(aggregate)
    if aggregate == "layer-sum" or a == 0 or b == 0:
        per_layer = metric_value(energy_j, delay_cycles, metric)
        return _schedule(energy_j, delay_cycles, np.argmin(per_layer, axis=1), metric, aggregate)
    return pareto_schedule(energy_j, delay_cycles, metric)


def pareto_frontier(energy_j: np.ndarray, delay_cycles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact Pareto frontier of (sum E, sum D) over all branch combinations.

    Returns (E, D, choices): totals sorted by increasing energy (so strictly
    decreasing delay) and, per frontier point, the branch index of every
    layer. Branches with infinite energy or delay never enter. Empty arrays
    if some layer has no finite branch.
    """
    n_layers, n_branches = energy_j.shape
    front_e = np.zeros(1)
    front_d = np.zeros(1)
    choices = np.zeros((1, 0), dtype=np.int64)
    for layer in range(n_layers):
        ok = np.isfinite(energy_j[layer]) & np.isfinite(delay_cycles[layer])
        options = np.flatnonzero(ok)
        if options.size == 0:
            return np.zeros(0), np.zeros(0), np.zeros((0, n_layers), dtype=np.int64)
        cand_e = (front_e[:, None] + energy_j[layer, options][None, :]).ravel()
        cand_d = (front_d[:, None] + delay_cycles[layer, options][None, :]).ravel()
        parent = np.repeat(np.arange(front_e.size), options.size)
        branch = np.tile(options, front_e.size)
        order = np.lexsort((cand_d, cand_e))  # by energy, then delay; stable for exact ties
        cand_e, cand_d, parent, branch = cand_e[order], cand_d[order], parent[order], branch[order]
        best_delay_before = np.concatenate(([np.inf], np.minimum.accumulate(cand_d)[:-1]))
        keep = cand_d < best_delay_before
        front_e, front_d = cand_e[keep], cand_d[keep]
        choices = np.concatenate((choices[parent[keep]], branch[keep][:, None]), axis=1)
    return front_e, front_d, choices


def constrained_schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, metric: str, aggregate: str,
                         max_delay_cycles: float | None = None, max_energy_j: float | None = None,
                         branches: tuple[int, ...] | None = None) -> Schedule:
    """The best schedule whose layers use only ``branches`` (columns; None: all) and whose network totals
    meet the caps (None: no cap); its objective is ``inf`` if none does.

    Without caps this is :func:`best_schedule` on the allowed columns. With a
    cap only branches that can run (finite energy and delay) are used, and the
    optimum lies on the allowed columns' energy-delay frontier: the metric is
    non-decreasing in E and D, so a dominated schedule is never better than
    the frontier point that dominates it, and that point meets every cap the
    dominated one meets. The frontier points within the caps are scanned for
    the least metric (ties: least energy).
    """
    energy_j, delay_cycles = np.asarray(energy_j, float), np.asarray(delay_cycles, float)
    if branches is not None:
        barred = np.ones(energy_j.shape[1], dtype=bool)
        barred[list(branches)] = False
        energy_j = np.where(barred, np.inf, energy_j)
        delay_cycles = np.where(barred, np.inf, delay_cycles)
    if max_delay_cycles is None and max_energy_j is None:
        return best_schedule(energy_j, delay_cycles, metric, aggregate)
    if aggregate != "network":
        raise ValueError("caps constrain a network's totals: they need the network aggregation")
    front_e, front_d, choices = pareto_frontier(energy_j, delay_cycles)
    within = np.ones(front_e.size, dtype=bool)
    if max_delay_cycles is not None:
        within &= front_d <= max_delay_cycles
    if max_energy_j is not None:
        within &= front_e <= max_energy_j
    if not within.any():
        return Schedule(branch_index=tuple(-1 for _ in range(energy_j.shape[0])), energy_j=np.inf,
                        delay_cycles=np.inf, objective=np.inf)
    values = np.where(within, metric_value(front_e, front_d, metric), np.inf)
    return _schedule(energy_j, delay_cycles, choices[int(np.argmin(values))], metric, aggregate)


def pareto_schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, metric: str) -> Schedule:
    """Network-aggregated LOS for any metric, read off the exact frontier."""
    front_e, front_d, choices = pareto_frontier(energy_j, delay_cycles)
    if front_e.size == 0:
        return _schedule(energy_j, delay_cycles, np.zeros(energy_j.shape[0], dtype=np.int64), metric, "network")
    values = metric_value(front_e, front_d, metric)
    best = int(np.argmin(values))
    return _schedule(energy_j, delay_cycles, choices[best], metric, "network")
