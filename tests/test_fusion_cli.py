"""``--fusion`` on the command line: the per-layer columns, the JSON ``fusion`` block, refusals."""

from __future__ import annotations

import json

import pytest

from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.evaluation import evaluate_point


def test_evaluate_fusion_json_and_table(tmp_path, capsys):
    out_json = tmp_path / "f.json"
    args = ["evaluate", "--network", "squeezenet-v1.1", "--sram", "16,128,8", "--metric", "energy"]
    assert main(args + ["--fusion", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "Best fusion and branches" in text and "fused" in text
    data = json.loads(out_json.read_text())
    fusion = data["fusion"]
    assert set(fusion) >= {"fused_edges", "dram_bits_unfused", "dram_bits_fused", "energy_j_unfused",
                           "energy_j_fused", "delay_cycles_unfused", "delay_cycles_fused"}
    assert fusion["fused_edges"] and all(len(e) == 2 for e in fusion["fused_edges"])
    assert fusion["energy_j_fused"] < fusion["energy_j_unfused"]
    assert fusion["dram_bits_fused"] < fusion["dram_bits_unfused"]
    # unfused = the existing LOS of the same point, number for number
    hardware = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=128, psram_kb=8)
    los = evaluate_point(load_network("squeezenet-v1.1"), hardware, load_technology(None), "energy", "network").los
    assert fusion["energy_j_unfused"] == los.energy_j == data["los"]["energy_j"]
    # per layer: a fused edge's consumer reads on chip; a producer writes on chip only if all its readers do
    layers = {row["name"]: row for row in fusion["layers"]}
    for producer, consumer in fusion["fused_edges"]:
        assert layers[consumer]["input_fused"]
    assert sum(row["energy_j"] for row in fusion["layers"]) == pytest.approx(fusion["energy_j_fused"], rel=1e-12)
    # without --fusion the JSON has no fusion block and is otherwise the same
    plain = tmp_path / "p.json"
    assert main(args + ["--json", str(plain)]) == 0
    without = json.loads(plain.read_text())
    assert "fusion" not in without
    del data["fusion"]
    assert without == data


def test_evaluate_fusion_needs_a_graph(tmp_path, capsys):
    text = (tmp_path / "n.csv")
    text.write_text("name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch\n"
                    "a,conv,16,16,1,3,3,3,16,16,16,1,1,1\n", encoding="utf-8")
    assert main(["evaluate", "--network", str(text), "--fusion"]) == 2
    assert "has no graph" in capsys.readouterr().err
