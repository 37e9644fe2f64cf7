"""Branch XYZiZo (reference ``xyzF``) against the reference's numbers and by hand."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from deepopt_mip.formulation.costmodel.branch_xyzizo import xyzizo
from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape

from reference_cases import assert_counts_match, assert_grid_equals_scalar_calls, conv_reference_groups, hardware_of, shape_of


CONV_GROUPS = conv_reference_groups("xyzF")


def test_sample_has_xyzizo_rows():
    assert len(CONV_GROUPS) > 0


@pytest.mark.parametrize(
    "rows", CONV_GROUPS, ids=[f"net{g.network.iloc[0]}-layer{g.layer_index.iloc[0]}" for g in CONV_GROUPS]
)
def test_conv_layers_match_reference(rows):
    """Every conv layer of the sample, vectorised over its configs."""
    assert_counts_match(xyzizo(shape_of(rows.iloc[0]), hardware_of(rows)), rows)


# Source: shared reference deepopt-golden/fc_batched_raw.csv (rows with called_function
# Asymmetric_XYZF, i.e. the counts before division by the batch), channels and filters
# from deepopt-golden/layers.csv. Layers: AlexNet FC6, ResNet-50 FC (54), GoogleNet-v1 FC (58).
FC_BATCHED = """\
network,layer_index,config_id,J,K,fsram_kb,isram_kb,psram_kb,bw_filter,bw_ifmap,bw_psum,batch_size,nos_of_channel,nos_of_filter,cycles_ideal,cycles_stall,cycles_write,sram_filter,sram_ifmap,sram_psum,dram_filter,dram_ifmap,dram_ofmap
1,6,c1,32,64,16,32,8,8,8,32,16,9216,4096,294912,2525184,4096,37748736,9437184,37683200,37748736,7372800,65536
5,54,c3,16,32,64,32,32,8,8,32,16,2048,1000,65536,66048,1000,2048000,1048576,4080000,2048000,32768,16000
4,58,c5,40,32,32,32,128,8,8,32,16,1024,1000,13312,52243,1000,1024000,524288,816000,1024000,16384,16000
"""


def test_batched_fc_as_1x1_conv_over_batch():
    """An FC layer with batch N is a 1x1 conv with H = E = 1 and W = G = N."""
    rows = pd.read_csv(io.StringIO(FC_BATCHED))
    batch = rows.batch_size.to_numpy(float)
    layer = LayerShape(
        filter_h=1, filter_w=1, ifmap_h=1, ifmap_w=batch, channels=rows.nos_of_channel.to_numpy(float),
        ofmap_h=1, ofmap_w=batch, filters=rows.nos_of_filter.to_numpy(float), stride=1,
    )
    assert_counts_match(xyzizo(layer, hardware_of(rows)), rows)


BROADCAST_LAYERS = [
    LayerShape(3, 3, 58, 58, 64, 56, 56, 128, 1),  # 3x3 stride 1
    LayerShape(1, 1, 56, 56, 256, 28, 28, 512, 2),  # 1x1 stride 2, fractional (56-1)/2+1
    LayerShape(11, 11, 227, 227, 3, 55, 55, 96, 4),  # large filter, infeasible on small SRAMs
]


@pytest.mark.parametrize("layer", BROADCAST_LAYERS)
def test_hardware_grid_equals_scalar_calls(layer):
    assert_grid_equals_scalar_calls(xyzizo, layer, [
        {"rows": [12.0, 16.0, 32.0], "cols": [8.0, 32.0, 64.0]},
        {"fsram_bits": np.array([8.0, 64.0]) * 8192},
        {"isram_bits": np.array([8.0, 64.0]) * 8192},
        {"psram_bits": np.array([2.0, 8.0, 32.0, 128.0]) * 8192},
    ])


TINY = LayerShape(filter_h=1, filter_w=1, ifmap_h=4, ifmap_w=4, channels=2, ofmap_h=4, ofmap_w=4, filters=3, stride=1)


def test_tiny_layer_by_hand():
    """1x1 conv, 4x4 ifmap, C = 2, F = 3, on a 2x2 array with ample SRAM.

    C_uv = min(floor(2/1), 2) = 2 and F_uv = min(2, 3) = 2: every cycle does one
    ofmap position for both channels and two filters. The 16 positions take 16
    cycles per filter set and there are ceil(3/2) = 2 sets: cycles_ideal = 32.
    Every filter weight comes from DRAM once: dram_filter = 1*1*2*3 = 6; the whole
    ifmap fits the ifmap SRAM, so it is loaded once: dram_ifmap = 4*4*2 = 32;
    the ofmap is 4*4*3 = 48 elements, written in ceil(48*8/128) = 3 cycles; each
    psum is written once (a 1x1 filter and one channel group): sram_psum = 48;
    the ifmap is read from SRAM once per filter set: sram_ifmap = 2*32 = 64.
    Each load (filter 32 bits + ifmap row 64 bits, one 128-bit block) takes 1
    cycle against 4 cycles of compute per row: no stall.
    """
    got = xyzizo(TINY, ArrayHardware(rows=2, cols=2, fsram_bits=1e6, isram_bits=1e6, psram_bits=1e6))
    assert got.cycles_ideal == 32
    assert got.cycles_stall == 0
    assert got.cycles_write == 3
    assert got.dram_filter == 6
    assert got.dram_ifmap == 32
    assert got.dram_ofmap == 48
    assert got.sram_psum == 48
    assert got.sram_ifmap == 64


def test_tiny_layer_tiled_by_psum_sram_by_hand():
    """Same layer with a psum SRAM of 192 bits = 3 ofmap columns of F_uv = 2 psums.

    Tiles: G_eff = floor(192 / (2*32)) = 3 columns, one row high (a 3-wide row of
    psums fills the SRAM), repeated floor(4/3) = 1 time along X and 4 times along
    Y: 4 blocks of 3x1. The remaining 1-wide column holds floor(192/64) = 3 rows:
    one 1x3 block, then the 1x1 corner. Six blocks in all; the compute is the
    same as untiled (cycles_ideal = 32), the ofmap is still written once
    (dram_ofmap = 4*3*3 + 3*3 + 1*3 = 48), but each block reloads all 6 filter
    weights: dram_filter = 6 * 6 = 36. Each block writes its ofmap (<= 72 bits) in
    one cycle: cycles_write = 6.
    """
    got = xyzizo(TINY, ArrayHardware(rows=2, cols=2, fsram_bits=1e6, isram_bits=1e6, psram_bits=192))
    assert got.cycles_ideal == 32
    assert got.dram_ofmap == 48
    assert got.dram_filter == 36
    assert got.cycles_write == 6


@pytest.mark.parametrize(
    "fsram, isram, psram",
    [
        (16, 1e6, 1e6),  # filter template 1*1*2*2*8 = 32 bits does not fit
        (1e6, 32, 1e6),  # R ifmap rows: 4*1*2*8 = 64 bits do not fit
        (1e6, 1e6, 32),  # not even one ofmap column of F_uv psums (64 bits)
    ],
)
def test_infeasible_is_inf_everywhere(fsram, isram, psram):
    got = xyzizo(TINY, ArrayHardware(rows=2, cols=2, fsram_bits=fsram, isram_bits=isram, psram_bits=psram))
    assert all(np.isinf(v) for v in got.values())


def test_infeasible_lanes_do_not_leak_into_feasible_ones():
    psram = np.array([32.0, 192.0, 1e6])
    grid = xyzizo(TINY, ArrayHardware(rows=2, cols=2, fsram_bits=1e6, isram_bits=1e6, psram_bits=psram))
    assert np.isinf(grid.cycles_ideal[0])
    np.testing.assert_array_equal(grid.dram_filter[1:], [36, 6])
    assert not any(np.isnan(v).any() for v in grid.values())
    assert isinstance(grid, AccessCounts)
