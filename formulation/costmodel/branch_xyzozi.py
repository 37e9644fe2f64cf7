"""Branch XYZoZi: ofmap width innermost, then ofmap height, output channels, input channels.

Loop order, innermost first: X (ofmap width G), Y (ofmap height E), Zo (the F
filters / ofmap channels), Zi (the C ifmap channels). The reference calls it
``xyFz``; its top-level function is ``Asymmetric_XYFZ`` with the core
``XtoYtoFtoZ`` and, for the last filter slice, ``Asym_XYeffect_XYFZ``.

Only the core lives here: :func:`xyzozi_subvolume` prices one pass of the loop
nest over the largest ofmap block the psum SRAM can hold (the effective
extents of paper eq. 10) and reports those extents. Tiling the whole ofmap
volume with such blocks does not depend on the loop order and is shared with
the XZoYZi branch (:func:`~.subvolumes.cover_ofmap_volume`).

:func:`xyzozi` is the branch function: the tiling applied to this branch's pricer.
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
from .subvolumes import SubvolumeCost, cover_ofmap_volume, psum_limited_row


@quiet
def xyzozi_subvolume(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> SubvolumeCost:
    """Cost of the X -> Y -> Zo -> Zi loop nest on the largest block the psum SRAM holds.

    Port of the reference's ``XtoYtoFtoZ``. The array works on the unit volume
    (paper eq. 1): one filter row of C_uv channels of F_uv filters. Steps:

    X   a whole ofmap row of F_uv channels is produced if its psums fit in the
        psum SRAM; otherwise only G_eff = floor(pSRAM / (F_uv b_p)) outputs
        (eq. 10). The filter rows (R S C_uv F_uv) and the R ifmap rows of
        width W_eff must fit their SRAMs, else the branch is infeasible.
    Y   E_eff = min(E, floor(pSRAM / (row psums * b_p))) ofmap rows.
    Zo  F_eff ofmap planes: all F if they fit in the psum SRAM, else a
        multiple of F_uv. When the ifmap block does not fit the ifmap SRAM,
        the rows that were discarded are reloaded for every further filter
        set (eq. 11, reverse-order reuse).
    Zi  the above repeats for every C_uv slice of the C channels; psums are
        read and written once per further slice.

    Stalls: each phase stalls by max(0, load - compute); slack left over in the
    X and Y phases may hide the filter load of the next filter set (only if
    the filter SRAM can double-buffer it).

    ``with_stall=False`` leaves the stall out (``cycles_stall`` is
    :data:`~.common.STALL_NOT_COMPUTED`): every other count is the same.

    Infeasible where the filter rows or the ifmap rows do not fit; the counts
    and extents are returned unmasked beside that mask (see
    :class:`~.subvolumes.SubvolumeCost`).
    """
    r, s, u = layer.filter_h, layer.filter_w, layer.stride
    height = layer.ofmap_h
    channels, filters = layer.channels, layer.filters
    bits_f, bits_i, bits_p = hw.bits_filter, hw.bits_ifmap, hw.bits_psum
    c_uv, f_uv = unit_volume(layer, hw)
    filter_unit = s * c_uv * f_uv

    filter_fails = filter_unit * r * bits_f > hw.fsram_bits

    row = psum_limited_row(layer, hw, f_uv)
    width_eff, ifmap_w_eff, row_psums = row.ofmap_w, row.ifmap_w, row.psums

    ifmap_fails = ifmap_w_eff * r * c_uv * bits_i > hw.isram_bits

    # X: one ofmap row of F_uv channels from C_uv channels
    outputs_eff = ofmap_extent(ifmap_w_eff, s, u)
    cycles_x = outputs_eff * r
    sram_filter_x = filter_unit * r
    sram_ifmap_x = np.where(u == 1, r * ifmap_w_eff * c_uv, cycles_x * s * c_uv)
    sram_psum_x = 2 * row_psums * (r - 1) + row_psums

    # Y: E_eff ofmap rows, each needing U new ifmap rows
    rows_fit = np.floor(hw.psram_bits / (outputs_eff * f_uv * bits_p))
    height_eff = np.where(rows_fit >= height, height, rows_fit)
    ifmap_h_eff = (height_eff - 1) * u + r
    cycles_xy = cycles_x * height_eff

    # Zo: F_eff ofmap planes in psum SRAM, F_eff / F_uv filter sets
    planes_fit = np.floor(hw.psram_bits / (width_eff * height_eff * bits_p))
    filters_eff = np.where(planes_fit >= filters, filters, np.floor(planes_fit / f_uv) * f_uv)
    filter_sets = filters_eff / f_uv
    cycles_xyzo = cycles_xy * np.ceil(filter_sets)
    sram_filter_xyzo = sram_filter_x * height_eff * filter_sets
    ifmap_block = ifmap_w_eff * ifmap_h_eff * c_uv
    ifmap_block_fits = hw.isram_bits >= ifmap_block * bits_i
    rows_kept = np.floor(hw.isram_bits / (ifmap_w_eff * c_uv * bits_i))
    reloaded_per_set = ifmap_w_eff * (ifmap_h_eff - rows_kept) * c_uv
    dram_ifmap_xyzo = np.where(
        ifmap_block_fits, ifmap_block, ifmap_block + reloaded_per_set * np.ceil(filter_sets - 1)
    )
    sram_ifmap_xyzo = sram_ifmap_x * height_eff * np.ceil(filter_sets)
    sram_psum_xyzo = sram_psum_x * height_eff * filter_sets

    # Zi: the block repeats for every C_uv slice of the channels
    channel_slices = channels / c_uv
    if with_stall:
        stall_xyzo = _stall_xyzo(layer, hw, c_uv, f_uv, ifmap_w_eff, cycles_x, height_eff, filter_sets,
                                 ifmap_block_fits)
        cycles_stall = np.ceil(stall_xyzo * channel_slices)
    else:
        cycles_stall = STALL_NOT_COMPUTED
    psum_per_slice = 2 * row_psums * r * height_eff * filter_sets
    ofmap_block = height_eff * width_eff * filters_eff
    counts = AccessCounts(
        cycles_ideal=cycles_xyzo * np.ceil(channel_slices),
        cycles_stall=cycles_stall,
        cycles_write=ofmap_write_cycles(ofmap_block, hw),
        sram_filter=sram_filter_xyzo * channel_slices,
        sram_ifmap=sram_ifmap_xyzo * channel_slices,
        sram_psum=sram_psum_xyzo + psum_per_slice * np.ceil(channel_slices - 1),
        dram_filter=r * s * channels * filters_eff,
        dram_ifmap=dram_ifmap_xyzo * channel_slices,
        dram_ofmap=ofmap_block,
    )
    return SubvolumeCost(
        counts=counts,
        ofmap_w_eff=width_eff,
        ofmap_h_eff=height_eff,
        filters_eff=filters_eff,
        infeasible=filter_fails | ifmap_fails,
    )


def _stall_xyzo(layer: LayerShape, hw: ArrayHardware, c_uv: Number, f_uv: Number, ifmap_w_eff: Number,
                cycles_x: Number, height_eff: Number, filter_sets: Number, ifmap_block_fits: Number) -> Number:
    """Stall cycles of the X, Y and Zo levels of one XYZoZi block (the rest of :func:`xyzozi_subvolume`; its
    arguments are that function's intermediate values of the same names).

    X: the first row loads the filter rows and ``R`` ifmap rows; Y: each next row loads ``U`` ifmap rows;
    Zo: each further filter set loads its filters, hidden by the X and Y slack where the filter SRAM can
    double-buffer them; without slack, the ifmap rows that did not stay are reloaded as well.
    """
    filter_bits_x, stall_xy, slack_xy = rows_stall_and_slack(layer, hw, c_uv, f_uv, ifmap_w_eff, cycles_x,
                                                             height_eff)

    filter_stall_x = stall(dram_transfer_cycles(filter_bits_x, hw), cycles_x)
    no_slack_stall = np.where(
        ifmap_block_fits,
        stall_xy + np.ceil(filter_stall_x * (filter_sets - 1)),
        np.ceil(stall_xy * filter_sets),
    )
    double_buffered = hw.fsram_bits >= 2 * filter_bits_x
    hidden = double_buffered & (filter_stall_x <= slack_xy)
    exposed_per_set = np.where(double_buffered, filter_stall_x - slack_xy, filter_stall_x)
    slack_stall = np.where(
        (filter_stall_x <= 0) | hidden,
        stall_xy,
        stall_xy + np.ceil(exposed_per_set * (filter_sets - 1)),
    )
    return np.where(slack_xy <= 0, no_slack_stall, np.where(stall_xy <= 0, 0, slack_stall))


def xyzozi(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Counts of branch XYZoZi (reference ``xyFz``) for a whole layer (one group).

    Batched FC layers use it as a 1x1 convolution over the batch
    (ifmap/ofmap width = batch, height 1); the caller divides by the batch.
    """
    return xyzozi_masked(layer, hw).resolved()


def xyzozi_masked(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> MaskedCounts:
    """:func:`xyzozi` with its infeasible lanes kept apart (:class:`~.common.MaskedCounts`); with
    ``with_stall=False`` its ``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`."""
    return cover_ofmap_volume(with_stall_or_not(xyzozi_subvolume, with_stall), layer, hw)
