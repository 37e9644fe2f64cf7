"""Cost of every branch of one layer on (arrays of) hardware points.

Conv layers run each of the five loop orders of the paper (innermost loop
first): ``XYZiZo, XZiYZo, XYZoZi, XZoYZi, ZiXYZo``. A grouped convolution is
run group by group: one group's counts times ``groups``.

FC layers have two orders, ``ZiZo`` (input channels innermost) and ``ZoZi``.
With batch 1 they have their own functions; with batch N > 1 the layer is a
1x1 convolution over the batch (ifmap/ofmap 1 x N) run with the XYZiZo and
XYZoZi functions, and the per-image counts are the batch's counts / N with
cycles ceil(cycles / N) per cycle component (reference: LOS_Computation.m).
So that every layer answers for the same five branch names, an FC layer
reports ZiZo under XYZiZo, XZiYZo and ZiXYZo and ZoZi under XYZoZi and
XZoYZi, as the reference does for its fixed schedules.

An array with fewer rows than the filter width (J < S, so C_uv = 0) cannot
run a conv layer in any order: every branch is infeasible (the reference
fails there with an undefined variable or NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.branch_fc import fc_zizo, fc_zozi
from deepopt_mip.formulation.costmodel.branch_xyzizo import xyzizo, xyzizo_masked
from deepopt_mip.formulation.costmodel.branch_xyzozi import xyzozi, xyzozi_masked
from deepopt_mip.formulation.costmodel.branch_xziyzo import xziyzo, xziyzo_masked
from deepopt_mip.formulation.costmodel.branch_xzoyzi import xzoyzi, xzoyzi_masked
from deepopt_mip.formulation.costmodel.branch_zixyzo import zixyzo, zixyzo_masked
from deepopt_mip.formulation.costmodel.common import STALL_NOT_COMPUTED, AccessCounts, ArrayHardware, Number, quiet
from deepopt_mip.formulation.costmodel.energy import EnergyParts, energy_parts, sram_j_per_bit
from deepopt_mip.formulation.layers import Layer, LayerShape
from deepopt_mip.formulation.technology import Technology

BRANCHES = ("XYZiZo", "XZiYZo", "XYZoZi", "XZoYZi", "ZiXYZo")
"""The five conv loop orders, innermost loop first, in the reference's tie-break order."""

FC_ORDERS = ("ZiZo", "ZoZi")
FC_ORDER_OF_BRANCH = {"XYZiZo": "ZiZo", "XZiYZo": "ZiZo", "XYZoZi": "ZoZi", "XZoYZi": "ZoZi", "ZiXYZo": "ZiZo"}

CONV_BRANCH_FUNCTIONS = {
    "XYZiZo": xyzizo,
    "XZiYZo": xziyzo,
    "XYZoZi": xyzozi,
    "XZoYZi": xzoyzi,
    "ZiXYZo": zixyzo,
}
CONV_BRANCH_MASKED = {
    "XYZiZo": xyzizo_masked,
    "XZiYZo": xziyzo_masked,
    "XYZoZi": xyzozi_masked,
    "XZoYZi": xzoyzi_masked,
    "ZiXYZo": zixyzo_masked,
}
"""The same functions returning :class:`~.common.MaskedCounts` (the counts with the infeasible lanes apart)."""
FC_BATCH1_FUNCTIONS = {"ZiZo": fc_zizo, "ZoZi": fc_zozi}
FC_BATCHED_FUNCTIONS = {"ZiZo": xyzizo, "ZoZi": xyzozi}


@dataclass(frozen=True)
class BranchCost:
    """One layer on one branch: counts (per image), energy parts and delay."""

    counts: AccessCounts
    energy: EnergyParts

    @property
    def energy_j(self) -> Number:
        return self.energy.total_j

    @property
    def delay_cycles(self) -> Number:
        return self.counts.cycles_total


def fc_order_counts(layer: Layer, order: str, hw: ArrayHardware) -> AccessCounts:
    """Per-image counts of an FC layer in order ``ZiZo`` or ``ZoZi``."""
    shape = layer.group_shape()
    if layer.batch == 1:
        return FC_BATCH1_FUNCTIONS[order](shape, hw)
    batch = layer.batch
    over_batch = shape.replace(ifmap_w=batch, ofmap_w=batch)
    total = FC_BATCHED_FUNCTIONS[order](over_batch, hw)
    per_image = total.scaled(1.0 / batch)
    return AccessCounts(
        cycles_ideal=np.ceil(total.cycles_ideal / batch),
        cycles_stall=np.ceil(total.cycles_stall / batch),
        cycles_write=np.ceil(total.cycles_write / batch),
        sram_filter=per_image.sram_filter, sram_ifmap=per_image.sram_ifmap, sram_psum=per_image.sram_psum,
        dram_filter=per_image.dram_filter, dram_ifmap=per_image.dram_ifmap, dram_ofmap=per_image.dram_ofmap,
    )


def _no_filter_row_fits(shape: LayerShape, hw: ArrayHardware) -> Number:
    """Where the array has fewer rows than the filter width (C_uv = 0): no branch can run."""
    return np.floor(hw.rows / shape.filter_w) < 1


def _per_layer(counts: AccessCounts, layer: Layer) -> AccessCounts:
    """One group's counts as the layer's: times the number of groups."""
    return counts.scaled(layer.groups) if layer.groups > 1 else counts


def branch_counts(layer: Layer, hw: ArrayHardware) -> dict[str, AccessCounts]:
    """Per-image access counts and cycles of every branch (keys: :data:`BRANCHES`)."""
    with quiet:
        if layer.kind == "fc":
            by_order = {order: fc_order_counts(layer, order, hw) for order in FC_ORDERS}
            counts = {b: by_order[FC_ORDER_OF_BRANCH[b]] for b in BRANCHES}
        else:
            shape = layer.group_shape()
            counts = {b: fn(shape, hw) for b, fn in CONV_BRANCH_FUNCTIONS.items()}
            no_channel_fits = _no_filter_row_fits(shape, hw)
            if np.any(no_channel_fits):
                counts = {b: c.infeasible_where(no_channel_fits) for b, c in counts.items()}
        counts = {b: _per_layer(c, layer) for b, c in counts.items()}
    return counts


def branch_costs(layer: Layer, hw: ArrayHardware, tech: Technology) -> dict[str, BranchCost]:
    """Counts, energy and delay of every branch of ``layer`` (keys: :data:`BRANCHES`)."""
    with quiet:
        return {
            b: BranchCost(counts=c, energy=energy_parts(c, layer.macs, hw, tech))
            for b, c in branch_counts(layer, hw).items()
        }


def branch_energy_delay(layer: Layer, hw: ArrayHardware, tech: Technology,
                        with_delay: bool = True) -> dict[str, tuple[Number, Number]]:
    """Energy (J) and delay (cycles) of every branch: the numbers of :func:`branch_costs`, for large grids.

    The branches' counts come with their infeasible lanes apart
    (:data:`CONV_BRANCH_MASKED`), so energy and delay are derived from counts
    only as large as the hardware axes they depend on, and only these two
    arrays are masked. Where a branch cannot run its counts are ``inf`` in
    every field, so there its energy and delay are what the same formulas
    give for all-``inf`` counts, evaluated once per layer: every value equals
    :func:`branch_costs`' (tested).

    ``with_delay=False`` (for a metric of energy alone) leaves the stall
    model out of the conv branches (``with_stall=False``) and returns a NaN
    delay for them; the energies are the same.
    """
    if layer.kind == "fc":
        return {b: (c.energy_j, c.delay_cycles) for b, c in branch_costs(layer, hw, tech).items()}
    with quiet:
        shape = layer.group_shape()
        no_channel_fits = _no_filter_row_fits(shape, hw)
        extra = no_channel_fits if np.any(no_channel_fits) else None

        per_bit = sram_j_per_bit(hw, tech)

        def energy_delay(counts: AccessCounts) -> tuple[Number, Number]:
            counts = _per_layer(counts, layer)
            return (energy_parts(counts, layer.macs, hw, tech, per_bit).total_j,
                    counts.cycles_total if with_delay else None)

        blocked_energy, blocked_delay = energy_delay(AccessCounts.zeros().map(lambda _: np.inf))
        out = {}
        for b, fn in CONV_BRANCH_MASKED.items():
            masked = fn(shape, hw, with_stall=with_delay)
            infeasible = masked.infeasible if extra is None else masked.infeasible | extra
            energy, delay = energy_delay(masked.counts)
            out[b] = (np.where(infeasible, blocked_energy, energy),
                      np.where(infeasible, blocked_delay, delay) if with_delay else STALL_NOT_COMPUTED)
    return out
