"""Reference cases for tests: rows of the DeepOpt reference's own output.

The CSVs in tests/data/ are samples of the shared reference's golden numbers
(see the comment line at the top of each file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware
from deepopt_mip.formulation.layers import LayerShape

DATA = Path(__file__).parent / "data"
COUNT_COLUMNS = [
    "cycles_ideal", "cycles_stall", "cycles_write",
    "sram_filter", "sram_ifmap", "sram_psum",
    "dram_filter", "dram_ifmap", "dram_ofmap",
]
REFERENCE_BRANCH = {"xyzF": "XYZiZo", "xzyF": "XZiYZo", "xyFz": "XYZoZi", "xFyz": "XZoYZi", "zxyF": "ZiXYZo"}


def load_sample(name: str = "reference_branches_sample.csv") -> pd.DataFrame:
    return pd.read_csv(DATA / name, comment="#")


def hardware_of(rows: pd.DataFrame) -> ArrayHardware:
    """Hardware arrays (one entry per row) for rows with the golden hardware columns."""
    return ArrayHardware(
        rows=rows.J.to_numpy(float), cols=rows.K.to_numpy(float),
        fsram_bits=rows.fsram_kb.to_numpy(float) * 8192, isram_bits=rows.isram_kb.to_numpy(float) * 8192,
        psram_bits=rows.psram_kb.to_numpy(float) * 8192,
        bits_filter=rows.bw_filter.to_numpy(float), bits_ifmap=rows.bw_ifmap.to_numpy(float),
        bits_psum=rows.bw_psum.to_numpy(float), bits_ofmap=rows.bw_ifmap.to_numpy(float),
    )


def shape_of(row: pd.Series) -> LayerShape:
    """The layer as the reference's branch functions receive it (conv layers)."""
    return LayerShape(
        filter_h=row.filter_hw, filter_w=row.filter_hw, ifmap_h=row.ifmap_hw_padded, ifmap_w=row.ifmap_hw_padded,
        channels=row.nos_of_channel, ofmap_h=row.ofmap_hw, ofmap_w=row.ofmap_hw, filters=row.nos_of_filter,
        stride=row.stride,
    )


def assert_counts_match(ours: AccessCounts, rows: pd.DataFrame, rel: float = 1e-9) -> None:
    """Every count equals the reference's (inf where it has inf; NaN rows skipped)."""
    n = len(rows)
    for column in COUNT_COLUMNS:
        got = np.broadcast_to(np.asarray(getattr(ours, column), float), (n,))
        want = rows[column].to_numpy(float)
        known = ~np.isnan(want)
        np.testing.assert_allclose(got[known], want[known], rtol=rel, atol=0, err_msg=column)


def conv_reference_groups(reference_branch: str) -> list[pd.DataFrame]:
    """The sample's conv rows of one reference branch, one frame per layer, configs in order."""
    sample = load_sample()
    rows = sample[(sample.branch == reference_branch) & (sample.fc_flag == 0)]
    return [group.sort_values("config_id") for _, group in rows.groupby(["network", "layer_index"])]


def assert_grid_equals_scalar_calls(fn, layer: LayerShape, axes: list[dict], **fixed) -> list[AccessCounts]:
    """``fn`` on a hardware grid equals ``fn`` on each grid point alone, count by count.

    ``axes`` holds one mapping per grid axis from ArrayHardware field to its
    values (fields of one mapping vary together); ``fixed`` fields are scalars.
    Equality is exact (inf equals inf; NaN never passes). Returns the scalar
    results in grid order.
    """
    shape = tuple(len(next(iter(axis.values()))) for axis in axes)
    grid_fields = {}
    for d, axis in enumerate(axes):
        for name, values in axis.items():
            broadcast_shape = [1] * len(axes)
            broadcast_shape[d] = -1
            grid_fields[name] = np.asarray(values, float).reshape(broadcast_shape)
    grid = fn(layer, ArrayHardware(**fixed, **grid_fields))
    full = {name: np.broadcast_to(np.asarray(getattr(grid, name), float), shape) for name in COUNT_COLUMNS}
    singles = []
    for index in np.ndindex(*shape):
        point = {name: float(np.asarray(values, float)[index[d]])
                 for d, axis in enumerate(axes) for name, values in axis.items()}
        single = fn(layer, ArrayHardware(**fixed, **point))
        for name in COUNT_COLUMNS:
            assert np.ndim(getattr(single, name)) == 0, (name, index)
            got, want = full[name][index], float(getattr(single, name))
            assert got == want, (name, index, got, want)
        singles.append(single)
    return singles
