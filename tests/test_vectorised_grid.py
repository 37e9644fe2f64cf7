"""The devices that make grid evaluation fast give the same numbers, bit for bit.

* :func:`on_lanes` (a later pass of a cover evaluated only where it is used);
* the covers' infeasibility kept beside raw counts (:class:`SubvolumeCost`,
  :class:`MaskedCounts`) instead of masking every pass;
* :func:`branch_energy_delay` (energy and delay masked instead of nine counts);
* :func:`grid_bounds` with the pairs axis innermost, in chunks, in worker processes.
"""

from dataclasses import fields

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel import common
from deepopt_mip.formulation.costmodel.branch_xyzizo import _subvolume as xyzizo_subvolume
from deepopt_mip.formulation.costmodel.branch_xyzozi import xyzozi_subvolume
from deepopt_mip.formulation.costmodel.branch_xzoyzi import xzoyzi_subvolume
from deepopt_mip.formulation.costmodel.common import AccessCounts, on_lanes
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, branch_costs, branch_energy_delay
from deepopt_mip.formulation.costmodel.subvolumes import SubvolumeCost, cover_ofmap_plane, cover_ofmap_volume
from deepopt_mip.formulation.hardware import array_hardware
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import parse_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import grid_bounds

TECH = load_technology()
PRICERS = [xyzozi_subvolume, xzoyzi_subvolume, xyzizo_subvolume]


def grid(pairs_last: bool = False):
    """A small hardware grid, J/K pairs by three SRAM axes, in either axis order."""
    rows = np.array([8.0, 12, 16, 24, 32, 48])
    cols = np.array([8.0, 16, 16, 24, 40, 64])
    sizes = (np.array([4.0, 16, 64, 256]), np.array([4.0, 8, 32, 128]), np.array([4.0, 8, 16, 32, 128]))
    if pairs_last:
        j, k = rows[None, None, None, :], cols[None, None, None, :]
        f, i, p = (s.reshape(shape) for s, shape in zip(sizes, [(-1, 1, 1, 1), (1, -1, 1, 1), (1, 1, -1, 1)]))
    else:
        j, k = rows[:, None, None, None], cols[:, None, None, None]
        f, i, p = (s.reshape(shape) for s, shape in zip(sizes, [(1, -1, 1, 1), (1, 1, -1, 1), (1, 1, 1, -1)]))
    return array_hardware(j, k, f, i, p)


def conv_shapes(network: str, count: int):
    return [layer.group_shape() for layer in load_network(network).layers if layer.kind == "conv"][:count]


def leaves(value):
    """Every array of a (nested) result, as float arrays."""
    if isinstance(value, (AccessCounts, SubvolumeCost, tuple)):
        items = [getattr(value, f.name) for f in fields(value)] if isinstance(value, AccessCounts) else list(value)
        return [leaf for item in items for leaf in leaves(item)]
    return [np.asarray(value, dtype=float)]


def assert_same_where(mask, part, full, zero_elsewhere: bool):
    for a, b in zip(leaves(part), leaves(full), strict=True):
        shape = np.broadcast_shapes(a.shape, b.shape, np.shape(mask))
        a, b, m = (np.broadcast_to(x, shape) for x in (a, b, mask))
        assert np.array_equal(a[m], b[m], equal_nan=True)
        if zero_elsewhere:
            assert not np.any(a[~m])


@pytest.fixture
def always_compact(monkeypatch):
    monkeypatch.setattr(common, "COMPACT_MIN_LANES", 1)
    monkeypatch.setattr(common, "COMPACT_MAX_SHARE", 1.0)


@pytest.mark.parametrize("pairs_last", [False, True])
@pytest.mark.parametrize("price", PRICERS)
def test_on_lanes_equals_the_full_call_on_the_masked_lanes(price, pairs_last, always_compact):
    """Masks over some axes (the usual case: J/K pairs and psum SRAM), over all axes, and on layer
    fields that are themselves arrays: compacted, the call equals the full call on the masked lanes
    and is zero elsewhere."""
    hw = grid(pairs_last)
    rng = np.random.default_rng(7)
    full_shape = np.broadcast_shapes(*(np.shape(getattr(hw, f.name)) for f in fields(hw)))
    pair_psum = (1, 1, full_shape[2], full_shape[3]) if pairs_last else (full_shape[0], 1, 1, full_shape[3])
    for layer in conv_shapes("googlenet-v1", 6):
        narrower = layer.replace(ofmap_w=np.floor(rng.uniform(1, layer.ofmap_w + 1, pair_psum)))
        for shape in (pair_psum, full_shape, (1, 1, 1, full_shape[3])):
            for share in (0.0, 0.3, 1.0):
                mask = rng.random(shape) < share
                for lay in (layer, narrower):
                    assert_same_where(mask, on_lanes(mask, price, lay, hw), price(lay, hw), zero_elsewhere=True)


def test_on_lanes_falls_back_to_one_call_and_skips_unused_calls():
    hw = grid()
    layer = conv_shapes("resnet-50", 2)[1]
    calls = []

    def counted(lay, h):
        calls.append(1)
        return xyzozi_subvolume(lay, h)

    full = xyzozi_subvolume(layer, hw)
    for mask in (np.ones((6, 1, 1, 5), bool), np.array(True), np.eye(6, 5, dtype=bool)[:, None, None, :]):
        assert_same_where(mask, on_lanes(mask, counted, layer, hw), full, zero_elsewhere=False)
    assert len(calls) == 3
    nothing = object()
    assert on_lanes(np.zeros((6, 1, 1, 5), bool), counted, layer, hw, empty=nothing) is nothing
    assert len(calls) == 3


def _old_contract(price):
    """The pricer as it was: infeasible lanes masked inside it (inf counts, the layer's own extents)."""

    def masked(layer, hw):
        cost = price(layer, hw)
        bad = cost.infeasible
        return SubvolumeCost(cost.counts.infeasible_where(bad), np.where(bad, layer.ofmap_w, cost.ofmap_w_eff),
                             np.where(bad, layer.ofmap_h, cost.ofmap_h_eff),
                             np.where(bad, layer.filters, cost.filters_eff), False)

    return masked


def _with_narrow_passes_infeasible(price):
    """A pricer whose later passes may be infeasible where its first one is not: on square layers only a
    block of odd width + height fails (with a small ifmap SRAM)."""

    def stricter(layer, hw):
        cost = price(layer, hw)
        odd = (np.asarray(layer.ofmap_w) + np.asarray(layer.ofmap_h)) % 2 == 1
        return cost._replace(infeasible=cost.infeasible | (odd & (np.asarray(hw.isram_bits) < 64 * 8192)))

    return stricter


@pytest.mark.parametrize("price", PRICERS)
def test_covers_equal_masking_every_pass(price):
    """Infeasibility kept beside the raw counts (and applied once, or to a used pass that cannot run)
    gives every count of masking every pass inside the pricer, also where a later pass cannot run."""
    hw = grid()
    for base in (price, _with_narrow_passes_infeasible(price)):
        for layer in conv_shapes("googlenet-v1", 12) + conv_shapes("alexnet", 3):
            for cover in (cover_ofmap_plane, cover_ofmap_volume):
                new, old = cover(base, layer, hw), cover(_old_contract(base), layer, hw)
                assert np.array_equal(np.broadcast_to(old.infeasible, np.shape(old.infeasible)), False)
                for a, b in zip(leaves(new.resolved()), leaves(old.resolved()), strict=True):
                    shape = np.broadcast_shapes(a.shape, b.shape)
                    assert np.array_equal(np.broadcast_to(a, shape), np.broadcast_to(b, shape), equal_nan=True)


@pytest.mark.parametrize("network", ["alexnet", "squeezenet-v1.1"])
def test_branch_energy_delay_equals_branch_costs(network):
    """Every lane, feasible or not: AlexNet's 11x11 conv1 on 8-row arrays (no filter row fits),
    its grouped convolutions, FC layers."""
    hw = grid()
    for layer in load_network(network).layers:
        fast = branch_energy_delay(layer, hw, TECH)
        full = branch_costs(layer, hw, TECH)
        for b in BRANCHES:
            for a, c in ((fast[b][0], full[b].energy_j), (fast[b][1], full[b].delay_cycles)):
                shape = np.broadcast_shapes(np.shape(a), np.shape(c))
                assert np.array_equal(np.broadcast_to(a, shape), np.broadcast_to(c, shape), equal_nan=True)


SPACE = """
name: small
rows: {min: 8, max: 40, step: 4}
cols: {min: 8, max: 40, step: 4}
aspect_min_ratio: 0.5
sram_kb: {filter: [4, 16, 64], ifmap: [8, 32, 128], psum: [4, 16, 64]}
bits: {filter: 8, ifmap: 8, psum: 32}
dram: {bandwidth_bits_per_cycle: 128, block_bits: 128}
area: {budget_mm2: 16, tolerance: 0.0}
"""


@pytest.mark.parametrize("metric, aggregate", [("edp", "layer-sum"), ("e2dp", "network"), ("energy", "network")])
def test_grid_bounds_are_the_same_for_any_chunks_and_workers(metric, aggregate):
    space = parse_space(SPACE, "small.yaml", TECH)
    network = Network(name="part", layers=load_network("googlenet-v1").layers[:8], source="test")
    one = grid_bounds(network, space, TECH, metric, aggregate, workers=1)
    for max_points, workers in ((500, 1), (500, 3), (10**6, 2)):
        other = grid_bounds(network, space, TECH, metric, aggregate, max_points=max_points, workers=workers)
        for a, b in zip(one, other, strict=True):
            assert a.shape == b.shape and np.array_equal(a, b)
