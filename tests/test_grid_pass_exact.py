"""The grid pass gives every point exactly (==) the sums of that point evaluated on its own.

The grid pass (:func:`chunk_sums`) evaluates the cost model on broadcast
blocks (pairs innermost, counts kept only as large as the axes they depend
on, covers skipping work where a condition is uniform, no stall model for an
energy-only metric). Its truth here is the plain per-point evaluation:
:func:`branch_costs` (the nine counts, masked, energy and delay) on a flat
list of points, each lane computed on its own (spot-checked against truly
scalar calls), and the sums of the module docstring of ``grid_sums`` built
from it with stacked arrays and ``argmin``. Random fine hardware (J, K in
steps of 1, SRAM sizes at any whole kB) for every built-in network.
"""

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_costs
from deepopt_mip.formulation.grid_sums import chunk_sums, distinct_layers, is_separable
from deepopt_mip.formulation.hardware import array_hardware
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.networks import builtin_network_names, load_network
from deepopt_mip.formulation.technology import load_technology

TECH = load_technology()


def random_block(seed: int):
    """A block of random fine hardware, pairs first: (pairs, filter, ifmap, psum) sizes in kB."""
    rng = np.random.default_rng(seed)
    pairs = 10
    rows = rng.integers(4, 72, pairs).astype(float)  # some narrower than an 11-wide filter
    cols = rng.integers(4, 72, pairs).astype(float)
    f, i, p = (np.sort(rng.choice(np.arange(4, 513), n, replace=False)).astype(float) for n in (4, 3, 4))
    return rows, cols, f, i, p


def block_hardware(rows, cols, f, i, p):
    return array_hardware(rows[:, None, None, None], cols[:, None, None, None], f[None, :, None, None],
                          i[None, None, :, None], p[None, None, None, :])


def flat_axes(rows, cols, f, i, p):
    shape = (rows.size, f.size, i.size, p.size)
    axes = (rows[:, None, None, None], cols[:, None, None, None], f[None, :, None, None],
            i[None, None, :, None], p[None, None, None, :])
    return [np.broadcast_to(a, shape).ravel() for a in axes]


def reference_sums(per_layer, metric: str, separable: bool) -> list[np.ndarray]:
    """The sums of grid_sums' docstring from per-point (energy, delay) per layer and branch."""
    sums = None
    for count, costs in per_layer:
        energy = np.stack([costs[b][0] for b in BRANCHES])
        delay = np.stack([costs[b][1] for b in BRANCHES])
        if separable:
            terms = [np.min(metric_value(energy, delay, metric), axis=0) * count]
        else:
            ok = np.isfinite(energy) & np.isfinite(delay)
            e_use, d_use = np.where(ok, energy, np.inf), np.where(ok, delay, np.inf)
            lanes = np.arange(energy.shape[1])
            terms = [e_use.min(axis=0) * count, d_use.min(axis=0) * count]
            for key in (e_use, d_use, metric_value(e_use, d_use, metric)):
                pick = np.argmin(key, axis=0)  # the first least, in branch order
                terms += [e_use[pick, lanes] * count, d_use[pick, lanes] * count]
        sums = terms if sums is None else [s + t for s, t in zip(sums, terms)]
    return sums


FAST_METRICS = (("energy", "network"), ("edp", "network"))
"""An energy-only metric (no stall model) and a product (eight sums): the pass's two paths."""
MORE_METRICS = (("delay", "network"), ("e2dp", "layer-sum"), ("ed2p", "network"))


@pytest.mark.parametrize("network", builtin_network_names())
def test_grid_pass_equals_the_per_point_evaluation(network):
    check_network(network, FAST_METRICS, spot_checks=1)


@pytest.mark.slow
@pytest.mark.parametrize("network", builtin_network_names())
def test_grid_pass_equals_the_per_point_evaluation_for_every_metric(network):
    check_network(network, MORE_METRICS, spot_checks=4)


def check_network(network: str, metrics, spot_checks: int):
    layers = distinct_layers(load_network(network))
    axes = random_block(sum(map(ord, network)))
    flat = flat_axes(*axes)
    flat_hw = array_hardware(*flat)
    per_point = [(count, {b: (c.energy_j, c.delay_cycles) for b, c in branch_costs(layer, flat_hw, TECH).items()})
                 for layer, count in layers]

    # the flat lanes are the scalar evaluation: spot checks at a few points
    rng = np.random.default_rng(1)
    for n in rng.choice(flat[0].size, spot_checks, replace=False):
        point = array_hardware(*(float(a[n]) for a in flat))
        for (layer, _), (_, costs) in zip(layers, per_point):
            for b, c in branch_costs(layer, point, TECH).items():
                assert np.array_equal([c.energy_j, c.delay_cycles], [costs[b][0][n], costs[b][1][n]])

    hw = block_hardware(*axes)
    for metric, aggregate in metrics:
        separable = is_separable(metric, aggregate)
        grid = chunk_sums(hw, layers, TECH, metric, separable)
        truth = reference_sums(per_point, metric, separable)
        assert len(grid) == len(truth)
        for g, t in zip(grid, truth):
            assert g.shape == (axes[0].size, axes[2].size, axes[3].size, axes[4].size)
            assert np.array_equal(g.ravel(), t), (metric, aggregate)
