"""FC layers at batch 1: the ZiZo (reference zF) and ZoZi (reference Fz) orders."""

from __future__ import annotations

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.branch_fc import fc_zizo, fc_zozi
from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape

from reference_cases import COUNT_COLUMNS, assert_counts_match, assert_grid_equals_scalar_calls, hardware_of, load_sample

FC_ORDERS = {"zF": fc_zizo, "Fz": fc_zozi}


def fc_layer(channels, filters) -> LayerShape:
    """An FC layer as the reference passes it: 1x1 filter over a 1x1 ifmap."""
    return LayerShape(filter_h=1, filter_w=1, ifmap_h=1, ifmap_w=1, channels=channels,
                      ofmap_h=1, ofmap_w=1, filters=filters, stride=1)


def as_dict(counts: AccessCounts) -> dict[str, float]:
    return {name: float(value) for name, value in zip(COUNT_COLUMNS, counts.values())}


REFERENCE = load_sample("reference_fc_batch1.csv")
GROUPS = [(key, rows.sort_values("config_id")) for key, rows in
          REFERENCE.groupby(["network", "layer_index", "branch"])]


@pytest.mark.parametrize("key,rows", GROUPS, ids=[f"net{n}-layer{l}-{b}" for (n, l, b), _ in GROUPS])
def test_matches_reference(key, rows):
    """Every FC layer of the reference networks, vectorised over the golden configs."""
    branch = key[2]
    layer = fc_layer(rows.nos_of_channel.iloc[0], rows.nos_of_filter.iloc[0])
    assert_counts_match(FC_ORDERS[branch](layer, hardware_of(rows)), rows)


TINY = fc_layer(channels=10, filters=6)


def test_zizo_by_hand():
    """C=10, F=6 on a 4x4 array, 16-bit weights, 8-bit inputs/outputs, 128-bit blocks and link.

    C_uv = F_uv = 4: ceil(10/4) = 3 cycles per filter set, ceil(6/4) = 2 sets -> 6 cycles.
    SRAM ifmap reads (10/4)*4 per set -> 20. The ifmap SRAM holds 48 bits = 6 of the 10
    inputs, so the second set reloads 10 - 6 = 4 of them: DRAM ifmap 10 + 4 = 14.
    Stall: first set loads 10*4*16 + 10*8 = 720 bits = 6 blocks = 6 cycles vs 3 compute -> 3;
    a later set loads 640 + 4*8 = 672 bits = 6 blocks -> 3 stall, times 6/4 - 1 = 0.5 -> ceil 2;
    total 5. Write: 6 outputs * 8 bits = one block -> 1 cycle.
    """
    hw = ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=48, psram_bits=8192, bits_filter=16)
    assert as_dict(fc_zizo(TINY, hw)) == dict(
        cycles_ideal=6, cycles_stall=5, cycles_write=1, sram_filter=60, sram_ifmap=20, sram_psum=6,
        dram_filter=60, dram_ifmap=14, dram_ofmap=6)


def test_zozi_by_hand():
    """Same layer; the psum SRAM holds 128 bits = 4 psums < F = 6, so F_eff = 4: one pass of 4, one of 2.

    Pass of 4 (F_uv 4): 1 cycle per channel step, ceil(10/4) = 3 steps -> 3 cycles; a step loads
    4*4*16 + 4*8 = 288 bits = 3 blocks = 3 cycles vs 1 -> 2, times 10/4 -> 5; psum SRAM
    4 + 2*4*ceil(1.5) = 20; write 32 bits -> 1 cycle.
    Pass of 2 (F_uv 2): 3 cycles; 4*2*16 + 32 = 160 bits = 2 blocks -> stall 1, times 2.5 -> 3;
    psum SRAM 2 + 2*2*2 = 10; write 1 cycle.
    Totals: 6 cycles, 8 stall, 2 write; psum SRAM 30; each pass reads all 10 inputs: 20 from SRAM
    and 20 from DRAM; weights 60 each; ofmap 6.
    """
    hw = ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=48, psram_bits=128, bits_filter=16)
    assert as_dict(fc_zozi(TINY, hw)) == dict(
        cycles_ideal=6, cycles_stall=8, cycles_write=2, sram_filter=60, sram_ifmap=20, sram_psum=30,
        dram_filter=60, dram_ifmap=20, dram_ofmap=6)


@pytest.mark.parametrize("func,hw", [
    (fc_zizo, ArrayHardware(rows=4, cols=4, fsram_bits=255, isram_bits=8192, psram_bits=8192, bits_filter=16)),
    (fc_zozi, ArrayHardware(rows=4, cols=4, fsram_bits=255, isram_bits=8192, psram_bits=8192, bits_filter=16)),
    (fc_zizo, ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=31, psram_bits=8192)),
    (fc_zozi, ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=31, psram_bits=8192)),
    (fc_zizo, ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=8192, psram_bits=127)),
    (fc_zozi, ArrayHardware(rows=4, cols=4, fsram_bits=8192, isram_bits=8192, psram_bits=127)),
])
def test_infeasible_when_unit_volume_does_not_fit(func, hw):
    """Unit-volume weights (256 bits), inputs (32 bits) or F_uv psums (128 bits) one bit short -> all inf.

    For ZoZi the last case is F_eff = floor(3 / 4) * 4 = 0, where the reference divides by zero and
    returns a NaN/inf mix; we call it infeasible.
    """
    assert all(np.isinf(v) for v in as_dict(func(TINY, hw)).values())


@pytest.mark.parametrize("func", [fc_zizo, fc_zozi])
def test_broadcasting_equals_scalar_calls(func):
    """Hardware axes of different shapes give, element by element, the scalar result."""
    singles = assert_grid_equals_scalar_calls(func, fc_layer(channels=100, filters=150), [
        {"rows": [4.0, 12.0, 40.0], "cols": [4.0, 7.0, 64.0]},
        {"fsram_bits": [512.0, 8192.0]},
        {"isram_bits": [48.0, 320.0, 8192.0]},
        {"psram_bits": [64.0, 300.0, 1024.0, 8192.0]},
    ])
    finite = sum(np.isfinite(float(s.cycles_ideal)) for s in singles)
    assert 0 < finite < len(singles)
