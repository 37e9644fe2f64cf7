"""LOS and fixed schedules on small tables: brute force is the independent truth."""

import itertools

import numpy as np
import pytest

from deepopt_mip.formulation.metrics import METRIC_EXPONENTS, metric_value
from deepopt_mip.solvers.schedule import best_schedule, fixed_schedule, pareto_frontier


def brute_force(energy, delay, metric, aggregate):
    best = np.inf
    for combo in itertools.product(range(energy.shape[1]), repeat=energy.shape[0]):
        e = energy[np.arange(len(combo)), combo]
        d = delay[np.arange(len(combo)), combo]
        if aggregate == "network":
            value = metric_value(e.sum(), d.sum(), metric)
        else:
            value = metric_value(e, d, metric).sum()
        best = min(best, float(value))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("metric", list(METRIC_EXPONENTS))
@pytest.mark.parametrize("aggregate", ["network", "layer-sum"])
def test_los_equals_brute_force(seed, metric, aggregate):
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1.0, 3.0, size=(5, 3))
    delay = rng.uniform(1.0, 3.0, size=(5, 3))
    if seed % 2:
        energy[1, 2] = delay[1, 2] = np.inf  # an infeasible branch never wins
    got = best_schedule(energy, delay, metric, aggregate)
    assert got.objective == pytest.approx(brute_force(energy, delay, metric, aggregate), rel=1e-12)
    assert energy[1, got.branch_index[1]] < np.inf


@pytest.mark.parametrize("metric", list(METRIC_EXPONENTS))
def test_los_never_worse_than_a_fixed_schedule(metric):
    rng = np.random.default_rng(7)
    energy = rng.uniform(1, 2, size=(8, 5))
    delay = rng.uniform(1, 2, size=(8, 5))
    for aggregate in ("network", "layer-sum"):
        los = best_schedule(energy, delay, metric, aggregate)
        for b in range(5):
            assert los.objective <= fixed_schedule(energy, delay, b, metric, aggregate).objective * (1 + 1e-12)


def test_network_product_differs_from_layer_sum_choice():
    """A case where the per-layer E*D winner is not the network E*D winner.

    Layer 0: branch 0 (E=1, D=10) or branch 1 (E=3, D=3); layer 1 fixed at (E=10, D=1).
    Layer-sum E*D: branch 0 gives 10 < 9? no: 1*10=10 vs 3*3=9, so branch 1 per layer.
    Network E*D: branch 0 gives (11)(11)=121, branch 1 gives (13)(4)=52, so branch 1 too;
    flip layer 1 to (E=1, D=10): branch 0 -> 2*20=40, branch 1 -> 4*13=52, so branch 0 wins
    although branch 1 wins per layer.
    """
    energy = np.array([[1.0, 3.0], [1.0, 1.0]])
    delay = np.array([[10.0, 3.0], [10.0, 10.0]])
    assert best_schedule(energy, delay, "edp", "layer-sum").branch_index[0] == 1
    net = best_schedule(energy, delay, "edp", "network")
    assert net.branch_index[0] == 0 and net.objective == pytest.approx(40.0)


def test_ties_break_by_branch_order():
    energy = np.array([[2.0, 1.0, 1.0, 1.0, 3.0]])
    delay = np.ones((1, 5))
    assert best_schedule(energy, delay, "energy", "layer-sum").branch_index == (1,)


def test_pareto_frontier_is_sorted_and_nondominated():
    rng = np.random.default_rng(3)
    energy = rng.integers(1, 20, size=(6, 5)).astype(float)
    delay = rng.integers(1, 20, size=(6, 5)).astype(float)
    e, d, choices = pareto_frontier(energy, delay)
    assert np.all(np.diff(e) > 0) and np.all(np.diff(d) < 0)
    rows = np.arange(6)
    for k in range(len(e)):
        assert energy[rows, choices[k]].sum() == e[k] and delay[rows, choices[k]].sum() == d[k]
    # no combination dominates a frontier point
    for combo in itertools.product(range(5), repeat=6):
        ce, cd = energy[rows, combo].sum(), delay[rows, combo].sum()
        assert not np.any((ce <= e) & (cd <= d) & ((ce < e) | (cd < d)))
