"""Loop order XZoYZi (reference branch ``xFyz``) against the reference and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.branch_xzoyzi import xzoyzi
from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape
from reference_cases import COUNT_COLUMNS, assert_counts_match, assert_grid_equals_scalar_calls, conv_reference_groups, hardware_of, shape_of

REFERENCE_NAME = "xFyz"


def test_matches_reference_sample():
    """Every conv row of the committed sample, vectorised over the configs of each layer."""
    groups = conv_reference_groups(REFERENCE_NAME)
    assert len(groups) > 0
    for layer_rows in groups:
        assert_counts_match(xzoyzi(shape_of(layer_rows.iloc[0]), hardware_of(layer_rows)), layer_rows)


BROADCAST_LAYERS = [
    LayerShape(3, 3, 58, 58, 64, 56, 56, 128, 1),  # 3x3, stride 1
    LayerShape(1, 1, 56, 56, 256, 28, 28, 512, 2),  # 1x1 stride 2: (W - S)/U + 1 = 28.5
    LayerShape(11, 11, 227, 227, 3, 55, 55, 96, 4),  # large filter, stride 4
    LayerShape(1, 1, 14, 14, 64, 7, 7, 32, 2),  # fractional extent, whole layer fits large psum SRAMs
]


@pytest.mark.parametrize("layer", BROADCAST_LAYERS)
def test_broadcast_grid_equals_scalar_calls(layer):
    """Hardware axes of different shapes give, element by element, the scalar answer.

    The grid covers psum SRAMs that split the ofmap width, the filters and the
    height, filter and ifmap SRAMs too small for the working set (inf) and arrays
    with fewer rows than the filter width.
    """
    assert_grid_equals_scalar_calls(xzoyzi, layer, [
        {"rows": [8.0, 16.0, 48.0]},
        {"cols": [16.0, 64.0, 200.0]},
        {"fsram_bits": np.array([1.0, 128.0]) * 8192},
        {"isram_bits": np.array([2.0, 32.0]) * 8192},
        {"psram_bits": np.array([0.5, 2.0, 8.0, 64.0]) * 8192},
    ])


def test_broadcast_pairs_sharing_an_axis():
    """rows/cols on one axis (3, 1), psum SRAM on the other (1, 4)."""
    layer = BROADCAST_LAYERS[0]
    assert_grid_equals_scalar_calls(
        xzoyzi, layer,
        [{"rows": [16.0, 32.0, 64.0], "cols": [64.0, 32.0, 16.0]}, {"psram_bits": np.array([1.0, 4.0, 8.0, 32.0]) * 8192}],
        fsram_bits=64 * 8192, isram_bits=64 * 8192,
    )


TINY_LAYER = LayerShape(filter_h=3, filter_w=3, ifmap_h=6, ifmap_w=6, channels=2, ofmap_h=4, ofmap_w=4, filters=4, stride=1)
BIG = 1e6  # bits: the SRAM holds everything


def _tiny_array(fsram=BIG, isram=BIG, psram=BIG, rows=6, **link):
    return ArrayHardware(rows=rows, cols=2, fsram_bits=fsram, isram_bits=isram, psram_bits=psram, **link)


def _as_dict(counts: AccessCounts) -> dict:
    return {name: float(getattr(counts, name)) for name in COUNT_COLUMNS}


WHOLE_LAYER = {
    "cycles_ideal": 96.0, "cycles_stall": 0.0, "cycles_write": 4.0,
    "sram_filter": 288.0, "sram_ifmap": 288.0, "sram_psum": 320.0,
    "dram_filter": 72.0, "dram_ifmap": 72.0, "dram_ofmap": 64.0,
}


def test_hand_computed_whole_layer():
    """3x3 filter, 6x6x2 ifmap, 4 filters, stride 1, on a 6 x 2 array, all SRAMs large.

    C_uv = min(floor(6/3), 2) = 2, F_uv = min(2, 4) = 2: all 12 PEs busy, so
    cycles_ideal = MACs / 12 = (3*3*2 * 4 * 4*4) / 12 = 96 (per ofmap row and filter
    pair: 4 columns x 3 filter rows = 12 cycles; 2 pairs x 4 rows). Everything is loaded
    from DRAM once: dram_filter = 3*3*2*4 = 72, dram_ifmap = 6*6*2 = 72,
    dram_ofmap = 4*4*4 = 64, written in 64 * 8 / 128 = 4 cycles. The 72 weights leave
    the SRAM once per ofmap row: sram_filter = 288; each ofmap row reads its 3x6x2 ifmap
    band once per filter pair: sram_ifmap = 36 * 2 * 4 = 288. Psums: 8 per row and
    pair, written by the first filter row and read+written by the other two:
    (8 + 2*8*2) * 2 * 4 = 320. The first row loads 288 + 288 bits (5 cycles) while
    computing 12: no stall.
    """
    assert _as_dict(xzoyzi(TINY_LAYER, _tiny_array())) == WHOLE_LAYER


def test_hand_computed_height_split():
    """psum SRAM of 1024 bits = 2 ofmap rows x 4 columns x 4 filters x 32 bits.

    The ofmap is cut into two bands of 2 rows; compute, SRAM traffic and outputs are
    as for the whole layer. Each band reloads all 72 weights (dram_filter = 144) and
    its 4 ifmap rows, the 2 rows of the halo twice: dram_ifmap = 2 * 4*6*2 = 96.
    """
    assert _as_dict(xzoyzi(TINY_LAYER, _tiny_array(psram=1024))) == {
        **WHOLE_LAYER, "dram_filter": 144.0, "dram_ifmap": 96.0,
    }


def test_hand_computed_filter_split():
    """psum SRAM of 384 bits: a full row of 4 columns but only F_eff = 2 filters, 1 row.

    Eight subvolumes (2 filter pairs x 4 ofmap rows) of 12 cycles each. Every one
    loads its pair's 36 weights and its 3 ifmap rows (3*6*2 = 36):
    dram_filter = dram_ifmap = 8 * 36 = 288, and writes 8 outputs (64 bits, 1 cycle):
    cycles_write = 8.
    """
    assert _as_dict(xzoyzi(TINY_LAYER, _tiny_array(psram=384))) == {
        **WHOLE_LAYER, "cycles_write": 8.0, "dram_filter": 288.0, "dram_ifmap": 288.0,
    }


def test_hand_computed_filter_remainder():
    """Same psum SRAM, 5 filters: two pairs as above plus one filter on its own.

    The pairs cost 2 * 48 cycles; the last filter runs on one PE column (F_uv = 1),
    12 cycles per ofmap row: cycles_ideal = 96 + 48 = 144. Its psums allow 3 rows at a
    time: a band of 3 rows (5 ifmap rows) and one of 1 row (3 ifmap rows), each loading
    the filter (18 weights): dram_filter = 8*36 + 2*18 = 324,
    dram_ifmap = 288 + (5 + 3)*6*2 = 384, dram_ofmap = 4*4*5 = 80.
    """
    counts = xzoyzi(TINY_LAYER.replace(filters=5), _tiny_array(psram=384))
    assert (counts.cycles_ideal, counts.dram_filter, counts.dram_ifmap, counts.dram_ofmap) == (144, 324, 384, 80)


def test_hand_computed_width_split():
    """psum SRAM of 192 bits: G_eff = floor(192 / (2*32)) = 3 columns, F_eff = 2, 1 row.

    Per filter pair: 4 rows of the 3-column part (ifmap width 5, 9 cycles per row) and
    the last column (ifmap width 3, 3 cycles per row) in a band of 3 rows and one of 1:
    cycles_ideal = 2 * (4*9 + 4*3) = 96. Ifmap traffic per pair: 4 * 5*3*2 = 120 for the
    wide part, (5 + 3) * 3*2 = 48 for the last column: dram_ifmap = 2 * 168 = 336.
    """
    counts = xzoyzi(TINY_LAYER, _tiny_array(psram=192))
    assert (counts.cycles_ideal, counts.dram_ifmap, counts.dram_ofmap) == (96, 336, 64)


def test_hand_computed_width_split_single_row():
    """One ofmap row (3x6 ifmap), psum SRAM of 192 bits: G_eff = 3, F_eff = 2, E_eff = E.

    The last column is then costed at full height right after the X pass. Per filter
    pair: 9 + 3 cycles, ifmap 5*3*2 + 3*3*2 = 48, weights 36 for each of the two parts:
    cycles_ideal = 24 (= 3*3*2 * 4 * 4 MACs / 12 PEs), dram_ifmap = 96,
    dram_filter = 144, dram_ofmap = 16.
    """
    layer = TINY_LAYER.replace(ifmap_h=3, ofmap_h=1)
    counts = xzoyzi(layer, _tiny_array(psram=192))
    assert (counts.cycles_ideal, counts.dram_ifmap, counts.dram_filter, counts.dram_ofmap) == (24, 96, 144, 16)


def test_hand_computed_stall():
    """Whole layer over a 16-bit/cycle DRAM link (16-bit blocks).

    First ofmap row: the first filter pair (288 bits) and the 3-row ifmap band
    (288 bits) take 36 cycles against 12 of compute: 24 stall cycles; the second pair
    (18 cycles) stalls 6 more. Later rows keep every filter in SRAM and fetch one new
    ifmap row (96 bits, 6 cycles < 12): no stall. cycles_stall = 30; the 512 output
    bits take cycles_write = 32.
    """
    counts = xzoyzi(TINY_LAYER, _tiny_array(dram_bw_bits_per_cycle=16, dram_block_bits=16))
    assert _as_dict(counts) == {**WHOLE_LAYER, "cycles_stall": 30.0, "cycles_write": 32.0}


@pytest.mark.parametrize(
    "hardware",
    [
        _tiny_array(fsram=287),  # filter rows of the unit volume need 3*3*2*2*8 = 288 bits
        _tiny_array(isram=287),  # ifmap band needs 3*6*2*8 = 288 bits
        _tiny_array(rows=2),  # a 3-wide filter row does not fit 2 PE rows
        _tiny_array(psram=63),  # not even one output column of 2 psums
    ],
)
def test_rejected_hardware_is_inf(hardware):
    counts = xzoyzi(TINY_LAYER, hardware)
    assert all(np.isinf(v) for v in counts.values())
