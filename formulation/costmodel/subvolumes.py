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
is priced and selected per lane (lanes where a pass does not apply may hold
NaN or ``inf`` in it, or zeros where a later pass was priced only on the
lanes that use it, :func:`~.common.on_lanes`; they are never added). Infeasibility
follows the reference: where the first pass cannot run (a working set does
not fit) the layer is ``inf`` in every field; a later pass that cannot run
adds ``inf`` and, reporting its layer's full extents, ends the cover there.

Cost of the vectorisation: a pricer returns its raw counts and extents with
its infeasibility mask beside them (:class:`SubvolumeCost`) instead of
masking them itself. The extents then depend only on the axes that really
set them (J, K and the psum SRAM), so the later passes, priced on those
extents, stay that small too; the masks, which also depend on the filter and
ifmap SRAMs, are applied once at the end of the cover, and to a later pass
only where some lane uses it while it is infeasible (:func:`priced_where`).
The result is the same in every lane as masking every pass.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import numpy as np

from .common import (
    AccessCounts,
    ArrayHardware,
    LayerShape,
    MaskedCounts,
    Number,
    ifmap_extent,
    ofmap_extent,
    on_lanes,
    quiet,
)


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
    """Cost of one pass over an effective ofmap block, that block's extents, and where the pass cannot run.

    ``ofmap_w_eff``, ``ofmap_h_eff`` and ``filters_eff`` are the block's ofmap
    width, height and number of ofmap channels (G_eff, E_eff, F_eff); a pricer
    reports the layer's own extent along an axis that is not cut.
    ``infeasible`` marks the lanes where a working set of the pass does not
    fit. ``counts`` and the extents are the pass's raw values in every lane,
    also where it is infeasible (where they mean nothing and may be NaN): the
    cover decides per lane what an infeasible pass does to the layer
    (:func:`priced_where`), and computing no mask on the counts keeps every
    intermediate only as large as the hardware axes it depends on.
    """

    counts: AccessCounts
    ofmap_w_eff: Number
    ofmap_h_eff: Number
    filters_eff: Number
    infeasible: Number


SubvolumePricer = Callable[[LayerShape, ArrayHardware], SubvolumeCost]
"""A branch's core loop nest: the cost of one pass over ``layer`` and the extents it covered."""


_NO_PASS = SubvolumeCost(AccessCounts.zeros(), *[np.float64(0.0)] * 3, np.False_)
"""What :func:`~.common.on_lanes` gives for a later pass that no lane uses (never added; numpy zeros,
so that arithmetic on them follows numpy's rules, e.g. 1 / 0 = inf, in lanes that are masked out)."""


def _add_where(condition: Number, total: AccessCounts, part: AccessCounts) -> AccessCounts:
    """``total + part`` where ``condition`` holds, ``total`` elsewhere (``part`` may be NaN there)."""
    if not np.any(condition):
        return total
    return AccessCounts.select(condition, total + part, total)


def priced_where(used: Number, cost: SubvolumeCost, layer: LayerShape, skip: Number = False) -> SubvolumeCost:
    """A later pass of a cover as the layer sees it where the pass is ``used``.

    Where the pass is used but infeasible, its counts are ``inf`` and its
    extents are ``layer``'s own (the pass layer's), so that the cover adds
    ``inf`` and attempts nothing after it there. Lanes in ``skip`` (where the
    first pass is already infeasible, so the cover's answer is ``inf``
    whatever is added) are left out. Lanes where the pass is not used keep
    the raw values, which the cover never adds. Where no lane is affected
    (the common case) ``cost`` is returned as it is, and no intermediate is
    broadcast to the full grid.
    """
    hit = used & cost.infeasible
    if not np.any(hit):  # the common case, decided before the mask of ``skip`` is combined in
        return cost
    hit = hit & ~np.asarray(skip, dtype=bool)
    if not np.any(hit):
        return cost
    return SubvolumeCost(
        counts=cost.counts.infeasible_where(hit),
        ofmap_w_eff=np.where(hit, layer.ofmap_w, cost.ofmap_w_eff),
        ofmap_h_eff=np.where(hit, layer.ofmap_h, cost.ofmap_h_eff),
        filters_eff=np.where(hit, layer.filters, cost.filters_eff),
        infeasible=cost.infeasible,
    )


def _later_pass(used: Number, price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware,
                first_bad: Number) -> SubvolumeCost:
    """A pass after the first: priced only where some lane ``used`` it if that pays
    (:func:`~.common.on_lanes`; never where none does), as the cover sees it (:func:`priced_where`)."""
    return priced_where(used, on_lanes(used, price, layer, hw, _NO_PASS), layer, first_bad)


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
    total = AccessCounts.select(whole, first.counts, AccessCounts.zeros())
    if np.any(split):
        total = AccessCounts.select(split, first.counts.scaled(layer.ofmap_h).scaled(pass_x), total)
    return _XPass(split, rest_w, ifmap_extent(rest_w, layer.filter_w, layer.stride), total)


def _plane_cover(price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware) -> tuple[AccessCounts, Number]:
    """:func:`cover_ofmap_plane` before its first pass's infeasibility is applied.

    Returns ``(counts, first_infeasible)``: the cover's counts, exact wherever
    the first pass can run, and the lanes where it cannot (where the cover is
    ``inf`` in every field).
    """
    height = layer.ofmap_h
    first = price(layer, hw)
    first_bad = first.infeasible
    done = (first.ofmap_w_eff == layer.ofmap_w) & (first.ofmap_h_eff == height)
    x_split, rest_w, rest_iw, total = _x_pass(first, layer, done)
    done = done | (x_split & (rest_w == 0))

    y_split = ~done & (first.ofmap_h_eff < height)
    strip_layer = layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w)
    strip = _later_pass(y_split, price, strip_layer, hw, first_bad)
    pass_y = np.floor(height / strip.ofmap_h_eff)
    if np.any(y_split):
        total = _add_where(y_split, total, strip.counts.scaled(pass_y))
    rest_h = np.where(y_split, height - strip.ofmap_h_eff * pass_y, height)
    done = done | (y_split & (rest_h == 0))

    corner_ifmap_h = ifmap_extent(rest_h, layer.filter_h, layer.stride)
    corner_layer = layer.replace(ifmap_h=corner_ifmap_h, ifmap_w=rest_iw, ofmap_h=rest_h, ofmap_w=rest_w)
    corner = _later_pass(~done, price, corner_layer, hw, first_bad)
    return _add_where(~done, total, corner.counts), first_bad


@quiet
def cover_ofmap_plane(price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware) -> MaskedCounts:
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

    ``inf`` in every field where the first pass cannot run (the returned
    mask); a later pass that cannot run adds ``inf``.
    """
    return MaskedCounts(*_plane_cover(price, layer, hw))


@quiet
def cover_ofmap_volume(price: SubvolumePricer, layer: LayerShape, hw: ArrayHardware) -> MaskedCounts:
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

    ``inf`` in every field where the first pass cannot run (the returned
    mask); a later pass that cannot run adds ``inf``.
    """
    height, filters = layer.ofmap_h, layer.filters
    first = price(layer, hw)
    first_bad = first.infeasible
    h_eff, f_eff = first.ofmap_h_eff, first.filters_eff
    whole = (first.ofmap_w_eff == layer.ofmap_w) & (h_eff == height) & (f_eff == filters)
    x_split, rest_w, rest_iw, total = _x_pass(first, layer, whole)
    strip_filters = np.where(x_split, f_eff, filters)

    full_height_rest = x_split & (rest_w > 0) & (h_eff == height)
    rest_layer = layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w, filters=f_eff)
    rest_columns = _later_pass(full_height_rest, price, rest_layer, hw, first_bad)
    total = _add_where(full_height_rest, total, rest_columns.counts)

    y_split = (rest_w > 0) & (h_eff < height)
    strip_layer = layer.replace(ifmap_w=rest_iw, ofmap_w=rest_w, filters=strip_filters)
    strip = _later_pass(y_split, price, strip_layer, hw, first_bad)
    pass_y = np.floor(height / strip.ofmap_h_eff)
    if np.any(y_split):
        total = _add_where(y_split, total, strip.counts.scaled(pass_y))
    rest_h = height - strip.ofmap_h_eff * pass_y
    corner_ifmap_h = ifmap_extent(rest_h, layer.filter_h, layer.stride)
    corner_layer = layer.replace(ifmap_h=corner_ifmap_h, ifmap_w=rest_iw, ofmap_h=rest_h, ofmap_w=rest_w,
                                 filters=f_eff)
    with_corner = y_split & (rest_h != 0)
    corner = _later_pass(with_corner, price, corner_layer, hw, first_bad)
    total = _add_where(with_corner, total, corner.counts)

    f_split = f_eff < filters
    if not np.any(f_split):
        return MaskedCounts(total, first_bad)
    pass_f = np.floor(filters / f_eff)
    plane = AccessCounts.select(x_split | y_split, total, first.counts)
    repeated = plane.scaled(pass_f)
    rest_f = filters - f_eff * pass_f
    rest_used = rest_f != 0
    rest_filters, rest_bad = on_lanes(f_split & rest_used, partial(_plane_cover, price),
                                      layer.replace(filters=rest_f), hw, (AccessCounts.zeros(), np.False_))
    rest_hit = f_split & rest_used & rest_bad
    if np.any(rest_hit):
        rest_hit = rest_hit & ~first_bad
        if np.any(rest_hit):
            rest_filters = rest_filters.infeasible_where(rest_hit)
    repeated = _add_where(rest_used, repeated, rest_filters)
    return MaskedCounts(AccessCounts.select(f_split, repeated, total), first_bad)
