"""Enumeration against plain loops and brute force on small spaces and networks."""

import itertools
from dataclasses import replace

import numpy as np
import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS, metric_value
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import grid_chunks, load_space, parse_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import registers_fit
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point

TECH = load_technology()
SMALL_SPACE = """
name: small
rows: {min: 8, max: 24, step: 8}
cols: {min: 8, max: 32, step: 8}
aspect_min_ratio: 0.5
sram_kb: {filter: [4, 16, 64], ifmap: [8, 32], psum: [4, 16]}
bits: {filter: 8, ifmap: 8, psum: 32}
dram: {bandwidth_bits_per_cycle: 128, block_bits: 128}
area: {budget_mm2: 4.5, tolerance: 0.0}
"""


def small_space(**area):
    space = parse_space(SMALL_SPACE, "small.yaml", TECH)
    return replace(space, **area) if area else space


def small_network(n_layers=4):
    squeeze = load_network("squeezenet-v1.1")
    return Network(name="tiny", layers=squeeze.layers[:n_layers], source="test")


def every_point(space):
    """Plain Python loop over the space: (point, area) for every valid point."""
    rows, cols = space.axis_values(space.rows, space.cols), space.axis_values(space.cols, space.rows)
    for j, k, f, i, p in itertools.product(rows, cols, space.fsram_kb, space.isram_kb, space.psram_kb):
        if min(j, k) < space.aspect_min_ratio * max(j, k):
            continue
        area = j * k * space.pe_um2 + (f + i + p) * 1024 * space.sram_um2_per_byte
        if area > space.limit_um2:
            continue
        if f * 8192 < j * k * 8 or i * 8192 < j * 8 or p * 8192 < k * 32:
            continue
        yield space.hardware_point(j, k, f, i, p), area


def test_builtin_space_has_the_reference_point_count():
    """70,631 points: J, K from 8 in steps of 2 within a factor of two, power-of-two SRAMs, 16 mm^2."""
    space = load_space("deepopt-16mm2", TECH)
    assert sum(int(c.valid.sum()) for c in grid_chunks(space)) == 70_631
    rows, cols = space.array_pairs()
    assert len(rows) == 365


@pytest.mark.parametrize("metric", list(METRIC_EXPONENTS))
@pytest.mark.parametrize("aggregate", ["layer-sum", "network"])
def test_enumeration_equals_a_plain_loop(metric, aggregate):
    space, network = small_space(), small_network()
    loop = []
    for point, area in every_point(space):
        ev = evaluate_point(network, point, TECH, metric, aggregate)
        loop.append((ev.los.objective, area, point))
    best = min(v for v, _, _ in loop)
    sol = enumerate_space(network, space, TECH, metric, aggregate, top_k=3)
    unpruned = enumerate_space(network, space, TECH, metric, aggregate, top_k=0, prune=False)
    assert sol.points == unpruned.points == len(loop)
    assert sol.objective == pytest.approx(best, rel=1e-12)
    ranked = sorted(v for v, _, _ in loop if np.isfinite(v))
    assert [r.objective for r in sol.runners_up] == pytest.approx(ranked[1:4], rel=1e-12)
    assert sol.worst is None and unpruned.worst.objective == pytest.approx(ranked[-1], rel=1e-12)
    assert sol.area_mm2 * 1e6 <= space.limit_um2


@pytest.mark.parametrize("metric", ["edp", "e2dp", "ed2p"])
def test_network_products_equal_brute_force_over_branch_combinations(metric):
    """Every point, every 5^3 branch combination: min over both equals the enumerated optimum."""
    space, network = small_space(), small_network(3)
    best = np.inf
    for point, _ in every_point(space):
        tables = cost_tables(network.layers, point.arrays(), TECH)
        for combo in itertools.product(range(5), repeat=len(network.layers)):
            rows = np.arange(len(combo))
            e = tables.energy_j[rows, combo].sum()
            d = tables.delay_cycles[rows, combo].sum()
            best = min(best, float(metric_value(e, d, metric)))
    sol = enumerate_space(network, space, TECH, metric, "network", top_k=0)
    assert sol.objective == pytest.approx(best, rel=1e-12)
    # the reported schedule evaluates to the reported objective
    tables = cost_tables(network.layers, sol.hardware.arrays(), TECH)
    rows = np.arange(len(network.layers))
    chosen = [["XYZiZo", "XZiYZo", "XYZoZi", "XZoYZi", "ZiXYZo"].index(b) for b in sol.branches]
    value = metric_value(tables.energy_j[rows, chosen].sum(), tables.delay_cycles[rows, chosen].sum(), metric)
    assert float(value) == pytest.approx(sol.objective, rel=1e-12)


def test_budget_and_aspect_rule_are_honoured():
    space = load_space("deepopt-16mm2", TECH).with_budget(2.0)
    for chunk in grid_chunks(space):
        j = np.broadcast_to(chunk.hardware.rows, chunk.valid.shape)[chunk.valid]
        k = np.broadcast_to(chunk.hardware.cols, chunk.valid.shape)[chunk.valid]
        assert np.all(np.minimum(j, k) >= 0.5 * np.maximum(j, k))
        assert np.all(chunk.area_um2[chunk.valid] <= 2.0e6)
        assert np.all(np.broadcast_to(registers_fit(chunk.hardware), chunk.valid.shape)[chunk.valid])


def test_tolerance_admits_slightly_larger_points():
    base = small_space()
    loose = replace(base, tolerance=0.2)
    assert sum(1 for _ in every_point(loose)) > sum(1 for _ in every_point(base))
    sol = enumerate_space(small_network(2), loose, TECH, "energy", "network", top_k=0)
    assert sol.points == sum(1 for _ in every_point(loose))


def test_infeasible_budget_names_the_smallest_area():
    space = small_space(budget_mm2=0.2)
    with pytest.raises(InputError) as info:
        enumerate_space(small_network(2), space, TECH, "energy", "network")
    message = str(info.value)
    smallest = 8 * 8 * space.pe_um2 + (4 + 8 + 4) * 1024 * space.sram_um2_per_byte
    assert "0.2 mm^2" in message and f"{smallest / 1e6:.3f} mm^2" in message


def test_bad_space_file_is_one_line():
    with pytest.raises(InputError, match="sram_kb.psum sizes must be strictly increasing"):
        parse_space(SMALL_SPACE.replace("psum: [4, 16]", "psum: [16, 4]"), "s.yaml", TECH)
    with pytest.raises(InputError, match="outside the technology's SRAM energy table"):
        parse_space(SMALL_SPACE.replace("psum: [4, 16]", "psum: [2, 16]"), "s.yaml", TECH)
    with pytest.raises(InputError, match="unknown key"):
        parse_space(SMALL_SPACE + "colour: red\n", "s.yaml", TECH)
