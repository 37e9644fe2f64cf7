"""A co-design study: one chip for one or more networks, each with a weight and optional caps.

The problem both solvers take (docs/studies.md):

    minimise   sum_w  weight_w * M(w)
    over       the hardware points h of the space (shared by every network) and,
               per network w, a branch per layer (its schedule at h)
    subject to D_w <= max_delay_w (cycles) and E_w <= max_energy_w (J), where set,
               and, with ``max_branches`` N, at most N distinct branches used over
               the layers of all networks together,

where, for metric E^a D^b, M(w) = E_w^a D_w^b of network w's totals under
``network`` aggregation, and sum_l E_l^a D_l^b over its layers under
``layer-sum``. A branch is counted by its column (an FC layer's order counts
as the branch it is reported with). Caps constrain a network's totals, so
they go with ``network`` aggregation only: under ``layer-sum`` (the
reference's per-layer sum, kept to reproduce the paper) they are refused.
One network, weight 1, no caps and no branch limit is the paper's problem.

With ``fusion`` every network may also keep layer outputs on chip
(docs/model.md section 11), decided per network with its branches; a
branch limit is then refused (docs/studies.md, "Fusion").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.metrics import check_aggregate, check_metric
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import HardwareSpace
from deepopt_mip.formulation.technology import Technology


def _positive_finite(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(number) and number > 0):
        raise InputError(f"{what} must be a positive finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class StudyNetwork:
    """A network of a study with its weight and its caps (None: no cap)."""

    network: Network
    weight: float = 1.0
    max_delay_cycles: float | None = None
    max_energy_j: float | None = None

    def __post_init__(self) -> None:
        name = self.network.name
        object.__setattr__(self, "weight", _positive_finite(self.weight, f"the weight of {name}"))
        for field_name, what in (("max_delay_cycles", "max delay (cycles)"), ("max_energy_j", "max energy (J)")):
            value = getattr(self, field_name)
            if value is not None:
                object.__setattr__(self, field_name, _positive_finite(value, f"the {what} of {name}"))

    @property
    def name(self) -> str:
        return self.network.name

    @property
    def capped(self) -> bool:
        return self.max_delay_cycles is not None or self.max_energy_j is not None

    def caps(self) -> dict[str, float | None]:
        return {"max_delay_cycles": self.max_delay_cycles, "max_energy_j": self.max_energy_j}


@dataclass(frozen=True)
class Problem:
    """Networks sharing one chip, the metric and aggregation, the space (with its budget), the technology,
    and an optional limit on the distinct branches used (1..5)."""

    networks: tuple[StudyNetwork, ...]
    metric: str
    space: HardwareSpace
    tech: Technology
    aggregate: str = "network"
    max_branches: int | None = None
    fusion: bool = False

    def __post_init__(self) -> None:
        networks = tuple(n if isinstance(n, StudyNetwork) else StudyNetwork(n) for n in self.networks)
        object.__setattr__(self, "networks", networks)
        if not networks:
            raise InputError("a study needs at least one network")
        names = [n.name for n in networks]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"network {repeated[0]!r} is given twice: give it once, with a weight")
        check_metric(self.metric)
        check_aggregate(self.aggregate)
        if self.aggregate == "layer-sum":
            capped = [n.name for n in networks if n.capped]
            if capped:
                raise InputError(f"caps (on {capped[0]}) constrain a network's totals: use the network "
                                 f"aggregation, not layer-sum (the reference's per-layer sum)")
        if self.max_branches is not None:
            if isinstance(self.max_branches, bool) or not isinstance(self.max_branches, int) \
                    or not 1 <= self.max_branches <= len(BRANCHES):
                raise InputError(f"max branches must be a whole number from 1 to {len(BRANCHES)}, "
                                 f"got {self.max_branches!r}")
        if self.fusion:
            if self.max_branches is not None:
                raise InputError("a branch limit does not combine with fusion (the fusion program chooses each "
                                 "layer's branch freely): drop max branches or fusion")
            graphless = [n.name for n in networks if not n.network.has_graph]
            if graphless:
                raise InputError(f"fusion: network {graphless[0]!r} has no graph (no inputs column, "
                                 "data/networks/README.md): nothing can be fused")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.networks)

    @property
    def label(self) -> str:
        """The networks' names joined by '+' (the study's name in outputs)."""
        return "+".join(self.names)

    @property
    def is_single_network(self) -> bool:
        """The paper's problem: one network, weight 1, no caps, no branch limit."""
        only = self.networks[0]
        return (len(self.networks) == 1 and only.weight == 1.0 and not only.capped
                and self.max_branches is None)

    @property
    def branch_subsets(self) -> tuple[tuple[int, ...], ...]:
        """The branch sets a schedule may draw from: every set of ``max_branches`` branches (a set of
        fewer is never better than one of its supersets), or all branches when there is no limit."""
        size = len(BRANCHES) if self.max_branches is None else self.max_branches
        return tuple(combinations(range(len(BRANCHES)), size))
