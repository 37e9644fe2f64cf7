"""Loop order XZiYZo (the reference's ``xzyF`` branch).

Innermost first: the array slides along the ofmap width (X), then walks the
input channels (Zi) so that every ofmap row is finished before it moves down
the ofmap height (Y), and only then switches to the next set of filters (Zo).

This is a port of the reference's ``Asymmetric_XZYF`` (the wrapper that splits
the ofmap width into psum-SRAM-sized strips) and ``XtoZtoYtoF`` (the cost of one
strip). The paper's equations behind it: unit volume (eq. 1), SRAM accesses of
the X-innermost direction (eqs. 2-8, Table 2) times the loop-nest multipliers
(eq. 9), the effective width forced by the psum SRAM (eq. 10) and the DRAM
reloads of the reverse-order ("snake") traversal (eq. 11).

Every field of ``layer`` and ``hw`` may be a numpy array; they broadcast.
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
    ifmap_extent,
    ofmap_extent,
    ofmap_write_cycles,
    on_lanes,
    quiet,
    stall,
    stall_over_filter_groups,
    unit_volume,
    with_stall_or_not,
)
from .subvolumes import psum_limited_row

__all__ = ["xziyzo", "xziyzo_masked"]


def _as_float(value):
    return np.asarray(value, dtype=float)


@quiet
def _strip_costs(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True):
    """Cost of one XZiYZo strip of the ofmap (reference ``XtoZtoYtoF``).

    The strip is as wide as the psum SRAM allows: the full ofmap width if
    F_uv psums per output column fit for every column, else
    ``G_eff = floor(pSRAM / (F_uv * b_p))`` columns (eq. 10).

    Returns ``(counts, strip_ofmap_w, infeasible)``: the counts of the strip,
    its ofmap width (``G`` itself when the strip is the whole width) and the
    mask of lanes where the branch is rejected (a filter row template or an
    ifmap row band does not fit its SRAM, or the array cannot hold a single
    filter row / the psum SRAM a single output column). ``with_stall=False``
    leaves the stall out (``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`).
    """
    R, S = _as_float(layer.filter_h), _as_float(layer.filter_w)
    C = _as_float(layer.channels)
    E = _as_float(layer.ofmap_h)
    F, U = _as_float(layer.filters), _as_float(layer.stride)
    fsram, isram = _as_float(hw.fsram_bits), _as_float(hw.isram_bits)
    b_f, b_i = _as_float(hw.bits_filter), _as_float(hw.bits_ifmap)

    c_uv, f_uv = unit_volume(layer, hw)

    channel_ratio = C / c_uv  # real-valued: some multipliers are not rounded
    channel_steps = np.ceil(C / c_uv)
    filter_ratio = F / f_uv
    filter_steps = np.ceil(F / f_uv)

    # Working set of the innermost (X) loop: one filter row template of
    # R x S x C_uv x F_uv weights, and psums for every output column.
    filter_template_bits = R * S * c_uv * f_uv * b_f
    row = psum_limited_row(layer, hw, f_uv)
    strip_g, strip_w, psums_per_row = row.ofmap_w, row.ifmap_w, row.psums
    ifmap_band_bits = R * strip_w * c_uv * b_i

    infeasible = (
        (filter_template_bits > fsram)
        | (ifmap_band_bits > isram)
        | (c_uv < 1)
        | (strip_g < 1)
    )

    # X: one R-row band of C_uv channels slides along the strip.
    strip_columns = ofmap_extent(strip_w, S, U)
    cycles_x = strip_columns * R
    sram_filter_x = S * c_uv * f_uv * R
    sram_ifmap_x = np.where(U == 1, R * strip_w * c_uv, cycles_x * S * c_uv)
    sram_psum_x = 2 * psums_per_row * (R - 1) + psums_per_row

    # Zi: repeat for every channel group; psums stay in the psum SRAM.
    cycles_xz = cycles_x * channel_steps
    sram_filter_xz = sram_filter_x * channel_ratio
    sram_ifmap_xz = sram_ifmap_x * channel_ratio
    sram_psum_xz = sram_psum_x + np.ceil(C / c_uv - 1) * (2 * psums_per_row * R)

    # Y: one finished ofmap row per step, rows traversed in reverse order
    # so that whatever stayed in SRAM from the previous row is reused.
    ifmap_h_used = (E - 1) * U + R
    cycles_xzy = cycles_xz * E
    dram_filter_xzy = filter_dram_with_reloads(layer, hw, f_uv * C, E)
    ifmap_bands_kept = np.floor(isram / (strip_w * R * b_i))
    ifmap_next_row = strip_w * U * C + strip_w * (R - U) * (C - ifmap_bands_kept)
    dram_ifmap_xzy = np.where(
        ifmap_bands_kept >= C,
        strip_w * ifmap_h_used * C,
        R * strip_w * C + ifmap_next_row * (E - 1),
    )
    sram_filter_xzy = sram_filter_xz * E
    sram_ifmap_xzy = sram_ifmap_xz * E
    sram_psum_xzy = sram_psum_xz * E

    # Zo: the whole XZiY nest again for every set of F_uv filters.
    cycles_ideal = cycles_xzy * filter_steps
    sram_filter = sram_filter_xzy * filter_ratio
    dram_filter = dram_filter_xzy * filter_ratio
    sram_ifmap = sram_ifmap_xzy * filter_steps
    sram_psum = sram_psum_xzy * filter_ratio
    # Later filter sets reuse the R-row bands of the strip still in the ifmap SRAM.
    dram_ifmap = ifmap_dram_over_filter_groups(
        dram_ifmap_xzy, strip_w * ifmap_h_used * C, strip_w * R, filter_ratio, hw
    )

    if with_stall:
        cycles_stall = _stall_cycles(layer, hw, c_uv, f_uv, strip_w, cycles_x, filter_template_bits,
                                     ifmap_band_bits)
    else:
        cycles_stall = STALL_NOT_COMPUTED

    ofmap_elements = E * strip_g * F
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
    return counts, strip_g, infeasible


def _stall_cycles(layer: LayerShape, hw: ArrayHardware, c_uv: Number, f_uv: Number, strip_w: Number,
                  cycles_x: Number, filter_template_bits: Number, ifmap_band_bits: Number) -> Number:
    """Stall cycles of one XZiYZo strip (the rest of :func:`_strip_costs`; its arguments are that
    function's intermediate values of the same names), level by level:

    * X: the template and an ifmap band load while a row computes; Zi: every channel group the same;
    * Y (only when the X step had no slack to hide loads): each next row loads ``U`` ifmap rows (a whole
      band where the strip's bands do not all stay), plus the templates the filter SRAM did not keep;
    * Zo: the next filter set may be prefetched into the filter SRAM space left over, using the slack
      of the Y loop.
    """
    R, S = _as_float(layer.filter_h), _as_float(layer.filter_w)
    C = _as_float(layer.channels)
    E, U = _as_float(layer.ofmap_h), _as_float(layer.stride)
    F = _as_float(layer.filters)
    fsram, isram = _as_float(hw.fsram_bits), _as_float(hw.isram_bits)
    b_f, b_i = _as_float(hw.bits_filter), _as_float(hw.bits_ifmap)
    channel_ratio = C / c_uv
    channel_steps = np.ceil(C / c_uv)
    filter_ratio = F / f_uv

    load_x = dram_transfer_cycles(filter_template_bits + ifmap_band_bits, hw)
    stall_x = stall(load_x, cycles_x)
    slack_x = stall(cycles_x, load_x)
    stall_xz = np.ceil(stall_x * channel_ratio)
    slack_xz = slack_x * channel_steps

    # Stall of the Y loop (only when the X step had no slack to hide loads).
    no_slack = slack_xz <= 0
    full_filter_bits = R * S * C * f_uv * b_f
    filters_resident = fsram >= full_filter_bits
    ifmap_next_bits = np.where(
        isram >= strip_w * R * C * b_i,
        U * strip_w * c_uv * b_i,
        ifmap_band_bits,
    )
    load_ifmap_next = dram_transfer_cycles(ifmap_next_bits, hw)
    stall_ifmap_next = stall(load_ifmap_next, cycles_x)
    # All filters of the set stay in the filter SRAM: only ifmap rows arrive.
    stall_resident = np.ceil(stall_ifmap_next * channel_ratio)
    slack_xzy = slack_xz + stall(cycles_x, load_ifmap_next) * channel_steps * (E - 1)
    # Otherwise the channel groups whose templates did not stay come with their filters.
    templates_kept = np.floor(fsram / filter_template_bits)
    stall_with_filter = stall(dram_transfer_cycles(ifmap_next_bits + filter_template_bits, hw), cycles_x)
    stall_streamed = stall_ifmap_next * templates_kept + np.ceil(
        stall_with_filter * (channel_ratio - templates_kept)
    )
    stall_next_row = np.where(filters_resident, stall_resident, stall_streamed)
    stall_xzy = np.where(no_slack, stall_xz + stall_next_row * (E - 1), 0.0)

    # Stall of the Zo loop: the next filter set may be prefetched into the
    # filter SRAM space left over, using the slack of the Y loop.
    return np.where(
        no_slack, stall_over_filter_groups(stall_xzy, slack_xzy, full_filter_bits, filter_ratio, hw), 0.0
    )


def xziyzo(layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Counts of loop order XZiYZo for one conv layer (reference ``Asymmetric_XZYF``).

    When the psum SRAM cannot hold a full ofmap row of F_uv filters, the width
    is cut into ``floor(G / G_eff)`` equal strips of ``G_eff`` columns, costed
    once and multiplied, plus one narrower strip for the ``G mod G_eff``
    columns left over (its ifmap width ``(G_rest - 1) * U + S``). Adjacent
    strips re-read the ``S - U`` overlapping ifmap columns.

    Returns ``inf`` in every field where the branch is rejected.
    """
    return xziyzo_masked(layer, hw).resolved()


@quiet
def xziyzo_masked(layer: LayerShape, hw: ArrayHardware, with_stall: bool = True) -> MaskedCounts:
    """:func:`xziyzo` with its infeasible lanes kept apart (:class:`~.common.MaskedCounts`); with
    ``with_stall=False`` its ``cycles_stall`` is :data:`~.common.STALL_NOT_COMPUTED`."""
    G = _as_float(layer.ofmap_w)
    U, S = _as_float(layer.stride), _as_float(layer.filter_w)

    strip_costs = with_stall_or_not(_strip_costs, with_stall)
    first, strip_g, infeasible = strip_costs(layer, hw)
    split = strip_g < G
    strips = np.where(split, np.floor(G / strip_g), 1.0)
    rest_g = np.where(split, G - strip_g * strips, 0.0)
    rest_w = ifmap_extent(rest_g, S, U)
    rest, _, _ = on_lanes(rest_g > 0, strip_costs, layer.replace(ifmap_w=rest_w, ofmap_w=rest_g), hw,
                          (AccessCounts.zeros(), np.float64(0.0), np.False_))
    total = first.scaled(strips) + AccessCounts.select(rest_g > 0, rest, AccessCounts.zeros())
    return MaskedCounts(total, infeasible)
