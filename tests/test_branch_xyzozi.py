"""Branch XYZoZi (reference ``xyFz``) against the reference's numbers and by hand."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from deepopt_mip.formulation.costmodel.branch_xyzozi import xyzozi, xyzozi_subvolume
from deepopt_mip.formulation.costmodel.common import ArrayHardware
from deepopt_mip.formulation.layers import LayerShape

from reference_cases import assert_counts_match, assert_grid_equals_scalar_calls, conv_reference_groups, hardware_of, shape_of


CONV_GROUPS = conv_reference_groups("xyFz")


def test_sample_has_xyzozi_rows():
    assert len(CONV_GROUPS) > 0


@pytest.mark.parametrize(
    "rows", CONV_GROUPS, ids=[f"net{g.network.iloc[0]}-layer{g.layer_index.iloc[0]}" for g in CONV_GROUPS]
)
def test_conv_layers_match_reference(rows):
    """Every conv layer of the sample, vectorised over its configs."""
    assert_counts_match(xyzozi(shape_of(rows.iloc[0]), hardware_of(rows)), rows)


# Source: shared reference deepopt-golden/fc_batched_raw.csv (rows with called_function
# Asymmetric_XYFZ, i.e. the counts before division by the batch), channels and filters
# from deepopt-golden/layers.csv. Layers: AlexNet FC6 (filters tiled in 128-filter blocks),
# VGG-16 FC8 (1000 filters = 512 + a 488-filter remainder), GoogleNet-v1 FC (58, one block).
FC_BATCHED = """\
network,layer_index,config_id,J,K,fsram_kb,isram_kb,psram_kb,bw_filter,bw_ifmap,bw_psum,batch_size,nos_of_channel,nos_of_filter,cycles_ideal,cycles_stall,cycles_write,sram_filter,sram_ifmap,sram_psum,dram_filter,dram_ifmap,dram_ofmap
1,6,c1,32,64,16,32,8,8,8,32,16,9216,4096,294912,2359296,4096,37748736,9437184,37683200,37748736,4718592,65536
2,16,c4,48,32,32,64,32,8,8,32,16,4096,1000,44032,221526,1000,4096000,2097152,2736000,4096000,131072,16000
4,58,c5,40,32,32,32,128,8,8,32,16,1024,1000,13312,52224,1000,1024000,524288,816000,1024000,16384,16000
"""


def test_batched_fc_as_1x1_conv_over_batch():
    """An FC layer with batch N is a 1x1 conv with H = E = 1 and W = G = N."""
    rows = pd.read_csv(io.StringIO(FC_BATCHED))
    batch = rows.batch_size.to_numpy(float)
    layer = LayerShape(
        filter_h=1, filter_w=1, ifmap_h=1, ifmap_w=batch, channels=rows.nos_of_channel.to_numpy(float),
        ofmap_h=1, ofmap_w=batch, filters=rows.nos_of_filter.to_numpy(float), stride=1,
    )
    assert_counts_match(xyzozi(layer, hardware_of(rows)), rows)


BROADCAST_LAYERS = [
    # 3x3 stride 1, 56x56 (X, Y and Zo splits with small psum SRAMs)
    LayerShape(
        filter_h=3, filter_w=3, ifmap_h=58, ifmap_w=58, channels=64,
        ofmap_h=56, ofmap_w=56, filters=192, stride=1,
    ),
    # 1x1 stride 2 over a 56-wide ifmap: the fractional (W - S) / U + 1 = 28.5
    LayerShape(
        filter_h=1, filter_w=1, ifmap_h=56, ifmap_w=56, channels=256,
        ofmap_h=28, ofmap_w=28, filters=512, stride=2,
    ),
    # 11x11 stride 4 (AlexNet conv1): infeasible on some hardware points
    LayerShape(
        filter_h=11, filter_w=11, ifmap_h=227, ifmap_w=227, channels=3,
        ofmap_h=55, ofmap_w=55, filters=96, stride=4,
    ),
    # batched FC: 1x1 over a batch of 16, X split when the psum SRAM is small
    LayerShape(
        filter_h=1, filter_w=1, ifmap_h=1, ifmap_w=16, channels=1024,
        ofmap_h=1, ofmap_w=16, filters=1000, stride=1,
    ),
]
ROWS = np.array([12.0, 16.0, 32.0])
COLS = np.array([8.0, 16.0, 64.0])
PSRAM_KB = np.array([0.5, 2.0, 8.0, 64.0])
ISRAM_KB = np.array([2.0, 32.0])
FSRAM_KB = 8.0


@pytest.mark.parametrize("layer", BROADCAST_LAYERS, ids=["3x3", "1x1s2", "11x11s4", "fc-batch"])
def test_broadcast_grid_equals_scalar_calls(layer):
    """rows, cols on axis 0 / 1 ... : every element equals the call with scalar hardware."""
    assert_grid_equals_scalar_calls(
        xyzozi, layer,
        [{"rows": ROWS}, {"cols": COLS}, {"isram_bits": ISRAM_KB * 8192}, {"psram_bits": PSRAM_KB * 8192}],
        fsram_bits=FSRAM_KB * 8192,
    )


@pytest.mark.parametrize("layer", BROADCAST_LAYERS, ids=["3x3", "1x1s2", "11x11s4", "fc-batch"])
def test_tiling_writes_every_output_once(layer):
    """Whatever the blocks, the ofmap DRAM writes add up to E * G * F (feasible points)."""
    hw = ArrayHardware(
        rows=ROWS.reshape(3, 1, 1), cols=COLS.reshape(1, 3, 1), fsram_bits=FSRAM_KB * 8192, isram_bits=32 * 8192,
        psram_bits=PSRAM_KB.reshape(1, 1, 4) * 8192,
    )
    written = np.broadcast_to(xyzozi(layer, hw).dram_ofmap, (3, 3, 4))
    feasible = np.isfinite(written)
    assert feasible.any()
    np.testing.assert_array_equal(written[feasible], layer.ofmap_h * layer.ofmap_w * layer.filters)


TINY = LayerShape(filter_h=3, filter_w=3, ifmap_h=6, ifmap_w=6, channels=2, ofmap_h=4, ofmap_w=4, filters=4, stride=1)
TINY_ARRAY = dict(rows=6, cols=2, fsram_bits=8192, isram_bits=8192)


def test_tiny_layer_in_one_block_by_hand():
    """3x3 filter, 6x6 ifmap, C = 2, 4x4 ofmap, F = 4, stride 1, on a 6 x 2 array, pSRAM 8192 bits.

    Unit volume: C_uv = min(floor(6 / 3), 2) = 2, F_uv = min(2, 4) = 2. One ofmap row of
    F_uv channels holds 4 * 2 psums = 256 bits and the whole 4x4x4 ofmap 2048 bits, so
    the psum SRAM holds everything: a single block.

    cycles_ideal = G * R (12 per ofmap row) * E (4 rows) * ceil(F / F_uv) (2 filter sets)
                   * ceil(C / C_uv) (1 channel slice) = 96.
    sram_filter: each filter row of the unit volume (S C_uv F_uv = 12 elements) is read
                 once per ofmap row and filter set: 12 * R * E * 2 = 288.
    sram_ifmap: stride 1, every ifmap row is read once per ofmap row: R * W * C_uv = 36
                per row, * E * 2 filter sets = 288.
    sram_psum: per ofmap row the first filter row writes 8 psums and the two others read
               and write them: 8 + 2 * 2 * 8 = 40; * E * 2 filter sets = 320.
    dram_filter = R * S * C * F = 72, dram_ifmap = 6 * 6 * 2 = 72 (fits the ifmap SRAM),
    dram_ofmap = 4 * 4 * 4 = 64; cycles_write = 64 * 8 bits / 128 bits per cycle = 4.
    """
    counts = xyzozi(TINY, ArrayHardware(psram_bits=8192, **TINY_ARRAY))
    assert counts.cycles_ideal == 96
    assert counts.sram_filter == 288
    assert counts.sram_ifmap == 288
    assert counts.sram_psum == 320
    assert counts.dram_filter == 72
    assert counts.dram_ifmap == 72
    assert counts.dram_ofmap == 64
    assert counts.cycles_write == 4


def test_tiny_layer_split_along_filters_by_hand():
    """The same layer with pSRAM 1024 bits: floor(1024 / (4 * 4 * 32)) = 2 ofmap planes fit.

    So F_eff = 2 and the ofmap is two blocks of 2 planes, each priced as one filter set:
    per block cycles_ideal = 12 * 4 = 48, dram_filter = 3 * 3 * 2 * 2 = 36, sram_psum =
    40 * 4 = 160. Two blocks: 96, 72 and 320, the same totals as in one block; each block
    writes 16 * 2 = 32 outputs: dram_ofmap = 64.
    """
    hw = ArrayHardware(psram_bits=1024, **TINY_ARRAY)
    assert xyzozi_subvolume(TINY, hw).filters_eff == 2
    counts = xyzozi(TINY, hw)
    assert counts.cycles_ideal == 96
    assert counts.dram_filter == 72
    assert counts.sram_psum == 320
    assert counts.dram_ofmap == 64


def test_batch_split_along_x_by_hand():
    """A batched FC (1x1, C = 4, F = 2, batch 16 as width) on a 4 x 2 array, pSRAM 320 bits.

    C_uv = 4, F_uv = 2. A full row needs 16 * 2 * 32 = 1024 bits of psum; only
    G_eff = floor(320 / 64) = 5 columns fit, so the batch is cut into 3 blocks of 5 plus
    a strip of 1 (the E_eff = E = 1 remainder path).
    cycles_ideal: one cycle per column (1x1, one channel slice, one filter set) = 16.
    dram_filter: every block loads the whole filter volume 1 * 1 * 4 * 2 = 8: 4 * 8 = 32.
    dram_ifmap: each block's 5 (or 1) columns of 4 channels fit: 16 * 4 = 64.
    dram_ofmap = 16 * 2 = 32.
    """
    layer = LayerShape(
        filter_h=1, filter_w=1, ifmap_h=1, ifmap_w=16, channels=4,
        ofmap_h=1, ofmap_w=16, filters=2, stride=1,
    )
    hw = ArrayHardware(rows=4, cols=2, fsram_bits=8192, isram_bits=8192, psram_bits=320)
    assert xyzozi_subvolume(layer, hw).ofmap_w_eff == 5
    counts = xyzozi(layer, hw)
    assert counts.cycles_ideal == 16
    assert counts.dram_filter == 32
    assert counts.dram_ifmap == 64
    assert counts.dram_ofmap == 32
