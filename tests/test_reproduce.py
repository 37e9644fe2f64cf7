"""Paper reproductions: structure and the properties they must show."""

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.scripts.reproduce_cmd import (TABLE3_HARDWARE, _bars, fig9, markdown, run, table3, table4,
                                               table4_markdown)
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point

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
    assert np.all(f9[[f"penalty_pct_{b}" for b in BRANCHES]].to_numpy() >= 0)


def test_run_writes_csv_and_markdown(tmp_path):
    run(tmp_path, quiet=True, steps=("table3",))
    assert (tmp_path / "table3.csv").is_file()
    text = (tmp_path / "table3.md").read_text()
    assert "| metric [unit] |" in text and "infeasible" in text
    assert "penalty_pct" in (tmp_path / "table3.csv").read_text().splitlines()[0]


def test_table3_markdown_keeps_the_los_energy_and_labels_with_units(tmp_path):
    """The LOS energy (about 0.0213 J) keeps its digits; headers are labels with units; ZiXYZo is there."""
    run(tmp_path, quiet=True, steps=("table3",))
    text = (tmp_path / "table3.md").read_text()
    network = load_network("googlenet-v1")
    los_energy_j = evaluate_point(network, TABLE3_HARDWARE, TECH, "energy", "layer-sum").los.energy_j
    energy_row = next(line for line in text.splitlines() if line.startswith("| E [J] |"))
    assert energy_row.split(" | ")[1] == f"{los_energy_j:.4g}" != "0.0"
    assert float(energy_row.split(" | ")[1]) == pytest.approx(los_energy_j, rel=1e-3)
    header = next(line for line in text.splitlines() if line.startswith("| metric"))
    assert all(f"{b} penalty [%]" in header for b in BRANCHES) and "penalty_pct" not in header
    assert "617.4" in energy_row  # ZiXYZo's energy penalty
    assert "32 x 64 PEs, SRAM f/i/p 16/32/8 kB" in text


def test_table3_png_shows_every_schedule_and_the_cut_zixyzo_bar():
    """All five schedules in the legend by name; ZiXYZo's +617% is cut at the axis top with its value written."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t3 = table3(TECH)
    fig = _bars(t3, list(t3.metric), {f"penalty_pct_{b}": b for b in BRANCHES}, "t", "penalty [%]")(plt)
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(BRANCHES)
        texts = [t.get_text() for t in ax.texts]
        assert "617.4" in texts and ax.get_ylim()[1] < 617
        assert texts.count(" infeasible") == 4  # ZiXYZo on D, E*D, E^2*D, E*D^2
    finally:
        plt.close(fig)


def test_fig9_markdown_defines_c1_and_c2(tmp_path):
    run(tmp_path, quiet=True, steps=("fig9",))
    text = (tmp_path / "fig9.md").read_text()
    assert "* c1: 32 x 64 PEs, SRAM f/i/p 16/32/8 kB, 8/8/32-bit" in text
    assert "* c2: 64 x 32 PEs, SRAM f/i/p 64/32/8 kB, 16/16/32-bit" in text


def test_table4_spells_out_the_optimal_hardware_per_metric(tmp_path):
    """Each metric's row names the optimum allocate finds for that metric (J x K and SRAM f/i/p)."""
    space = load_space("deepopt-16mm2", TECH).with_budget(3)  # 1,605 points: the table's columns, in less time
    t4 = table4(TECH, space, lambda _: None)
    text = table4_markdown(t4, space)
    for metric, label in (("energy", "E [J]"), ("delay", "D [cycles]"), ("edp", "E*D [J*cycles]")):
        hw = enumerate_space(load_network("googlenet-v1"), space, TECH, metric, "layer-sum", top_k=0).hardware
        row = next(line for line in text.splitlines() if line.startswith(f"| {label} |"))
        assert row.startswith(f"| {label} | {hw.J} x {hw.K} | {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} |")
    assert "J x K" in text and "SRAM f/i/p [kB]" in text


def test_markdown_formats_small_and_large_numbers():
    import pandas as pd
    text = markdown(pd.DataFrame({"a": [0.00123, 12.345, 2.5e9, float("inf"), 0.0213, 0.0]}))
    assert "0.00123" in text and "12.3" in text and "2.5e+09" in text and "infeasible" in text
    assert "| 0.0213 |" in text and "| 0.0 |" in text
