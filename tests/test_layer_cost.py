"""The whole per-layer pipeline (network files -> counts -> energy, delay) against the reference."""

import numpy as np
import pandas as pd
import pytest
from reference_cases import REFERENCE_BRANCH, hardware_of, load_sample

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_costs
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint, array_hardware
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.evaluation import evaluate_point

NETWORK_OF_NUMBER = {1: "alexnet", 2: "vgg-16", 3: "squeezenet-v1.1", 4: "googlenet-v1", 5: "resnet-50"}
REFERENCE_SLOT = {**REFERENCE_BRANCH, "NzF-1N": "XYZiZo", "NFz-1N": "XYZoZi"}
TECH = load_technology()


def _our_costs(rows: pd.DataFrame):
    """(layer, reference row, our BranchCost, picker of this row's lane) per reference row."""
    for (net, index), group in rows.groupby(["network", "layer_index"]):
        layer = load_network(NETWORK_OF_NUMBER[net]).layers[index - 1]
        costs = branch_costs(layer, hardware_of(group), TECH)
        for k, row in enumerate(group.itertuples(index=False)):
            cost = costs[REFERENCE_SLOT[row.branch]]
            yield layer, row, cost, lambda value, k=k, n=len(group): np.broadcast_to(np.asarray(value, float), (n,))[k]


def test_energy_and_delay_equal_the_reference_on_conv_layers():
    rows = load_sample()
    rows = rows[rows.fc_flag == 0]
    checked = 0
    for _, row, cost, at in _our_costs(rows):
        assert at(cost.energy_j) == pytest.approx(row.energy_joule, rel=1e-12)
        assert at(cost.delay_cycles) == pytest.approx(row.delay_cycles, rel=1e-12)
        checked += 1
    assert checked == len(rows)


def test_batched_fc_differs_from_the_reference_only_by_the_batch_mac_and_rf_energy():
    """The reference counts MAC and RF energy for all images of the batch, access energy per image."""
    rows = load_sample()
    rows = rows[rows.fc_flag == 1]
    assert len(rows) > 0
    for layer, row, cost, at in _our_costs(rows):
        mac_rf = at(cost.energy.mac_j + cost.energy.rf_j)
        assert at(cost.energy_j) + (layer.batch - 1) * mac_rf == pytest.approx(row.energy_joule, rel=1e-12)
        assert at(cost.delay_cycles) == pytest.approx(row.delay_cycles, rel=1e-12)


def test_energy_parts_sum_to_total_and_compute_energy_is_branch_independent():
    layer = load_network("googlenet-v1").layers[2]
    hw = HardwarePoint(32, 64, 16, 32, 8).arrays()
    costs = branch_costs(layer, hw, TECH)
    macs = {float(c.energy.mac_j) for c in costs.values()}
    assert len(macs) == 1
    for c in costs.values():
        parts = c.energy
        assert parts.mac_j + parts.rf_j + parts.sram_j + parts.dram_j == pytest.approx(c.energy_j, rel=1e-15)
        assert parts.mac_j > 0 and parts.rf_j > 0 and parts.sram_j > 0 and parts.dram_j > 0


def test_mac_energy_by_hand():
    """8-bit MAC at 65 nm: N * (e_add/bit * 32 + e_mul8); e_add/bit = 0.1 pJ * s / 32, e_mul8 = 0.2 pJ * s,
    s = (65/45) / 0.9^2 (Horowitz 45 nm numbers scaled as the reference does)."""
    s = (65 / 45) / 0.9**2
    layer = load_network("vgg-16").layers[0]
    hw = HardwarePoint(32, 64, 16, 32, 8).arrays()
    cost = branch_costs(layer, hw, TECH)["XYZiZo"]
    expected = layer.macs * (0.1e-12 * s / 32 * 32 + 0.2e-12 * s)
    assert float(cost.energy.mac_j) == pytest.approx(expected, rel=1e-12)


def test_grouped_layer_costs_groups_times_one_group():
    alexnet = load_network("alexnet")
    conv2 = alexnet.layers[1]
    assert conv2.groups == 2
    hw = HardwarePoint(32, 64, 16, 32, 8).arrays()
    whole = branch_costs(conv2, hw, TECH)
    from dataclasses import replace
    one_group = replace(conv2, channels=conv2.channels // 2, filters=conv2.filters // 2, groups=1)
    half = branch_costs(one_group, hw, TECH)
    for b in BRANCHES:
        assert float(whole[b].energy_j) == pytest.approx(2 * float(half[b].energy_j), rel=1e-12)
        assert float(whole[b].delay_cycles) == pytest.approx(2 * float(half[b].delay_cycles), rel=1e-12)


def test_layer_sum_los_and_fixed_totals_equal_the_reference_for_squeezenet():
    """SqueezeNet has no FC layer, so the reference's network totals apply unchanged."""
    from reference_cases import DATA
    summary = pd.read_csv(DATA / "reference_los_squeezenet.csv", comment="#")
    metric_of = {1: "edp", 2: "e2dp", 3: "ed2p", 4: "energy", 5: "delay"}
    ref_name = {"XYZiZo": "xyzF", "XZiYZo": "xzyF", "XYZoZi": "xyFz", "XZoYZi": "xFyz", "ZiXYZo": "zxyF"}
    network = load_network("squeezenet-v1.1")
    for row in summary.itertuples(index=False):
        hw = HardwarePoint(int(row.J), int(row.K), row.fsram_kb, row.isram_kb, row.psram_kb,
                           bits_filter=int(row.bw_filter), bits_ifmap=int(row.bw_ifmap), bits_psum=int(row.bw_psum))
        ev = evaluate_point(network, hw, TECH, metric_of[row.pm_id], "layer-sum")
        assert ev.los.objective == pytest.approx(row.los_total, rel=1e-9)
        for b, name in ref_name.items():
            want = getattr(row, f"fixed_{name}")
            got = ev.fixed[b].objective
            assert (np.isinf(got) and np.isinf(want)) or got == pytest.approx(want, rel=1e-9)


def test_cost_tables_broadcast_over_a_hardware_grid():
    """Evaluating on a grid equals evaluating each point alone."""
    network = load_network("squeezenet-v1.1")
    rows = np.array([16.0, 32.0])[:, None, None]
    psram = np.array([8.0, 16.0, 64.0])[None, None, :]
    isram = np.array([16.0, 64.0])[None, :, None]
    grid = cost_tables(network.layers[:6], array_hardware(rows, 32.0, 32.0, isram, psram), TECH)
    assert grid.energy_j.shape == (6, 5, 2, 2, 3)
    for a, r in enumerate((16, 32)):
        for b, i in enumerate((16, 64)):
            for c, p in enumerate((8, 16, 64)):
                one = cost_tables(network.layers[:6], array_hardware(r, 32, 32, i, p), TECH)
                np.testing.assert_array_equal(grid.energy_j[..., a, b, c], one.energy_j)
                np.testing.assert_array_equal(grid.delay_cycles[..., a, b, c], one.delay_cycles)


def test_array_narrower_than_the_filter_is_infeasible_in_every_branch():
    """AlexNet conv1 has 11x11 filters: 8 or 10 PE rows hold no filter row (C_uv = 0)."""
    conv1 = load_network("alexnet").layers[0]
    for rows in (8, 10):
        costs = branch_costs(conv1, array_hardware(rows, 16, 64, 64, 16), TECH)
        for b in BRANCHES:
            assert np.isinf(float(costs[b].energy_j)) and np.isinf(float(costs[b].delay_cycles))
    fits = branch_costs(conv1, array_hardware(12, 16, 64, 64, 16), TECH)
    assert any(np.isfinite(float(fits[b].energy_j)) for b in BRANCHES)
