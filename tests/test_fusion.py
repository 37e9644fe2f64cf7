"""Inter-layer fusion (docs/model.md section 11): hand-computed cases, brute force, never worse than unfused."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.fusion import FusionGraph, fused_branch_costs, resident_capacity_bits
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_costs
from deepopt_mip.formulation.graph import NETWORK_INPUT, Group, Op, Producer
from deepopt_mip.formulation.hardware import BITS_PER_KB, HardwarePoint
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.fusion_schedule import (FusionCosts, best_for_fusion_set, best_fusion, fusion_tables,
                                                 unfused_schedule)

TECH = load_technology(None)
E_DRAM = TECH.dram_j_per_bit


def conv(name, size, channels, filters, filter_hw=3, pad=1):
    return Layer(name=name, kind="conv", ifmap_h=size, ifmap_w=size, pad=pad, channels=channels,
                 filter_h=filter_hw, filter_w=filter_hw, filters=filters,
                 ofmap_h=size + 2 * pad - filter_hw + 1, ofmap_w=size + 2 * pad - filter_hw + 1)


def chain(*layers):
    inputs = [NETWORK_INPUT] + [Producer(layers[k - 1].name) for k in range(1, len(layers))]
    return Network("chain", layers, inputs=inputs)


# A chain of 16 x 16 convolutions: a (3 -> 16 channels), b (16 -> 16), c (16 -> 16).
# Each handed-over tensor is 16 x 16 x 16 elements = 4096 bytes = 32768 bits = 4 kB at 8 bits.
A, B, C = conv("a", 16, 3, 16), conv("b", 16, 16, 16), conv("c", 16, 16, 16)
TENSOR_BITS = 16 * 16 * 16 * 8
# 256 kB of ifmap SRAM: every ifmap of these layers fits whole, at i and at i - 8 kB alike, so the
# branch functions give the same counts with or without the resident tensors (checked below).
BIG = HardwarePoint(J=16, K=16, fsram_kb=64, isram_kb=256, psram_kb=64)


def _same_counts_at_reduced_size(layer, hardware, reserved_bits):
    hw = hardware.arrays()
    plain = branch_costs(layer, hw, TECH)
    reduced = branch_costs(layer, replace(hw, isram_bits=hw.isram_bits - reserved_bits), TECH)
    return all(plain[b].counts == reduced[b].counts for b in BRANCHES)


def test_fused_pair_hand_computed():
    """a -> b fused: a keeps its 4 kB output on chip; b reads it from there.

    a writes nothing to DRAM: D_o(a) = 16*16*16 = 4096 elements and its write-back cycles go;
    b reads nothing from DRAM: its D_i (the whole padded ifmap, 18*18*16 = 5184 elements, loaded once
    since it fits) goes. Everything else is unchanged.
    """
    net = chain(A, B)
    graph = FusionGraph.of(net)
    costs = FusionCosts(net, BIG, TECH)
    assert graph.fusable == (False, True)
    assert graph.resident_bits(0, {1}, 8) == TENSOR_BITS
    assert graph.resident_bits(1, {1}, 8) == TENSOR_BITS
    assert _same_counts_at_reduced_size(A, BIG, TENSOR_BITS) and _same_counts_at_reduced_size(B, BIG, TENSOR_BITS)
    plain = {name: branch_costs(layer, BIG.arrays(), TECH) for name, layer in (("a", A), ("b", B))}
    for b in BRANCHES:
        assert plain["a"][b].counts.dram_ofmap == 4096
        assert plain["b"][b].counts.dram_ifmap == 18 * 18 * 16
        fused_a = costs.branches(0, TENSOR_BITS, False, True)[b]
        fused_b = costs.branches(1, TENSOR_BITS, True, False)[b]
        assert fused_a.counts.dram_ofmap == 0 and fused_a.counts.cycles_write == 0
        assert fused_b.counts.dram_ifmap == 0
        assert fused_a.energy_j == pytest.approx(plain["a"][b].energy_j - 4096 * 8 * E_DRAM, rel=1e-12)
        assert fused_a.delay_cycles == plain["a"][b].delay_cycles - plain["a"][b].counts.cycles_write
        assert fused_b.energy_j == pytest.approx(plain["b"][b].energy_j - 5184 * 8 * E_DRAM, rel=1e-12)
        assert fused_b.delay_cycles == plain["b"][b].delay_cycles
    best = best_fusion(net, BIG, TECH, "energy", "network")
    unfused = unfused_schedule(net, BIG, TECH, "energy", "network")
    assert best.fused_edges == (("a", "b"),)
    assert best.fused_in == (False, True) and best.fused_out == (True, False)
    assert best.energy_j == pytest.approx(unfused.energy_j - (4096 + 5184) * 8 * E_DRAM, rel=1e-12)
    assert best.dram_bits(BIG) == pytest.approx(unfused.dram_bits(BIG) - (4096 + 5184) * 8)


def test_fused_chain_of_three_hand_computed():
    """a -> b -> c, both edges fused: during b both tensors are resident (8 kB), b moves only filters."""
    net = chain(A, B, C)
    graph = FusionGraph.of(net)
    fused = {1, 2}
    assert [graph.resident_bits(l, fused, 8) for l in range(3)] == [TENSOR_BITS, 2 * TENSOR_BITS, TENSOR_BITS]
    assert [graph.fused_out(l, fused) for l in range(3)] == [True, True, False]
    assert _same_counts_at_reduced_size(B, BIG, 2 * TENSOR_BITS)
    best = best_fusion(net, BIG, TECH, "energy", "network")
    assert best.fused == (1, 2) and best.fused_edges == (("a", "b"), ("b", "c"))
    assert best.reserved_bits == (TENSOR_BITS, 2 * TENSOR_BITS, TENSOR_BITS)
    middle = best.layer_costs[1].counts
    assert middle.dram_ifmap == 0 and middle.dram_ofmap == 0 and middle.cycles_write == 0
    assert middle.dram_filter == branch_costs(B, BIG.arrays(), TECH)[BRANCHES[best.branch_index[1]]].counts.dram_filter
    unfused = unfused_schedule(net, BIG, TECH, "energy", "network")
    saved = (4096 + 18 * 18 * 16) * 2 * 8 * E_DRAM   # a's and b's outputs, b's and c's inputs
    assert best.energy_j == pytest.approx(unfused.energy_j - saved, rel=1e-12)


def test_edge_that_does_not_fit_is_not_fused():
    """A 64 x 64 x 16 tensor is 64 kB; with a 32 kB ifmap SRAM it cannot stay on chip."""
    a, b = conv("a", 64, 3, 16), conv("b", 64, 16, 16)
    net = chain(a, b)
    hardware = HardwarePoint(J=16, K=16, fsram_kb=64, isram_kb=32, psram_kb=64)
    graph = FusionGraph.of(net)
    assert graph.resident_bits(0, {1}, 8) == 64 * BITS_PER_KB > resident_capacity_bits(hardware.arrays())
    assert fusion_tables(graph, FusionCosts(net, hardware, TECH), {1}) is None
    for metric in METRIC_EXPONENTS:
        best = best_fusion(net, hardware, TECH, metric, "network")
        assert best.fused_edges == ()
        assert best.objective == unfused_schedule(net, hardware, TECH, metric, "network").objective
    # the same pair fits a 128 kB SRAM, and then it is fused
    larger = replace(hardware, isram_kb=128)
    assert best_fusion(net, larger, TECH, "energy", "network").fused_edges == (("a", "b"),)


def test_rest_of_the_sram_prices_the_layer():
    """A layer beside resident tensors is priced at i - R_l: it can become infeasible, never at physical e(i)."""
    hw = HardwarePoint(J=16, K=16, fsram_kb=64, isram_kb=8, psram_kb=64).arrays()
    layer = conv("x", 64, 64, 16)
    at_full = branch_costs(layer, hw, TECH)
    squeezed = fused_branch_costs(layer, hw, TECH, hw.isram_bits - 16 * 8)
    assert all(np.isfinite(at_full[b].energy_j) for b in ("XYZiZo",))
    assert not np.isfinite(squeezed["XYZiZo"].energy_j)  # R W' C_uv b_i no longer fits 16 bytes
    untouched = fused_branch_costs(layer, hw, TECH, 0.0)
    for b in BRANCHES:
        assert untouched[b] == at_full[b]


def test_multi_producer_consumer_fuses_all_or_nothing():
    """c reads a|b: fusing c keeps both a's and b's tensors; a's stays resident while b runs."""
    a, b = conv("a", 16, 3, 16), conv("b", 16, 3, 16)
    c = conv("c", 16, 32, 16)
    net = Network("concat", (a, b, c), inputs=[NETWORK_INPUT, NETWORK_INPUT,
                                               Group("concat", (Producer("a"), Producer("b")))])
    graph = FusionGraph.of(net)
    assert graph.fusable == (False, False, True) and graph.first_producer[2] == 0
    assert [graph.resident_bits(l, {2}, 8) for l in range(3)] == [TENSOR_BITS, 2 * TENSOR_BITS, 2 * TENSOR_BITS]
    assert graph.fused_edges({2}) == [("a", "c"), ("b", "c")]


def test_tensor_read_by_two_layers_and_pooling_versions():
    """a feeds b directly and c after a max pooling: two versions; a writes back unless both are fused."""
    a = conv("a", 16, 3, 16)
    b = conv("b", 16, 16, 16)
    c = conv("c", 8, 16, 16)
    net = Network("fan", (a, b, c), inputs=[NETWORK_INPUT, Producer("a"),
                                            Producer("a", (Op("maxpool", 2, 2, 2),))])
    graph = FusionGraph.of(net)
    assert graph.version_elements == (16 * 16 * 16, 16 * 8 * 8)
    assert not graph.fused_out(0, {1}) and not graph.fused_out(0, {2}) and graph.fused_out(0, {1, 2})
    # c fused: the pooled version lives from a to c, so also while b runs
    assert [graph.resident_bits(l, {2}, 8) for l in range(3)] == [16 * 64 * 8] * 3
    assert graph.resident_bits(1, {1, 2}, 8) == (4096 + 1024) * 8


def test_no_graph_means_nothing_fuses():
    net = Network("plain", (A, B))
    assert not any(FusionGraph.of(net).fusable)
    best = best_fusion(net, BIG, TECH, "edp", "network")
    assert best.fused == () and best.objective == unfused_schedule(net, BIG, TECH, "edp", "network").objective


def _random_network(rng: random.Random, n_layers: int) -> Network:
    layers, inputs = [], []
    for k in range(n_layers):
        filters = rng.choice((8, 16, 32))
        if k == 0:
            size = rng.choice((1, 3))
            layers.append(conv("l0", 16, 3, filters, size, 1 if size == 3 else 0))
            inputs.append(NETWORK_INPUT)
            continue
        producers = rng.sample(range(k), min(k, rng.choice((1, 1, 2))))
        if len(producers) == 1:
            channels = layers[producers[0]].filters
            inputs.append(Producer(layers[producers[0]].name))
        elif rng.random() < 0.7:
            channels = sum(layers[p].filters for p in producers)
            inputs.append(Group("concat", tuple(Producer(layers[p].name) for p in producers)))
        else:
            same = [p for p in range(k) if layers[p].filters == layers[producers[0]].filters][:2]
            channels = layers[same[0]].filters
            inputs.append(Group("add", tuple(Producer(layers[p].name) for p in same))
                          if len(same) == 2 else Producer(layers[same[0]].name))
        size = rng.choice((1, 3))
        layers.append(conv(f"l{k}", 16, channels, filters, size, 1 if size == 3 else 0))
    return Network("random", layers, inputs=inputs)


def _brute_force(net, hardware, metric, aggregate):
    graph = FusionGraph.of(net)
    costs = FusionCosts(net, hardware, TECH)
    candidates = [m for m in range(len(net)) if graph.fusable[m]]
    best = unfused_schedule(net, hardware, TECH, metric, aggregate).objective
    for k in range(len(candidates) + 1):
        for fused in itertools.combinations(candidates, k):
            schedule = best_for_fusion_set(graph, costs, fused, metric, aggregate)
            if schedule is not None:
                best = min(best, schedule.objective)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_dynamic_program_equals_brute_force_on_random_graphs(seed):
    rng = random.Random(seed)
    net = _random_network(rng, rng.choice((4, 5, 6)))
    hardware = HardwarePoint(J=rng.choice((8, 16)), K=rng.choice((8, 16)), fsram_kb=rng.choice((4, 16)),
                             isram_kb=rng.choice((8, 12, 16, 24)), psram_kb=rng.choice((4, 8, 16)))
    for metric, aggregate in (("energy", "network"), ("delay", "network"), ("edp", "network"),
                              ("ed2p", "network"), ("edp", "layer-sum")):
        found = best_fusion(net, hardware, TECH, metric, aggregate)
        assert found.objective == pytest.approx(_brute_force(net, hardware, metric, aggregate), rel=1e-12)


def _window(network: Network, start: int, stop: int) -> Network:
    layers = network.layers[start:stop]
    inputs = (NETWORK_INPUT,) + network.inputs[start + 1:stop]
    return Network(f"{network.name}[{start}:{stop}]", layers, inputs=inputs)


@pytest.mark.parametrize("metric", ["energy", "edp"])
def test_dynamic_program_equals_brute_force_on_squeezenet_modules(metric):
    """fire6 to fire8 of SqueezeNet v1.1 (9 layers, 8 fusable consumers, concatenations)."""
    net = _window(load_network("squeezenet-v1.1"), 13, 22)
    hardware = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=64, psram_kb=8)
    found = best_fusion(net, hardware, TECH, metric, "network")
    assert found.fused  # something fits and pays here
    assert found.objective == pytest.approx(_brute_force(net, hardware, metric, "network"), rel=1e-12)


@pytest.mark.parametrize("name, isram_kb", [("alexnet", 128), ("squeezenet-v1.1", 32), ("squeezenet-v1.1", 128),
                                            ("resnet-50", 128)])
def test_fusion_never_worse_than_unfused(name, isram_kb):
    net = load_network(name)
    hardware = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=isram_kb, psram_kb=8)
    for metric in METRIC_EXPONENTS:
        fused = best_fusion(net, hardware, TECH, metric, "network")
        unfused = unfused_schedule(net, hardware, TECH, metric, "network")
        assert fused.objective <= unfused.objective
        # the reported totals are those of the reported per-layer costs
        assert fused.energy_j == pytest.approx(sum(fused.layer_energy_j), rel=1e-12)
        capacity = resident_capacity_bits(hardware.arrays())
        assert max(fused.reserved_bits) <= capacity


def test_unknown_inputs_keep_earlier_outputs_in_dram():
    """A later layer whose inputs are unknown ("?") might read any earlier output: those are written back."""
    d = conv("d", 16, 16, 16)
    net = Network("unknown", (A, B, d), inputs=[NETWORK_INPUT, Producer("a"), None])
    graph = FusionGraph.of(net)
    assert graph.fusable == (False, True, False)
    assert graph.writes_back == (True, True, True)
    assert not graph.fused_out(0, {1})
    best = best_fusion(net, BIG, TECH, "energy", "network")
    assert best.fused_edges == (("a", "b"),) and best.fused_out == (False, False, False)
    # b still reads on chip: only the consumer's D_i goes
    unfused = unfused_schedule(net, BIG, TECH, "energy", "network")
    assert best.energy_j == pytest.approx(unfused.energy_j - 18 * 18 * 16 * 8 * E_DRAM, rel=1e-12)
