"""Evaluate one hardware point: LOS versus every fixed schedule (paper Table 3)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import CostTables, cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.technology import Technology
from deepopt_mip.solvers.schedule import Schedule, best_schedule, fixed_schedule


@dataclass(frozen=True)
class PointEvaluation:
    network: Network
    hardware: HardwarePoint
    metric: str
    aggregate: str
    tables: CostTables
    los: Schedule
    fixed: dict[str, Schedule]

    def penalty_pct(self, branch: str) -> float:
        """(FS - LOS) / LOS * 100 for the fixed schedule on ``branch``."""
        fs = self.fixed[branch].objective
        if not np.isfinite(fs):
            return float("inf")
        return (fs - self.los.objective) / self.los.objective * 100.0


def evaluate_point(network: Network, hardware: HardwarePoint, tech: Technology, metric: str,
                   aggregate: str, tables: CostTables | None = None) -> PointEvaluation:
    """LOS and the five fixed schedules; pass ``tables`` to reuse a cost evaluation across metrics."""
    if tables is None:
        tables = cost_tables(network.layers, hardware.arrays(), tech)
    los = best_schedule(tables.energy_j, tables.delay_cycles, metric, aggregate)
    fixed = {b: fixed_schedule(tables.energy_j, tables.delay_cycles, i, metric, aggregate)
             for i, b in enumerate(BRANCHES)}
    return PointEvaluation(network=network, hardware=hardware, metric=metric, aggregate=aggregate,
                           tables=tables, los=los, fixed=fixed)
