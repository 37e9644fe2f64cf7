"""The block bounds of docs/model.md 6.1: each is at most the exact cost of every branch on random layers
(conv with strides, grouped, 1 x S and R x 1 filters, padding in halves; FC with and without a batch) and
random hardware (tiny SRAMs included, so every subvolume tiling occurs); and the pruned enumeration returns
what the unpruned one returns, on random small spaces and networks and on every built-in network."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_grid_stream import networks, spaces

from deepopt_mip.formulation.costmodel.layer_cost import branch_energy_delay
from deepopt_mip.formulation.grid_bounds import (block_lower_bound, complete_covers, layer_bounds,
                                                least_energy_per_bit, pair_bounds, point_lower_bounds,
                                                touched_extent)
from deepopt_mip.formulation.grid_sums import distinct_layers
from deepopt_mip.formulation.hardware import array_hardware, registers_fit
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, Network, load_network
from deepopt_mip.formulation.spaces import load_space, parse_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space

TECH = load_technology()
EXACT = 1e-12  # the bound and the exact value are summed in different orders


@st.composite
def conv_layers(draw):
    r, s = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    stride = draw(st.integers(1, 4))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    channels = groups * draw(st.integers(1, 96))
    filters = groups * draw(st.integers(1, 160))
    pad = draw(st.integers(0, 6)) / 2
    h = draw(st.integers(max(1, math.ceil(r - 2 * pad)), 60))
    w = draw(st.integers(max(1, math.ceil(s - 2 * pad)), 60))
    e = math.floor((h + 2 * pad - r) / stride) + 1
    g = math.floor((w + 2 * pad - s) / stride) + 1
    return Layer("conv", "conv", h, w, pad, channels, r, s, filters, e, g, stride, groups)


@st.composite
def fc_layers(draw):
    return Layer("fc", "fc", 1, 1, 0, draw(st.integers(1, 5000)), 1, 1, draw(st.integers(1, 3000)), 1, 1,
                 batch=draw(st.sampled_from([1, 1, 2, 7, 16])))


def random_hardware(seed: int, points: int = 400):
    """Random points, half of them with tiny SRAMs (4-12 kB: tiling, reloads, infeasible orders)."""
    rng = np.random.default_rng(seed)
    j, k = rng.integers(1, 160, points), rng.integers(1, 160, points)

    def size():
        return np.where(rng.random(points) < 0.5, rng.integers(4, 13, points), rng.integers(4, 513, points))

    f, i, p = size(), size(), size()
    bits = rng.choice([8, 16], points), rng.choice([8, 16], points), rng.choice([16, 32], points)
    hw = array_hardware(j, k, f, i, p, *bits, dram_bw_bits_per_cycle=rng.choice([64, 128, 256], points),
                        dram_block_bits=rng.choice([64, 128, 512], points))
    return hw, (f, i, p)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(conv_layers(), fc_layers()), st.integers(0, 2**32 - 1))
def test_bounds_are_at_most_every_branchs_exact_energy_and_delay(layer, seed):
    hw, sizes = random_hardware(seed)
    const, coef, delay_bound = layer_bounds(layer, hw, TECH)
    e = [TECH.sram_energy_j_per_bit(s) for s in sizes]
    energy_bound = np.min([c + cf * e[0] + ci * e[1] + cp * e[2] for c, (cf, ci, cp) in zip(const, coef)], axis=0)
    runs = registers_fit(hw) & complete_covers(layer, hw)  # elsewhere the bound is 0
    for branch, (energy, delay) in branch_energy_delay(layer, hw, TECH).items():
        finite = runs & np.isfinite(energy)
        assert (energy_bound[finite] <= energy[finite] * (1 + EXACT)).all(), branch
        finite = runs & np.isfinite(delay)
        assert (np.broadcast_to(delay_bound, delay.shape)[finite] <= delay[finite] * (1 + EXACT)).all(), branch


def test_the_delay_bound_is_the_ideal_cycles_plus_the_write_back_by_hand():
    """AlexNet conv1 (11x11, stride 4, 3 -> 96) on 22 x 32: C_uv = min(floor(22/11), 3) = 2, F_uv = 32;
    R E G ceil(3/2) ceil(96/32) = 11*55*55*2*3 cycles, write-back ceil(55*55*96*8 / 128) cycles."""
    layer = load_network("alexnet").layers[0]
    _, _, delay = layer_bounds(layer, array_hardware(22.0, 32.0, 64, 64, 64), TECH)
    assert float(delay) == 11 * 55 * 55 * 2 * 3 + 55 * 55 * 96 * 8 / 128


def test_touched_ifmap_extent_by_hand():
    assert touched_extent(55, 4, 11) == 54 * 4 + 11  # overlapping windows: (G - 1) U + S
    assert touched_extent(28, 2, 1) == 28  # a 1x1 filter at stride 2 reads every other column
    assert touched_extent(5, 3, 2) == 10


def test_block_bound_uses_the_least_energy_per_bit_of_a_non_monotone_table():
    """The 1 kB table falls between neighbouring sizes: the least over a range is not at its smallest size."""
    fine = load_technology("deepopt-65nm-cacti1kb")
    sizes = np.arange(280, 320, dtype=float)
    least = least_energy_per_bit(fine, sizes)
    assert least == fine.sram_energy_j_per_bit(sizes).min() < fine.sram_energy_j_per_bit(sizes[0])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.sampled_from(["energy", "delay", "edp", "e2dp", "ed2p"]), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_point_and_block_bounds_are_at_most_the_points_objective(network, metric, separable, seed):
    """At every point, the point bound (and the block bound, with smaller per-bit energies) is at most the
    objective: the per-layer best branch summed (separable) or the ideal corner's metric (products, itself
    at most the objective)."""
    hw, sizes = random_hardware(seed, 60)
    rows, cols = hw.rows, hw.cols
    # one psum size per point: pair n with psum size n (the bounds read the sizes only for complete covers)
    bounds = pair_bounds(distinct_layers(network), array_hardware(rows, cols, 0, 0, 0, hw.bits_filter,
                                                                  hw.bits_ifmap, hw.bits_psum,
                                                                  hw.dram_bw_bits_per_cycle, hw.dram_block_bits),
                         TECH, sizes[2])
    from deepopt_mip.formulation.metrics import metric_value
    e_sum = d_sum = total = 0.0
    for layer, count in distinct_layers(network):
        costs = branch_energy_delay(layer, hw, TECH)
        e_min = np.min([np.where(np.isfinite(d), e, np.inf) if not separable else e for e, d in costs.values()], 0)
        d_min = np.min([np.where(np.isfinite(e), d, np.inf) if not separable else d for e, d in costs.values()], 0)
        total = total + count * np.min([metric_value(e, d, metric) for e, d in costs.values()], axis=0)
        e_sum, d_sum = e_sum + count * e_min, d_sum + count * d_min
    exact = total if separable else metric_value(e_sum, d_sum, metric)
    e = [TECH.sram_energy_j_per_bit(s) for s in sizes]
    for n in range(rows.size):
        if not (registers_fit(hw)[n] and np.isfinite(exact[n])):
            continue
        here = slice(n, n + 1)
        point = point_lower_bounds(bounds, np.array([n]), e[0][here], e[1][here], e[2][here], here, metric,
                                   separable)
        block = block_lower_bound(bounds, np.array([n]), 0.9 * e[0][n], e[1][n], 0.5 * e[2][n], here, metric,
                                  separable)
        assert block[0] <= point.item() <= exact[n] * (1 + EXACT)


def same_optimum(a, b):
    return (a.hardware == b.hardware and a.objective == b.objective and a.runners_up == b.runners_up
            and a.points == b.points and a.branches == b.branches)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), networks(), st.sampled_from(["energy", "delay", "edp", "e2dp", "ed2p"]),
       st.sampled_from(["network", "layer-sum"]), st.integers(0, 3), st.integers(1, 3000))
def test_pruned_enumeration_equals_the_unpruned_one(space, network, metric, aggregate, top_k, max_points):
    results = []
    for prune in (False, True):
        try:
            results.append(enumerate_space(network, space, TECH, metric, aggregate, top_k, max_points=max_points,
                                           workers=1, prune=prune))
        except ValueError as exc:  # InputError: no point fits, or none runs every layer
            results.append(str(exc))
    plain, pruned = results
    if isinstance(plain, str):
        assert pruned == plain
        return
    assert same_optimum(plain, pruned)
    assert pruned.worst is None and plain.worst is not None
    assert pruned.points_evaluated <= plain.points_evaluated <= pruned.points_unpruned  # blocks with no valid point: 0


SMALL_SPACE = """
name: small
rows: {min: 12, max: 60, step: 16}
cols: {min: 12, max: 60, step: 16}
aspect_min_ratio: 0.25
sram_kb: {filter: [4, 16, 64, 128], ifmap: [4, 32, 128], psum: [4, 8, 32]}
bits: {filter: 8, ifmap: 8, psum: 32}
dram: {bandwidth_bits_per_cycle: 128, block_bits: 128}
area: {budget_mm2: 5, tolerance: 0.0}
"""


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("googlenet-v1", "resnet-50")
                                  else n for n in BUILTIN_NETWORKS])  # the two large ones take 10-20 s each
def test_every_builtin_network_prunes_to_the_same_optimum(name):
    space = parse_space(SMALL_SPACE, "small.yaml", TECH)
    network = load_network(name)
    for metric in ("energy", "edp"):  # the energy bound, and the energy and delay bounds together
        plain = enumerate_space(network, space, TECH, metric, "network", 1, max_points=100, workers=1,
                                prune=False)
        pruned = enumerate_space(network, space, TECH, metric, "network", 1, max_points=100, workers=1)
        assert same_optimum(plain, pruned), (name, metric)
        assert pruned.points_evaluated <= plain.points_evaluated <= pruned.points_unpruned


def test_pruned_enumeration_with_workers_equals_the_unpruned_one():
    space = load_space("deepopt-16mm2", TECH).with_budget(5)
    network = Network("part", tuple(load_network("googlenet").layers[:4]), "test")
    plain = enumerate_space(network, space, TECH, "edp", "network", 2, max_points=5_000, workers=1, prune=False)
    pruned = enumerate_space(network, space, TECH, "edp", "network", 2, max_points=5_000, workers=2)
    assert same_optimum(plain, pruned)
    assert pruned.points_evaluated < 0.9 * pruned.points_unpruned  # the bounds do skip points


def test_allocate_reports_the_share_evaluated_and_no_prune_finds_the_worst_point(capsys):
    from deepopt_mip.scripts.cli import main

    args = ["allocate", "--network", "alexnet", "--metric", "delay", "--top-k", "1",
            "--workers", "1"]
    assert main(args) == 0
    pruned = capsys.readouterr().out
    assert main(args + ["--no-prune"]) == 0
    plain = capsys.readouterr().out
    assert "skipped by bounds" in pruned and "worst" not in pruned.replace("worst point not searched", "")
    assert "worst " in plain and "skipped by bounds" not in plain
    assert pruned.splitlines()[1] == plain.splitlines()[1]  # the same optimum line
