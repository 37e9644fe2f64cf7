"""Branch XZoYZi: ofmap width innermost, then filters (Zo), ofmap height, input channels (Zi).

Port of the DeepOpt reference's ``xFyz`` branch. Only the core loop nest
(``XtoFtoYtoZ``, :func:`xzoyzi_subvolume`) lives here; the wrapper that tiles
the ofmap into subvolumes when the psum SRAM cannot hold a whole row, a whole
set of filters or a whole plane (``Asymmetric_XFYZ`` and, for the last band of
filters, ``Asym_XYeffect_XFYZ``) is the same as the XYZoZi branch's and is
shared with it (:func:`~.subvolumes.cover_ofmap_volume`).

Loop order, innermost first (paper section 3, Table 2):

1. X: one ofmap row of ``F_uv`` filters is produced while the ifmap slides
   along the width; ``R`` cycles per output (one filter row per cycle).
2. F (Zo): the same ifmap rows are reused for the next ``F_uv`` filters, up to
   ``F_eff`` filters whose psums fit the psum SRAM.
3. Y: the next ofmap rows, up to ``E_eff`` rows of ``F_eff`` planes.
4. Z (Zi): the next ``C_uv`` input channels accumulate onto the same psums.

The X, F and Y extents are cut by the psum SRAM (paper eq. 10); everything
else streams. All fields of the layer and the hardware may be broadcastable
arrays; every ``if`` of the reference is a mask here.

Reproduced on purpose (reference behaviour, listed for docs/model.md):

* ``(W - S) / U + 1`` is real-valued, so a row's psum count and its cycles may
  be fractional (28.5 for a 1x1 stride-2 conv over 56 columns).
* Filter SRAM accesses and psum accesses scale with ``F_eff / F_uv`` (no
  ceiling) while cycles and ifmap SRAM accesses scale with
  ``ceil(F_eff / F_uv)``; the Z multiplier is ``C / C_uv`` for accesses and
  ``ceil(C / C_uv)`` for cycles.
* The wrapper's remainder passes (see :mod:`.subvolumes`) call the core on
  a width recomputed as ``(G' - 1) * U + S`` (not the padded ifmap width), and
  the first Y pass uses this width even when no X split happened; the
  remainder X pass in the main wrapper keeps the padded ifmap height while the
  XY-only wrapper recomputes it as ``(E - 1) * U + R``.
* The F pass's remainder filters go through an XY-only wrapper whose
  remainder passes keep the remainder filter count as is (no F split).

Beyond the reference: the ifmap SRAM reads use the sliding-window count for
stride 1 and the per-cycle count otherwise, for every filter shape (the
reference defines neither for a 1xS or Rx1 filter, nor for a 1x1 filter with
stride above 2); lanes with ``C_uv = 0`` or ``G_eff = 0`` are infeasible.
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
    ofmap_extent,
    ofmap_write_cycles,
    quiet,
    unit_volume,
    with_stall_or_not,
)
from .subvolumes import SubvolumeCost, cover_ofmap_volume, psum_limited_row


def _positive_part(x: Number) -> Number:
    """max(0, x) with a NaN argument giving 0, as the reference's ``max`` does."""
    return np.fmax(0, x)


def _exceeding(load: Number, compute: Number) -> Number:
    """``load - compute`` where the load is longer, else 0 (NaN compares false)."""
    return np.where(load > compute, load - compute, 0)


@quiet
def xzoyzi_subvolume(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> SubvolumeCost:
    """Counts of the X -> F -> Y -> Z loop nest on the first psum-SRAM-sized subvolume.

    Reference function ``XtoFtoYtoZ``. Returns the subvolume's counts and its
    extent (G_eff, E_eff, F_eff); :func:`~.subvolumes.cover_ofmap_volume` tiles
    the rest of the layer. Infeasible (the returned mask; counts and extents
    are returned unmasked beside it) where the filter SRAM cannot hold ``R``
    rows of the unit volume, the ifmap SRAM cannot hold ``R`` ifmap rows of
    ``C_uv`` channels, the array has fewer rows than the filter width or the
    psum SRAM cannot hold ``F_uv`` psums of a single output column. ``with_stall=False`` leaves the
    stall out (``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`): every other count is the same.
    """
    R, S, H = layer.filter_h, layer.filter_w, layer.ifmap_h
    C, E, F, U = layer.channels, layer.ofmap_h, layer.filters, layer.stride
    b_f, b_i, b_p = hw.bits_filter, hw.bits_ifmap, hw.bits_psum
    fsram, isram, psram = hw.fsram_bits, hw.isram_bits, hw.psram_bits

    c_uv, f_uv = unit_volume(layer, hw)
    unit_filter = S * c_uv * f_uv
    filter_rows_fit = unit_filter * R * b_f <= fsram

    # X: the psum SRAM holds a full ofmap row of F_uv filters, or G_eff columns of it.
    row = psum_limited_row(layer, hw, f_uv)
    g_eff, w_eff, psums_x = row.ofmap_w, row.ifmap_w, row.psums
    ifmap_rows_fit = w_eff * R * c_uv * b_i <= isram
    # Beyond the reference: an array narrower than one filter row (C_uv = 0) or a
    # psum SRAM short of one output column (G_eff = 0) is rejected outright; the
    # reference lets such lanes run into 0 * inf and returns NaN in some counts.
    infeasible = ~(filter_rows_fit & ifmap_rows_fit) | (c_uv < 1) | (g_eff < 1)

    cycles_x = ofmap_extent(w_eff, S, U) * R
    filter_x = unit_filter * R
    # Stride 1: the window slides, each ifmap element leaves the SRAM once;
    # otherwise S * C_uv fresh ifmap elements per cycle (also 1x1 filters).
    ifmap_sram_x = np.where(U == 1, R * w_eff * c_uv, cycles_x * S * c_uv)
    psum_sram_x = 2 * psums_x * (R - 1) + psums_x


    # F: filters whose G_eff-wide psum rows fit, a multiple of F_uv when cut.
    whole_f = g_eff * F * b_p <= psram
    f_eff = np.where(whole_f, F, np.floor(np.floor(psram / (g_eff * b_p)) / f_uv) * f_uv)
    filter_sets = f_eff / f_uv
    cycles_xf = np.ceil(filter_sets) * cycles_x
    filter_sram_xf = filter_x * filter_sets
    ifmap_sram_xf = ifmap_sram_x * np.ceil(filter_sets)
    psum_sram_xf = psum_sram_x * filter_sets

    # Y: ofmap rows of all F_eff planes that fit the psum SRAM.
    rows_fit = np.floor(psram / (g_eff * f_eff * b_p))
    whole_y = rows_fit >= E
    e_eff = np.where(whole_y, E, rows_fit)
    h_eff = np.where(whole_y, H, (e_eff - 1) * U + R)
    cycles_xfy = cycles_xf * e_eff

    # Filter planes beyond the filter SRAM are reloaded for every further ofmap
    # row; the rows alternate direction, so the ones still held are reused.
    filter_dram_xfy = filter_dram_with_reloads(layer, hw, f_eff * c_uv, e_eff)
    filter_sram_xfy = filter_sram_xf * e_eff
    ifmap_sram_xfy = ifmap_sram_xf * e_eff
    psum_sram_xfy = psum_sram_xf * e_eff

    # Z: every further C_uv input channels repeat the XFY nest onto the same psums.
    channel_sets = C / c_uv
    if with_stall:
        stall_xfy = _stall_xfy(layer, hw, c_uv, f_uv, w_eff, cycles_x, filter_sets, f_eff, e_eff)
        cycles_stall = np.ceil(stall_xfy * channel_sets)
    else:
        cycles_stall = STALL_NOT_COMPUTED
    psum_sram_next = 2 * psums_x * R * filter_sets * e_eff
    ofmap_elements = e_eff * g_eff * f_eff
    counts = AccessCounts(
        cycles_ideal=cycles_xfy * np.ceil(channel_sets),
        cycles_stall=cycles_stall,
        cycles_write=ofmap_write_cycles(ofmap_elements, hw),
        sram_filter=filter_sram_xfy * channel_sets,
        sram_ifmap=ifmap_sram_xfy * channel_sets,
        sram_psum=psum_sram_xfy + psum_sram_next * np.ceil(channel_sets - 1),
        dram_filter=filter_dram_xfy * channel_sets,
        dram_ifmap=w_eff * h_eff * C,
        dram_ofmap=ofmap_elements,
    )
    return SubvolumeCost(counts=counts, ofmap_w_eff=g_eff, ofmap_h_eff=e_eff, filters_eff=f_eff,
                         infeasible=infeasible)


def _stall_xfy(layer: LayerShape, hw: ArrayHardware, c_uv: Number, f_uv: Number, w_eff: Number,
               cycles_x: Number, filter_sets: Number, f_eff: Number, e_eff: Number) -> Number:
    """Stall cycles of the X, F and Y levels of one XZoYZi block (the rest of :func:`xzoyzi_subvolume`;
    its arguments are that function's intermediate values of the same names).

    X: the first row loads one filter set and ``R`` ifmap rows; F: each further filter set loads its
    filters; Y: :func:`_stall_along_y`.
    """
    R, S, U = layer.filter_h, layer.filter_w, layer.stride
    b_f, b_i = hw.bits_filter, hw.bits_ifmap
    set_filter_bits = R * S * c_uv * f_uv * b_f
    row_ifmap_bits = R * w_eff * c_uv * b_i
    load_x = dram_transfer_cycles(set_filter_bits + row_ifmap_bits, hw)
    stall_x = _exceeding(load_x, cycles_x)
    slack_x = np.where(stall_x == 0, cycles_x - load_x, 0)

    load_set = dram_transfer_cycles(set_filter_bits, hw)
    stall_set = _exceeding(load_set, cycles_x)
    stall_f = np.ceil(stall_set * (filter_sets - 1))
    slack_f = np.where(stall_f == 0, (cycles_x - load_set) * np.ceil(filter_sets - 1), 0)
    stall_xf = stall_x + stall_f
    slack_xf = slack_x + slack_f
    return _stall_along_y(
        hw, U, w_eff, c_uv, f_uv, f_eff, R, S, e_eff, cycles_x,
        load_set, stall_xf, slack_xf, row_ifmap_bits,
    )


def _stall_along_y(hw, U, w_eff, c_uv, f_uv, f_eff, R, S, e_eff, cycles_x,
                   load_set, stall_xf, slack_xf, row_ifmap_bits):
    """DRAM stall of the XF block repeated over E_eff ofmap rows (ref. ``XtoFtoYtoZ``).

    Three regimes, chosen by the XF block's slack and stall:

    * no slack: each further row stalls on its ``U`` new ifmap rows plus the
      filter sets that the filter SRAM could not keep (alternating row order
      keeps ``floor(fSRAM / set)`` sets resident);
    * slack and no stall: no stall at all;
    * slack and stall: only the new ifmap rows load per further row; their
      stall is hidden by the slack if the ifmap SRAM has room to prefetch them.
    """
    new_rows_bits = U * w_eff * c_uv * hw.bits_ifmap
    stall_ifmap_row = _positive_part(dram_transfer_cycles(new_rows_bits, hw) - cycles_x)

    stall_filter_set = _positive_part(load_set - cycles_x)
    sets_resident = np.floor(hw.fsram_bits / (R * S * c_uv * f_uv * hw.bits_filter))
    all_filters_resident = hw.fsram_bits >= R * S * c_uv * f_eff * hw.bits_filter
    per_row_no_slack = np.where(
        all_filters_resident,
        stall_ifmap_row,
        stall_ifmap_row + np.ceil(stall_filter_set * (f_eff / f_uv - sets_resident)),
    )
    no_slack = stall_xf + per_row_no_slack * (e_eff - 1)

    prefetch_room = hw.isram_bits >= row_ifmap_bits + new_rows_bits
    partly_hidden = stall_xf + np.where(
        stall_ifmap_row <= slack_xf, 0, (stall_ifmap_row - slack_xf) * (e_eff - 1)
    )
    with_slack = np.where(
        stall_ifmap_row <= 0,
        stall_xf,
        np.where(prefetch_room, partly_hidden, stall_xf + stall_ifmap_row * (e_eff - 1)),
    )
    return np.where(slack_xf <= 0, no_slack, np.where(stall_xf <= 0, 0, with_slack))


@quiet
def xzoyzi(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Counts of one convolution layer under loop order XZoYZi (reference branch ``xFyz``).

    The XFYZ core (:func:`xzoyzi_subvolume`) tiled over the layer by
    :func:`~.subvolumes.cover_ofmap_volume`. ``inf`` where the filter or ifmap
    SRAM cannot hold ``R`` rows of the unit volume in any pass.
    """
    return xzoyzi_masked(layer, hw).resolved()


def xzoyzi_masked(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> MaskedCounts:
    """:func:`xzoyzi` with its infeasible lanes kept apart (:class:`~.common.MaskedCounts`); with
    ``with_stall=False`` its ``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`."""
    return cover_ofmap_volume(with_stall_or_not(xzoyzi_subvolume, with_stall), layer, hw)
