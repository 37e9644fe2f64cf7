"""The :class:`~deepopt_mip.solvers.solution.Solution` of a study from its per-network schedules.

Both study solvers end here once they know the hardware point and each
network's branch per layer: the per-layer numbers are read from the cost
tables at that point, so the reported totals are the model's own.
"""

from __future__ import annotations

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.solvers.solution import NetworkResult, Solution


def solution_from_schedules(problem: Problem, hardware: HardwarePoint, area_mm2: float, schedules, tables,
                            **solver_fields) -> Solution:
    """The :class:`Solution` of given per-network schedules (branch index per layer) on ``hardware``."""
    results = []
    for item, schedule, table in zip(problem.networks, schedules, tables):
        index = schedule.branch_index
        results.append(_network_result(item, schedule, tuple(float(table.energy_j[l, i]) for l, i in enumerate(index)),
                                       tuple(float(table.delay_cycles[l, i]) for l, i in enumerate(index))))
    return _solution(problem, hardware, area_mm2, results, **solver_fields)


def solution_from_fusion_schedules(problem: Problem, hardware: HardwarePoint, area_mm2: float, schedules,
                                   **solver_fields) -> Solution:
    """The :class:`Solution` of per-network :class:`~.fusion_schedule.FusionSchedule`s on ``hardware`` (the
    per-layer numbers are the fused ones the schedules carry, with each network's fused edges)."""
    results = [_network_result(item, s, s.layer_energy_j, s.layer_delay_cycles, tuple(s.fused_edges))
               for item, s in zip(problem.networks, schedules)]
    return _solution(problem, hardware, area_mm2, results, **solver_fields)


def _network_result(item, schedule, layer_energy_j, layer_delay_cycles, fused_edges=None) -> NetworkResult:
    return NetworkResult(
        name=item.name, weight=item.weight, energy_j=schedule.energy_j, delay_cycles=schedule.delay_cycles,
        objective=schedule.objective, max_delay_cycles=item.max_delay_cycles, max_energy_j=item.max_energy_j,
        layer_names=tuple(layer.name for layer in item.network.layers),
        branches=tuple(BRANCHES[i] for i in schedule.branch_index), layer_energy_j=tuple(layer_energy_j),
        layer_delay_cycles=tuple(layer_delay_cycles), fused_edges=fused_edges)


def _solution(problem: Problem, hardware: HardwarePoint, area_mm2: float, results: list[NetworkResult],
              **solver_fields) -> Solution:
    several = len(results) > 1
    return Solution(
        network=problem.label, metric=problem.metric, aggregate=problem.aggregate, hardware=hardware,
        area_mm2=area_mm2, objective=float(sum(r.weight * r.objective for r in results)),
        energy_j=float(sum(r.energy_j for r in results)), delay_cycles=float(sum(r.delay_cycles for r in results)),
        layer_names=tuple(f"{r.name}/{n}" if several else n for r in results for n in r.layer_names),
        branches=tuple(b for r in results for b in r.branches),
        layer_energy_j=tuple(e for r in results for e in r.layer_energy_j),
        layer_delay_cycles=tuple(d for r in results for d in r.layer_delay_cycles),
        networks=tuple(results), max_branches=problem.max_branches, **solver_fields)
