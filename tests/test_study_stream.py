"""Studies in bounded memory: the streamed window holds the full-grid pass's candidates in its order with
the same bounds bit for bit (whatever the window, the blocks and the networks), and both solvers give the
same optimum, objective and runners-up with a window of 3 points as with the default one, and a brute
force's optimum."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation import memory
from deepopt_mip.formulation.grid_blocks import budget_blocks
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.study_bounds import study_bounds
from deepopt_mip.formulation.study_stream import (STUDY_BYTES_PER_POINT, StudyWindow, study_stream,
                                                  study_stream_memory_bytes)
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.study_enumeration import enumerate_study
from deepopt_mip.solvers.study_mip import mip_study
from test_grid_stream import networks, spaces
from test_memory_bound import fine_space, stopped_at_the_memory_check
from test_study_solvers import ALEXNET, SPACE_3MM2, SPACE_4MM2, SQUEEZENET, TECH, brute_force, studies


@st.composite
def random_studies(draw):
    """1-3 networks (parts of built-ins) on a random space, weights, delay or energy caps set from each
    network's least corner delay (energy) on the space, a metric, an aggregation and a branch limit."""
    space = draw(spaces())
    items = []
    for n in range(draw(st.integers(1, 3))):
        network = replace(draw(networks()), name=f"net{n}")
        items.append(StudyNetwork(network, weight=draw(st.sampled_from([1.0, 0.25, 3.0]))))
    metric = draw(st.sampled_from(sorted(METRIC_EXPONENTS)))
    aggregate = draw(st.sampled_from(["network", "layer-sum"]))
    if aggregate == "network" and draw(st.booleans()):
        probe = study_bounds(Problem(tuple(replace(i, max_delay_cycles=1e30, max_energy_j=1e30) for i in items),
                                     "edp", space, TECH), workers=1)
        capped = []
        for item in items:
            factor = draw(st.sampled_from([None, 1.0, 1.3, 3.0]))
            which = draw(st.sampled_from(["delay", "energy"]))
            least = (probe.least_delay_cycles if which == "delay" else probe.least_energy_j).get(item.name)
            if factor is None or least is None or not np.isfinite(least):
                capped.append(item)
            else:
                capped.append(replace(item, **{f"max_{which}_{'cycles' if which == 'delay' else 'j'}":
                                               least * factor}))
        items = capped
    return Problem(tuple(items), metric, space, TECH, aggregate=aggregate,
                   max_branches=draw(st.sampled_from([None, 1, 3])))


def assert_window_is_the_full_order(window: StudyWindow, problem: Problem, extensions: int = 5, full=None):
    """The window, and each of up to ``extensions`` widenings of it, is a prefix of the full-grid order with the
    same bounds and areas, and ``beyond`` is the next point's bound; a window that holds every point says so.
    ``full``: the full-grid bounds (by default :func:`~.study_bounds.study_bounds` of ``problem``)."""
    full = study_bounds(problem, workers=1) if full is None else full
    order = full.candidate_order()
    assert window.valid_points == full.valid_points
    assert window.finite_points == order.size
    assert window.least_delay_cycles == full.least_delay_cycles
    assert window.least_energy_j == full.least_energy_j
    assert window.exact == full.exact
    for _ in range(extensions + 1):
        size = window.size
        assert np.array_equal(window.index, order[:size])
        assert np.array_equal(window.lower, full.lower[order[:size]])  # bit for bit
        assert np.array_equal(window.area_um2, full.area_um2[order[:size]])
        assert window.beyond == (full.lower[order[size]] if size < order.size else np.inf)
        if not window.more:
            assert size == order.size
            return
        window.extend()
        assert window.size > size


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_studies(), st.sampled_from([1, 2, 3, 7]), st.integers(1, 12))
def test_the_window_is_the_full_grid_order_with_the_same_bounds(problem, window_points, blocks):
    """Blocks of 1/``blocks`` of the in-budget points (so a pass holds up to about 12 blocks, whatever the
    space's size)."""
    in_budget = sum(block.size for block in budget_blocks(problem.space))
    window = study_stream(problem, workers=1, window=window_points, max_points=max(1, -(-in_budget // blocks)))
    assert window.size == min(window_points, window.finite_points)
    assert_window_is_the_full_order(window, problem)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(studies())
def test_a_window_of_three_gives_the_default_windows_answer_and_the_brute_force_optimum(problem):
    want = brute_force(problem)
    if not np.isfinite(want):
        return  # the one-line refusals: test_study_solvers
    small, default = enumerate_study(problem, top_k=4, window_points=3), enumerate_study(problem, top_k=4)
    assert small.objective == pytest.approx(want, rel=1e-9)
    assert (small.hardware, small.objective, small.runners_up) == (default.hardware, default.objective,
                                                                   default.runners_up)
    mip_small, mip_default = mip_study(problem, window_points=3), mip_study(problem)
    assert mip_small.objective == pytest.approx(want, rel=1e-6)
    assert (mip_small.hardware, mip_small.objective) == (mip_default.hardware, mip_default.objective)


HAND_PICKED = {
    "caps, weights, E*D": Problem((StudyNetwork(ALEXNET, weight=2.0, max_delay_cycles=2.9e6),
                                   StudyNetwork(SQUEEZENET, max_delay_cycles=2.2e6)), "edp", SPACE_3MM2, TECH),
    "branch limit, energy": Problem((StudyNetwork(ALEXNET, weight=2.0), StudyNetwork(SQUEEZENET)), "energy",
                                    SPACE_3MM2, TECH, max_branches=2),
    "products, E*D^2": Problem((StudyNetwork(ALEXNET), StudyNetwork(SQUEEZENET, weight=0.5)), "ed2p", SPACE_3MM2,
                               TECH),
}


@pytest.mark.parametrize("name", sorted(HAND_PICKED))
def test_hand_picked_studies_give_the_same_answer_with_a_window_of_three(name, monkeypatch):
    problem = HAND_PICKED[name]
    default_enum = enumerate_study(problem, top_k=3)
    passes = []
    extend = StudyWindow.extend
    monkeypatch.setattr(StudyWindow, "extend", lambda self: (passes.append(1), extend(self))[1])
    small_enum, small_mip = enumerate_study(problem, top_k=3, window_points=3), mip_study(problem, window_points=3)
    assert passes  # a window of 3 cannot hold the proof (top_k=3 needs 4 points): the window did grow
    assert (small_enum.hardware, small_enum.objective, small_enum.runners_up, small_enum.points) == (
        default_enum.hardware, default_enum.objective, default_enum.runners_up, default_enum.points)
    assert small_mip.objective == pytest.approx(default_enum.objective, rel=1e-6)
    assert small_mip.points == default_enum.points


def test_the_window_of_a_paper_study_is_the_full_order():
    problem = HAND_PICKED["caps, weights, E*D"]
    assert_window_is_the_full_order(study_stream(problem, window=4), problem)


def test_progress_counts_the_points_of_every_networks_pass():
    problem = HAND_PICKED["branch limit, energy"]
    seen = []
    study_stream(problem, progress=lambda done, total: seen.append((done, total)), workers=1)
    block_points = sum(block.size for block in budget_blocks(problem.space))
    assert seen[-1] == (2 * block_points, 2 * block_points)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_the_study_estimate_does_not_grow_with_the_grid(tmp_path, monkeypatch):
    """The estimate checked before the pass is the same on the paper space and on a 2.1 G-point cube (which
    the full-grid pass refused at about 69 GB), and small."""
    checked = stopped_at_the_memory_check(monkeypatch)
    for space in (SPACE_4MM2, fine_space(tmp_path)):
        with pytest.raises(InterruptedError):
            study_stream(replace(HAND_PICKED["caps, weights, E*D"], space=space), workers=2)
    assert checked[0] == checked[1] == study_stream_memory_bytes(300_000, 2, 20_000 + 1) < 2 * 2**30
    assert (study_stream_memory_bytes(300_000, 2, 0) - study_stream_memory_bytes(100_000, 2, 0)
            == 2 * 200_000 * STUDY_BYTES_PER_POINT)


def test_a_study_is_refused_in_one_line_when_the_machine_lacks_memory_for_its_blocks(monkeypatch, capsys):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    status = main(["allocate", "--network", "alexnet", "--network", "squeezenet-v1.1", "--max-delay",
                   "alexnet=2.3e6", "--metric", "edp", "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("deepopt-mip: error: the grid pass over space 'deepopt-16mm2' (1 worker x blocks of "
                          "300,000 points) would need about")
    assert len(err.strip().splitlines()) == 1
