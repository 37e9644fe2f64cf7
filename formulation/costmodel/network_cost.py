"""Cost tables of a whole network: layers x branches x (hardware axes)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from deepopt_mip.formulation.costmodel.common import ArrayHardware
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, BranchCost, branch_costs
from deepopt_mip.formulation.technology import Technology


@dataclass(frozen=True)
class CostTables:
    """Per layer and branch: energy (J) and delay (cycles), arrays over the hardware.

    ``energy_j[l, b]`` and ``delay_cycles[l, b]`` have the broadcast shape of
    the hardware arrays; ``details[l][branch]`` keeps the counts and energy parts.
    """

    energy_j: np.ndarray
    delay_cycles: np.ndarray
    details: tuple[dict[str, BranchCost], ...]


def cost_tables(layers, hw: ArrayHardware, tech: Technology) -> CostTables:
    """Evaluate every branch of every layer on ``hw`` (scalars or broadcast arrays).

    Layers that differ only in their name cost the same: each such shape is
    evaluated once (its ``details`` entry is shared).
    """
    by_shape: dict = {}
    details = []
    for layer in layers:
        key = tuple(getattr(layer, f.name) for f in fields(layer) if f.name != "name")
        if key not in by_shape:
            by_shape[key] = branch_costs(layer, hw, tech)
        details.append(by_shape[key])
    details = tuple(details)
    energy = [[np.asarray(d[b].energy_j, dtype=float) for b in BRANCHES] for d in details]
    delay = [[np.asarray(d[b].delay_cycles, dtype=float) for b in BRANCHES] for d in details]
    shape = np.broadcast_shapes(*(a.shape for row in energy + delay for a in row))
    energy = np.array([[np.broadcast_to(a, shape) for a in row] for row in energy])
    delay = np.array([[np.broadcast_to(a, shape) for a in row] for row in delay])
    return CostTables(energy_j=energy, delay_cycles=delay, details=details)
