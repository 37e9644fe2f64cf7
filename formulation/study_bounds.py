"""Valid lower bounds of a study's objective on every grid point, from one grid pass per network.

Per network w (the sums of :mod:`~deepopt_mip.formulation.grid_sums`):

* uncapped, and the metric separable for it (``layer-sum``, or E or D
  alone): the separable pass gives sum_l n_l min_b m(E_lb, D_lb), the exact
  optimum of w over all branches; with a branch limit it is a lower bound
  (a limit only removes schedules);
* otherwise (a cap, or a product under ``network``): the pass gives the ideal
  corner (sum_l min_b E_lb, sum_l min_b D_lb) over the branches that can
  run; every schedule's totals lie at or above it, so m(corner) is a lower
  bound (m is non-decreasing in E and D), and a point whose corner's delay
  (energy) exceeds the network's delay (energy) cap meets it with no
  schedule at all: it is infeasible, exactly.

The study's bound is sum_w weight_w * bound_w (inf where a network cannot
run or meet its caps). It is exact when every network is of the first kind
and there is no branch limit.

:func:`study_bounds` holds these over the whole grid cube (its memory is
checked up front, :func:`~.grid_sums.grid_sums`): it is the reference the
streamed passes are tested against. The enumeration and the MIP of a study
stream the same bounds over the in-budget blocks in bounded memory
(:mod:`~deepopt_mip.formulation.study_stream`), and the study frontier the
same weighted corners, screened (:mod:`~deepopt_mip.formulation.study_corners`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_sums import Progress, grid_sums, is_separable
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import infeasible_budget_message


def exact_per_network(problem: Problem, item: StudyNetwork) -> bool:
    """True where one separable pass gives the network's exact optimum (no cap, separable metric)."""
    return not item.capped and is_separable(problem.metric, problem.aggregate)


@dataclass(frozen=True)
class StudyBounds:
    """Flat arrays over the grid: the study's lower bound (inf: invalid or infeasible), area (um^2),
    validity (within the budget, registers fit); ``exact`` when the bound is the objective itself;
    per network the least delay (cycles) and energy (J) any schedule reaches on a valid point."""

    lower: np.ndarray
    area_um2: np.ndarray
    valid: np.ndarray
    exact: bool
    least_delay_cycles: dict[str, float]
    least_energy_j: dict[str, float]
    corner_energy_j: np.ndarray | None = None
    corner_delay_cycles: np.ndarray | None = None
    """Weighted sums over the networks of the ideal corners (sum_w weight_w E_min,w and the same for D; inf
    where a network cannot run or meet its caps); None when some network took the separable pass."""

    @property
    def valid_points(self) -> int:
        return int(self.valid.sum())

    def candidate_order(self) -> np.ndarray:
        """Flat indices of the points with a finite bound, most promising first: by bound, then smaller
        area, then grid order (the reference's tie-break)."""
        candidates = np.flatnonzero(np.isfinite(self.lower))
        return candidates[np.lexsort((candidates, self.area_um2[candidates], self.lower[candidates]))]


def study_bounds(problem: Problem, progress: Progress | None = None, workers: int | None = None) -> StudyBounds:
    """One full-grid pass per network (see the module docstring)."""
    total = None
    least_delay, least_energy = {}, {}
    corner_e = corner_d = np.zeros(1)
    area = valid = None
    for item in problem.networks:
        if exact_per_network(problem, item):
            (bound,), area, valid = grid_sums(item.network, problem.space, problem.tech, problem.metric, True,
                                              progress, workers=workers)
            bound = bound.ravel()
            e_min = d_min = None
        else:
            pass_metric = problem.metric if not is_separable(problem.metric, "network") else "edp"
            sums, area, valid = grid_sums(item.network, problem.space, problem.tech, pass_metric, False,
                                          progress, workers=workers)
            e_min, d_min = sums[0].ravel(), sums[1].ravel()
            bound = corner_bound(e_min, d_min, item, problem.metric)
        flat_valid = valid.ravel()
        if d_min is None:
            corner_e = corner_d = None
        elif corner_e is not None:
            feasible = np.isfinite(bound) & flat_valid
            corner_e = corner_e + item.weight * np.where(feasible, e_min, np.inf)
            corner_d = corner_d + item.weight * np.where(feasible, d_min, np.inf)
        if d_min is not None and flat_valid.any():
            least_delay[item.name] = float(np.min(np.where(flat_valid, d_min, np.inf)))
            least_energy[item.name] = float(np.min(np.where(flat_valid, e_min, np.inf)))
        weighted = item.weight * np.where(flat_valid, bound, np.inf)
        total = weighted if total is None else total + weighted
    exact = problem.max_branches is None and all(exact_per_network(problem, n) for n in problem.networks)
    return StudyBounds(lower=total, area_um2=area.ravel(), valid=valid.ravel(), exact=exact,
                       least_delay_cycles=least_delay, least_energy_j=least_energy, corner_energy_j=corner_e,
                       corner_delay_cycles=corner_d)


def corner_bound(e_min: np.ndarray, d_min: np.ndarray, item: StudyNetwork, metric: str) -> np.ndarray:
    """Per point m(``e_min``, ``d_min``), a lower bound of network ``item``'s metric over the schedules
    at or above that ideal corner (m is non-decreasing in E and D); ``inf`` where the corner is not finite
    or already exceeds one of ``item``'s caps (no schedule there meets it)."""
    with np.errstate(invalid="ignore"):
        bound = np.where(np.isfinite(e_min) & np.isfinite(d_min), metric_value(e_min, d_min, metric), np.inf)
    if item.max_delay_cycles is not None:
        bound = np.where(d_min <= item.max_delay_cycles, bound, np.inf)
    if item.max_energy_j is not None:
        bound = np.where(e_min <= item.max_energy_j, bound, np.inf)
    return bound


def infeasible_study_message(problem: Problem, bounds) -> str:
    """Why no point is left: the budget, or the tightest cap with the least value the space reaches.
    ``bounds``: a :class:`StudyBounds` or a :class:`~.study_stream.StudyWindow` (``valid_points``,
    ``least_delay_cycles``, ``least_energy_j``)."""
    if not bounds.valid_points:
        return infeasible_budget_message(problem.space)
    worst = None
    for item in problem.networks:
        for cap, reach, what, unit in ((item.max_delay_cycles, bounds.least_delay_cycles.get(item.name), "delay",
                                        "cycles"),
                                       (item.max_energy_j, bounds.least_energy_j.get(item.name), "energy", "J")):
            if cap is not None and reach is not None and (worst is None or reach / cap > worst[0]):
                worst = (reach / cap, item.name, what, cap, reach, unit)
    if worst is not None and worst[0] > 1:
        _, name, what, cap, reach, unit = worst
        return (f"no point of space {problem.space.name!r} meets the max {what} of {name} ({cap:.6g} {unit}): "
                f"the least {what} any point reaches is {reach:.6g} {unit}")
    if worst is not None:
        _, name, what, cap, reach, unit = worst
        return (f"no point of space {problem.space.name!r} meets every cap together; the tightest is the max "
                f"{what} of {name} ({cap:.6g} {unit}, the least any point reaches is {reach:.6g} {unit})")
    return (f"no point of space {problem.space.name!r} can run every layer of {problem.label}"
            + (f" with at most {problem.max_branches} distinct branches" if problem.max_branches else ""))


def no_point_error(problem: Problem, bounds) -> InputError:
    return InputError(infeasible_study_message(problem, bounds))
