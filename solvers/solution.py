"""The one result type of every solver: the enumeration and the MIP (README.md, docs/mip.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from deepopt_mip.formulation.hardware import HardwarePoint


class SolverFailure(RuntimeError):
    """A solver ended without a usable solution (infeasible, or a limit hit before any solution)."""


@dataclass(frozen=True)
class RankedPoint:
    """A hardware point with its optimal objective (used for runners-up and the worst point)."""

    hardware: HardwarePoint
    objective: float
    area_mm2: float


@dataclass(frozen=True)
class Solution:
    """An optimal (or best found) hardware point with its per-layer schedule.

    ``branches`` names each layer's branch (the names of docs/model.md
    section 4); energies in J, delays in cycles; ``gap`` is the relative
    optimality gap (0 when proven optimal); times in seconds.
    """

    network: str
    metric: str
    aggregate: str
    hardware: HardwarePoint
    area_mm2: float
    objective: float
    energy_j: float
    delay_cycles: float
    layer_names: tuple[str, ...]
    branches: tuple[str, ...]
    layer_energy_j: tuple[float, ...]
    layer_delay_cycles: tuple[float, ...]
    solver: str
    status: str
    wall_s: float
    gap: float = 0.0
    best_bound: float | None = None
    build_s: float = 0.0
    solve_s: float = 0.0
    points: int = 0
    runners_up: tuple[RankedPoint, ...] = field(default=())
    worst: RankedPoint | None = None
