"""Branch XYZiZo: ofmap width innermost, then ofmap height, input channels, filters.

Loop order, innermost first: X (ofmap width) -> Y (ofmap height) -> Zi (input
channels) -> Zo (filters, i.e. output channels). The reference calls this order
``xyzF`` (functions ``Asymmetric_XYZF`` and ``XtoYtoZtoF`` of DeepOpt).

Because the input channels are reduced before the next filter set starts, the
psum SRAM only ever holds one partial ofmap plane of ``F_uv`` filters. When it
cannot hold a full row (or a full plane) the layer is cut into subvolumes of
effective width ``G_eff`` / height ``E_eff`` (paper eq. 10), and the branch is
evaluated once per distinct subvolume shape and scaled by how often that shape
repeats (:func:`xyzizo`). :func:`_subvolume` evaluates one such subvolume;
the tiling is the reference's ``Asymmetric_XYZF``, which is the same code as
``Asym_XYeffect_XYFZ`` and is shared (:func:`~.subvolumes.cover_ofmap_plane`).

Everything is vectorised: every field of the layer and of the hardware may be a
broadcastable numpy array, and the subvolume widths themselves become arrays of
hardware-dependent shape.
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
    ofmap_extent,
    ofmap_write_cycles,
    quiet,
    rows_stall_and_slack,
    stall,
    unit_volume,
    with_stall_or_not,
)
from .subvolumes import SubvolumeCost, cover_ofmap_plane

__all__ = ["xyzizo", "xyzizo_masked"]


@quiet
def _subvolume(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> SubvolumeCost:
    """Costs of one ofmap block processed in XYZiZo order (reference ``XtoYtoZtoF``).

    The nest is built level by level, each level multiplying the one inside it
    (paper eq. 9):

    * X: one ofmap row of ``F_uv`` filters from ``R`` filter rows of ``C_uv``
      channels. Requires the ``R x S x C_uv x F_uv`` filter template in the
      filter SRAM and ``R`` ifmap rows of the effective width in the ifmap SRAM,
      otherwise the branch is infeasible. The effective ofmap width is what the
      psum SRAM holds for ``F_uv`` filters.
    * Y: as many ofmap rows as the psum SRAM holds (up to ``E``); each new row
      loads ``U`` more ifmap rows.
    * Zi: ``C / C_uv`` channel groups; psums are read and written once per
      filter row for every group after the first.
    * Zo: ``F / F_uv`` filter sets; ifmap planes that stay in the ifmap SRAM
      are reused, the ifmap being swept first-to-last then last-to-first.

    Stall cycles follow the reference's slack model: load time of a phase beyond
    its compute time stalls, slack of the X/Y phases may hide the next block's
    filter load, and channel groups kept in the ifmap SRAM load no ifmap on
    later filter sets.

    ``with_stall=False`` leaves the stall out (``cycles_stall`` is
    :data:`~.common.STALL_NOT_COMPUTED`): every other count is the same.

    Returns the block's costs over all input channels and all filters, its
    effective extents (equal to the requested ones where the psum SRAM held
    everything; the filters are never cut) and where it is infeasible (the
    counts and extents are returned unmasked beside that mask, see
    :class:`~.subvolumes.SubvolumeCost`).
    """
    R, S = layer.filter_h, layer.filter_w
    W, C = layer.ifmap_w, layer.channels
    E, G = layer.ofmap_h, layer.ofmap_w
    F, U = layer.filters, layer.stride
    b_f, b_i, b_p = hw.bits_filter, hw.bits_ifmap, hw.bits_psum

    c_uv, f_uv = unit_volume(layer, hw)
    filter_template = S * c_uv * f_uv  # filter elements of one unit volume (one filter row)

    # --- X level: effective width from the psum SRAM
    psum_per_column = f_uv * b_p  # psum bits of one ofmap column of F_uv filters
    full_row_fits = ofmap_extent(W, S, U) * psum_per_column <= hw.psram_bits
    width_cap = np.floor(hw.psram_bits / psum_per_column)
    ofmap_w = np.where(full_row_fits, G, width_cap)
    ifmap_w = np.where(full_row_fits, W, (width_cap - 1) * U + S)
    psums_in_row = np.where(full_row_fits, ofmap_extent(W, S, U) * f_uv, width_cap * f_uv)

    infeasible = (
        (filter_template * R * b_f > hw.fsram_bits)
        | (ifmap_w * R * c_uv * b_i > hw.isram_bits)
        | (ofmap_w <= 0)
    )

    row_positions = ofmap_extent(ifmap_w, S, U)  # may be fractional, as in the reference
    row_cycles = row_positions * R
    sram_filter_row = filter_template * R
    sliding_reuse = (R != 1) & (S != 1) & (U == 1)
    sram_ifmap_row = np.where(sliding_reuse, R * ifmap_w * c_uv, row_cycles * S * c_uv)
    sram_psum_row = 2 * psums_in_row * (R - 1) + psums_in_row

    # --- Y level: effective height from the psum SRAM
    rows_fit = np.floor(hw.psram_bits / (row_positions * f_uv * b_p))
    ofmap_h = np.where(rows_fit >= E, E, rows_fit)
    ifmap_h = (ofmap_h - 1) * U + R

    # --- Zi level: all channel groups
    channel_groups = C / c_uv  # real-valued, as in the reference
    cycles_volume = row_cycles * ofmap_h * np.ceil(channel_groups)
    sram_filter_volume = sram_filter_row * ofmap_h * channel_groups
    sram_ifmap_volume = sram_ifmap_row * ofmap_h * channel_groups
    sram_psum_volume = (
        sram_psum_row * ofmap_h + 2 * psums_in_row * R * ofmap_h * np.ceil(channel_groups - 1)
    )


    # --- Zo level: all filter sets
    filter_sets = F / f_uv  # real-valued, as in the reference
    cycles_ideal = cycles_volume * np.ceil(filter_sets)
    dram_filter = S * R * C * f_uv * filter_sets
    sram_filter = sram_filter_volume * filter_sets
    sram_ifmap = sram_ifmap_volume * np.ceil(filter_sets)
    sram_psum = sram_psum_volume * filter_sets

    plane = ifmap_w * ifmap_h  # elements of one ifmap channel plane
    whole_ifmap_fits = hw.isram_bits >= plane * C * b_i
    planes_kept = np.floor(hw.isram_bits / (plane * b_i))
    planes_exact = np.fmod(hw.isram_bits, plane * b_i) == 0
    rows_kept = np.floor(hw.isram_bits / (ifmap_w * b_i))
    rows_of_partial_plane = rows_kept - planes_kept * ifmap_h
    reloaded_per_set = np.where(
        planes_exact,
        plane * (C - planes_kept),
        plane * (C - planes_kept - 1) + ifmap_w * (ifmap_h - rows_of_partial_plane),
    )
    dram_ifmap = np.where(
        whole_ifmap_fits,
        plane * C,
        plane * C + reloaded_per_set * np.ceil(filter_sets - 1),
    )

    if with_stall:
        cycles_stall = _stall_cycles(layer, hw, c_uv, f_uv, ifmap_w, ofmap_h, row_cycles, plane, whole_ifmap_fits)
    else:
        cycles_stall = STALL_NOT_COMPUTED

    ofmap_elements = ofmap_h * ofmap_w * F
    counts = AccessCounts(
        cycles_ideal=cycles_ideal,
        cycles_stall=cycles_stall,
        cycles_write=ofmap_write_cycles(ofmap_elements, hw),
        sram_filter=sram_filter,
        sram_ifmap=sram_ifmap,
        sram_psum=sram_psum,
        dram_filter=dram_filter,
        dram_ifmap=dram_ifmap,
        dram_ofmap=ofmap_elements,
    )

    return SubvolumeCost(counts=counts, ofmap_w_eff=ofmap_w, ofmap_h_eff=ofmap_h, filters_eff=F,
                         infeasible=infeasible)


def _stall_cycles(layer: LayerShape, hw: ArrayHardware, c_uv: Number, f_uv: Number, ifmap_w: Number,
                  ofmap_h: Number, row_cycles: Number, plane: Number, whole_ifmap_fits: Number) -> Number:
    """Stall cycles of one XYZiZo block (the rest of :func:`_subvolume`; its arguments are that function's
    intermediate values of the same names), level by level:

    * X: the first row loads the filter template and ``R`` ifmap rows;
    * Y: each next row loads ``U`` ifmap rows; the plane's stall and slack are the sums;
    * Zi: the slack may hide the next channel group's filters if the filter SRAM holds two templates;
    * Zo: on later filter sets the channel groups still in the ifmap SRAM only wait for their filters.
    """
    C, F, b_i = layer.channels, layer.filters, hw.bits_ifmap

    # --- X and Y levels
    filter_bits_block, stall_plane, slack_plane = rows_stall_and_slack(layer, hw, c_uv, f_uv, ifmap_w,
                                                                       row_cycles, ofmap_h)

    # --- Zi level
    channel_groups = C / c_uv
    next_filter_prefetched = hw.fsram_bits >= 2 * filter_bits_block
    stall_later_groups = np.where(
        stall_plane <= slack_plane, 0, np.ceil((stall_plane - slack_plane) * (channel_groups - 1))
    )
    stall_volume = np.where(
        slack_plane <= 0,
        np.ceil(stall_plane * channel_groups),
        np.where(
            stall_plane <= 0,
            0,
            np.where(
                next_filter_prefetched,
                stall_plane + stall_later_groups,
                np.ceil(stall_plane * channel_groups),
            ),
        ),
    )

    # --- Zo level: later filter sets, groups still in the ifmap SRAM only wait for their filters
    filter_sets = F / f_uv
    groups_kept = np.floor(hw.isram_bits / (plane * c_uv * b_i))
    stall_filter_only = stall(dram_transfer_cycles(filter_bits_block, hw), row_cycles)
    stall_later_set = np.where(
        whole_ifmap_fits,
        np.ceil(stall_filter_only * channel_groups),
        stall_filter_only * groups_kept + np.ceil(stall_plane * (channel_groups - groups_kept)),
    )
    return np.where(
        slack_plane <= 0,
        stall_volume + np.ceil(stall_later_set * (filter_sets - 1)),
        np.ceil(stall_volume * filter_sets),
    )


def xyzizo(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Whole-layer costs of the XYZiZo branch (reference ``Asymmetric_XYZF``).

    Where the psum SRAM holds a full ofmap plane of ``F_uv`` filters the layer
    is one block. Otherwise it is tiled with blocks of the effective sizes of
    paper eq. 10, processed in up to three shapes:

    1. width-limited blocks (``G_eff < G``, then one row high): repeated
       ``floor(G / G_eff)`` times along X and ``E`` times along Y;
    2. height-limited blocks over the remaining width: repeated
       ``floor(E / E_eff)`` times along Y;
    3. the leftover corner (remaining width x remaining height), once.

    FC layers with a batch are evaluated here as a 1x1 convolution over the
    batch (``R = S = H = E = 1``, ``W = G = batch``).
    """
    return xyzizo_masked(layer, hw).resolved()


def xyzizo_masked(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> MaskedCounts:
    """:func:`xyzizo` with its infeasible lanes kept apart (:class:`~.common.MaskedCounts`); with
    ``with_stall=False`` its ``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`."""
    return cover_ofmap_plane(with_stall_or_not(_subvolume, with_stall), layer, hw)
