"""--scalesim DIR: SCALE-Sim configuration, topology and our per-layer cycles."""

from __future__ import annotations

import configparser
import csv
import math

import pytest

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.scripts.scalesim_export import (
    BRANCH_DATAFLOW,
    export_scalesim,
    network_dataflow,
    scalesim_name,
    topology_rows,
)

TABLE3_HW = ["--array", "32x64", "--sram", "16,32,8", "--bits", "8,8,32"]


def read_cfg(path):
    config = configparser.ConfigParser()
    config.read(path)
    return config


def test_evaluate_writes_table3_hardware_and_alexnet_topology(tmp_path):
    out = tmp_path / "ss"
    assert main(["evaluate", "--network", "alexnet", *TABLE3_HW, "--metric", "energy", "--quiet",
                 "--scalesim", str(out)]) == 0
    cfg = read_cfg(out / "scalesim.cfg")
    arch = cfg["architecture_presets"]
    assert (arch["ArrayHeight"], arch["ArrayWidth"]) == ("32", "64")  # J rows, K columns
    assert (arch["IfmapSramSzkB"], arch["FilterSramSzkB"], arch["OfmapSramSzkB"]) == ("32", "16", "8")
    assert arch["Dataflow"] == "ws" and arch["Bandwidth"] == "16"  # 128 bits/cycle of 8-bit words
    assert cfg["run_presets"]["InterfaceBandwidth"] == "USER"
    assert cfg["general"]["run_name"] == "deepopt_alexnet_32x64_ws"
    assert {"layout", "sparsity"} <= set(cfg.sections())

    lines = (out / "topology.csv").read_text().splitlines()
    assert lines[0] == "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,"
    assert lines[1] == "conv1,227,227,11,11,3,96,4,"
    assert lines[2:4] == ["conv2#g0,31,31,5,5,48,128,1,", "conv2#g1,31,31,5,5,48,128,1,"]  # padded 27+2*2, per group
    assert lines[-3] == "fc6,16,1,1,1,9216,4096,1,"  # batch 16 as a 16 x 1 ifmap
    assert all(line.endswith(",") for line in lines)
    assert (out / "layout.csv").read_text() == "Layer name,\n"

    network = load_network("alexnet")
    tables = cost_tables(network.layers, HardwarePoint(32, 64, 16, 32, 8).arrays(), load_technology())
    with open(out / "layers.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["layer"] for r in rows] == [layer.name for layer in network.layers]
    assert rows[1]["scalesim_rows"] == "conv2#g0 conv2#g1"
    for i, row in enumerate(rows):
        counts = tables.details[i][row["branch"]].counts
        assert float(row["cycles_ideal"]) == float(counts.cycles_ideal)
        assert row["dataflow"] == BRANCH_DATAFLOW[row["branch"]]


def test_scalesim_reads_the_files_back(tmp_path):
    pytest.importorskip("scalesim")
    from scalesim.scale_config import scale_config
    from scalesim.topology_utils import topologies

    assert main(["evaluate", "--network", "squeezenet-v1.1", *TABLE3_HW, "--quiet", "--scalesim", str(tmp_path)]) == 0
    config = scale_config()
    config.read_conf_file(str(tmp_path / "scalesim.cfg"))
    assert config.get_array_dims() == (32, 64) and config.get_mem_sizes() == (32, 16, 8)
    assert config.get_dataflow() == "ws" and config.get_bandwidths_as_list() == [16]
    topo = topologies()
    topo.load_arrays(topofile=str(tmp_path / "topology.csv"))
    network = load_network("squeezenet-v1.1")
    assert topo.get_num_layers() == len(network.layers)
    for i, layer in enumerate(network.layers):
        assert topo.get_layer_ofmap_dims(i) == [layer.ofmap_h, layer.ofmap_w]  # padding folded in correctly


def test_allocate_exports_the_optimum(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("name: tiny\nrows: {min: 16, max: 32, step: 16}\ncols: {min: 32, max: 64, step: 32}\n"
                     "aspect_min_ratio: 0\nsram_kb: {filter: [16], ifmap: [32], psum: [8, 16]}\n"
                     "bits: {filter: 8, ifmap: 8, psum: 32}\ndram: {bandwidth_bits_per_cycle: 64, block_bits: 64}\n"
                     "area: {budget_mm2: 16}\n")
    out_json = tmp_path / "a.json"
    assert main(["allocate", "--network", "alexnet", "--space", str(space), "--metric", "energy", "--quiet",
                 "--json", str(out_json), "--scalesim", str(tmp_path / "ss")]) == 0
    import json
    hw = json.loads(out_json.read_text())["hardware"]
    arch = read_cfg(tmp_path / "ss" / "scalesim.cfg")["architecture_presets"]
    assert (int(arch["ArrayHeight"]), int(arch["ArrayWidth"])) == (hw["J"], hw["K"])
    assert int(arch["OfmapSramSzkB"]) == hw["psram_kb"] and arch["Bandwidth"] == "8"


def test_dataflow_mapping_and_majority():
    network = load_network("alexnet")
    assert network_dataflow(network, ["XYZiZo"] * 8) == "ws"
    assert network_dataflow(network, ["ZiXYZo"] * 8) == "os"
    # conv1..conv5 carry more MACs per image than the three FC layers
    assert network_dataflow(network, ["ZiXYZo"] * 5 + ["XYZoZi"] * 3) == "os"
    assert network_dataflow(network, ["XZiYZo"] * 5 + ["ZiXYZo"] * 3) == "ws"
    assert set(BRANCH_DATAFLOW.values()) == {"ws", "os"}  # no branch keeps the inputs stationary


def test_names_are_made_safe_for_scalesim():
    assert scalesim_name("conv,DP 1\nx") == "conv;Dp 1 x"  # a 'DP' name is a depth-wise layer to SCALE-Sim
    layer = Layer(name="a,b", kind="conv", ifmap_h=8, ifmap_w=8, pad=0.5, channels=4, filter_h=3, filter_w=3,
                  filters=4, ofmap_h=7, ofmap_w=7, stride=1, groups=1, batch=1)
    assert topology_rows(layer) == [("a;b", 9, 9, 3, 3, 4, 4, 1)]


def test_fractional_sram_is_rounded_and_said_so(tmp_path):
    network = Network(name="n", layers=(Layer(name="fc", kind="fc", ifmap_h=1, ifmap_w=1, pad=0, channels=64,
                                              filter_h=1, filter_w=1, filters=64, ofmap_h=1, ofmap_w=1),))
    hw = HardwarePoint(J=8, K=8, fsram_kb=12.5, isram_kb=6, psram_kb=4)
    paths = export_scalesim(tmp_path, network, hw, ["XYZiZo"], load_technology())
    text = paths["config"].read_text()
    assert "FilterSramSzkB : 13" in text and "filter SRAM 12.5 kB written as 13 kB" in text
    rows = list(csv.DictReader(paths["layers"].open()))
    assert math.isfinite(float(rows[0]["cycles_ideal"]))


def test_scalesim_dir_that_is_a_file_is_an_input_error(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["evaluate", "--network", "alexnet", "--quiet", "--scalesim", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err
