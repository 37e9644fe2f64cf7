"""evaluate's files: byte-identical for the same inputs, never half-written, and the --plot PNG."""

from __future__ import annotations

import sys

import pytest

from deepopt_mip.scripts import output
from deepopt_mip.scripts.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_all_outputs(folder, network: str, extra=()):
    folder.mkdir()
    args = ["evaluate", "--network", network, "--array", "16x32", "--sram", "8,16,8", "--metric", "e2dp",
            "--json", str(folder / "r.json"), "--csv", str(folder / "r.csv"), "--scalesim", str(folder / "ss"),
            "--quiet", *extra]
    assert main(args) == 0
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("network", ["squeezenet-v1.1", "onnx"])
def test_same_inputs_give_byte_identical_files(tmp_path, network):
    if network == "onnx":
        pytest.importorskip("onnx")
        from onnx_models import alexnet_like
        model = tmp_path / "alex.onnx"
        model.write_bytes(alexnet_like().bytes())
        network = str(model)
    first = run_all_outputs(tmp_path / "a", network)
    second = run_all_outputs(tmp_path / "b", network)
    assert set(first) == set(second) and len(first) == 6  # json, csv, four SCALE-Sim files
    assert all(not p.name.startswith(".") for p in first)  # no temporary files left behind
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs"


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"

    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        output.write_json(target, {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_plot_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "plots" / "energy.png"
    assert main(["evaluate", "--network", "alexnet", "--metric", "energy", "--quiet", "--plot", str(png)]) == 0
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    assert [p.name for p in png.parent.iterdir()] == ["energy.png"]


def test_plot_parts_are_the_los_energy_parts():
    pytest.importorskip("matplotlib")
    from deepopt_mip.formulation.costmodel.network_cost import cost_tables
    from deepopt_mip.formulation.hardware import HardwarePoint
    from deepopt_mip.formulation.networks import load_network
    from deepopt_mip.formulation.technology import load_technology
    from deepopt_mip.scripts.energy_plot import energy_parts_uj

    network = load_network("alexnet")
    tables = cost_tables(network.layers, HardwarePoint(32, 64, 16, 32, 8).arrays(), load_technology())
    parts = energy_parts_uj(tables, ["XYZiZo"] * len(network.layers))
    for i in range(len(network.layers)):
        total = sum(parts[k][i] for k in ("mac_j", "rf_j", "sram_j", "dram_j"))
        assert total == pytest.approx(float(tables.energy_j[i, 0]) * 1e6, rel=1e-12)


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["evaluate", "--network", "alexnet", "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--plot needs matplotlib: pip install 'deepopt-mip[plot]'") and len(err.splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_evaluate_json_records_the_manifest_fields_of_allocate(tmp_path):
    """Tool version, network and technology (with the sha256 of the file read) as allocate --out records them."""
    import hashlib
    import json
    from importlib.resources import files

    import yaml

    from deepopt_mip.scripts.cli import package_version

    tech = tmp_path / "tech.yaml"
    tech.write_bytes(files("deepopt_mip.data").joinpath("technology/deepopt-65nm.yaml").read_bytes())
    space = tmp_path / "small.yaml"
    space.write_text("name: small\nrows: {min: 8, max: 16, step: 8}\ncols: {min: 8, max: 16, step: 8}\n"
                     "aspect_min_ratio: 0\nsram_kb: {filter: [4, 8], ifmap: [4], psum: [4]}\n"
                     "bits: {filter: 8, ifmap: 8, psum: 32}\ndram: {bandwidth_bits_per_cycle: 128, block_bits: 128}\n"
                     "area: {budget_mm2: 16}\n")
    assert main(["evaluate", "--network", "alexnet", "--tech", str(tech), "--json", str(tmp_path / "e.json"),
                 "--quiet"]) == 0
    assert main(["allocate", "--network", "alexnet", "--tech", str(tech), "--space", str(space),
                 "--out", str(tmp_path / "alloc"), "--quiet"]) == 0
    recorded = json.loads((tmp_path / "e.json").read_text())["manifest"]
    allocate_manifest = yaml.safe_load((tmp_path / "alloc" / "manifest.yaml").read_text())
    assert recorded == {k: allocate_manifest[k] for k in ("deepopt_mip_version", "network", "technology")}
    assert recorded["deepopt_mip_version"] == package_version() != "unknown"
    assert recorded["network"]["name"] == "alexnet" and recorded["network"]["source"].endswith("alexnet.csv")
    assert recorded["technology"]["sha256"] == hashlib.sha256(tech.read_bytes()).hexdigest()
    assert recorded["technology"]["source"] == str(tech)
