"""Studies with fusion: enumeration == MIP == a brute force over points x fusion sets, on small cases."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

import deepopt_mip as dm
from deepopt_mip.formulation.costmodel.fusion import FusionGraph
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import grid_chunks, grid_point, grid_shape, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate
from deepopt_mip.solvers.fusion_schedule import FusionCosts, fusion_tables
from deepopt_mip.solvers.schedule import constrained_schedule

TECH = load_technology(None)
SPACE = load_space("deepopt-16mm2", TECH).with_budget(4).restricted(rows=16, fsram_kb=16, psram_kb=8)


def _fire6_7():
    full = load_network("squeezenet-v1.1")
    return Network("fire6-7", full.layers[13:19], inputs=(NETWORK_INPUT,) + full.inputs[14:19])


def _alexnet_convs():
    full = load_network("alexnet")
    return Network("alexnet-conv", full.layers[:5], inputs=full.inputs[:5])


FIRE, CONVS = _fire6_7(), _alexnet_convs()


@pytest.fixture(scope="module")
def fusion_set_tables():
    """Per valid point and network, the L x B tables of every fusion set that fits (the brute force's input)."""
    valid = np.zeros(grid_shape(SPACE), dtype=bool)
    for chunk in grid_chunks(SPACE):
        valid[chunk.pairs] = chunk.valid
    out = {}
    for index in np.flatnonzero(valid.ravel()):
        hardware = grid_point(SPACE, int(index))
        for network in (FIRE, CONVS):
            graph, costs = FusionGraph.of(network), FusionCosts(network, hardware, TECH)
            fusable = [m for m in range(len(graph)) if graph.fusable[m]]
            sets = [f for k in range(len(fusable) + 1) for f in itertools.combinations(fusable, k)]
            out[int(index), network.name] = [t for t in (fusion_tables(graph, costs, f) for f in sets)
                                             if t is not None]
    return out


def _brute_force(problem: Problem, tables) -> float:
    """min over points of sum_w weight_w min over fusion sets of the capped best schedule of that set."""
    best = math.inf
    for index in sorted({i for i, _ in tables}):
        total = 0.0
        for item in problem.networks:
            total += item.weight * min(constrained_schedule(
                e, d, problem.metric, problem.aggregate, item.max_delay_cycles, item.max_energy_j).objective
                for e, d, _ in tables[index, item.name])
        best = min(best, total)
    return best


def _least_delay(tables, name) -> float:
    return min(float(np.sum(np.min(np.where(np.isfinite(e), d, np.inf), axis=1))) for (i, n), sets in tables.items()
               if n == name for e, d, _ in sets)


def _least_energy(tables, name) -> float:
    return min(float(np.sum(np.min(np.where(np.isfinite(d), e, np.inf), axis=1))) for (i, n), sets in tables.items()
               if n == name for e, d, _ in sets)


def _problem(metric, aggregate="network", **caps) -> Problem:
    return Problem(networks=[StudyNetwork(FIRE, weight=2.0), StudyNetwork(CONVS, **caps)], metric=metric,
                   space=SPACE, tech=TECH, aggregate=aggregate, fusion=True)


SLOW = pytest.mark.slow


@pytest.mark.parametrize("metric, aggregate", [("energy", "network"), pytest.param("delay", "network", marks=SLOW),
                                               pytest.param("edp", "layer-sum", marks=SLOW),
                                               pytest.param("edp", "network", marks=SLOW)])
def test_uncapped_study_equals_brute_force(metric, aggregate, fusion_set_tables):
    problem = _problem(metric, aggregate)
    truth = _brute_force(problem, fusion_set_tables)
    enum = dm.solve(problem, "enumerate", top_k=0)
    assert enum.objective == pytest.approx(truth, rel=1e-9)
    mip = dm.solve(problem, "mip")
    assert mip.status == "optimal" and mip.objective == pytest.approx(truth, rel=1e-6)


@pytest.mark.parametrize("metric, cap", [("energy", "max_delay_cycles"),
                                         pytest.param("delay", "max_energy_j", marks=SLOW),
                                         pytest.param("edp", "max_energy_j", marks=SLOW)])
def test_capped_study_equals_brute_force_and_meets_its_cap(metric, cap, fusion_set_tables):
    free = dm.solve(_problem(metric), "enumerate", top_k=0)
    convs = free.networks[1]
    reached = convs.delay_cycles if cap == "max_delay_cycles" else convs.energy_j
    least = (_least_delay if cap == "max_delay_cycles" else _least_energy)(fusion_set_tables, CONVS.name)
    assert least < reached  # the cap below binds
    limit = 0.5 * (least + reached)
    problem = _problem(metric, **{cap: limit})
    truth = _brute_force(problem, fusion_set_tables)
    enum = dm.solve(problem, "enumerate", top_k=0)
    assert enum.objective == pytest.approx(truth, rel=1e-9) and enum.objective >= free.objective
    capped = enum.networks[1]
    assert (capped.delay_cycles if cap == "max_delay_cycles" else capped.energy_j) <= limit
    unfused = dm.solve(replace(problem, fusion=False), "enumerate", top_k=0)
    assert enum.objective <= unfused.objective  # fusion never makes the study worse
    assert all(n.fused_edges is None for n in unfused.networks)
    mip = dm.solve(problem, "mip")
    assert mip.status == "optimal" and mip.objective == pytest.approx(truth, rel=1e-6)
    assert (mip.networks[1].delay_cycles if cap == "max_delay_cycles" else mip.networks[1].energy_j) <= limit


@pytest.mark.parametrize("metric", ["energy", pytest.param("edp", marks=SLOW)])
def test_one_network_equals_the_single_network_fused_allocation(metric):
    problem = Problem(networks=[FIRE], metric=metric, space=SPACE, tech=TECH)
    single = enumerate_fusion(FIRE, SPACE, TECH, metric, "network", top_k=0).solution
    study = dm.solve(problem, "enumerate", top_k=0, fusion=True)
    assert study.objective == pytest.approx(single.objective, rel=1e-12)
    assert study.networks[0].fused_edges or metric != "energy"  # the energy optimum fuses on this space

@pytest.mark.slow
def test_one_network_mip_equals_the_single_network_fused_mip():
    problem = Problem(networks=[FIRE], metric="energy", space=SPACE, tech=TECH)
    mip = dm.solve(problem, "mip", fusion=True)
    single = mip_fusion_allocate(FIRE, SPACE, TECH, "energy", "network").solution
    assert mip.objective == pytest.approx(single.objective, rel=1e-12)


def test_fusion_refuses_a_branch_limit_and_a_network_without_graph():
    with pytest.raises(InputError, match="branch limit does not combine with fusion"):
        Problem(networks=[FIRE, CONVS], metric="energy", space=SPACE, tech=TECH, max_branches=2, fusion=True)
    plain = Network("plain", CONVS.layers)
    with pytest.raises(InputError, match="has no graph"):
        Problem(networks=[plain, CONVS], metric="energy", space=SPACE, tech=TECH, fusion=True)


def test_cli_fused_study(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("networks:\n  - alexnet\n  - network: vgg-16\n    weight: 2\n"
                     "metric: energy\narea_mm2: 4\nfixed: {J: 16, K: 16, fsram_kb: 16}\nfusion: true\n")
    out = tmp_path / "compare.json"
    assert main(["compare", "--study", str(study), "--json", str(out), "--quiet"]) == 0
    assert '"fusion": true' in out.read_text()
    assert main(["allocate", "--network", "alexnet", "--network", "vgg-16", "--fusion", "--metric", "energy",
                 "--area-mm2", "2", "--max-branches", "2", "--quiet"]) == 2
    assert "branch limit does not combine with fusion" in capsys.readouterr().err
    assert main(["pareto", "--study", str(study), "--out", str(tmp_path / "p"), "--quiet"]) == 2
