"""The MIP against independent truth: the cost model at fixed hardware, the enumeration, brute-force frontiers."""

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.mip_model import (chosen_point, fix_hardware, frontier_model, separable_model,
                                               undominated_branches)
from deepopt_mip.formulation.mip_points import frontier_data, separable_data, undominated_corners
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import grid_chunks, grid_point, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions
from deepopt_mip.solvers.mip import BuiltModel, mip_allocate, mip_frontier, product_search
from deepopt_mip.solvers.schedule import pareto_frontier
from deepopt_mip.solvers.solution import SolverFailure

TECH = load_technology()
PAPER = ["alexnet", "vgg-16", "squeezenet-v1.1", "googlenet-v1", "resnet-50"]


def space_mm2(budget):
    return load_space("deepopt-16mm2", TECH).with_budget(budget)


def random_points(points, k, seed):
    return np.random.default_rng(seed).choice(points.size, size=min(k, points.size), replace=False)


@pytest.mark.parametrize("metric, aggregate", [("energy", "network"), ("delay", "network"), ("edp", "layer-sum")])
def test_separable_model_with_fixed_hardware_equals_the_cost_model(metric, aggregate):
    network = load_network("squeezenet-v1.1")
    data = separable_data(network, space_mm2(3), TECH, metric, aggregate, offer=None)
    driver = HighsDriver()
    for n in random_points(data.points, 5, seed=1):
        model = separable_model(data.points, data.objective)
        fix_hardware(model, data.points, int(n))
        result = driver.solve_or_fail(model, "fixed hardware")
        assert chosen_point(model) == n
        want = evaluate_point(network, data.points.hardware(int(n)), TECH, metric, aggregate).los.objective
        assert result.objective * model.scale == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("metric", ["edp", "e2dp", "ed2p"])
def test_frontier_model_with_fixed_hardware_equals_the_pareto_merge(metric):
    network = load_network("alexnet")
    data = frontier_data(network, space_mm2(3), TECH, None)
    driver = HighsDriver()
    for n in random_points(data.points, 4, seed=2):
        model = frontier_model(data)
        fix_hardware(model, data.points, int(n))
        outcome = product_search(BuiltModel("frontier", data, model, 0.0), metric, driver)
        assert outcome.best.point == n and outcome.proven
        want = evaluate_point(network, data.points.hardware(int(n)), TECH, metric, "network").los.objective
        assert outcome.objective == pytest.approx(want, rel=1e-9)


def assert_mip_equals_enumeration(network, space, metric, aggregate):
    mip = mip_allocate(network, space, TECH, metric, aggregate)
    enum = enumerate_space(network, space, TECH, metric, aggregate, top_k=1)
    assert mip.status == "optimal" and mip.gap <= 1e-6
    assert mip.objective == pytest.approx(enum.objective, rel=1e-6)
    again = evaluate_point(network, mip.hardware, TECH, metric, aggregate).los.objective
    assert again == pytest.approx(mip.objective, rel=1e-9)
    assert sum(mip.layer_energy_j) == pytest.approx(mip.energy_j, rel=1e-12)


@pytest.mark.parametrize("name", ["alexnet", "squeezenet-v1.1"])
@pytest.mark.parametrize("metric, aggregate", [(m, "network") for m in ("energy", "delay", "edp", "e2dp", "ed2p")]
                         + [("edp", "layer-sum"), ("ed2p", "layer-sum")])
def test_mip_optimum_equals_enumeration_on_a_small_space(name, metric, aggregate):
    """At 3 mm^2 (1,605 points); test_every_paper_network_at_4mm2 checks 3,712 points."""
    assert_mip_equals_enumeration(load_network(name), space_mm2(3), metric, aggregate)


@pytest.mark.parametrize("name", PAPER)
@pytest.mark.parametrize("metric", ["energy", "delay"])
def test_every_paper_network_at_4mm2(name, metric):
    assert_mip_equals_enumeration(load_network(name), space_mm2(4), metric, "network")


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER)
@pytest.mark.parametrize("metric", ["energy", "delay", "edp"])
def test_every_paper_network_on_deepopt_16mm2(name, metric):
    assert_mip_equals_enumeration(load_network(name), space_mm2(16), metric, "network")


def brute_force_frontier(network, space):
    """Nondominated (E, D) over every valid point's exact frontier (cost model + Pareto merge per point)."""
    energies, delays = [], []
    offset = 0
    for chunk in grid_chunks(space):
        for local in np.flatnonzero(chunk.valid.ravel()):
            hw = grid_point(space, offset + int(local))
            tables = evaluate_point(network, hw, TECH, "edp", "network").tables
            e, d, _ = pareto_frontier(tables.energy_j, tables.delay_cycles)
            energies.append(e)
            delays.append(d)
        offset += chunk.valid.size
    e, d = np.concatenate(energies), np.concatenate(delays)
    order = np.lexsort((d, e))
    e, d = e[order], d[order]
    keep = d < np.concatenate(([np.inf], np.minimum.accumulate(d)[:-1]))
    return e[keep], d[keep]


@pytest.mark.slow  # the default suite checks the whole frontier against a brute force in test_mip_frontier.py
def test_frontier_sweep_is_the_brute_force_frontier():
    network, space = load_network("alexnet"), space_mm2(2)
    want_e, want_d = brute_force_frontier(network, space)
    points, _, _ = mip_frontier(network, space, TECH)
    got_e = np.array([p.energy_j for p in points])
    got_d = np.array([p.delay_cycles for p in points])
    assert got_e.size == want_e.size >= 2
    np.testing.assert_allclose(got_e, want_e, rtol=1e-9)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-9)
    some, _, _ = mip_frontier(network, space, TECH, max_points=3)
    assert 2 <= len(some) <= 3
    assert some[0].energy_j == pytest.approx(want_e[0], rel=1e-9)
    assert some[-1].delay_cycles == pytest.approx(want_d[-1], rel=1e-9)
    for p in some:
        assert np.any(np.isclose(want_e, p.energy_j, rtol=1e-9) & np.isclose(want_d, p.delay_cycles, rtol=1e-9))


def test_undominated_branches_by_hand():
    energy = np.array([[[1.0], [2.0], [1.0], [np.inf], [0.5]]])
    delay = np.array([[[5.0], [6.0], [5.0], [1.0], [9.0]]])
    keep = undominated_branches(energy, delay)[0, :, 0]
    # branch 1 is dominated by 0; 2 ties 0 and comes later; 3 cannot run; 4 trades delay for energy
    assert keep.tolist() == [True, False, False, False, True]


def test_undominated_corners_by_hand():
    corners_e, corners_d = np.array([2.0, 3.0, 1.0, 5.0]), np.array([2.0, 3.0, 9.0, 1.0])
    achievable_e, achievable_d = np.array([2.0, 2.5, 6.0]), np.array([2.0, 3.0, 1.0])
    kept = undominated_corners(corners_e, corners_d, achievable_e, achievable_d)
    # (2,2) is only met by itself; (3,3) is beaten by (2.5,3); (1,9) nothing is cheaper; (5,1) nothing as fast
    assert kept.tolist() == [True, False, True, True]


def tiny_infeasible_model():
    m = pyo.ConcreteModel()
    m.x = pyo.Var(domain=pyo.Binary)
    m.c = pyo.Constraint(expr=m.x >= 2)
    m.o = pyo.Objective(expr=m.x)
    return m


def test_driver_reports_infeasible_and_refuses_bad_options():
    driver = HighsDriver()
    assert driver.solve(tiny_infeasible_model()).status == "infeasible"
    with pytest.raises(SolverFailure, match="infeasible"):
        driver.solve_or_fail(tiny_infeasible_model(), "a tiny model")
    for bad in (dict(time_limit_s=0), dict(time_limit_s=math.inf), dict(mip_gap=-1e-3), dict(threads=0)):
        with pytest.raises(ValueError):
            MipOptions(**bad)


def test_a_budget_nothing_fits_is_an_input_error():
    with pytest.raises(InputError, match="area budget"):
        mip_allocate(load_network("alexnet"), space_mm2(0.05), TECH, "energy", "network")
