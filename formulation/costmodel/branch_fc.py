"""Fully connected layers at batch 1: the two loop orders ZiZo and ZoZi.

A fully connected layer is a 1x1 filter over a 1x1 ifmap: ``channels`` inputs
(Zi), ``filters`` outputs (Zo). Without batching every weight takes part in a
single MAC, so the only freedom is which of the two channel directions is
walked first. The reference implementation of DeepOpt evaluates both for an FC
layer with batch size 1 (``LOS_Computation``, FC branch, ``batch_size == 1``):

* :func:`fc_zizo` -- input channels innermost, then filters (reference order
  ``zF``, function ``FC_ZtoF``). Each output finishes before the next set of
  filters starts, so psums never return to the SRAM; the ifmap vector is
  re-read for every set of ``F_uv`` filters, and from DRAM too unless the
  ifmap SRAM holds all of it.
* :func:`fc_zozi` -- filters innermost, then input channels (reference order
  ``Fz``, ``Asymmetric_FZ`` around ``FC_FtoZ``). Every ifmap element is read
  once per pass, but the psums of all filters in flight go to and from the
  psum SRAM once per channel step. When the psum SRAM cannot hold one psum per
  filter, the filters are split into passes of ``F_eff`` (a multiple of
  ``F_uv``) and a remainder pass, each of which reloads the ifmap vector.

Counts are in elements, cycles in clock cycles; ``cycles_ideal`` is the
steady-state compute count (the reference computes a pipeline-fill offset of
``used rows - 1`` cycles but does not return it).
"""

from __future__ import annotations

import numpy as np

from .common import (
    AccessCounts,
    ArrayHardware,
    LayerShape,
    Number,
    dram_transfer_cycles,
    ofmap_write_cycles,
    quiet,
    stall,
    unit_volume,
)


def _unit_volume_fits(layer: LayerShape, hw: ArrayHardware) -> tuple[Number, Number, Number]:
    """Unit volume (paper eq. 1) and whether its filter and ifmap parts fit their SRAMs.

    Both FC orders need at least the ``S * C_uv * F_uv`` weights and the
    ``C_uv`` inputs of one cycle on chip. Returns ``(C_uv, F_uv, misfit)``.
    """
    channels_uv, filters_uv = unit_volume(layer, hw)
    filter_bits = layer.filter_w * channels_uv * filters_uv * hw.bits_filter
    ifmap_bits = channels_uv * hw.bits_ifmap
    misfit = (filter_bits > hw.fsram_bits) | (ifmap_bits > hw.isram_bits)
    return channels_uv, filters_uv, misfit


@quiet
def fc_zizo(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """FC layer, batch 1, input channels innermost (reference ``FC_ZtoF``, order zF).

    With ``C_uv, F_uv`` the unit volume, ``P = ceil(F / F_uv)`` filter sets:

    * compute: ``ceil(C / C_uv)`` cycles per filter set, times ``P``;
    * weights: each read once from DRAM and once from SRAM (``C * F``);
    * ifmap SRAM reads: ``(C / C_uv) * C_uv`` per filter set, times ``P``;
    * ifmap DRAM reads: ``C`` if the ifmap SRAM holds all ``C`` inputs, else
      ``C`` for the first set plus ``C - floor(iSRAM / b_i)`` for each later set
      (the part that stayed resident is reused, walking the vector in reverse);
    * psums: one SRAM write and one DRAM write per output (``F``);
    * stall: the first set waits for its ``C * F_uv`` weights and ``C`` inputs;
      each later set for its weights plus the reloaded inputs, both against
      ``ceil(C / C_uv)`` compute cycles; later sets scale by the fractional
      ``F / F_uv - 1`` before one ceiling.

    Infeasible (all ``inf``) if the unit volume's weights or inputs, or the
    ``F_uv`` psums of one set, do not fit their SRAMs.
    """
    channels, filters = layer.channels, layer.filters
    channels_uv, filters_uv, misfit = _unit_volume_fits(layer, hw)
    misfit = misfit | (filters_uv * hw.bits_psum > hw.psram_bits)

    channel_steps = np.ceil(channels / channels_uv)
    filter_sets = np.ceil(filters / filters_uv)
    later_sets = np.ceil(filters / filters_uv - 1)

    ifmap_all_fit = hw.isram_bits >= channels * hw.bits_ifmap
    resident_inputs = np.floor(hw.isram_bits / hw.bits_ifmap)
    reloaded_inputs = np.where(ifmap_all_fit, 0, channels - resident_inputs)
    dram_ifmap = channels + reloaded_inputs * later_sets

    first_load = dram_transfer_cycles(
        channels * filters_uv * hw.bits_filter + channels * hw.bits_ifmap, hw)
    later_load = dram_transfer_cycles(
        channels * filters_uv * hw.bits_filter + reloaded_inputs * hw.bits_ifmap, hw)
    stall_cycles = stall(first_load, channel_steps) + np.ceil(
        stall(later_load, channel_steps) * (filters / filters_uv - 1))

    counts = AccessCounts(
        cycles_ideal=channel_steps * filter_sets,
        cycles_stall=stall_cycles,
        cycles_write=ofmap_write_cycles(filters, hw),
        sram_filter=channels * filters,
        sram_ifmap=(channels / channels_uv) * channels_uv * filter_sets,
        sram_psum=filters,
        dram_filter=channels * filters,
        dram_ifmap=dram_ifmap,
        dram_ofmap=filters,
    )
    return counts.infeasible_where(misfit)


@quiet
def _zozi_pass(layer: LayerShape, hw: ArrayHardware, filters: Number) -> AccessCounts:
    """One ZoZi pass over ``filters`` filters whose psums all fit the psum SRAM (``FC_FtoZ``).

    With ``C_uv, F_uv`` the unit volume for this pass:

    * compute: ``ceil(filters / F_uv)`` cycles per channel step, times
      ``ceil(C / C_uv)`` steps;
    * weights ``C * filters`` and inputs ``C``: each read once from DRAM and
      once from SRAM;
    * psum SRAM: one write per filter for the first channel step, a read and a
      write for each later one: ``filters + 2 * filters * ceil(C / C_uv - 1)``;
    * ofmap: ``filters`` outputs written to DRAM;
    * stall: each channel step waits for ``C_uv * filters`` weights and ``C_uv``
      inputs against its ``ceil(filters / F_uv)`` compute cycles, scaled by the
      fractional ``C / C_uv`` before one ceiling.

    Feasibility is the caller's business (lanes with ``filters == 0`` are NaN).
    """
    channels = layer.channels
    channels_uv, filters_uv = unit_volume(layer.replace(filters=filters), hw)
    filter_steps = np.ceil(filters / filters_uv)
    load = dram_transfer_cycles(
        channels_uv * filters * hw.bits_filter + channels_uv * hw.bits_ifmap, hw)
    return AccessCounts(
        cycles_ideal=filter_steps * np.ceil(channels / channels_uv),
        cycles_stall=np.ceil(stall(load, filter_steps) * (channels / channels_uv)),
        cycles_write=ofmap_write_cycles(filters, hw),
        sram_filter=channels * filters,
        sram_ifmap=channels,
        sram_psum=filters + 2 * filters * np.ceil(channels / channels_uv - 1),
        dram_filter=channels * filters,
        dram_ifmap=channels,
        dram_ofmap=filters,
    )


@quiet
def fc_zozi(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """FC layer, batch 1, filters innermost (reference ``Asymmetric_FZ`` + ``FC_FtoZ``, order Fz).

    If the psum SRAM holds one psum per filter (``F * b_p <= pSRAM``) the layer
    is a single pass (:func:`_zozi_pass` with all ``F`` filters). Otherwise
    ``F_eff = floor(floor(pSRAM / b_p) / F_uv) * F_uv`` filters are done per
    pass: ``floor(F / F_eff)`` identical passes plus, if ``F`` is not a
    multiple, one pass over the remaining filters. Every pass re-reads the whole
    ifmap vector from DRAM and SRAM.

    Infeasible (all ``inf``) if the unit volume's weights or inputs do not fit
    their SRAMs, or if the psum SRAM cannot hold even ``F_uv`` psums
    (``F_eff == 0``; the reference divides by zero there and returns NaN/inf).
    """
    filters = layer.filters
    _, filters_uv, misfit = _unit_volume_fits(layer, hw)
    psums_that_fit = np.floor(hw.psram_bits / hw.bits_psum)
    filters_per_pass = np.where(
        filters * hw.bits_psum <= hw.psram_bits,
        filters,
        np.floor(psums_that_fit / filters_uv) * filters_uv,
    )
    misfit = misfit | (filters_per_pass == 0)

    full_passes = np.floor(filters / filters_per_pass)
    remaining = filters - filters_per_pass * full_passes

    counts = _zozi_pass(layer, hw, filters_per_pass).scaled(full_passes)
    tail = _zozi_pass(layer, hw, remaining)
    counts = counts + AccessCounts.select(remaining > 0, tail, AccessCounts.zeros())
    return counts.infeasible_where(misfit)
