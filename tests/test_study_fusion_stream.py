"""Studies with fusion in bounded memory (formulation/study_fusion_stream.py) against the full-grid pass.

* The streamed window holds the full-grid pass's candidates
  (:func:`~deepopt_mip.formulation.study_fusion_bounds.fused_study_bounds`) in
  its order with the same bounds, areas and counts, bit for bit, through every
  widening, whatever the slab size and the workers (separable, product, layer-sum
  and capped studies).
* Both solvers give the same solution with a window of 2 points (widened by
  further passes) as with the default window, and the enumeration the one of a
  search over the full-grid bounds.
* The memory estimate is checked before any work and does not grow with the
  grid; a run too large is refused in one line, exit status 2.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from deepopt_mip.formulation import memory
from deepopt_mip.formulation.fusion_stream import FUSION_BLOCK_POINTS, fusion_bytes_per_point
from deepopt_mip.formulation.grid_stream import stream_memory_bytes
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_point, grid_shape, load_space
from deepopt_mip.formulation.study_fusion_bounds import fused_study_bounds
from deepopt_mip.formulation.study_fusion_stream import fused_study_stream, fused_study_stream_memory_bytes
from deepopt_mip.formulation.study_stream import KEPT_BYTES_PER_POINT, KEY_BYTES_PER_POINT, StudyWindow
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.enumeration import ranked_points, refine_by_bound
from deepopt_mip.solvers.study_fusion_enumeration import enumerate_fused_study, fused_point_optimum
from deepopt_mip.solvers.study_fusion_mip import mip_fused_study
from test_memory_bound import fine_space, stopped_at_the_memory_check
from test_study_fusion import CONVS, FIRE, SPACE, TECH
from test_study_stream import assert_window_is_the_full_order


def _study(metric: str, aggregate: str = "network", **caps) -> Problem:
    return Problem(networks=[StudyNetwork(FIRE, weight=2.0), StudyNetwork(CONVS, **caps)], metric=metric,
                   space=SPACE, tech=TECH, aggregate=aggregate, fusion=True)


STUDIES = {
    "energy": _study("energy"),  # every network's bound is its exact fused optimum
    "E*D": _study("edp"),  # products: the fused ideal corners
    "layer-sum E*D": _study("edp", "layer-sum"),
    "energy, delay cap": _study("energy", max_delay_cycles=5.5e6),  # one exact network, one capped corner
    "E*D, energy cap": replace(_study("edp"), networks=(StudyNetwork(FIRE, weight=2.0, max_energy_j=4.85e-4),
                                                        StudyNetwork(CONVS))),
}


@pytest.fixture(scope="module")
def full_bounds():
    """The full-grid pass of each study (the reference)."""
    return {name: fused_study_bounds(problem) for name, problem in STUDIES.items()}


@pytest.mark.parametrize("name, max_points, workers, window", [
    ("energy", 9, 1, 3), ("E*D", FUSION_BLOCK_POINTS, 1, 5), ("layer-sum E*D", 40, 2, 4),
    ("energy, delay cap", 13, 1, 2), ("E*D, energy cap", 25, 1, 40)])
def test_the_window_is_the_full_grid_order_with_the_same_bounds(full_bounds, name, max_points, workers, window):
    problem, full = STUDIES[name], full_bounds[name]
    order = full.candidate_order()
    streamed = fused_study_stream(problem, workers=workers, window=window, max_points=max_points)
    assert streamed.size == min(window, order.size) and order.size >= 15
    assert_window_is_the_full_order(streamed, problem, extensions=order.size, full=full)
    assert streamed.size == order.size


def _reference_enumeration(problem: Problem, bounds, top_k: int):
    """Bound and prune over the full-grid bounds in their order, each point solved exactly: (flat index of the
    optimum, objective, runners-up as (flat index, objective, area mm^2))."""
    order = bounds.candidate_order()

    def objectives(flat):
        return [fused_point_optimum(problem, grid_point(problem.space, int(i))).objective for i in flat]

    exact = ({int(i): float(bounds.lower[i]) for i in order[:top_k + 1]} if bounds.exact
             else refine_by_bound(objectives, order, bounds.lower, top_k + 1, False, {}))
    ranked = ranked_points(exact, bounds.area_um2)
    return ranked[0], exact[ranked[0]], [(grid_point(problem.space, i), exact[i],
                                          float(bounds.area_um2[i]) / UM2_PER_MM2) for i in ranked[1:top_k + 1]]


@pytest.mark.parametrize("name", ["energy", "energy, delay cap", "E*D, energy cap"])
def test_a_window_of_two_gives_the_default_windows_solution_and_the_full_grid_searchs(full_bounds, name,
                                                                                        monkeypatch):
    problem = STUDIES[name]
    default_enum, default_mip = enumerate_fused_study(problem, top_k=3), mip_fused_study(problem)
    best, objective, runners_up = _reference_enumeration(problem, full_bounds[name], 3)
    assert (default_enum.hardware, default_enum.objective) == (grid_point(problem.space, best), objective)
    assert [(r.hardware, r.objective, r.area_mm2) for r in default_enum.runners_up] == runners_up
    passes = []
    extend = StudyWindow.extend
    monkeypatch.setattr(StudyWindow, "extend", lambda self: (passes.append(1), extend(self))[1])
    small_enum = enumerate_fused_study(problem, top_k=3, window_points=2)
    assert passes  # a window of 2 cannot hold the proof (top_k=3 needs 4 points): the window did grow
    assert small_enum.to_dict(timings=False) == default_enum.to_dict(timings=False)
    passes.clear()
    small_mip = mip_fused_study(problem, window_points=2)
    assert passes  # the first round offers 16 points
    assert small_mip.to_dict(timings=False) == default_mip.to_dict(timings=False)
    assert default_mip.status == "optimal" and default_mip.objective == pytest.approx(objective, rel=1e-6)


def test_the_estimate_is_checked_first_and_does_not_grow_with_the_grid(tmp_path, monkeypatch):
    """The paper's space and a 31 M-point cube (every J and K, filter and psum SRAMs in 4 kB steps, ifmap
    SRAMs of 32, 128 and 512 kB: 5.8 M points in the budget, the same largest capacity) stop at their memory
    checks with the same estimate: the workers' slabs (the larger network's program) and the window."""
    big = replace(fine_space(tmp_path), isram_kb=(32.0, 128.0, 512.0))
    assert np.prod(grid_shape(big)) > 30e6
    checked = stopped_at_the_memory_check(monkeypatch)
    for space in (load_space("deepopt-16mm2", TECH), big):
        with pytest.raises(InterruptedError):
            fused_study_stream(replace(STUDIES["E*D"], space=space), workers=2)
    per_point = max(fusion_bytes_per_point(n, big, False) for n in (FIRE, CONVS)) + KEY_BYTES_PER_POINT
    assert checked[0] == checked[1] == fused_study_stream_memory_bytes(replace(STUDIES["E*D"], space=big),
                                                                       FUSION_BLOCK_POINTS, 2, 20_000 + 1)
    assert checked[0] == stream_memory_bytes(FUSION_BLOCK_POINTS, 2, per_point) + KEPT_BYTES_PER_POINT * 20_001
    assert checked[0] < 2**29


def test_a_fused_study_is_refused_in_one_line_when_the_machine_lacks_memory(tmp_path, monkeypatch, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("networks:\n  - alexnet\n  - network: squeezenet-v1.1\n    max_delay_cycles: 1.5e6\n"
                     "metric: energy\nfusion: true\n")
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    for command, workers in (("allocate", "2 workers"), ("compare", "1 worker")):
        status = main([command, "--study", str(study), "--quiet", "--workers", workers.split()[0]])
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1  # --workers reached the pass
        assert err.startswith(f"deepopt-mip: error: the fusion program over space 'deepopt-16mm2' ({workers} x "
                              "blocks of 50,000 points) would need about")
