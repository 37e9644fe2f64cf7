"""Inter-layer fusion: a producer's finished output handed to its consumers through the ifmap SRAM.

The model (docs/model.md section 11, equations (F1) to (F8)):

* Decision: per *fusable* consumer m a binary x_m; x_m = 1 fuses **every**
  edge into m (a concatenation's or addition's producers all hand over on
  chip, or m reads its whole input from DRAM). m is fusable when its inputs
  are known, come from layers (not the network input) and every producer
  runs the same batch as m.
* Stored tensors: the tensor an edge hands over is the producer's output
  after the edge's pooling/flatten/trim (``Edge.elements`` per image), kept
  once per *version* (producer, operations other than concat/add): readers
  of the same version share it. A version is live from its producer to its
  last fused reader, in execution order; its size is
  B_v = elements * batch * b_o bits.                                    (F1)
* Capacity: during layer l the live versions occupy
  R_l = sum of B_v over versions live at l, and l runs with the rest of
  the ifmap SRAM, i - R_l; the rest must still hold the array's ifmap
  registers: R_l <= i - J b_i.                                          (F2)
* Costs: layer l is priced by the unchanged branch functions at ifmap SRAM
  i - R_l (:func:`~.layer_cost.branch_counts` on the reduced size), the
  SRAM energy per bit staying that of the physical size i; then
  x_l = 1 (fused in) sets D_i to 0, and "fused out" (every reader of l is
  fused, l has readers, and no later layer's inputs are unknown) sets D_o
  and cycles_write to 0. Energy is :func:`~.energy.energy_parts` of the
  changed counts: no equation of the model is written again.        (F3-F5)

The stall cycles are kept as the branch functions give them at i - R_l:
the ifmap loads inside a stall term are not taken out (a conservative
simplification, docs/model.md section 11.5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware, Number, quiet
from deepopt_mip.formulation.costmodel.energy import energy_parts
from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, BranchCost, branch_counts
from deepopt_mip.formulation.graph import NetworkInput
from deepopt_mip.formulation.hardware import register_bits

COMBINATORS = ("concat", "add")

__all__ = ["FusionGraph", "counts_beside", "fused_branch_costs", "fused_costs_of_counts", "fused_energy_delay",
           "resident_capacity_bits"]


@dataclass(frozen=True)
class FusionGraph:
    """The fusion structure of a network (layer indices in execution order).

    ``in_edges[m]``: edges into layer m; ``readers[p]``: layers reading p
    (sorted); ``fusable[m]``; ``first_producer[m]``: the earliest producer of
    a fusable m (-1 otherwise); ``edge_version[m]``: per edge into m its
    version index; ``version_producer[v]`` and ``version_elements[v]``
    (elements * batch, per image run of the producer); ``writes_back[p]``:
    True where p's output goes to DRAM whatever is fused (no readers, a
    reader that cannot fuse, or a later layer with unknown inputs).
    """

    names: tuple[str, ...]
    in_edges: tuple[tuple, ...]
    readers: tuple[tuple[int, ...], ...]
    fusable: tuple[bool, ...]
    first_producer: tuple[int, ...]
    edge_version: tuple[tuple[int, ...], ...]
    version_producer: tuple[int, ...]
    version_elements: tuple[int, ...]
    writes_back: tuple[bool, ...]

    @classmethod
    def of(cls, network) -> "FusionGraph":
        layers = network.layers
        n = len(layers)
        index = {layer.name: i for i, layer in enumerate(layers)}
        inputs = network.inputs if network.inputs is not None else (None,) * n
        in_edges: list[list] = [[] for _ in range(n)]
        for edge in network.edges:
            in_edges[index[edge.consumer]].append(edge)
        readers: list[set[int]] = [set() for _ in range(n)]
        for m, edges in enumerate(in_edges):
            for edge in edges:
                readers[index[edge.producer]].add(m)
        fusable = []
        for m, edges in enumerate(in_edges):
            known = inputs[m] is not None and not isinstance(inputs[m], NetworkInput)
            same_batch = all(layers[index[e.producer]].batch == layers[m].batch for e in edges)
            fusable.append(bool(edges) and known and same_batch)
        first = tuple(min(index[e.producer] for e in in_edges[m]) if fusable[m] else -1 for m in range(n))
        versions: dict[tuple, int] = {}
        v_producer: list[int] = []
        v_elements: list[int] = []
        edge_version = []
        for m, edges in enumerate(in_edges):
            ids = []
            for edge in edges:
                key = (edge.producer, tuple(str(op) for op in edge.ops if op.kind not in COMBINATORS))
                if key not in versions:
                    versions[key] = len(v_producer)
                    v_producer.append(index[edge.producer])
                    v_elements.append(edge.elements * layers[m].batch)
                ids.append(versions[key])
            edge_version.append(tuple(ids))
        last_unknown = max((m for m in range(n) if inputs[m] is None), default=-1)
        writes_back = tuple(not readers[p] or any(not fusable[m] for m in readers[p]) or p < last_unknown
                            for p in range(n))
        return cls(names=tuple(layer.name for layer in layers), in_edges=tuple(tuple(e) for e in in_edges),
                   readers=tuple(tuple(sorted(r)) for r in readers), fusable=tuple(fusable), first_producer=first,
                   edge_version=tuple(edge_version), version_producer=tuple(v_producer),
                   version_elements=tuple(v_elements), writes_back=writes_back)

    def __len__(self) -> int:
        return len(self.names)

    def fused_out(self, layer: int, fused: frozenset[int] | set[int]) -> bool:
        """Whether ``layer`` writes nothing to DRAM: it has readers, all fused, and no forced write-back."""
        return not self.writes_back[layer] and all(m in fused for m in self.readers[layer])

    def live_versions(self, layer: int, fused) -> set[int]:
        """Versions resident while ``layer`` runs: read by a fused m >= layer and produced at or before it."""
        live = set()
        for m in fused:
            if m < layer:
                continue
            for edge, v in zip(self.in_edges[m], self.edge_version[m]):
                if self.version_producer[v] <= layer:
                    live.add(v)
        return live

    def resident_bits(self, layer: int, fused, bits_ofmap: float) -> float:
        """R_l (F1): bits of the fused tensors live while ``layer`` runs."""
        return float(sum(self.version_elements[v] for v in self.live_versions(layer, fused)) * bits_ofmap)

    def fused_edges(self, fused) -> list[tuple[str, str]]:
        """[(producer, consumer), ...] of the fused consumers' edges, in consumer then edge order."""
        return [(e.producer, e.consumer) for m in sorted(fused) for e in self.in_edges[m]]

    def check(self, fused) -> None:
        """ValueError unless every layer of ``fused`` is fusable."""
        bad = [self.names[m] for m in fused if not self.fusable[m]]
        if bad:
            raise ValueError(f"layers that cannot read a fused input: {', '.join(bad)}")


def resident_capacity_bits(hw: ArrayHardware) -> Number:
    """The most the fused tensors may occupy (F2): i - J b_i, so the rest still feeds the ifmap registers."""
    return hw.isram_bits - register_bits(hw)[1]


def _zero_like(value: Number) -> Number:
    """0 of the shape of ``value`` (not ``value * 0``: an infeasible lane's ``inf`` would give NaN; its
    other counts stay ``inf``, so the branch stays infeasible)."""
    return np.zeros(np.shape(value)) if np.ndim(value) else 0.0


def fused_counts(counts: AccessCounts, fused_in: bool, fused_out: bool) -> AccessCounts:
    """The counts of a layer whose input (``fused_in``) or output (``fused_out``) stays on chip (F3, F4).

    Fused in: no ifmap element comes from DRAM (D_i = 0). Fused out: no ofmap
    element goes to DRAM and no write-back cycle is spent (D_o = 0,
    cycles_write = 0). Every other count is the branch function's.
    """
    changes = {}
    if fused_in:
        changes["dram_ifmap"] = _zero_like(counts.dram_ifmap)
    if fused_out:
        changes["dram_ofmap"] = _zero_like(counts.dram_ofmap)
        changes["cycles_write"] = _zero_like(counts.cycles_write)
    return replace(counts, **changes) if changes else counts


def fused_costs_of_counts(counts: dict[str, AccessCounts], layer, hw: ArrayHardware, tech, fused_in: bool,
                          fused_out: bool) -> dict[str, BranchCost]:
    """Branch costs from counts priced beside resident tensors: the fusion changes (F3, F4), then the energy
    of :func:`~.energy.energy_parts` on the physical hardware ``hw`` (its SRAM is still i bits: e(i))."""
    with quiet:
        out = {}
        for b, branch in counts.items():
            branch = fused_counts(branch, fused_in, fused_out)
            out[b] = BranchCost(counts=branch, energy=energy_parts(branch, layer.macs, hw, tech))
    return out


def counts_beside(layer, hw: ArrayHardware, reserved_bits: Number = 0.0) -> dict[str, AccessCounts]:
    """Every branch's counts with ``reserved_bits`` (scalar or array) of the ifmap SRAM taken by resident
    tensors: :func:`~.layer_cost.branch_counts` on the ifmap SRAM i - ``reserved_bits`` (F3)."""
    rest = replace(hw, isram_bits=hw.isram_bits - reserved_bits) if np.any(reserved_bits) else hw
    return branch_counts(layer, rest)


def fused_branch_costs(layer, hw: ArrayHardware, tech, reserved_bits: Number = 0.0, fused_in: bool = False,
                       fused_out: bool = False) -> dict[str, BranchCost]:
    """Every branch of ``layer`` running beside ``reserved_bits`` of resident tensors (F3-F5).

    With ``reserved_bits`` 0 and nothing fused this is
    :func:`~.layer_cost.branch_costs`, number for number.
    """
    return fused_costs_of_counts(counts_beside(layer, hw, reserved_bits), layer, hw, tech, fused_in, fused_out)


def fused_energy_delay(layer, hw: ArrayHardware, tech, reserved_bits: float, fused_in: bool,
                       fused_out: bool) -> tuple[np.ndarray, np.ndarray]:
    """Energy (J) and delay (cycles) of every branch (in :data:`~.layer_cost.BRANCHES` order) on one point."""
    costs = fused_branch_costs(layer, hw, tech, reserved_bits, fused_in, fused_out)
    return (np.array([float(costs[b].energy_j) for b in BRANCHES]),
            np.array([float(costs[b].delay_cycles) for b in BRANCHES]))
