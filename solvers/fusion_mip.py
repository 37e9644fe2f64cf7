"""The hardware allocation with fusion by MIP (separable objectives; docs/mip.md section 9).

Offered points: the :data:`OFFERED` valid points with the least fused
optimum in the grid pass of :mod:`~deepopt_mip.formulation.fusion_grid`
(exact per point for these objectives), ties included, and only those
whose value is at most the space's unfused optimum (the grid pass of
:mod:`~deepopt_mip.formulation.grid_sums`; the fused optimum never exceeds
it). The point holding the fused optimum is among them (exact screening).
The model
(:func:`~deepopt_mip.formulation.fusion_mip.fusion_model`) then decides the
point, the fusion binaries and every layer's mode; its costs are the cost
model's on the offered points, not the grid pass's values.
"""

from __future__ import annotations

import time

import numpy as np

from deepopt_mip.formulation.costmodel.fusion import FusionGraph, resident_capacity_bits
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import fusion_grid, point_keys, transitions
from deepopt_mip.formulation.fusion_mip import chosen_fusion, fusion_model
from deepopt_mip.formulation.grid_sums import Progress, grid_sums, is_separable
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.mip_model import chosen_point
from deepopt_mip.formulation.mip_points import point_set
from deepopt_mip.formulation.spaces import UM2_PER_MM2, HardwareSpace, infeasible_budget_message, points_hardware
from deepopt_mip.solvers.fusion_schedule import (FusionAllocation, FusionCosts, best_for_fusion_set,
                                                 unfused_schedule)
from deepopt_mip.solvers.highs_driver import HighsDriver, MipOptions
from deepopt_mip.solvers.solution import Solution

OFFERED = 64
"""How many of the best points (by the grid pass) the model chooses from."""
SCREEN_TOLERANCE = 1e-9
"""Relative slack of the screening (the two grid passes sum in different orders)."""


def mip_fusion_allocate(network, space: HardwareSpace, tech, metric: str, aggregate: str,
                        options: MipOptions | None = None, progress: Progress | None = None) -> FusionAllocation:
    """The optimum of a separable ``metric`` over ``space``, every fusion set and branch, by MIP."""
    check_metric(metric)
    check_aggregate(aggregate)
    if not is_separable(metric, aggregate):
        raise InputError(f"the MIP with fusion covers energy, delay and layer-sum metrics, not {metric} under "
                         f"{aggregate} aggregation (use --solver enumerate)")
    start = time.perf_counter()
    fused_values, area, valid = fusion_grid(network, space, tech, metric, aggregate, progress)
    if not valid.any():
        raise InputError(infeasible_budget_message(space))
    (unfused_values,), _, _ = grid_sums(network, space, tech, metric, True)
    ceiling = float(np.min(unfused_values)) * (1 + SCREEN_TOLERANCE)
    candidates = np.flatnonzero(valid.ravel() & (fused_values.ravel() <= ceiling))
    ranked = np.sort(fused_values.ravel()[candidates])
    if ranked.size > OFFERED:
        ceiling = min(ceiling, float(ranked[OFFERED - 1]) * (1 + SCREEN_TOLERANCE))
    flat = np.flatnonzero(valid.ravel() & (fused_values.ravel() <= ceiling))
    if flat.size == 0:
        raise InputError(f"no point of space {space.name!r} can run every layer of {network.name}")
    points = point_set(space, flat, area, valid)
    hw = points_hardware(space, flat)
    graph = FusionGraph.of(network)
    moves = transitions(graph, float(space.bits_ifmap), float(np.max(resident_capacity_bits(hw))))
    keys = point_keys(network, moves, hw, tech, metric, True)
    costs = {}
    for l, layer_moves in enumerate(moves):
        modes = sorted({(t.reserved_bits, t.fused_in, t.fused_out) for t in layer_moves})
        for k, mode in enumerate(modes):
            (costs[l, k],) = keys[l][mode]
    model = fusion_model(graph, moves, points, costs, np.asarray(resident_capacity_bits(hw)),
                         scale=float(np.min(fused_values.ravel()[flat])))
    build_s = time.perf_counter() - start
    result = HighsDriver(options or MipOptions()).solve_or_fail(model, f"{metric} of {network.name} with fusion")
    n = chosen_point(model)
    hardware = points.hardware(n)
    fused = best_for_fusion_set(graph, FusionCosts(network, hardware, tech), chosen_fusion(model), metric,
                                aggregate)
    bound = None if result.bound is None else result.bound * model.scale
    gap = 0.0 if bound is None else max(0.0, fused.objective - bound) / abs(fused.objective)
    solution = Solution(
        network=network.name, metric=metric, aggregate=aggregate, hardware=hardware,
        area_mm2=float(points.area_um2[n]) / UM2_PER_MM2, objective=fused.objective, energy_j=fused.energy_j,
        delay_cycles=fused.delay_cycles, layer_names=tuple(layer.name for layer in network.layers),
        branches=tuple(BRANCHES[i] for i in fused.branch_index), layer_energy_j=fused.layer_energy_j,
        layer_delay_cycles=fused.layer_delay_cycles, solver="mip", status=result.status,
        wall_s=build_s + result.solve_s, gap=gap, best_bound=bound, build_s=build_s, solve_s=result.solve_s,
        points=points.grid_points)
    return FusionAllocation(solution=solution, fused=fused,
                            unfused=unfused_schedule(network, hardware, tech, metric, aggregate))
