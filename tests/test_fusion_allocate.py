"""allocate --fusion by enumeration: against a brute force over every point, never worse than unfused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from deepopt_mip.formulation.fusion_grid import fusion_grid
from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.grid_sums import grid_sums
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import grid_point, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_schedule import best_fusion

TECH = load_technology(None)


@pytest.fixture(scope="module")
def small_space():
    """A 4 mm^2 slice of deepopt-16mm2: 16 PE rows, 16 kB filter and 8 kB psum SRAM; K and the ifmap SRAM free."""
    return load_space("deepopt-16mm2", TECH).with_budget(4).restricted(rows=16, fsram_kb=16, psram_kb=8)


def _squeezenet_modules():
    """fire6 to fire8 of SqueezeNet v1.1 (9 layers with concatenations), reading the network input first."""
    full = load_network("squeezenet-v1.1")
    return Network("fire6-8", full.layers[13:22], inputs=(NETWORK_INPUT,) + full.inputs[14:22])


def _brute_force(network, space, metric, aggregate):
    """The per-point exact program at every valid point of the grid."""
    values = {}
    _, _, valid = fusion_grid(network, space, TECH, metric, aggregate)
    for index in np.flatnonzero(valid.ravel()):
        values[int(index)] = best_fusion(network, grid_point(space, int(index)), TECH, metric, aggregate).objective
    return values


@pytest.mark.parametrize("metric", [pytest.param("energy", marks=pytest.mark.slow), "edp"])
def test_grid_program_against_every_point(small_space, metric):
    """Separable: the grid pass is each point's fused optimum; products: a lower bound of it."""
    network = _squeezenet_modules()
    values, _, valid = fusion_grid(network, small_space, TECH, metric, "network")
    flat = values.ravel()
    exact = _brute_force(network, small_space, metric, "network")
    assert len(exact) >= 10
    for index, objective in exact.items():
        if metric == "energy":
            assert flat[index] == pytest.approx(objective, rel=1e-12)
        else:
            assert flat[index] <= objective * (1 + 1e-12)
    best = enumerate_fusion(network, small_space, TECH, metric, "network", top_k=2)
    assert best.solution.objective == pytest.approx(min(exact.values()), rel=1e-12)
    unfused = enumerate_space(network, small_space, TECH, metric, "network", top_k=0)
    assert best.solution.objective <= unfused.objective
    assert best.fused.objective <= best.unfused.objective
    if metric == "energy":  # fusion pays here
        assert best.fused.fused_edges and best.solution.objective < unfused.objective


def test_allocate_fusion_cli(tmp_path):
    out = tmp_path / "a.json"
    args = ["allocate", "--network", "alexnet", "--metric", "energy", "--area-mm2", "4", "--top-k", "1"]
    folder = tmp_path / "out"
    assert main(args + ["--fusion", "--json", str(out), "--out", str(folder), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["fusion"]["energy_j_fused"] == data["energy_j"]
    assert data["fusion"]["energy_j_fused"] <= data["fusion"]["energy_j_unfused"]
    # --out: what allocate --out writes, with the fusion block and per-layer fusion columns
    assert sorted(p.name for p in folder.iterdir()) == ["layers.csv", "manifest.yaml", "solution.json",
                                                        "solution.yaml"]
    stable = json.loads((folder / "solution.json").read_text())
    assert stable["fusion"] == data["fusion"] and "wall_s" not in stable["solver"]
    assert yaml.safe_load((folder / "solution.yaml").read_text()) == stable
    layers = pd.read_csv(folder / "layers.csv")
    assert list(layers["name"]) == [row["name"] for row in data["layers"]]
    assert list(layers["input_fused"]) == [row["input_fused"] for row in data["fusion"]["layers"]]
    assert layers["energy_j"].sum() == pytest.approx(data["energy_j"], rel=1e-12)
    manifest = yaml.safe_load((folder / "manifest.yaml").read_text())
    assert manifest["fusion"] is True and manifest["metric"] == "energy" and manifest["space"]["name"]
    mip_out = tmp_path / "m.json"
    assert main(args + ["--fusion", "--solver", "mip", "--json", str(mip_out), "--quiet"]) == 0
    assert json.loads(mip_out.read_text())["objective"] == pytest.approx(data["objective"], rel=1e-9)


def test_grid_program_on_several_axes_and_chunkings():
    """The grid program (per ifmap SRAM size, on the box of its valid points, R_l values stacked per layer
    shape) is never above the unfused optimum for every separable objective on a space where J, K, the
    ifmap and the psum SRAM vary; cutting it into smaller chunks and R_l batches changes no number (every
    lane is computed on its own); and it is the per-point program's exact optimum (layer-sum E*D) at
    every point of the slice with 8 kB of psum SRAM."""
    space = load_space("deepopt-16mm2", TECH).with_budget(2).restricted(fsram_kb=16)
    network = _squeezenet_modules()
    for metric, aggregate in [("energy", "network"), ("delay", "network"), ("edp", "layer-sum")]:
        values, _, valid = fusion_grid(network, space, TECH, metric, aggregate)
        small, _, _ = fusion_grid(network, space, TECH, metric, aggregate, max_points=40)
        assert np.array_equal(values, small)
        assert valid.sum() >= 50 and np.isfinite(values[valid]).all() and np.isinf(values[~valid]).all()
        (unfused,), _, _ = grid_sums(network, space, TECH, metric, True)
        assert (values[valid] <= unfused[valid] * (1 + 1e-12)).all()  # the two passes sum in other orders
        if metric == "energy":  # some points fuse, so the stacked R_l > 0 lanes are exercised
            assert (values[valid] < unfused[valid] * (1 - 1e-6)).sum() >= 5
    psum = space.restricted(psram_kb=8)
    values, _, valid = fusion_grid(network, psum, TECH, "edp", "layer-sum")
    flat = values.ravel()
    indices = np.flatnonzero(valid.ravel())
    assert len(indices) >= 20
    for index in indices:
        exact = best_fusion(network, grid_point(psum, int(index)), TECH, "edp", "layer-sum").objective
        assert flat[index] == pytest.approx(exact, rel=1e-12)
