"""Valid lower bounds of a study's objective with fusion on every grid point (docs/studies.md, "Fusion").

The unfused bounds of :mod:`~deepopt_mip.formulation.study_bounds` are not
lower bounds with fusion: a fused schedule can cost less than every unfused
one. The grid program of :mod:`~deepopt_mip.formulation.fusion_grid`
(docs/model.md 11.7) runs over every fusion set and branch choice instead.
Per network w:

* uncapped, and the metric separable for it (``layer-sum``, or E or D
  alone): the program with key m(E_l, D_l) gives the exact fused optimum
  of w at every point;
* otherwise (a cap, or a product under ``network``): one program with the
  keys E_l and D_l (:func:`~.fusion_grid.fusion_sums`) gives min sum E and
  min sum D (each over every fusion set and every branch where both are
  finite, i.e. over the schedules that can run); every
  fused schedule's totals lie at or above (min sum E, min sum D), so
  m(min sum E, min sum D) is a lower bound (m is non-decreasing in E and
  D), and a point whose min sum D (min sum E) exceeds w's delay (energy)
  cap meets it with no fused schedule: it is infeasible, exactly.

The study's bound is sum_w weight_w * bound_w (inf where a network cannot
run or meet its caps). It is exact when every network is of the first kind
(a branch limit is refused with fusion, :class:`~.problem.Problem`).

:func:`fused_study_bounds` holds these over the whole grid cube (with
:func:`~.fusion_grid.fusion_grid` and :func:`~.fusion_grid.fusion_sums`):
it is the reference the streamed pass is tested against. The enumeration
and the MIP of a study with fusion stream the same bounds over the
in-budget slabs in bounded memory
(:mod:`~deepopt_mip.formulation.study_fusion_stream`).
"""

from __future__ import annotations

import numpy as np

from deepopt_mip.formulation.fusion_grid import fusion_grid, fusion_sums
from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.study_bounds import StudyBounds, corner_bound, exact_per_network


def fused_study_bounds(problem: Problem, progress: Progress | None = None) -> StudyBounds:
    """One grid program per network: its exact fused optimum (uncapped separable network) or its least
    fused energy and least fused delay (otherwise; module docstring)."""
    total = None
    least_delay, least_energy = {}, {}
    area = valid = None
    for item in problem.networks:
        if exact_per_network(problem, item):
            bound, area, valid = fusion_grid(item.network, problem.space, problem.tech, problem.metric,
                                             problem.aggregate, progress)
            bound = bound.ravel()
        else:
            (e_min, d_min), area, valid = fusion_sums(item.network, problem.space, problem.tech, "edp", "network",
                                                      progress)
            e_min, d_min = e_min.ravel(), d_min.ravel()
            bound = corner_bound(e_min, d_min, item, problem.metric)
            flat_valid = valid.ravel()
            if flat_valid.any():
                least_delay[item.name] = float(np.min(np.where(flat_valid, d_min, np.inf)))
                least_energy[item.name] = float(np.min(np.where(flat_valid, e_min, np.inf)))
        weighted = item.weight * np.where(valid.ravel(), bound, np.inf)
        total = weighted if total is None else total + weighted
    exact = all(exact_per_network(problem, n) for n in problem.networks)
    return StudyBounds(lower=total, area_um2=area.ravel(), valid=valid.ravel(), exact=exact,
                       least_delay_cycles=least_delay, least_energy_j=least_energy)

