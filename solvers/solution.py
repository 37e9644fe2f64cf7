"""The one result type of every solver, and its serialisations (JSON, YAML, a per-layer table).

The dictionary form (:meth:`Solution.to_dict`) is what ``allocate --json``
writes; docs/studies.md lists its keys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

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
class NetworkResult:
    """One network of a study at the chosen hardware: its weight, caps (None: none), totals, its own
    metric value (unweighted) and its schedule."""

    name: str
    weight: float
    energy_j: float
    delay_cycles: float
    objective: float
    max_delay_cycles: float | None
    max_energy_j: float | None
    layer_names: tuple[str, ...]
    branches: tuple[str, ...]
    layer_energy_j: tuple[float, ...]
    layer_delay_cycles: tuple[float, ...]
    fused_edges: tuple[tuple[str, str], ...] | None = None
    """With fusion: the (producer, consumer) edges kept on chip; None without fusion."""

    def to_dict(self) -> dict:
        out = {"name": self.name, "weight": self.weight, "energy_j": self.energy_j,
               "delay_cycles": self.delay_cycles, "objective": self.objective,
               "caps": {"max_delay_cycles": self.max_delay_cycles, "max_energy_j": self.max_energy_j},
               "layers": _layer_rows(self.layer_names, self.branches, self.layer_energy_j, self.layer_delay_cycles)}
        if self.fused_edges is not None:
            out["fused_edges"] = [list(edge) for edge in self.fused_edges]
        return out


def _layer_rows(names, branches, energies, delays) -> list[dict]:
    return [{"name": n, "branch": b, "energy_j": e, "delay_cycles": d}
            for n, b, e, d in zip(names, branches, energies, delays)]


def hardware_dict(hw: HardwarePoint) -> dict:
    """A hardware point in the JSON vocabulary: J (PE rows), K (PE columns), SRAM sizes in kB, bit widths."""
    return {"J": hw.J, "K": hw.K, "fsram_kb": hw.fsram_kb, "isram_kb": hw.isram_kb, "psram_kb": hw.psram_kb,
            "bits_filter": hw.bits_filter, "bits_ifmap": hw.bits_ifmap, "bits_psum": hw.bits_psum,
            "dram_bw_bits_per_cycle": hw.dram_bw_bits_per_cycle}


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no inf) and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    points_evaluated: int = 0  # enumeration: grid points whose cost the grid pass evaluated
    points_unpruned: int = 0  # enumeration: grid points an unpruned pass evaluates (every in-budget block)
    runners_up: tuple[RankedPoint, ...] = field(default=())
    worst: RankedPoint | None = None
    networks: tuple[NetworkResult, ...] = field(default=())
    max_branches: int | None = None

    def network_results(self) -> tuple[NetworkResult, ...]:
        """Per network of the study; a one-network solution (weight 1, no caps) describes itself."""
        if self.networks:
            return self.networks
        return (NetworkResult(name=self.network, weight=1.0, energy_j=self.energy_j, delay_cycles=self.delay_cycles,
                              objective=self.objective, max_delay_cycles=None, max_energy_j=None,
                              layer_names=self.layer_names, branches=self.branches,
                              layer_energy_j=self.layer_energy_j, layer_delay_cycles=self.layer_delay_cycles),)

    def to_dict(self, timings: bool = True) -> dict:
        """The JSON payload (``allocate --json``); ``timings=False`` leaves out every ``*_s`` field, so
        the same inputs give the same dictionary."""
        solver = {"name": self.solver, "status": self.status, "wall_s": round(self.wall_s, 3)}
        if self.solver != "enumerate":
            solver.update({"gap": self.gap, "best_bound": self.best_bound, "build_s": round(self.build_s, 3),
                           "solve_s": round(self.solve_s, 3)})
        if not timings:
            solver = {k: v for k, v in solver.items() if not k.endswith("_s")}
        return {
            "network": self.network,
            "hardware": hardware_dict(self.hardware),
            "area_mm2": self.area_mm2,
            "metric": self.metric,
            "aggregate": self.aggregate,
            "objective": self.objective,
            "energy_j": self.energy_j,
            "delay_cycles": self.delay_cycles,
            "layers": _layer_rows(self.layer_names, self.branches, self.layer_energy_j, self.layer_delay_cycles),
            "solver": solver,
            "points": self.points,
            "runners_up": [{"hardware": hardware_dict(r.hardware), "objective": r.objective, "area_mm2": r.area_mm2}
                           for r in self.runners_up],
            "worst": None if self.worst is None else {"hardware": hardware_dict(self.worst.hardware),
                                                      "objective": self.worst.objective,
                                                      "area_mm2": self.worst.area_mm2},
            "max_branches": self.max_branches,
            "networks": [n.to_dict() for n in self.network_results()],
        }

    def to_json(self, timings: bool = True) -> str:
        """:meth:`to_dict` as JSON text (non-finite numbers become null)."""
        return json.dumps(json_safe(self.to_dict(timings)), indent=2) + "\n"

    def to_yaml(self, timings: bool = True) -> str:
        import yaml
        return yaml.safe_dump(json_safe(self.to_dict(timings)), sort_keys=False)

    def to_frame(self):
        """One row per layer (of every network): network, layer, branch, energy_j, delay_cycles (pandas)."""
        import pandas as pd
        return pd.DataFrame([{"network": n.name, **row} for n in self.network_results()
                             for row in _layer_rows(n.layer_names, n.branches, n.layer_energy_j,
                                                    n.layer_delay_cycles)])
