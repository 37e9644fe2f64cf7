"""The MIP with fusion against the enumeration with fusion (separable objectives; products through compare)."""

from __future__ import annotations

import json

import pytest

from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, Network, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate

TECH = load_technology(None)
SEPARABLE = [("energy", "network"), ("delay", "network"), ("edp", "layer-sum")]


def _squeezenet_modules():
    full = load_network("squeezenet-v1.1")
    return Network("fire6-8", full.layers[13:22], inputs=(NETWORK_INPUT,) + full.inputs[14:22])


@pytest.mark.parametrize("metric, aggregate", SEPARABLE)
def test_mip_equals_enumeration_on_a_small_space(metric, aggregate):
    space = load_space("deepopt-16mm2", TECH).with_budget(4).restricted(rows=16, psram_kb=8)
    network = _squeezenet_modules()
    mip = mip_fusion_allocate(network, space, TECH, metric, aggregate)
    enum = enumerate_fusion(network, space, TECH, metric, aggregate, top_k=0)
    assert mip.solution.status == "optimal"
    assert mip.solution.objective == pytest.approx(enum.solution.objective, rel=1e-9)
    assert mip.fused.objective <= mip.unfused.objective


def test_compare_fusion_cli(tmp_path, capsys):
    """A network product (the MIP's product search with fusion) against the enumeration, through the CLI."""
    out = tmp_path / "c.json"
    args = ["compare", "--network", "alexnet", "--area-mm2", "4", "--metric", "edp", "--fusion"]
    assert main(args + ["--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["agree"] and data["fusion"] and data["aggregate"] == "network"
    assert data["solvers"]["mip"]["status"] == "optimal"
    assert "AGREE" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("budget_mm2", [16, 4])
@pytest.mark.parametrize("name", BUILTIN_NETWORKS)
@pytest.mark.parametrize("metric, aggregate", SEPARABLE)
def test_mip_equals_enumeration_on_the_builtins(name, budget_mm2, metric, aggregate):
    space = load_space("deepopt-16mm2", TECH).with_budget(budget_mm2)
    network = load_network(name)
    mip = mip_fusion_allocate(network, space, TECH, metric, aggregate)
    enum = enumerate_fusion(network, space, TECH, metric, aggregate, top_k=0)
    assert mip.solution.status == "optimal"
    assert mip.solution.objective == pytest.approx(enum.solution.objective, rel=1e-9)
