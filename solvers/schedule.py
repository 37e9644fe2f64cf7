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


def pareto_schedule(energy_j: np.ndarray, delay_cycles: np.ndarray, metric: str) -> Schedule:
    """Network-aggregated LOS for any metric, read off the exact frontier."""
    front_e, front_d, choices = pareto_frontier(energy_j, delay_cycles)
    if front_e.size == 0:
        return _schedule(energy_j, delay_cycles, np.zeros(energy_j.shape[0], dtype=np.int64), metric, "network")
    values = metric_value(front_e, front_d, metric)
    best = int(np.argmin(values))
    return _schedule(energy_j, delay_cycles, choices[best], metric, "network")
