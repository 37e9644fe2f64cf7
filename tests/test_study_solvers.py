"""Studies (several networks, weights, caps, a branch limit): both solvers against a brute force that tries
every schedule on small layer sets, against each other on the built-ins, and against today's one-network
solvers."""

import functools
import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS, metric_value
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.study_enumeration import enumerate_study
from deepopt_mip.solvers.study_mip import mip_study, study_frontier
from test_enumeration import every_point, small_space

TECH = load_technology()
SPACE_4MM2 = load_space("deepopt-16mm2", TECH).with_budget(4)
SPACE_3MM2 = load_space("deepopt-16mm2", TECH).with_budget(3)  # 1,605 points, against 3,712 at 4 mm^2
ALEXNET, SQUEEZENET = load_network("alexnet"), load_network("squeezenet-v1.1")
BRANCH_COUNT = 5


def tiny_space():
    return small_space()


@functools.lru_cache(maxsize=None)
def layer_tables(layer, hardware):
    """The cost model's energy [J] and delay [cycles] of each branch of one layer on one point, as read-only
    rows (cached: the brute forces and the strategy below cost the same few layers on the same points often)."""
    tables = cost_tables((layer,), hardware.arrays(), TECH)
    energy, delay = tables.energy_j[0], tables.delay_cycles[0]
    energy.setflags(write=False)
    delay.setflags(write=False)
    return energy, delay


def network_tables(network: Network, hardware):
    """(energy [J], delay [cycles]) of each layer (row) and branch (column) of a network on one point."""
    rows = [layer_tables(layer, hardware) for layer in network.layers]
    return np.array([e for e, _ in rows]), np.array([d for _, d in rows])


def schedule_values(item: StudyNetwork, energy, delay, schedules, metric, aggregate):
    """One network's metric under each schedule (row s of ``schedules``: one branch per layer), or inf where
    the schedule breaks a cap."""
    layers = np.arange(schedules.shape[1])
    e, d = energy[layers, schedules], delay[layers, schedules]
    if aggregate == "layer-sum":
        values = np.sum(metric_value(e, d, metric), axis=1)
    else:
        values = metric_value(e.sum(axis=1), d.sum(axis=1), metric)
    if item.capped:
        ok = np.isfinite(e).all(axis=1) & np.isfinite(d).all(axis=1)
        if item.max_delay_cycles is not None:
            ok &= d.sum(axis=1) <= item.max_delay_cycles
        if item.max_energy_j is not None:
            ok &= e.sum(axis=1) <= item.max_energy_j
        values = np.where(ok, values, np.inf)
    return values


def brute_force(problem: Problem) -> float:
    """The least objective over every point, every set U of allowed branches with |U| <= limit, and every
    schedule of every network drawn from U (all |U|^L of them, each costed on its own row)."""
    limit = problem.max_branches or BRANCH_COUNT
    sets = [u for size in range(1, limit + 1) for u in itertools.combinations(range(BRANCH_COUNT), size)]
    best = np.inf
    for hardware, _ in every_point(problem.space):
        tables = [network_tables(item.network, hardware) for item in problem.networks]
        for allowed in sets:
            total = 0.0
            for item, (energy, delay) in zip(problem.networks, tables):
                schedules = np.array(list(itertools.product(allowed, repeat=len(item.network.layers))))
                total += item.weight * float(np.min(schedule_values(
                    item, energy, delay, schedules, problem.metric, problem.aggregate)))
            best = min(best, total)
    return best


def delay_range(network, space):
    """Least and largest finite delay of any all-usable schedule over the space's points (for caps that bind)."""
    lows, highs = [], []
    for hardware, _ in every_point(space):
        energy, delay = network_tables(network, hardware)
        ok = np.isfinite(energy) & np.isfinite(delay)
        if ok.any(axis=1).all():
            lows.append(np.where(ok, delay, np.inf).min(axis=1).sum())
            highs.append(np.where(ok, delay, -np.inf).max(axis=1).sum())
    return min(lows), max(highs)


LAYER_POOL = [layer for layer in ALEXNET.layers[:3] + SQUEEZENET.layers[:6]]


@st.composite
def studies(draw):
    space = tiny_space()
    count = draw(st.integers(1, 2))
    items = []
    for n in range(count):
        picks = draw(st.lists(st.sampled_from(range(len(LAYER_POOL))), min_size=1, max_size=3, unique=True))
        network = Network(name=f"net{n}", layers=tuple(replace(LAYER_POOL[i], name=f"l{i}") for i in picks))
        lo, hi = delay_range(network, space)
        cap = draw(st.one_of(st.none(), st.floats(0.0, 1.2).map(lambda x: lo + x * (hi - lo) + 1.0)))
        weight = draw(st.sampled_from([1.0, 0.5, 3.0]))
        items.append(StudyNetwork(network, weight=weight, max_delay_cycles=cap))
    metric = draw(st.sampled_from(sorted(METRIC_EXPONENTS)))
    aggregate = "network" if any(i.capped for i in items) else draw(st.sampled_from(["network", "layer-sum"]))
    limit = draw(st.sampled_from([None, 1, 2, 3]))
    return Problem(networks=tuple(items), metric=metric, space=space, tech=TECH, aggregate=aggregate,
                   max_branches=limit)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_both_solvers_equal_a_brute_force_over_every_schedule(problem):
    want = brute_force(problem)
    if not np.isfinite(want):
        for solve in (enumerate_study, mip_study):
            with pytest.raises(InputError, match="no point"):
                solve(problem)
        return
    for solution in (enumerate_study(problem), mip_study(problem)):
        assert solution.objective == pytest.approx(want, rel=1e-6)
        assert solution.status == "optimal"
        used = {b for n in solution.networks for b in n.branches}
        assert len(used) <= (problem.max_branches or BRANCH_COUNT)
        for item, result in zip(problem.networks, solution.networks):
            if item.max_delay_cycles is not None:
                assert result.delay_cycles <= item.max_delay_cycles


@pytest.mark.parametrize("network", ["alexnet", "vgg-16", "squeezenet-v1.1", "googlenet-v1", "resnet-50"])
@pytest.mark.parametrize("metric", ["energy", "edp", *(pytest.param(m, marks=pytest.mark.slow)
                                                      for m in ("delay", "e2dp", "ed2p"))])
def test_one_network_without_caps_is_todays_problem(network, metric):
    net = load_network(network)
    today = enumerate_space(net, SPACE_3MM2, TECH, metric, "network", top_k=0)
    study = enumerate_study(Problem((StudyNetwork(net),), metric, SPACE_3MM2, TECH), top_k=0)
    assert study.objective == pytest.approx(today.objective, rel=1e-12)
    assert study.hardware == today.hardware


@pytest.mark.parametrize("metric", sorted(METRIC_EXPONENTS))
def test_one_network_mip_study_is_todays_problem(metric):
    today = enumerate_space(ALEXNET, SPACE_4MM2, TECH, metric, "layer-sum" if metric == "e2dp" else "network",
                            top_k=0)
    problem = Problem((StudyNetwork(ALEXNET),), metric, SPACE_4MM2, TECH,
                      aggregate="layer-sum" if metric == "e2dp" else "network")
    assert mip_study(problem).objective == pytest.approx(today.objective, rel=1e-6)


def two_network_study(metric, max_branches=None):
    return Problem((StudyNetwork(ALEXNET, weight=2.0, max_delay_cycles=2.3e6),
                    StudyNetwork(SQUEEZENET, max_delay_cycles=1.5e6)), metric, SPACE_4MM2, TECH,
                   max_branches=max_branches)


def test_the_two_network_caps_bind():
    free = enumerate_study(replace(two_network_study("energy"), networks=(
        StudyNetwork(ALEXNET, weight=2.0), StudyNetwork(SQUEEZENET))))
    capped = enumerate_study(two_network_study("energy"))
    assert free.networks[0].delay_cycles > 2.3e6 or free.networks[1].delay_cycles > 1.5e6
    assert capped.objective > free.objective
    assert capped.networks[0].delay_cycles <= 2.3e6 and capped.networks[1].delay_cycles <= 1.5e6


@pytest.mark.parametrize("metric", ["energy", "delay", "edp"])
def test_mip_equals_enumeration_on_a_two_network_study_with_binding_caps(metric):
    problem = two_network_study(metric)
    mip, enum = mip_study(problem), enumerate_study(problem)
    assert mip.status == "optimal"
    assert mip.objective == pytest.approx(enum.objective, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["e2dp", "ed2p"])
@pytest.mark.parametrize("max_branches", [None, 1, 2])
def test_mip_equals_enumeration_on_two_network_products(metric, max_branches):
    problem = two_network_study(metric, max_branches)
    assert mip_study(problem).objective == pytest.approx(enumerate_study(problem).objective, rel=1e-6)


@pytest.mark.slow  # limits vs a brute force: test_both_solvers_equal_a_brute_force_over_every_schedule
def test_branch_limit_one_to_five_never_improves_as_it_tightens_and_both_solvers_agree():
    values = []
    for limit in range(1, 6):
        problem = two_network_study("energy", limit)
        enum, mip = enumerate_study(problem, top_k=0), mip_study(problem)
        assert mip.objective == pytest.approx(enum.objective, rel=1e-6)
        assert len({b for n in enum.networks for b in n.branches}) <= limit
        values.append(enum.objective)
    assert all(a >= b * (1 - 1e-12) for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(enumerate_study(two_network_study("energy")).objective, rel=1e-12)


def test_three_networks_with_a_delay_cap_on_each():
    googlenet = load_network("googlenet-v1")
    problem = Problem((StudyNetwork(ALEXNET, max_delay_cycles=2.3e6), StudyNetwork(SQUEEZENET, max_delay_cycles=1.5e6),
                       StudyNetwork(googlenet, max_delay_cycles=5.0e6)), "energy", SPACE_4MM2, TECH)
    mip, enum = mip_study(problem), enumerate_study(problem)
    assert mip.objective == pytest.approx(enum.objective, rel=1e-6)
    assert [n.name for n in enum.networks] == ["alexnet", "squeezenet-v1.1", "googlenet-v1"]
    assert enum.objective == pytest.approx(sum(n.weight * n.energy_j for n in enum.networks), rel=1e-12)


def test_weights_scale_the_objective_and_not_the_optimum():
    one = enumerate_study(Problem((StudyNetwork(ALEXNET), StudyNetwork(SQUEEZENET)), "energy", SPACE_4MM2, TECH))
    three = enumerate_study(Problem((StudyNetwork(ALEXNET, weight=3.0), StudyNetwork(SQUEEZENET, weight=3.0)),
                                    "energy", SPACE_4MM2, TECH))
    assert three.objective == pytest.approx(3 * one.objective, rel=1e-12)
    assert three.hardware == one.hardware


def test_caps_no_point_meets_name_the_cap_and_the_least_value_reached():
    problem = Problem((StudyNetwork(ALEXNET, max_delay_cycles=1e5),), "energy", SPACE_4MM2, TECH)
    for solve in (enumerate_study, mip_study):
        with pytest.raises(InputError, match=r"max delay of alexnet \(100000 cycles\): the least delay any point "
                                             r"reaches is 2\.09\d+e\+06"):
            solve(problem)


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight=0), "weight"), (dict(weight=float("nan")), "weight"), (dict(max_delay_cycles=-1), "max delay"),
    (dict(max_energy_j=float("inf")), "max energy")])
def test_bad_weights_and_caps_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        StudyNetwork(ALEXNET, **kwargs)


def test_problem_refuses_layer_sum_caps_repeats_and_bad_branch_limits():
    with pytest.raises(InputError, match="layer-sum"):
        Problem((StudyNetwork(ALEXNET, max_delay_cycles=1e7),), "edp", SPACE_4MM2, TECH, aggregate="layer-sum")
    with pytest.raises(InputError, match="twice"):
        Problem((StudyNetwork(ALEXNET), StudyNetwork(ALEXNET)), "edp", SPACE_4MM2, TECH)
    for bad in (0, 6, 2.5, True):
        with pytest.raises(InputError, match="max branches"):
            Problem((StudyNetwork(ALEXNET),), "edp", SPACE_4MM2, TECH, max_branches=bad)


def test_fixed_array_leaves_only_the_srams_to_choose():
    space = SPACE_4MM2.restricted(rows=18, cols=24)
    solution = enumerate_study(two_network_study("energy").__class__(
        two_network_study("energy").networks, "energy", space, TECH))
    assert (solution.hardware.J, solution.hardware.K) == (18, 24)
    free = enumerate_study(two_network_study("energy"))
    assert solution.objective >= free.objective * (1 - 1e-12)


def test_solution_serialisers_agree_with_the_solution(tmp_path):
    import json

    import yaml
    solution = enumerate_study(two_network_study("edp"))
    payload = json.loads(solution.to_json())
    assert payload == yaml.safe_load(solution.to_yaml())
    assert payload["objective"] == pytest.approx(solution.objective)
    assert [n["name"] for n in payload["networks"]] == ["alexnet", "squeezenet-v1.1"]
    assert payload["networks"][0]["caps"] == {"max_delay_cycles": 2.3e6, "max_energy_j": None}
    assert set(payload["hardware"]) >= {"J", "K", "fsram_kb", "isram_kb", "psram_kb"}
    frame = solution.to_frame()
    assert len(frame) == len(ALEXNET.layers) + len(SQUEEZENET.layers)
    for n in payload["networks"]:
        rows = frame[frame["network"] == n["name"]]
        assert rows["energy_j"].sum() == pytest.approx(n["energy_j"], rel=1e-12)
        assert rows["delay_cycles"].sum() == pytest.approx(n["delay_cycles"], rel=1e-12)
    assert "wall_s" not in json.loads(solution.to_json(timings=False))["solver"]


def brute_force_frontier(problem: Problem) -> list[tuple[float, float]]:
    """Every schedule of every network on every point (usable branches, caps, branch sets), weighted totals
    added over the networks, and the non-dominated (E, D) pairs of all of them, by increasing delay."""
    limit = problem.max_branches or BRANCH_COUNT
    sets = [u for size in range(1, limit + 1) for u in itertools.combinations(range(BRANCH_COUNT), size)]
    pairs = []
    for hardware, _ in every_point(problem.space):
        tables = [network_tables(item.network, hardware) for item in problem.networks]
        for allowed in sets:
            per_network = []
            for item, (energy, delay) in zip(problem.networks, tables):
                options = []
                for a in itertools.product(allowed, repeat=len(item.network.layers)):
                    e = sum(energy[l, b] for l, b in enumerate(a))
                    d = sum(delay[l, b] for l, b in enumerate(a))
                    if not (np.isfinite(e) and np.isfinite(d)):
                        continue
                    if item.max_delay_cycles is not None and d > item.max_delay_cycles:
                        continue
                    options.append((item.weight * e, item.weight * d))
                per_network.append(options)
            for combo in itertools.product(*per_network):
                pairs.append((sum(c[0] for c in combo), sum(c[1] for c in combo)))
    pairs.sort(key=lambda p: (p[1], p[0]))
    front = []
    for e, d in pairs:
        if not front or e < front[-1][0] * (1 - 1e-12):
            front.append((e, d))
    return front


@pytest.mark.parametrize("limit, cap", [(None, None), (2, None), (None, 1.15)])
def test_study_frontier_is_the_brute_force_frontier(limit, cap):
    space = tiny_space()
    first = Network("first", tuple(replace(layer, name=f"a{i}") for i, layer in enumerate(ALEXNET.layers[1:3])))
    second = Network("second", tuple(replace(layer, name=f"s{i}") for i, layer in enumerate(SQUEEZENET.layers[:2])))
    lo, _ = delay_range(first, space)
    problem = Problem((StudyNetwork(first, weight=2.0, max_delay_cycles=None if cap is None else cap * lo),
                       StudyNetwork(second)), "edp", space, TECH, max_branches=limit)
    want = brute_force_frontier(problem)
    got = sorted(study_frontier(problem), key=lambda p: p.delay_cycles)
    assert [p.delay_cycles for p in got] == pytest.approx([d for _, d in want], rel=1e-9)
    assert [p.energy_j for p in got] == pytest.approx([e for e, _ in want], rel=1e-9)
