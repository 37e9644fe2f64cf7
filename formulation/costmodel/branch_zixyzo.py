"""Branch ZiXYZo: input channels innermost, then ofmap width, height, filters.

Port of the reference's ``ZtoXtoYtoF`` (DeepOpt, called directly by
``LOS_Computation``; its ``zxyF``). The loop nest, innermost first:

1. Zi  - one output element is reduced over all C input channels, C_uv
   channels at a time, one filter row per cycle (paper eqs. 2-8 for a
   channel-innermost order);
2. X   - repeated for the G outputs of an ofmap row;
3. Y   - repeated for the E ofmap rows;
4. Zo  - repeated for the ceil(F / F_uv) groups of filters.

Because the channels are innermost, each output leaves the array finished:
the psum SRAM only holds one psum per active column and no effective width
or height (paper eq. 10) ever applies.

Two kinds of infeasibility, as in the reference:

* every count ``inf`` when the working set of the innermost step does not
  fit (filter template of one R x S x C_uv x F_uv block, F_uv psums, one
  R x S x C_uv ifmap template);
* only ``cycles_stall`` ``inf`` when the filter SRAM cannot hold the R x S x C
  x F_uv filter volume of one filter group: the reference does not model the
  stall of the filter reloads then, and leaves the branch to be judged on
  energy alone (its energy is finite; the paper's footnote on this order).
"""

from __future__ import annotations

import numpy as np

from .common import (
    AccessCounts,
    ArrayHardware,
    LayerShape,
    MaskedCounts,
    Number,
    STALL_NOT_COMPUTED,
    dram_transfer_cycles,
    filter_dram_with_reloads,
    ifmap_dram_over_filter_groups,
    ofmap_write_cycles,
    quiet,
    stall,
    stall_over_filter_groups,
    unit_volume,
)


def _innermost_misfit(layer: LayerShape, hw: ArrayHardware, channels_uv: Number, filters_uv: Number) -> Number:
    """Where the innermost (Zi) step's working set overflows an SRAM.

    Filter SRAM: one unit volume of filters for all R filter rows,
    S * C_uv * F_uv * R elements. Psum SRAM: the F_uv psums of the output
    element in flight. Ifmap SRAM: one S x R x C_uv ifmap template.
    """
    filter_template_bits = layer.filter_w * channels_uv * filters_uv * layer.filter_h * hw.bits_filter
    psum_bits = filters_uv * hw.bits_psum
    ifmap_template_bits = layer.filter_w * layer.filter_h * channels_uv * hw.bits_ifmap
    return (
        (filter_template_bits > hw.fsram_bits)
        | (psum_bits > hw.psram_bits)
        | (ifmap_template_bits > hw.isram_bits)
    )


def _ifmap_dram_per_group(layer: LayerShape, hw: ArrayHardware) -> Number:
    """Ifmap elements fetched from DRAM for one group of filters over the XY plane.

    Three regimes, by what the ifmap SRAM holds:

    * a full R x W x C band (one ofmap row's inputs): every ifmap element once;
    * only R x S x C windows: the band is loaded for the first row, each next
      row brings U new input rows plus the re-fetched part of the columns
      that did not fit;
    * not even one R x S x C window: each output element re-fetches the
      channels that were evicted, row by row (cost of one ofmap row times E).
    """
    R, S, C, U = layer.filter_h, layer.filter_w, layer.channels, layer.stride
    W, H, E, G = layer.ifmap_w, layer.ifmap_h, layer.ofmap_h, layer.ofmap_w
    band_columns_that_fit = np.floor(hw.isram_bits / (C * R * hw.bits_ifmap))
    windows_that_fit = np.floor(hw.isram_bits / (S * R * hw.bits_ifmap))

    whole_once = W * H * C

    evicted_columns = W - band_columns_that_fit
    next_row = (W * U * C) + evicted_columns * (R - U) * C
    window_regime = R * W * C + next_row * (E - 1)

    evicted_channels = C - windows_that_fit
    next_element = (R * U * C) + (R * (S - U) * evicted_channels)
    element_regime = (R * S * C + next_element * (G - 1)) * E

    return np.where(
        band_columns_that_fit >= W,
        whole_once,
        np.where(windows_that_fit >= C, window_regime, element_regime),
    )


def _dram_stall(
    layer: LayerShape,
    hw: ArrayHardware,
    filters_uv: Number,
    element_cycles: Number,
    groups: Number,
) -> Number:
    """DRAM-bandwidth stall of the whole nest, reference ``ZtoXtoYtoF`` stall model.

    ``element_cycles`` is the compute time of one output element,
    ceil(C / C_uv) * R. Phase by phase (each: stall = max(0, load - compute),
    slack = max(0, compute - load)):

    * first output element: the whole filter group and an R x S x C window;
    * each further element of the first ofmap row: U new ifmap columns;
    * each element of the later rows: U columns if an R x W x C band fits in
      the ifmap SRAM, else a full R x S x C window (only when the first row
      stalled at all; otherwise the plane is stall-free);
    * each further filter group repeats the plane's stall, reduced by the
      slack of the previous group where the filter SRAM has room beyond one
      group's filters to prefetch the next.

    Not modelled (``inf``) when the filter SRAM cannot hold one group's
    R x S x C x F_uv filters.
    """
    R, S, C, U = layer.filter_h, layer.filter_w, layer.channels, layer.stride
    W, E, G = layer.ifmap_w, layer.ofmap_h, layer.ofmap_w
    group_filter_bits = R * S * C * filters_uv * hw.bits_filter
    window_bits = R * S * C * hw.bits_ifmap
    new_columns_bits = U * R * C * hw.bits_ifmap

    first_load = dram_transfer_cycles(group_filter_bits + window_bits, hw)
    first_stall = stall(first_load, element_cycles)
    first_slack = np.where(first_stall == 0, element_cycles - first_load, 0)

    step_load = dram_transfer_cycles(new_columns_bits, hw)
    row_stall = first_stall + stall(step_load, element_cycles) * (G - 1)
    row_slack = first_slack + np.maximum(0, element_cycles - step_load) * (G - 1)

    band_fits = hw.isram_bits >= W * R * C * hw.bits_ifmap
    later_row_bits = np.where(band_fits, new_columns_bits, window_bits)
    later_load = dram_transfer_cycles(later_row_bits, hw)
    stalling_plane = row_stall + stall(later_load, element_cycles) * G * (E - 1)
    plane_slack = row_slack + np.maximum(0, element_cycles - later_load) * G * (E - 1)
    plane_stall = np.where(row_stall <= 0, 0, stalling_plane)

    stalling_total = stall_over_filter_groups(plane_stall, plane_slack, group_filter_bits, groups, hw)
    total = np.where(plane_stall <= 0, 0, stalling_total)

    return np.where(hw.fsram_bits < group_filter_bits, np.inf, total)


def zixyzo(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Counts of the ZiXYZo order (reference ``ZtoXtoYtoF``), vectorised over all fields.

    Per output element the array runs ceil(C / C_uv) * R cycles, reading
    S * C_uv * F_uv filter and S * C_uv ifmap elements per cycle (no ceiling
    on C / C_uv for the accesses: the last partial pass reads less). The
    element is repeated G * E times, and the plane ceil(F / F_uv) times for
    cycles and ifmap reads, F / F_uv times for filter and psum counts.
    Each finished output is written once to the psum SRAM and once to DRAM.
    """
    return zixyzo_masked(layer, hw).resolved()


@quiet
def zixyzo_masked(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> MaskedCounts:
    """:func:`zixyzo` with its infeasible lanes (every count ``inf``) kept apart (:class:`~.common.MaskedCounts`);
    with ``with_stall=False`` its ``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`."""
    R, S, C = layer.filter_h, layer.filter_w, layer.channels
    E, G, F = layer.ofmap_h, layer.ofmap_w, layer.filters
    channels_uv, filters_uv = unit_volume(layer, hw)
    group_share = F / filters_uv
    groups = np.ceil(group_share)
    channel_passes = C / channels_uv

    element_cycles = np.ceil(channel_passes) * R
    cycles_ideal = element_cycles * G * E * groups

    filter_reads_element = (S * channels_uv) * filters_uv * channel_passes * R
    ifmap_reads_element = channel_passes * R * S * channels_uv

    ifmap_per_group = _ifmap_dram_per_group(layer, hw)
    # Filters: the C * F_uv planes of a group that the filter SRAM does not
    # keep are fetched again for every further output element of the plane.
    # Ifmap: each later group reuses the R x C columns still resident.
    filters_per_group = filter_dram_with_reloads(layer, hw, filters_uv * C, G * E)
    ifmap_whole = layer.ifmap_w * layer.ifmap_h * C
    counts = AccessCounts(
        cycles_ideal=cycles_ideal,
        cycles_stall=(_dram_stall(layer, hw, filters_uv, element_cycles, group_share) if with_stall
                      else STALL_NOT_COMPUTED),
        cycles_write=ofmap_write_cycles(E * G * F, hw),
        sram_filter=filter_reads_element * G * E * group_share,
        sram_ifmap=ifmap_reads_element * G * E * groups,
        sram_psum=filters_uv * G * E * group_share,
        dram_filter=filters_per_group * group_share,
        dram_ifmap=ifmap_dram_over_filter_groups(ifmap_per_group, ifmap_whole, C * R, group_share, hw),
        dram_ofmap=E * G * F,
    )
    return MaskedCounts(counts, _innermost_misfit(layer, hw, channels_uv, filters_uv))
