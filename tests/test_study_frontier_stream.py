"""The study frontier in bounded memory: the streamed corner screen keeps every corner bit for bit as the
full-grid pass computes it, keeps the same points whatever the blocks, and the frontier swept over the
screened points is the frontier swept over every feasible point of the full-grid pass (points, totals,
schedules, bit for bit); the pass's memory estimate is checked up front and does not grow with the grid."""

from dataclasses import replace

import numpy as np
import pytest

from deepopt_mip.formulation import grid_stream, memory
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_blocks import budget_blocks
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.study_bounds import study_bounds
from deepopt_mip.formulation.study_corners import (StudyCorners, frontier_bytes_per_point, study_corners,
                                                   study_corners_memory_bytes)
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.highs_driver import MipOptions
from deepopt_mip.solvers.study_mip import corner_frontier, study_frontier
from test_memory_bound import fine_space, stopped_at_the_memory_check
from test_study_solvers import ALEXNET, SPACE_3MM2, SPACE_4MM2, SQUEEZENET, TECH

FIRST = Network("first", tuple(replace(layer, name=f"a{i}") for i, layer in enumerate(ALEXNET.layers[1:4])))
SECOND = Network("second", tuple(replace(layer, name=f"s{i}") for i, layer in enumerate(SQUEEZENET.layers[:3])))

PAPER_STUDY = Problem((StudyNetwork(ALEXNET, weight=2.0, max_delay_cycles=2.9e6),
                       StudyNetwork(SQUEEZENET, max_delay_cycles=2.2e6)), "edp", SPACE_4MM2, TECH)

SMALL_STUDIES = {
    "delay caps": Problem((StudyNetwork(FIRST, weight=2.0, max_delay_cycles=1.9e6),
                           StudyNetwork(SECOND, max_delay_cycles=2.6e5)), "edp", SPACE_3MM2, TECH),
    "uncapped": Problem((StudyNetwork(FIRST, weight=2.0), StudyNetwork(SECOND)), "edp", SPACE_3MM2, TECH),
    "energy cap": Problem((StudyNetwork(FIRST), StudyNetwork(SECOND, weight=0.5, max_energy_j=5.6e-4)), "energy",
                          SPACE_3MM2, TECH),
    "branch limit": Problem((StudyNetwork(FIRST, weight=2.0), StudyNetwork(SECOND, max_delay_cycles=2.5e5)), "edp",
                            SPACE_3MM2, TECH, max_branches=2),
}
"""The first layers of each network (the sweeps over every feasible point, the reference, take seconds)."""


def full_grid_corners(problem: Problem) -> StudyCorners:
    """Every feasible point with its weighted corner from the full-grid pass, unscreened: the frontier's
    candidates before the streamed screen."""
    bounds = study_bounds(replace(problem, metric="edp"), workers=1)
    energy, delay = bounds.corner_energy_j, bounds.corner_delay_cycles
    feasible = np.flatnonzero(np.isfinite(energy) & np.isfinite(delay))
    order = feasible[np.lexsort((feasible, energy[feasible]))]
    return StudyCorners(order, bounds.area_um2[order], energy[order], delay[order], np.zeros(0), np.zeros(0),
                        float(delay[feasible].min()) if feasible.size else np.inf, bounds.valid_points,
                        bounds.least_delay_cycles, bounds.least_energy_j)


def small_blocks(problem: Problem, blocks: int) -> int:
    """A block size that cuts the in-budget points into about ``blocks`` blocks."""
    return max(1, -(-sum(block.size for block in budget_blocks(problem.space)) // blocks))


def frontier_key(points):
    return [(p.flat, p.hardware, p.area_mm2, p.energy_j, p.delay_cycles, [c.tolist() for c in p.counts])
            for p in points]


@pytest.mark.parametrize("name", sorted(SMALL_STUDIES))
def test_the_screen_keeps_full_grid_corners_bit_for_bit_whatever_the_blocks(name):
    problem = SMALL_STUDIES[name]
    full = full_grid_corners(problem)
    one = study_corners(problem, 1e-9, workers=1, block_points=10**7)
    many = study_corners(problem, 1e-9, workers=1, block_points=small_blocks(problem, 25))
    position = {int(flat): n for n, flat in enumerate(full.index)}
    for streamed in (one, many):
        at = np.array([position[int(flat)] for flat in streamed.index])  # every kept point is feasible
        assert np.array_equal(streamed.energy_j, full.energy_j[at])
        assert np.array_equal(streamed.delay_cycles, full.delay_cycles[at])
        assert np.array_equal(streamed.area_um2, full.area_um2[at])
        assert np.all(np.diff(at) > 0)  # in the full order: corner energy, then grid index
        assert (streamed.valid_points, streamed.delay_floor_cycles) == (full.valid_points, full.delay_floor_cycles)
        assert (streamed.least_delay_cycles, streamed.least_energy_j) == (full.least_delay_cycles,
                                                                         full.least_energy_j)
    assert np.array_equal(one.index, many.index)
    assert np.array_equal(one.pair_energy_j, many.pair_energy_j)
    assert np.array_equal(one.pair_delay_cycles, many.pair_delay_cycles)
    if name == "branch limit":
        assert one.size == full.size  # no pair is known to keep within the limit: nothing is screened
    else:
        assert one.size < full.size / 2


def test_the_screen_of_a_paper_study_keeps_full_grid_corners():
    full = full_grid_corners(PAPER_STUDY)
    streamed = study_corners(PAPER_STUDY, 1e-9, workers=1, block_points=small_blocks(PAPER_STUDY, 4))
    at = np.searchsorted(np.sort(full.index), streamed.index)
    by_index = np.argsort(full.index)
    assert np.array_equal(streamed.energy_j, full.energy_j[by_index[at]])
    assert np.array_equal(streamed.delay_cycles, full.delay_cycles[by_index[at]])
    assert 0 < streamed.size < full.size




@pytest.mark.parametrize("name, limits", [("delay caps", None), ("uncapped", 6), ("energy cap", 5),
                                          ("branch limit", 4)])
def test_the_streamed_frontier_is_the_full_grid_frontier_bit_for_bit(name, limits):
    problem = SMALL_STUDIES[name]
    want = corner_frontier(problem, full_grid_corners(problem), MipOptions(), limits)
    got = study_frontier(problem, max_points=limits, workers=1, block_points=small_blocks(problem, 25))
    assert len(want) >= 2
    assert frontier_key(got) == frontier_key(want)


def test_a_study_without_a_feasible_point_names_the_tightest_cap():
    problem = replace(PAPER_STUDY, networks=(StudyNetwork(ALEXNET, max_delay_cycles=1e5), StudyNetwork(SQUEEZENET)))
    with pytest.raises(InputError, match="meets the max delay of alexnet"):
        study_frontier(problem, workers=1)


def test_the_frontier_estimate_does_not_grow_with_the_grid(tmp_path, monkeypatch):
    """The estimate checked before the pass is the same on the paper space and on a 2.1 G-point cube (which
    the full-grid pass refused), and small; with a branch limit it counts every in-budget point as kept."""
    checked = stopped_at_the_memory_check(monkeypatch)
    problem = PAPER_STUDY
    for space in (SPACE_4MM2, fine_space(tmp_path)):
        with pytest.raises(InterruptedError):
            study_frontier(replace(problem, space=space), workers=2)
    assert checked[0] == checked[1] == study_corners_memory_bytes(problem, 300_000, 2, 0) < 2 * 2**30
    assert frontier_bytes_per_point(2) == grid_stream.BYTES_PER_POINT + 176
    with pytest.raises(InterruptedError):
        study_frontier(replace(problem, max_branches=2), workers=2)
    in_budget = sum(block.size for block in budget_blocks(SPACE_4MM2))
    assert checked[2] == study_corners_memory_bytes(problem, 300_000, 2, in_budget)


def test_a_study_frontier_is_refused_in_one_line_when_the_machine_lacks_memory(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    status = main(["pareto", "--network", "alexnet", "--network", "squeezenet-v1.1", "--max-delay",
                   "alexnet=2.3e6", "--quiet", "--workers", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("deepopt-mip: error: the grid pass over space 'deepopt-16mm2' (1 worker x blocks of "
                          "300,000 points) would need about")
    assert len(err.strip().splitlines()) == 1
