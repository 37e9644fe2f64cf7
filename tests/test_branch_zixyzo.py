"""Branch ZiXYZo (reference ``ZtoXtoYtoF``, ``zxyF``) against the reference and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.branch_zixyzo import zixyzo
from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape

from reference_cases import assert_counts_match, assert_grid_equals_scalar_calls, conv_reference_groups, hardware_of, shape_of

BIG = 1e9  # bits: an SRAM that holds anything in these tiny cases


REFERENCE_LAYERS = conv_reference_groups("zxyF")


def test_sample_has_cases():
    assert len(REFERENCE_LAYERS) > 0
    stall_only = sum(int(np.isinf(g.cycles_stall).sum()) for g in REFERENCE_LAYERS)
    assert stall_only > 0, "sample should exercise the stall-only infeasibility"


@pytest.mark.parametrize(
    "rows", REFERENCE_LAYERS, ids=[f"net{g.network.iloc[0]}-L{g.layer_index.iloc[0]}" for g in REFERENCE_LAYERS]
)
def test_matches_reference_vectorised_over_configs(rows):
    counts = zixyzo(shape_of(rows.iloc[0]), hardware_of(rows))
    assert_counts_match(counts, rows)


def test_stall_only_infeasibility_keeps_energy_counts_finite():
    """Where the reference reports an infinite stall, every other count stays finite."""
    for rows in REFERENCE_LAYERS:
        counts = zixyzo(shape_of(rows.iloc[0]), hardware_of(rows))
        stall_inf = np.isinf(np.broadcast_to(counts.cycles_stall, (len(rows),)))
        np.testing.assert_array_equal(stall_inf, np.isinf(rows.cycles_stall.to_numpy(float)))
        for name, value in zip(
            ["cycles_ideal", "cycles_write", "sram_filter", "sram_ifmap", "sram_psum",
             "dram_filter", "dram_ifmap", "dram_ofmap"],
            [counts.cycles_ideal, counts.cycles_write, counts.sram_filter, counts.sram_ifmap,
             counts.sram_psum, counts.dram_filter, counts.dram_ifmap, counts.dram_ofmap],
        ):
            assert np.all(np.isfinite(np.broadcast_to(value, (len(rows),))[stall_inf])), name


@pytest.mark.parametrize(
    "layer",
    [
        LayerShape(3, 3, 58, 58, 64, 56, 56, 128, 1),
        LayerShape(1, 1, 56, 56, 256, 28.5, 28.5, 512, 2),  # fractional ofmap extent, as the reference has
        LayerShape(5, 5, 31, 31, 48, 27, 27, 128, 1),
    ],
)
def test_broadcast_grid_equals_scalar_calls(layer):
    assert_grid_equals_scalar_calls(zixyzo, layer, [
        {"rows": [8.0, 16.0, 32.0], "cols": [4.0, 16.0, 64.0]},
        {"fsram_bits": np.array([0.5, 2.0, 16.0, 64.0]) * 8192},
        {"isram_bits": np.array([0.25, 2.0, 16.0, 64.0]) * 8192},
        {"psram_bits": np.array([1 / 128, 1.0, 8.0, 32.0]) * 8192},
    ])


TINY = LayerShape(filter_h=3, filter_w=3, ifmap_h=5, ifmap_w=5, channels=4, ofmap_h=3, ofmap_w=3, filters=4, stride=1)


def _tiny(fsram=BIG, isram=BIG, psram=BIG) -> AccessCounts:
    return zixyzo(TINY, ArrayHardware(rows=6, cols=2, fsram_bits=fsram, isram_bits=isram, psram_bits=psram))


def test_hand_computed_tiny_layer():
    """3x3 filters, C = 4, F = 4, 5x5 padded ifmap, 3x3 ofmap, stride 1, on a 6 x 2 array, 8-bit data.

    Unit volume: C_uv = min(floor(6/3), 4) = 2, F_uv = min(2, 4) = 2.
    One output element: ceil(4/2) = 2 channel passes x 3 filter rows = 6 cycles;
    9 outputs x 2 filter groups -> cycles_ideal = 6 * 9 * 2 = 108.
    Every weight is read from SRAM once per output: 3*3*4*4 * 9 = 1296; every ifmap
    window once per output and filter group: 3*3*4 * 9 * 2 = 648. Psum SRAM gets
    each finished output once: 4 * 9 = 36 = dram_ofmap.
    With large SRAMs each weight and each ifmap element comes from DRAM once:
    dram_filter = 3*3*4*4 = 144, dram_ifmap = 5*5*4 = 100.
    Writing 36 8-bit outputs: 288 bits -> 3 blocks of 128 bits -> 3 cycles.
    Stall: the first element loads 3*3*4*2 filter + 3*3*4 ifmap = 108 elements =
    864 bits -> 7 blocks -> 7 cycles against 6 compute: 1 cycle. Later elements load
    a 3x4 ifmap column (96 bits, 1 cycle), no stall; 40 slack cycles are left, enough
    to prefetch the next group's 576 filter bits (5 cycles): total stall 1.
    """
    counts = _tiny()
    assert counts.cycles_ideal == 108
    assert counts.cycles_stall == 1
    assert counts.cycles_write == 3
    assert counts.sram_filter == 1296
    assert counts.sram_ifmap == 648
    assert counts.sram_psum == 36
    assert counts.dram_filter == 144
    assert counts.dram_ifmap == 100
    assert counts.dram_ofmap == 36


def test_hand_computed_filter_sram_exactly_one_group():
    """fSRAM = 576 bits holds exactly one group's 3*3*4*2 filters: no room to prefetch,
    so the first group's 1-cycle stall repeats for both groups: ceil(1 * 4/2) = 2."""
    counts = _tiny(fsram=576)
    assert counts.cycles_stall == 2
    assert counts.dram_filter == 144


def test_hand_computed_stall_only_infeasible():
    """fSRAM = 575 bits: one group's filters (576 bits) do not fit, so only the stall is inf.

    The filter SRAM holds floor(575 / 72) = 7 of the 8 planes of a group; the evicted
    plane (9 weights) is re-fetched for each of the 8 further outputs:
    per group 72 + 9 * 8 = 144, for F/F_uv = 2 groups dram_filter = 288.
    The innermost step needs only 3*2*2*3 weights = 288 bits, so it still runs.
    """
    counts = _tiny(fsram=575)
    assert np.isinf(counts.cycles_stall)
    assert counts.dram_filter == 288
    assert counts.cycles_ideal == 108
    for value in [counts.cycles_write, counts.sram_filter, counts.sram_ifmap, counts.sram_psum,
                  counts.dram_ifmap, counts.dram_ofmap]:
        assert np.isfinite(value)


@pytest.mark.parametrize(
    "sizes",
    [
        {"fsram": 287},  # innermost filter template 3*2*2*3 weights = 288 bits does not fit
        {"psram": 63},  # F_uv = 2 psums of 32 bits = 64 bits do not fit
        {"isram": 143},  # innermost ifmap template 3*3*2 = 18 elements = 144 bits does not fit
    ],
)
def test_hand_computed_all_infeasible(sizes):
    counts = _tiny(**sizes)
    assert all(np.isinf(v) for v in counts.values())


def test_hand_computed_ifmap_reuse_across_filter_groups():
    """iSRAM = 480 bits holds the R x W x C band (3*5*4 = 60 elements) but not the
    whole 100-element ifmap. The first group fetches all 100; the second re-fetches
    everything except the floor(480 / 96) = 5 columns of 3 x 4 still resident
    (60 elements): dram_ifmap = 100 + 40 = 140."""
    assert _tiny(isram=480).dram_ifmap == 140
