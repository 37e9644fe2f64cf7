"""Paper reproductions: structure and the properties they must show."""

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.reproduce_cmd import fig9, markdown, run, table3

TECH = load_technology()


def test_table3_los_is_no_worse_than_any_fixed_schedule():
    t3 = table3(TECH)
    assert list(t3.metric) == ["energy", "delay", "edp", "e2dp", "ed2p"]
    penalties = t3[[f"penalty_pct_{b}" for b in BRANCHES]].to_numpy()
    assert np.all(penalties >= 0)


def test_table3_delay_column_equals_the_reference():
    """Reference values: shared reference los_summary.csv, GoogleNet-v1, c1, pm_id 5 (delay), penalty %."""
    t3 = table3(TECH).set_index("metric")
    reference = [19.395254099988708, 33.748427574979843, 27.183160183444489, 66.573484894427054]
    for b, want in zip(BRANCHES, reference):
        assert t3.loc["delay", f"penalty_pct_{b}"] == pytest.approx(want, rel=1e-9)


def test_fig9_covers_five_networks_on_two_configs():
    f9 = fig9(TECH)
    assert len(f9) == 10 and set(f9.config) == {"c1", "c2"}
    assert np.all(f9[list(BRANCHES)].to_numpy() >= 0)


def test_run_writes_csv_and_markdown(tmp_path):
    run(tmp_path, quiet=True, steps=("table3",))
    assert (tmp_path / "table3.csv").is_file()
    text = (tmp_path / "table3.md").read_text()
    assert text.startswith("| metric |") and "inf" in text


def test_markdown_formats_small_and_large_numbers():
    import pandas as pd
    text = markdown(pd.DataFrame({"a": [0.00123, 12.345, 2.5e9, float("inf")]}))
    assert "0.00123" in text and "12.3" in text and "2.5e+09" in text and "inf" in text
