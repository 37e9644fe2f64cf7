"""The MIP's frontier sweep (per-point models merged best first) against a brute-force frontier."""

import math
from dataclasses import replace

import numpy as np
import pytest

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.mip_model import point_frontier_model
from deepopt_mip.formulation.mip_points import frontier_data
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import grid_chunks, load_space, points_hardware
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.highs_driver import ArrayHighs, HighsDriver, MipOptions
from deepopt_mip.solvers.mip import mip_frontier, product_search
from deepopt_mip.solvers.schedule import pareto_frontier

TECH = load_technology()


def brute_force_frontier(network, space):
    """Nondominated (E, D) over every valid point of the grid: the cost model on all of them at once, each
    point's exact frontier by the enumeration's Pareto merge over its layers, then the nondominated union."""
    flat, offset = [], 0
    for chunk in grid_chunks(space):
        flat += [offset + int(i) for i in np.flatnonzero(chunk.valid.ravel())]
        offset += chunk.valid.size
    tables = cost_tables(network.layers, points_hardware(space, flat), TECH)
    energies, delays = [], []
    for n in range(len(flat)):
        e, d, _ = pareto_frontier(tables.energy_j[..., n], tables.delay_cycles[..., n])
        energies.append(e)
        delays.append(d)
    e, d = np.concatenate(energies), np.concatenate(delays)
    order = np.lexsort((d, e))
    e, d = e[order], d[order]
    keep = d < np.concatenate(([np.inf], np.minimum.accumulate(d)[:-1]))
    return e[keep], d[keep]


@pytest.fixture(scope="module")
def squeezenet_3mm2():
    """SqueezeNet at 3 mm^2: 1,605 points and a frontier of over a hundred points, for a third of the time of
    the 3,712 points at 4 mm^2."""
    network = load_network("squeezenet-v1.1")
    space = load_space("deepopt-16mm2", TECH).with_budget(3)
    return network, space, brute_force_frontier(network, space)


def test_whole_frontier_is_the_brute_force_frontier(squeezenet_3mm2):
    network, space, (want_e, want_d) = squeezenet_3mm2
    points, built, solve_s = mip_frontier(network, space, TECH)
    got_e = np.array([p.energy_j for p in points])
    got_d = np.array([p.delay_cycles for p in points])
    assert got_e.size == want_e.size >= 20
    np.testing.assert_allclose(got_e, want_e, rtol=1e-12)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-12)
    assert solve_s > 0
    # the product search over the sweep's per-point models: the least E*D of the frontier, as the full model finds
    for metric, (a, b) in (("edp", (1, 1)), ("ed2p", (1, 2))):
        merged = product_search(built, metric, HighsDriver())
        full = product_search(replace(built, merged=None), metric, HighsDriver())
        assert merged.proven and full.proven
        assert merged.objective == pytest.approx(np.min(want_e ** a * want_d ** b), rel=1e-12)
        assert full.objective == pytest.approx(merged.objective, rel=1e-9)
    for p in points:  # each point's totals are its hardware's branch counts costed by the cost model
        n = p.point
        assert built.data.points.hardware(n) == p.hardware
        assert p.branch_counts.sum(axis=1).tolist() == built.data.counts.tolist()


def test_spread_points_lie_on_the_brute_force_frontier(squeezenet_3mm2):
    network, space, (want_e, want_d) = squeezenet_3mm2
    some, _, _ = mip_frontier(network, space, TECH, max_points=5)
    assert 2 <= len(some) <= 5
    assert some[0].energy_j == pytest.approx(want_e[0], rel=1e-12)
    assert some[-1].delay_cycles == pytest.approx(want_d[-1], rel=1e-12)
    for p in some:
        assert np.any(np.isclose(want_e, p.energy_j, rtol=1e-12) & np.isclose(want_d, p.delay_cycles, rtol=1e-12))


def test_point_model_is_the_per_point_least_energy_within_a_delay_limit():
    """One hardware point's model, solved by HiGHS at a few delay limits, against that point's exact frontier."""
    network = load_network("alexnet")
    data = frontier_data(network, load_space("deepopt-16mm2", TECH).with_budget(4), TECH, None)
    highs = ArrayHighs()
    for n in range(min(3, data.points.size)):
        model = point_frontier_model(data, n)
        layer_rows = model.counts.astype(float)
        tables = cost_tables(network.layers, data.points.hardware(n).arrays(), TECH)
        frontier_e, frontier_d, _ = pareto_frontier(tables.energy_j, tables.delay_cycles)
        for limit in np.quantile(frontier_d, [0.0, 0.3, 0.7, 1.0]).tolist() + [math.inf]:
            result, y = highs.solve(model.energy, model.counts[model.layer], model.rows(),
                                    np.append(layer_rows, -math.inf),
                                    np.append(layer_rows, limit / model.scale.delay_cycles))
            want = frontier_e[frontier_d <= limit * (1 + 1e-12)].min()
            assert result.status == "optimal"
            assert result.objective * model.scale.energy_j == pytest.approx(want, rel=1e-9)
        result, _ = highs.solve(model.energy, model.counts[model.layer], model.rows(),
                                np.append(layer_rows, -math.inf),
                                np.append(layer_rows, 0.999 * frontier_d.min() / model.scale.delay_cycles))
        assert result.status == "infeasible"


def test_a_time_limit_stops_the_sweep_with_one_line(squeezenet_3mm2):
    from deepopt_mip.solvers.solution import SolverFailure
    network, space, _ = squeezenet_3mm2
    with pytest.raises(SolverFailure, match="time"):
        mip_frontier(network, space, TECH, MipOptions(time_limit_s=1e-3))


def test_frontier_after_a_solve_through_pyomo_in_the_same_process():
    """HiGHS sizes its thread pool at a process's first solve; the per-point solves must still run when the
    Pyomo route solved first with HiGHS's default (a fresh process, so that order is certain)."""
    import subprocess
    import sys
    code = (
        "from deepopt_mip.formulation.networks import load_network\n"
        "from deepopt_mip.formulation.spaces import load_space\n"
        "from deepopt_mip.formulation.technology import load_technology\n"
        "from deepopt_mip.solvers.mip import mip_allocate, mip_frontier\n"
        "tech = load_technology()\n"
        "space = load_space('deepopt-16mm2', tech).with_budget(3)\n"
        "network = load_network('alexnet')\n"
        "print(mip_allocate(network, space, tech, 'energy', 'network').status)\n"
        "print(len(mip_frontier(network, space, tech)[0]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    status, points = proc.stdout.split()[-2:]
    assert status == "optimal" and int(points) >= 2
