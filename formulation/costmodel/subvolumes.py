"""Psum-SRAM-sized subvolumes of the ofmap, and how they tile a whole layer.

A branch whose innermost loop walks the ofmap width (X) keeps the partial sums
of what it is working on in the psum SRAM. When that SRAM cannot hold all of
them, the branch processes the ofmap in *subvolumes* of effective extents
``G_eff x E_eff x F_eff`` (ofmap width, height and channels; paper eq. 10):
its core loop nest (the branch's *pricer*) prices one pass over the largest
such block and reports the block's extents, and a wrapper covers the rest of
the ofmap with further passes. This module holds the parts that do not depend
on the loop order:

* :func:`psum_limited_row` -- the X extent of eq. 10 (a whole ofmap row of
  ``F_uv`` channels, or as many columns as the psum SRAM holds), the first
  step of the XYZoZi, XZoYZi and XZiYZo cores (the XYZiZo core computes the
  same extent with its fit test's product grouped differently, so it keeps
  its own lines: the grouping can move a boundary case by one rounding);
* :class:`SubvolumeCost` -- what a pricer returns: the counts of one pass and
  the block's extents (:data:`SubvolumePricer` is the pricer's signature);
* :func:`cover_ofmap_volume` and :func:`cover_ofmap_plane` -- the tiling.

The tiling (reference wrappers ``Asymmetric_XYFZ`` / ``Asymmetric_XFYZ`` and
``Asym_XYeffect_XYFZ`` / ``Asym_XYeffect_XFYZ``; the two pairs are identical
apart from the core they call, and ``Asymmetric_XYZF`` is ``Asym_XYeffect``
with the XYZiZo core). With ``G_eff, E_eff, F_eff`` the extents of the first
pass on the whole layer, the ofmap is covered by

* *effective passes*, blocks of the full effective extent repeated along an
  axis:

  - X: ``G_eff < G``. The psum SRAM is full with part of one row, so
    ``E_eff = 1``: the first block repeats ``floor(G / G_eff)`` times along
    X and for all ``E`` rows. From here on a pass holds ``F_eff`` filters.
  - Y: ``E_eff < E`` over the columns not yet covered (the ``G_r`` remaining
    columns after an X split, else the full width): that strip is priced
    again, and its block repeats ``floor(E / E_eff')`` times along Y.
  - F (Zo): ``F_eff < F``. Everything covered so far (or, where neither X nor
    Y was split, the first block) repeats ``floor(F / F_eff)`` times along F.

* *remainder passes*, one block each for what the effective passes leave:

  - the ``G_r`` remaining columns when the first block had the full height
    (``E_eff = E``: a batched FC layer), priced with ``F_eff`` filters (in
    :func:`cover_ofmap_plane` this is the corner below, with ``E_r = E``);
  - the corner: ``G_r`` columns (or the full width) by the ``E_r`` rows the Y
    pass leaves, with ``F_eff`` filters (in :func:`cover_ofmap_plane`, the
    filter count it was given);
  - the ``F_r`` remaining filters: tiled again by :func:`cover_ofmap_plane`,
    which has the X and Y passes and the corner but no F pass (the filter
    count is taken whole).

As in the reference, the remainders' ifmap extents are recomputed from their
ofmap extents, ``(G_r - 1) U + S`` and ``(E_r - 1) U + R``; the strip of the
Y pass uses ``(G_r - 1) U + S`` even where no X split happened (which differs
from the padded ifmap width where ``(W - S) / U`` is fractional). The strip
and the X remainder of :func:`cover_ofmap_volume` keep the layer's (padded)
ifmap height, whereas the corner of :func:`cover_ofmap_plane`, which is its X
remainder where no Y pass happened, recomputes it as ``(E - 1) U + R``.

Everything is vectorised: every ``if`` of the reference is a mask, every pass
is priced on every lane and selected per lane (lanes where a pass does not
apply may hold NaN or ``inf`` in it; they are never added). Lanes where the
pricer finds the branch infeasible report the full extents, so no pass but
the first applies there and its ``inf`` counts are the result.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .common import AccessCounts, ArrayHardware, LayerShape, Number, ifmap_extent, ofmap_extent, quiet


class EffectiveRow(NamedTuple):
    """The X extent of one pass (paper eq. 10) for ``F_uv`` ofmap channels.

    ``fits``: the psum SRAM holds a whole ofmap row (``(W - S) / U + 1``
    outputs, real-valued as in the reference) of ``F_uv`` channels. Then
    ``ofmap_w`` and ``ifmap_w`` are the layer's ``G`` and ``W``; otherwise
    ``ofmap_w = G_eff = floor(pSRAM / (F_uv b_p))`` columns and ``ifmap_w``
    their window ``(G_eff - 1) U + S``. ``psums`` are the row's partial sums.
    """

    fits: Number
    ofmap_w: Number
    ifmap_w: Number
    psums: Number


def psum_limited_row(layer: LayerShape, hw: ArrayHardware, filters_uv: Number) -> EffectiveRow:
    """The X extent of a pass over ``filters_uv`` filters that the psum SRAM allows (eq. 10)."""
    row_outputs = ofmap_extent(layer.ifmap_w, layer.filter_w, layer.stride)
    fits = row_outputs * filters_uv * hw.bits_psum <= hw.psram_bits
    columns = np.floor(hw.psram_bits / (filters_uv * hw.bits_psum))
    return EffectiveRow(
        fits=fits,
        ofmap_w=np.where(fits, layer.ofmap_w, columns),
        ifmap_w=np.where(fits, layer.ifmap_w, ifmap_extent(columns, layer.filter_w, layer.stride)),
        psums=np.where(fits, row_outputs * filters_uv, columns * filters_uv),
    )


class SubvolumeCost(NamedTuple):
    """Cost of one pass over an effective ofmap block, and that block's extents.

    ``ofmap_w_eff``, ``ofmap_h_eff`` and ``filters_eff`` are the block's ofmap
    width, height and number of ofmap channels (G_eff, E_eff, F_eff). A pricer
    reports the layer's own extents where the whole layer fits, along an axis
    it never cuts, and where the pass is infeasible (``counts`` ``inf``), so
    that no further pass is attempted there.
    """

    counts: AccessCounts
    ofmap_w_eff: Number
    ofmap_h_eff: Number
    filters_eff: Number


SubvolumePricer = Callable[[LayerShape, ArrayHardware], SubvolumeCost]
"""A branch's core loop nest: the cost of one pass over ``layer`` and the extents it covered."""


def _add_where(condition: Number, total: AccessCounts, part: AccessCounts) -> AccessCounts:
    """``total + part`` where ``condition`` holds, ``total`` elsewhere (``part`` may be NaN there)."""
    return AccessCounts.select(condition, total + part, total)


class _XPass(NamedTuple):
    """The X effective pass of a cover and the columns it leaves."""

    split: Number  # G_eff < G
    rest_w: Number  # G_r, the columns left (G where X is not split)
    rest_iw: Number  # their ifmap width, (G_r - 1) U + S
    total: AccessCounts  # the cover so far


def _x_pass(first: SubvolumeCost, layer: LayerShape, whole: Number) -> _XPass:
    """Start a cover with its X pass.

    Where ``G_eff < G`` (then ``E_eff = 1``) the first block repeats
    ``floor(G / G_eff)`` times per row and for all ``E`` rows; where ``whole``
    (the first pass covered everything) the cover is that pass; else nothing yet.
    """
    width = layer.ofmap_w
    split = first.ofmap_w_eff < width
    pass_x = np.floor(width / first.ofmap_w_eff)
    rest_w = np.where(split, width - first.ofmap_w_eff * pass_x, width)
    total = AccessCounts.select(
        split,
        first.counts.scaled(layer.ofmap_h).scaled(pass_x),
        AccessCounts.select(whole, first.counts, AccessCounts.zeros()),
    )
    return _XPass(split, rest_w, ifmap_extent(rest_w, layer.filter_w, layer.stride), total)


@quiet
def cover_ofmap_plane(price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Whole-layer counts when only the X and Y extents may be cut (the filter count is taken whole).

    Reference ``Asym_XYeffect_XYFZ`` / ``Asym_XYeffect_XFYZ`` (the last, smaller
    slice of filters of :func:`cover_ofmap_volume`) and ``Asymmetric_XYZF``
    (the XYZiZo branch, whose psum SRAM never holds more than ``F_uv``
    filters). With ``G_eff x E_eff`` the first pass's extents:

    * whole layer in one pass: that pass is the answer;
    * X pass (``G_eff < G``, then ``E_eff = 1``): ``floor(G / G_eff)`` blocks
      per row times ``E`` rows; done if no columns remain;
    * Y pass (``E_eff < E``, not done): the strip of the ``G_r`` remaining
      columns (or the full width), ifmap width ``(G_r - 1) U + S``, priced
      again and repeated ``floor(E / E_eff')`` times; done if no rows remain;
    * corner (not done): one pass over ``G_r`` columns by ``E_r`` rows, its
      ifmap height ``(E_r - 1) U + R``.
    """
    height = layer.ofmap_h
    first = price(layer, hw)
    done = (first.ofmap_w_eff == layer.ofmap_w) & (first.ofmap_h_eff == height)
    x_split, rest_w, rest_iw, total = _x_pass(first, layer, done)
    done = done | (x_split & (rest_w == 0))

    y_split = ~done & (first.ofmap_h_eff < height)
    strip = price(layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w), hw)
    pass_y = np.floor(height / strip.ofmap_h_eff)
    total = _add_where(y_split, total, strip.counts.scaled(pass_y))
    rest_h = np.where(y_split, height - strip.ofmap_h_eff * pass_y, height)
    done = done | (y_split & (rest_h == 0))

    corner_ifmap_h = ifmap_extent(rest_h, layer.filter_h, layer.stride)
    corner = price(layer.replace(ifmap_h=corner_ifmap_h, ifmap_w=rest_iw, ofmap_h=rest_h, ofmap_w=rest_w), hw)
    return _add_where(~done, total, corner.counts)


@quiet
def cover_ofmap_volume(price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware) -> AccessCounts:
    """Whole-layer counts of a branch whose passes may stop at G_eff, E_eff and F_eff.

    Reference ``Asymmetric_XYFZ`` / ``Asymmetric_XFYZ``. With the first pass's
    extents ``G_eff, E_eff, F_eff`` (see the module docstring for the tiling):

    1. whole layer in one pass: that pass is the answer;
    2. X pass (``G_eff < G``): ``floor(G / G_eff)`` blocks per row times ``E``
       rows; the filter count is ``F_eff`` from here on. If the first block
       had the full height (``E_eff = E``, a batched FC layer), the ``G_r``
       remaining columns are one more pass;
    3. Y pass (``E_eff < E`` and columns remain): the strip (``G_r`` columns,
       or the full width) priced with ``F_eff`` filters if X was split, else
       ``F``, repeated ``floor(E / E_eff')`` times, plus the corner of the
       ``E_r`` remaining rows with ``F_eff`` filters;
    4. F pass (``F_eff < F``): the X-Y cover so far, or the first pass alone
       where neither X nor Y was split, repeated ``floor(F / F_eff)`` times;
       the ``F_r`` remaining filters are covered by :func:`cover_ofmap_plane`.
       (The reference detects "neither split" by a zero cycle count of the
       cover so far; that is the same test wherever the layer has ``R >= 1``
       and ``E >= 1``.)
    """
    height, filters = layer.ofmap_h, layer.filters
    first = price(layer, hw)
    h_eff, f_eff = first.ofmap_h_eff, first.filters_eff
    whole = (first.ofmap_w_eff == layer.ofmap_w) & (h_eff == height) & (f_eff == filters)
    x_split, rest_w, rest_iw, total = _x_pass(first, layer, whole)
    strip_filters = np.where(x_split, f_eff, filters)

    full_height_rest = x_split & (rest_w > 0) & (h_eff == height)
    rest_columns = price(layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w, filters=f_eff), hw)
    total = _add_where(full_height_rest, total, rest_columns.counts)

    y_split = (rest_w > 0) & (h_eff < height)
    strip = price(layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w, filters=strip_filters), hw)
    pass_y = np.floor(height / strip.ofmap_h_eff)
    total = _add_where(y_split, total, strip.counts.scaled(pass_y))
    rest_h = height - strip.ofmap_h_eff * pass_y
    corner_ifmap_h = ifmap_extent(rest_h, layer.filter_h, layer.stride)
    corner_layer = layer.replace(ifmap_h=corner_ifmap_h, ifmap_w=rest_iw, ofmap_h=rest_h, ofmap_w=rest_w)
    corner = price(corner_layer.replace(filters=f_eff), hw)
    total = _add_where(y_split & (rest_h != 0), total, corner.counts)

    f_split = f_eff < filters
    pass_f = np.floor(filters / f_eff)
    plane = AccessCounts.select(x_split | y_split, total, first.counts)
    repeated = plane.scaled(pass_f)
    rest_f = filters - f_eff * pass_f
    rest_filters = cover_ofmap_plane(price, layer.replace(filters=rest_f), hw)
    repeated = _add_where(rest_f != 0, repeated, rest_filters)
    return AccessCounts.select(f_split, repeated, total)
