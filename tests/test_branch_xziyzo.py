"""Loop order XZiYZo (reference branch ``xzyF``) against the reference and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.branch_xziyzo import xziyzo
from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape
from reference_cases import COUNT_COLUMNS, assert_counts_match, assert_grid_equals_scalar_calls, conv_reference_groups, hardware_of, shape_of

REFERENCE_NAME = "xzyF"


def test_matches_reference_sample():
    """Every conv row of the committed sample, vectorised over the configs of each layer."""
    groups = conv_reference_groups(REFERENCE_NAME)
    assert len(groups) > 0
    for layer_rows in groups:
        assert_counts_match(xziyzo(shape_of(layer_rows.iloc[0]), hardware_of(layer_rows)), layer_rows)


BROADCAST_LAYERS = [
    LayerShape(3, 3, 58, 58, 64, 56, 56, 128, 1),  # 3x3, stride 1
    LayerShape(1, 1, 56, 56, 256, 28, 28, 512, 2),  # 1x1 stride 2: (W - S)/U + 1 = 28.5
    LayerShape(11, 11, 227, 227, 3, 55, 55, 96, 4),  # large filter, stride 4
    LayerShape(5, 5, 31, 31, 48, 27, 27, 128, 1),
]


@pytest.mark.parametrize("layer", BROADCAST_LAYERS)
def test_broadcast_grid_equals_scalar_calls(layer):
    """Hardware axes of different shapes give, element by element, the scalar answer.

    The grid covers psum SRAMs that force a split of the ofmap width, ifmap and
    filter SRAMs too small for the working set (inf) and arrays with fewer rows
    than the filter width.
    """
    assert_grid_equals_scalar_calls(xziyzo, layer, [
        {"rows": [8.0, 16.0, 48.0]},
        {"cols": [16.0, 64.0, 200.0]},
        {"fsram_bits": np.array([1.0, 16.0, 128.0]) * 8192},
        {"isram_bits": np.array([2.0, 32.0]) * 8192},
        {"psram_bits": np.array([0.5, 2.0, 8.0, 64.0]) * 8192},
    ])


def test_broadcast_pairs_sharing_an_axis():
    """rows/cols on one axis (3, 1), psum SRAM on the other (1, 4)."""
    layer = BROADCAST_LAYERS[0]
    assert_grid_equals_scalar_calls(
        xziyzo, layer,
        [{"rows": [16.0, 32.0, 64.0], "cols": [64.0, 32.0, 16.0]}, {"psram_bits": np.array([1.0, 4.0, 8.0, 32.0]) * 8192}],
        fsram_bits=64 * 8192, isram_bits=64 * 8192,
    )


TINY_LAYER = LayerShape(
    filter_h=3, filter_w=3, ifmap_h=6, ifmap_w=6, channels=2, ofmap_h=4, ofmap_w=4, filters=2, stride=1
)
BIG = 1e6  # bits: the SRAM holds everything


def _tiny_array(fsram=BIG, isram=BIG, psram=BIG, rows=6):
    return ArrayHardware(rows=rows, cols=2, fsram_bits=fsram, isram_bits=isram, psram_bits=psram)


def _as_dict(counts: AccessCounts) -> dict:
    return {name: float(getattr(counts, name)) for name in COUNT_COLUMNS}


def test_hand_computed_whole_width():
    """3x3 filter, 6x6x2 ifmap, 2 filters, stride 1, on a 6 x 2 array, all SRAMs large.

    C_uv = min(floor(6/3), 2) = 2 and F_uv = min(2, 2) = 2: one pass over channels and
    filters. Each ofmap row takes one cycle per output column and filter row:
    cycles_ideal = E * G * R = 4 * 4 * 3 = 48. Everything is loaded from DRAM once:
    dram_filter = 3*3*2*2 = 36, dram_ifmap = 6*6*2 = 72, dram_ofmap = 4*4*2 = 32,
    written in ceil(32 * 8 / 128) = 2 cycles. Each filter row template (3*3*2*2 = 36
    weights) is read from SRAM once per ofmap row: sram_filter = 36 * 4 = 144; with stride 1
    each ofmap row reads its 3 x 6 x 2 ifmap band once: sram_ifmap = 36 * 4 = 144. Psums:
    4 columns x 2 filters = 8 per ofmap row, written for the first filter row and read+written
    for the other two: (8 + 2*8*2) * 4 = 160. The first X step loads 288 + 288 bits =
    5 blocks = 5 cycles while computing 12: no stall.
    """
    assert _as_dict(xziyzo(TINY_LAYER, _tiny_array())) == {
        "cycles_ideal": 48.0, "cycles_stall": 0.0, "cycles_write": 2.0,
        "sram_filter": 144.0, "sram_ifmap": 144.0, "sram_psum": 160.0,
        "dram_filter": 36.0, "dram_ifmap": 72.0, "dram_ofmap": 32.0,
    }


def test_hand_computed_psum_split():
    """Same layer, psum SRAM of 192 bits = 3 columns x 2 filters x 32 bits.

    The ofmap width 4 is cut into one strip of 3 columns (ifmap width 5) and a last strip of
    1 column (ifmap width 3). Compute is unchanged: (3 + 1) * 3 * 4 = 48 cycles. Filters are
    reloaded per strip: dram_filter = 2 * 36 = 72, sram_filter = 2 * 144 = 288; the ifmap
    columns shared by the strips are loaded twice: dram_ifmap = (5 + 3) * 6 * 2 = 96, and
    read twice: sram_ifmap = 3 * (5 + 3) * 2 * 4 = 192.
    Writes: 24 outputs (2 blocks) + 8 outputs (1 block) = 3 cycles. Psums: (6 + 2*6*2) * 4
    + (2 + 2*2*2) * 4 = 160. The narrow strip computes an X step in 3 cycles but loads
    288 + 144 bits = 4 blocks = 4 cycles: 1 stall cycle; later rows only fetch one ifmap
    row (48 bits, 1 cycle), so the strip stalls once: cycles_stall = 1.
    """
    assert _as_dict(xziyzo(TINY_LAYER, _tiny_array(psram=192))) == {
        "cycles_ideal": 48.0, "cycles_stall": 1.0, "cycles_write": 3.0,
        "sram_filter": 288.0, "sram_ifmap": 192.0, "sram_psum": 160.0,
        "dram_filter": 72.0, "dram_ifmap": 96.0, "dram_ofmap": 32.0,
    }


@pytest.mark.parametrize(
    "hardware",
    [
        _tiny_array(fsram=287),  # filter row template needs 3*3*2*2*8 = 288 bits
        _tiny_array(isram=287),  # ifmap band needs 3*6*2*8 = 288 bits
        _tiny_array(rows=2),  # a 3-wide filter row does not fit 2 PE rows
        _tiny_array(psram=63),  # not even one output column of 2 psums
    ],
)
def test_rejected_hardware_is_inf(hardware):
    counts = xziyzo(TINY_LAYER, hardware)
    assert all(np.isinf(v) for v in counts.values())
