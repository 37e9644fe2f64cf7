"""SCALE-Sim's COMPUTE_REPORT.csv read back and set beside our cycles (scalesim-compare).

The reports here are written by hand in SCALE-Sim 3.0.0's format (header and
trailing commas as its simulator.py writes them), with cycle counts chosen
so that each comparison can be worked out by hand.
"""

from __future__ import annotations

import csv

import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.cli import main
from deepopt_mip.scripts.scalesim_results import (
    compare_layers,
    find_compute_report,
    read_compute_report,
    read_our_layers,
    read_topology_names,
)

HEADER = ("LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, "
          "Mapping Efficiency %, Compute Util %,\n")
NETWORK = ("name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch\n"
           "conv1,conv,14,14,1,16,3,3,32,14,14,1,1,1\n"
           "/blocks/blocks.1/depthwise/depthwise.0/depthwise.0.0/Conv,conv,14,14,1,32,3,3,32,14,14,1,2,1\n"
           "fc,fc,1,1,0,256,1,1,64,1,1,1,1,4\n")


def report_text(rows) -> str:
    """A COMPUTE_REPORT.csv: rows of (total incl. prefetch, total, stall)."""
    return HEADER + "".join(f"{i}, {a}, {b}, {c}, 50.0, 90.0, 80.0,\n" for i, (a, b, c) in enumerate(rows))


def export(tmp_path):
    network = tmp_path / "net.csv"
    network.write_text(NETWORK)
    out = tmp_path / "ss"
    assert main(["evaluate", "--network", str(network), "--array", "8x8", "--sram", "4,4,4", "--quiet",
                 "--scalesim", str(out)]) == 0
    return out


def test_reads_scalesims_report_format(tmp_path):
    path = tmp_path / "COMPUTE_REPORT.csv"
    path.write_text(report_text([(1200, 1000, 300), (60, 50, 0)]))
    rows = read_compute_report(path)
    assert [(r.layer_id, r.total_cycles, r.stall_cycles) for r in rows] == [(0, 1000, 300), (1, 50, 0)]
    assert [r.compute_cycles for r in rows] == [700, 50]


def test_grouped_rows_add_up_and_fc_is_per_image(tmp_path):
    out = export(tmp_path)
    names = read_topology_names(out)
    assert names == ["conv1", "/blocks/blocks.1/depthwise/depthwise.0/depthwise.0.0/Conv#g0", "/blocks/blocks.1/depthwise/depthwise.0/depthwise.0.0/Conv#g1", "fc"]
    report = tmp_path / "COMPUTE_REPORT.csv"
    report.write_text(report_text([(1100, 1000, 100), (600, 500, 50), (700, 600, 150), (900, 800, 400)]))
    layers = read_our_layers(out)
    rows = compare_layers(layers, names, read_compute_report(report))
    assert [r.layer for r in rows] == ["conv1", "/blocks/blocks.1/depthwise/depthwise.0/depthwise.0.0/Conv", "fc"]
    assert (rows[0].scalesim_total_cycles, rows[0].scalesim_compute_cycles) == (1000, 900)
    assert (rows[1].scalesim_total_cycles, rows[1].scalesim_compute_cycles) == (1100, 900)  # two groups
    assert (rows[2].scalesim_total_cycles, rows[2].scalesim_stall_cycles) == (200, 100)  # batch 4, per image
    for row, ours in zip(rows, layers):
        assert row.ours_compute_cycles == float(ours["cycles_ideal"])
        assert row.compute_ratio == pytest.approx(row.scalesim_compute_cycles / float(ours["cycles_ideal"]))
        assert row.total_ratio == pytest.approx(row.scalesim_total_cycles / float(ours["delay_cycles"]))


def test_scalesim_compare_finds_the_report_where_the_run_line_puts_it(tmp_path, capsys):
    out = export(tmp_path)
    run_line = next(line for line in (out / "scalesim.cfg").read_text().splitlines() if "scalesim.scale" in line)
    assert run_line.split("-p ")[1] == "results"
    run_name = next(line for line in (out / "scalesim.cfg").read_text().splitlines() if line.startswith("run_name"))
    folder = out / "results" / run_name.split("=")[1].strip()
    folder.mkdir(parents=True)
    (folder / "COMPUTE_REPORT.csv").write_text(report_text([(1100, 1000, 100), (600, 500, 50), (700, 600, 150),
                                                            (900, 800, 400)]))
    assert find_compute_report(out) == folder / "COMPUTE_REPORT.csv"
    out_csv = tmp_path / "cmp.csv"
    assert main(["scalesim-compare", str(out), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("\nlayer ") + 1:].splitlines()
    assert len(table) == 5  # header, three layers, total
    assert len({len(line.split("  (per image")[0]) for line in table}) == 1  # aligned columns
    assert table[2].startswith("blocks.1/depthwise.0.0/Conv ")  # shortened for the table
    with open(out_csv, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert records[1]["layer"] == "/blocks/blocks.1/depthwise/depthwise.0/depthwise.0.0/Conv"  # full name in the CSV
    assert float(records[2]["scalesim_total_cycles"]) == 200


@pytest.mark.parametrize("text, phrase", [
    ("", "empty"),
    ("LayerID, Cycles,\n0, 5,\n", "not a SCALE-Sim compute report"),
    (HEADER + "0, 10, 5, x, 1, 1, 1,\n", "line 2, Stall Cycles: 'x' is not a number"),
    (HEADER + "0, 10, 5, 6, 1, 1, 1,\n", "exceed Total Cycles"),
    (HEADER + "1, 10, 5, 1, 1, 1, 1,\n", "LayerID should run 0, 1"),
    (HEADER + "0, 10, 5,\n", "3 fields, the header has 7"),
])
def test_a_malformed_report_is_one_error_line(tmp_path, text, phrase):
    path = tmp_path / "COMPUTE_REPORT.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=phrase):
        read_compute_report(path)


def test_a_report_of_another_export_or_none_is_an_input_error(tmp_path, capsys):
    out = export(tmp_path)
    assert main(["scalesim-compare", str(out)]) == 2
    assert "run SCALE-Sim first: python -m scalesim.scale" in capsys.readouterr().err
    wrong = tmp_path / "COMPUTE_REPORT.csv"
    wrong.write_text(report_text([(10, 10, 0)]))
    assert main(["scalesim-compare", str(out), "--results", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 layers, but topology.csv has 4 rows" in err
    assert main(["scalesim-compare", str(tmp_path / "nowhere"), "--results", str(wrong)]) == 2
    assert "is " in capsys.readouterr().err


def test_thousands_of_depthwise_rows_give_one_warning_line(tmp_path, capsys):
    network = tmp_path / "dw.csv"
    network.write_text(NETWORK.splitlines()[0] + "\n" + "dw13,conv,7,7,1,1024,3,3,1024,7,7,1,1024,1\n")
    assert main(["evaluate", "--network", str(network), "--array", "8x8", "--sram", "4,4,4", "--quiet",
                 "--scalesim", str(tmp_path / "ss")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "warning" in err[0] and "1,024 SCALE-Sim topology rows" in err[0] and "dw13" in err[0]
    assert len((tmp_path / "ss" / "topology.csv").read_text().splitlines()) == 1 + 1024
    assert main(["evaluate", "--network", "alexnet", "--quiet", "--scalesim", str(tmp_path / "ss2")]) == 0
    assert capsys.readouterr().err == ""  # a few grouped rows: no warning
