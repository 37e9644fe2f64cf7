"""The MIP with fusion for the network products and the fused frontier, against independent truth.

* E*D, E^2*D, E*D^2 under network aggregation: the MIP equals the enumeration
  with fusion, and beats the unfused optimum where fusion pays.
* The fused energy-delay frontier of the MIP sweep equals a brute force: every
  fusion set of every point, each set's exact frontier over its branch
  choices (the unfused Pareto merge on the set's per-layer costs), then the
  nondominated union.
* The fusion frontier model of one SqueezeNet point, at the sweep's delay
  limits, gives that point's exact frontier by the dynamic program
  (:func:`~deepopt_mip.solvers.fusion_schedule.fusion_frontier`), with
  HiGHS's presolve on or off.
"""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import yaml

from deepopt_mip.formulation.costmodel.fusion import FusionGraph, fused_branch_costs, resident_capacity_bits
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.fusion_mip import fusion_frontier_model
from deepopt_mip.formulation.fusion_mip_points import frontier_corners, fusion_frontier_data
from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import AxisRange, grid_chunks, load_space, points_hardware
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate, mip_fusion_frontier, read_schedule
from deepopt_mip.solvers.fusion_schedule import fusion_frontier
from deepopt_mip.solvers.highs_driver import HighsDriver
from deepopt_mip.solvers.mip import SWEEP_STEP, mip_frontier, product_search
from deepopt_mip.solvers.schedule import pareto_frontier

TECH = load_technology(None)
PRODUCTS = ["edp", "e2dp", "ed2p"]


def _fire_modules(end: int) -> Network:
    """SqueezeNet v1.1 from fire6/squeeze1x1 up to layer ``end`` (exclusive), reading the network input first."""
    full = load_network("squeezenet-v1.1")
    return Network(f"fire6-{end}", full.layers[13:end], inputs=(NETWORK_INPUT,) + full.inputs[14:end])


@pytest.fixture(scope="module")
def space():
    """32 PE rows, 16 kB filter and 8 kB psum SRAM at 16 mm^2; 7 column counts and 5 ifmap SRAM sizes:
    large enough an ifmap SRAM for SqueezeNet's tensors to stay on chip."""
    base = load_space("deepopt-16mm2", TECH).restricted(rows=32, psram_kb=8, fsram_kb=16)
    return replace(base, cols=AxisRange(16, 40, 4), isram_kb=(16.0, 32.0, 64.0, 128.0, 256.0))


def brute_force_frontier(network, space):
    """Nondominated (E, D) over every valid point, every fusion set and every branch choice.

    Per fusion set, every layer's branches are priced on all valid points at
    once by the cost model beside the set's resident tensors
    (:func:`~deepopt_mip.formulation.costmodel.fusion.fused_energy_delay` on
    arrays); a set whose resident tensors exceed a point's capacity (F2)
    is skipped there.
    """
    graph = FusionGraph.of(network)
    fusable = [m for m in range(len(graph)) if graph.fusable[m]]
    sets = [frozenset(c) for k in range(len(fusable) + 1) for c in combinations(fusable, k)]
    flat, offset = [], 0
    for chunk in grid_chunks(space):
        flat += [offset + int(i) for i in np.flatnonzero(chunk.valid.ravel())]
        offset += chunk.valid.size
    hw = points_hardware(space, flat)
    capacity = np.broadcast_to(resident_capacity_bits(hw), (len(flat),))
    priced: dict = {}
    energies, delays = [], []
    for fused in sets:
        modes = [(graph.resident_bits(l, fused, float(hw.bits_ofmap)), l in fused, graph.fused_out(l, fused))
                 for l in range(len(graph))]
        for key in set(enumerate(modes)) - set(priced):
            l, (reserved, fused_in, fused_out) = key
            costs = fused_branch_costs(network.layers[l], hw, TECH, reserved, fused_in, fused_out)
            priced[key] = [np.array([np.broadcast_to(getattr(costs[b], name), (len(flat),)) for b in BRANCHES])
                           for name in ("energy_j", "delay_cycles")]
        fits = np.all([reserved <= capacity for reserved, _, _ in modes], axis=0)
        for n in np.flatnonzero(fits):
            energy = np.array([priced[l, mode][0][:, n] for l, mode in enumerate(modes)])
            delay = np.array([priced[l, mode][1][:, n] for l, mode in enumerate(modes)])
            e, d, _ = pareto_frontier(energy, delay)
            energies.append(e)
            delays.append(d)
    e, d = np.concatenate(energies), np.concatenate(delays)
    order = np.lexsort((d, e))
    e, d = e[order], d[order]
    keep = d < np.concatenate(([np.inf], np.minimum.accumulate(d)[:-1]))
    return e[keep], d[keep]


@pytest.mark.parametrize("metric", ["edp"] + [pytest.param(m, marks=pytest.mark.slow) for m in PRODUCTS[1:]])
def test_product_mip_equals_enumeration_and_beats_unfused(space, metric):
    """The allocation's rounds (E^2*D and E*D^2 behind ``slow``: the frontier test below searches every product
    over the same search code, against the brute force)."""
    network = _fire_modules(17)
    mip = mip_fusion_allocate(network, space, TECH, metric, "network")
    enum = enumerate_fusion(network, space, TECH, metric, "network", top_k=0)
    unfused = enumerate_space(network, space, TECH, metric, "network", top_k=0)
    assert mip.solution.status == "optimal" and mip.solution.gap <= 1e-9
    assert mip.solution.objective == pytest.approx(enum.solution.objective, rel=1e-9)
    assert mip.solution.objective == pytest.approx(
        float(metric_value(mip.solution.energy_j, mip.solution.delay_cycles, metric)), rel=1e-12)
    assert mip.fused.objective <= mip.unfused.objective
    assert mip.solution.objective < unfused.objective * (1 - 0.1)  # fusion pays here (20 to 30 %)
    assert mip.fused.fused_edges


def _check_frontier(network, space, max_points=None):
    """The MIP sweep's frontier (whole, or ``max_points`` spread points) against the brute force, and the
    product search over the sweep's per-point models against the brute-force frontier's least products."""
    want_e, want_d = brute_force_frontier(network, space)
    points, built, _ = mip_fusion_frontier(network, space, TECH, max_points=max_points)
    got_e = np.array([p.energy_j for p in points])
    got_d = np.array([p.delay_cycles for p in points])
    if max_points is None:
        assert got_e.size == want_e.size
        np.testing.assert_allclose(got_e, want_e, rtol=1e-9)
        np.testing.assert_allclose(got_d, want_d, rtol=1e-9)
    else:
        assert 2 <= got_e.size <= max_points
        assert got_e[0] == pytest.approx(want_e[0], rel=1e-9) and got_d[-1] == pytest.approx(want_d[-1], rel=1e-9)
        for e, d in zip(got_e, got_d):
            assert np.any(np.isclose(want_e, e, rtol=1e-9) & np.isclose(want_d, d, rtol=1e-9))
    for metric in PRODUCTS:
        outcome = product_search(built, metric, HighsDriver())
        assert outcome.proven
        assert outcome.objective == pytest.approx(float(np.min(metric_value(want_e, want_d, metric))), rel=1e-9)
    return points, built


def test_fused_frontier_is_the_brute_force_frontier():
    """fire6 and fire7's squeeze at 2 mm^2 (the whole deepopt-16mm2 grid): fusion adds a frontier point."""
    network = _fire_modules(17)
    space = load_space("deepopt-16mm2", TECH).with_budget(2)
    points, built = _check_frontier(network, space)
    assert len(points) >= 10 and any(p.fused for p in points)
    unfused, _, _ = mip_frontier(network, space, TECH)
    assert len(points) > len(unfused)
    # the one model over every offered point (hardware one-hots free) gives the same product optimum
    every = built.data.every()
    full = replace(built, data=every, model=fusion_frontier_model(every), merged=None)
    assert built.data.points.size > 1
    outcome = product_search(full, "edp", HighsDriver())
    merged = product_search(built, "edp", HighsDriver())
    assert outcome.proven and outcome.objective == pytest.approx(merged.objective, rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("max_points", [None, 4])
def test_fire6_8_frontier_is_the_brute_force_frontier(space, max_points):
    points, _ = _check_frontier(_fire_modules(22), space, max_points)
    assert max_points or (len(points) >= 15 and any(p.fused for p in points))


@pytest.mark.slow
@pytest.mark.parametrize("metric", PRODUCTS)
def test_fire6_8_products_mip_equals_enumeration(space, metric):
    network = _fire_modules(22)
    mip = mip_fusion_allocate(network, space, TECH, metric, "network")
    enum = enumerate_fusion(network, space, TECH, metric, "network", top_k=0)
    assert mip.solution.status == "optimal"
    assert mip.solution.objective == pytest.approx(enum.solution.objective, rel=1e-9)


def test_pareto_fusion_cli(tmp_path, capsys):
    """pareto --fusion writes the frontier, its fused edges and the manifest; its E*D optimum is the
    allocation's (allocate --fusion --solver mip --metric edp); a bad option is one line, exit 2."""
    from deepopt_mip.scripts.cli import main
    out = tmp_path / "front"
    args = ["--network", "alexnet", "--area-mm2", "2", "--quiet"]
    assert main(["pareto", *args, "--fusion", "--points", "all", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "frontier.csv")
    manifest = yaml.safe_load((out / "manifest.yaml").read_text())
    assert manifest["fusion"] is True and manifest["edp_optimum"]["proven"]
    assert set(manifest["files"]) <= {"frontier.csv", "frontier.png"} and "fused_edges" in frame
    assert (np.diff(frame["energy_j"]) > 0).all() and (np.diff(frame["delay_cycles"]) < 0).all()
    assert frame["edp_optimal"].sum() == 1
    solution = tmp_path / "s.json"
    assert main(["allocate", *args, "--metric", "edp", "--fusion", "--solver", "mip", "--json", str(solution)]) == 0
    edp = json.loads(solution.read_text())["objective"]
    assert manifest["edp_optimum"]["edp_j_cycles"] == pytest.approx(edp, rel=1e-9)
    assert frame["edp_j_cycles"].min() == pytest.approx(edp, rel=1e-9)
    capsys.readouterr()
    assert main(["pareto", *args, "--fusion", "--weight", "alexnet=2", "--out", str(out)]) == 2
    assert "drop --weight" in capsys.readouterr().err


@pytest.fixture(scope="module")
def squeezenet_4mm2_point():
    """SqueezeNet v1.1 at 4 mm^2: the frontier data of the screened points, the offered point 18 x 24 with
    16/4/4 kB SRAM (where HiGHS at a 1e-9 MIP feasibility tolerance without presolve lost a frontier point,
    docs/mip.md section 9.2), and that point's exact fused frontier by the dynamic program."""
    network = load_network("squeezenet-v1.1")
    space = load_space("deepopt-16mm2", TECH).with_budget(4)
    corners = frontier_corners(network, space, TECH)
    data = fusion_frontier_data(network, space, TECH, corners, corners.runnable)
    hardware = [data.points.hardware(n) for n in range(data.points.size)]
    (n,) = [n for n, h in enumerate(hardware) if (h.J, h.K, h.fsram_kb, h.isram_kb, h.psram_kb) == (18, 24, 16, 4, 4)]
    exact = fusion_frontier(network, data.points.hardware(n), TECH)
    return data.at(n), exact


def _check_point_model(alone, exact, presolve: str, window_cycles=(0.0, np.inf)) -> int:
    """Solve the fusion frontier model of one point at the delay limits the sweep asks (each frontier point's
    delay less the sweep's step) whose next frontier point's delay lies in ``window_cycles``; each answer must
    be that next point of the exact frontier ``exact``. Returns how many limits were checked."""
    model = fusion_frontier_model(alone)
    model.highs_options = {"presolve": presolve}
    driver = HighsDriver()
    checked = 0
    for above, energy, delay in zip(exact.delay_cycles[:-1], exact.energy_j[1:], exact.delay_cycles[1:]):
        if not window_cycles[0] <= delay <= window_cycles[1]:
            continue
        model.delay_limit.set_value(above * (1 - SWEEP_STEP) / model.scale.delay_cycles)
        result = driver.solve(model)
        point = read_schedule(alone, model)
        assert result.status == "optimal"
        assert (point.energy_j, point.delay_cycles) == (pytest.approx(energy, rel=1e-9), pytest.approx(delay, rel=1e-9))
        checked += 1
    return checked


@pytest.mark.parametrize("presolve", ["choose", "off"])
def test_point_model_gives_the_exact_fused_frontier_where_highs_lost_a_point(squeezenet_4mm2_point, presolve):
    """The fusion frontier model of one point has, at each delay limit of the sweep, the least energy of the
    next frontier point of the dynamic program (exact, independent of HiGHS), with HiGHS's presolve at its
    default ("choose": on for a MIP; shipped) or off. Here the frontier points between 1.352 and 1.354
    million cycles: with a MIP feasibility tolerance of 1e-9 and presolve off, HiGHS proved optimal at the
    limit below 1353123 cycles a schedule 2e-4 above the frontier point of 1353114 cycles (docs/mip.md
    section 9.2)."""
    alone, exact = squeezenet_4mm2_point
    assert _check_point_model(alone, exact, presolve, (1.352e6, 1.354e6)) >= 5


@pytest.mark.slow
@pytest.mark.parametrize("presolve", ["choose", "off"])
def test_point_model_gives_the_exact_fused_frontier_of_its_point(squeezenet_4mm2_point, presolve):
    """As above at every limit of the sweep over that point (112 limits)."""
    alone, exact = squeezenet_4mm2_point
    assert _check_point_model(alone, exact, presolve) == exact.energy_j.size - 1 >= 100
