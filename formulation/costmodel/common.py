"""Shared vocabulary of the branch cost functions.

Every branch function takes a :class:`LayerShape` and an :class:`ArrayHardware`
and returns :class:`AccessCounts`. All fields may be numpy arrays that
broadcast against each other: a hardware axis given with shape ``(n, 1, 1)``
and another with shape ``(1, m, 1)`` make every intermediate only as large as
the axes it really depends on. That is what makes the model cheap to
enumerate, and it tells the MIP which axes each term couples.

Conventions (docs/model.md sections 2 and 3.8, as the reference implementation of DeepOpt):

* Counts are in *elements*, not bits; cycles are clock cycles.
* ``inf`` marks a count the branch cannot produce on that hardware (a working
  set that does not fit). Energy then becomes ``inf`` too; for ``ZiXYZo`` the
  cycles alone may be ``inf`` (delay infeasible, energy finite).
* Functions never branch in Python on a value that may be an array: use
  ``np.where`` (both sides are evaluated; wrap with :func:`quiet` so masked
  lanes may divide by zero without warnings).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import partial, wraps

import numpy as np

# The shape type belongs to the workload (formulation/layers.py); the branch
# functions import it from here with the rest of their vocabulary.
from deepopt_mip.formulation.layers import LayerShape, Number  # noqa: F401


class _Quiet:
    """Silence numpy's floating-point warnings in masked lanes.

    Usable as ``with quiet:`` (re-entrant, any number of times) and as a
    decorator ``@quiet``. A plain ``np.errstate`` object cannot be entered twice.
    Only the outermost entry sets numpy's error state (a nested one would set
    the same state again: the cost model enters it hundreds of times per layer).
    """

    def __init__(self) -> None:
        self._active: list[np.errstate | None] = []

    def __enter__(self) -> None:
        state = None
        if not self._active:
            state = np.errstate(divide="ignore", invalid="ignore", over="ignore")
            state.__enter__()
        self._active.append(state)

    def __exit__(self, *exc) -> None:
        state = self._active.pop()
        if state is not None:
            state.__exit__(*exc)

    def __call__(self, function):
        @wraps(function)
        def silenced(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        return silenced


quiet = _Quiet()


@dataclass(frozen=True)
class ArrayHardware:
    """The accelerator, every field a scalar or a broadcastable array.

    SRAM sizes are in bits, as in the reference's branch functions.
    """

    rows: Number  # J, PE rows
    cols: Number  # K, PE columns
    fsram_bits: Number
    isram_bits: Number
    psram_bits: Number
    bits_filter: Number = 8
    bits_ifmap: Number = 8
    bits_psum: Number = 32
    bits_ofmap: Number = 8
    dram_bw_bits_per_cycle: Number = 128
    dram_block_bits: Number = 128


STALL_NOT_COMPUTED = np.float64(np.nan)
"""``cycles_stall`` of counts computed with ``with_stall=False`` (every branch function takes it): a
caller that needs no delay (an energy-only metric) skips the stall model, the one part of the counts
that depends on all five hardware axes. NaN, so that a delay derived from it by mistake is NaN."""


def with_stall_or_not(function, with_stall: bool):
    """``function`` itself, or ``function`` with ``with_stall=False`` bound (for the covers and
    :func:`on_lanes`, which call it as ``function(layer, hw)``)."""
    return function if with_stall else partial(function, with_stall=False)


@dataclass(frozen=True)
class AccessCounts:
    """What one branch costs on one layer: three cycle parts and six access counts."""

    cycles_ideal: Number
    cycles_stall: Number
    cycles_write: Number
    sram_filter: Number
    sram_ifmap: Number
    sram_psum: Number
    dram_filter: Number
    dram_ifmap: Number
    dram_ofmap: Number

    @classmethod
    def zeros(cls) -> "AccessCounts":
        return cls(*([0.0] * len(_COUNT_NAMES)))

    def values(self) -> list[Number]:
        return [getattr(self, name) for name in _COUNT_NAMES]

    def map(self, fn) -> "AccessCounts":
        """Apply ``fn`` to every field."""
        return AccessCounts(*(fn(v) for v in self.values()))

    def scaled(self, factor: Number) -> "AccessCounts":
        return self.map(lambda v: v * factor)

    def __add__(self, other: "AccessCounts") -> "AccessCounts":
        return AccessCounts(*(a + b for a, b in zip(self.values(), other.values())))

    @staticmethod
    def select(condition: Number, if_true: "AccessCounts", if_false: "AccessCounts") -> "AccessCounts":
        """Field-wise ``np.where(condition, if_true, if_false)``.

        Where ``condition`` holds everywhere (nowhere), ``if_true`` (``if_false``) itself: the same
        values, left at the shapes of their own axes instead of being broadcast to the condition's.
        """
        condition = np.asarray(condition, dtype=bool)
        if condition.all():
            return if_true
        if not condition.any():
            return if_false
        return AccessCounts(
            *(np.where(condition, a, b) for a, b in zip(if_true.values(), if_false.values()))
        )

    def infeasible_where(self, condition: Number) -> "AccessCounts":
        """Every field ``inf`` where ``condition`` holds (a working set does not fit)."""
        return self.map(lambda v: np.where(condition, np.inf, v))

    @property
    def cycles_total(self) -> Number:
        return self.cycles_ideal + self.cycles_stall + self.cycles_write


_COUNT_NAMES = tuple(f.name for f in fields(AccessCounts))


@dataclass(frozen=True)
class MaskedCounts:
    """A branch's counts with the lanes where it cannot run kept apart.

    ``counts`` are the raw counts in every lane (meaningless, possibly NaN,
    where ``infeasible`` holds); the branch's answer is :meth:`resolved`,
    ``inf`` in every field where ``infeasible`` holds. Keeping the mask apart
    lets a consumer apply it to what it derives from the counts (energy and
    delay: two arrays instead of nine) and keeps the counts only as large as
    the hardware axes they depend on.
    """

    counts: AccessCounts
    infeasible: Number

    def resolved(self) -> AccessCounts:
        return self.counts.infeasible_where(self.infeasible)


def _leaves_map(value, fn):
    """``value`` with ``fn`` applied to every array or number in it (through dataclasses and tuples)."""
    if isinstance(value, (LayerShape, ArrayHardware, AccessCounts, MaskedCounts)):
        return type(value)(*(_leaves_map(getattr(value, f.name), fn) for f in fields(value)))
    if isinstance(value, tuple):
        items = [_leaves_map(v, fn) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return fn(value)


COMPACT_MIN_LANES = 256
"""The smallest mask (in lanes) that :func:`on_lanes` compacts; a smaller call costs little anyway."""
COMPACT_MAX_SHARE = 0.5
"""The largest share of a mask's lanes that may hold for :func:`on_lanes` to compact it (beyond it,
gathering and scattering cost more than they save; measured on GoogleNet over the built-in space)."""


def on_lanes(mask: Number, function, layer: LayerShape, hw: ArrayHardware, empty=None):
    """``function(layer, hw)`` where ``mask`` holds, evaluated there only when that pays.

    For a caller that uses a call's result only where ``mask`` holds (every
    other lane is masked out afterwards): the values there are exactly those
    of ``function(layer, hw)`` on all lanes, each lane being computed on its
    own; the values elsewhere are unspecified. Where the mask holds nowhere
    and ``empty`` is given, ``function`` is not called and ``empty`` (a
    result of the same structure, e.g. of zeros) is returned.

    The mask's axes of extent > 1 are its *lane axes*. When the mask has at
    least :data:`COMPACT_MIN_LANES` lanes and holds on at most
    :data:`COMPACT_MAX_SHARE` of them, every input field is gathered at the
    lanes where it holds, the lane axes collapsed into one (the last of them;
    the others become 1) while every other axis keeps its extent, so the call
    still broadcasts over those axes; each array of the result (``function``
    may return a number, an array, a dataclass of this module or a (named)
    tuple of these) is scattered back into an array of zeros (False) whose
    lane axes have the mask's extents. Otherwise ``function`` runs on every lane.
    """
    mask = np.asarray(mask, dtype=bool)
    used = np.count_nonzero(mask)
    if used == 0 and empty is not None:
        return empty
    if mask.size < COMPACT_MIN_LANES or used > COMPACT_MAX_SHARE * mask.size:
        return function(layer, hw)
    ndim = max([mask.ndim] + [np.ndim(getattr(x, f.name)) for x in (layer, hw) for f in fields(x)])
    mask = mask.reshape((1,) * (ndim - mask.ndim) + mask.shape)
    lane_axes = [axis for axis in range(ndim) if mask.shape[axis] > 1]
    if not lane_axes:
        return function(layer, hw)
    # Work with the lane axes last (a no-op in the usual layouts, where they are).
    order = [axis for axis in range(ndim) if axis not in lane_axes] + lane_axes
    moved = order != list(range(ndim))
    lanes_shape = tuple(mask.shape[axis] for axis in lane_axes)
    k = len(lane_axes)
    flat = np.flatnonzero(mask)
    per_axis = np.unravel_index(flat, lanes_shape)
    count = flat.size

    def as_ndim(value):
        value = np.asarray(value)
        return value.reshape((1,) * (ndim - value.ndim) + value.shape)

    def gather(value):
        if np.ndim(value) == 0:
            return value
        value = as_ndim(value)
        extents = value.shape[-k:]
        if all(e == 1 for e in extents):
            return value
        if extents == lanes_shape:
            picked = value.reshape(value.shape[:-k] + (-1,))[..., flat]
        else:
            picked = value[(Ellipsis, *(i if e > 1 else 0 for i, e in zip(per_axis, extents)))]
        return picked.reshape(value.shape[:-k] + (1,) * (k - 1) + (count,))

    def scatter(value):
        value = as_ndim(value)
        others = value.shape[:-k]
        out = np.zeros(others + (mask.size,), dtype=value.dtype)
        out[..., flat] = np.broadcast_to(value, others + (1,) * (k - 1) + (count,)).reshape(others + (count,))
        out = out.reshape(others + lanes_shape)
        return out.transpose(np.argsort(order)) if moved else out

    if moved:
        layer, hw = (_leaves_map(x, lambda v: v if np.ndim(v) == 0 else as_ndim(v).transpose(order))
                     for x in (layer, hw))
    result = function(_leaves_map(layer, gather), _leaves_map(hw, gather))
    return _leaves_map(result, scatter)


def unit_volume(layer: LayerShape, hw: ArrayHardware) -> tuple[Number, Number]:
    """Paper eq. 1: channels and filters processed per cycle by the J x K array.

    C_uv = min(floor(J / S), C),  F_uv = min(K, F).
    """
    channels_uv = np.minimum(np.floor(hw.rows / layer.filter_w), layer.channels)
    filters_uv = np.minimum(hw.cols, layer.filters)
    return channels_uv, filters_uv


def ofmap_extent(ifmap_extent: Number, filter_extent: Number, stride: Number) -> Number:
    """Output positions along one axis: (W - S) / U + 1.

    Deliberately *not* floored: the reference evaluates this expression as a
    real number (e.g. 28.5 for ResNet-50's 1x1 stride-2 convolutions over a
    56-wide ifmap), and its counts inherit the fraction.
    """
    return (ifmap_extent - filter_extent) / stride + 1


def dram_transfer_cycles(data_bits: Number, hw: ArrayHardware) -> Number:
    """Cycles to move ``data_bits`` over the DRAM link.

    Data move in whole blocks: ceil(ceil(bits / block) * block / bandwidth).
    """
    loaded_bits = np.ceil(data_bits / hw.dram_block_bits) * hw.dram_block_bits
    return np.ceil(loaded_bits / hw.dram_bw_bits_per_cycle)


def ofmap_write_cycles(ofmap_elements: Number, hw: ArrayHardware) -> Number:
    """Cycles to write ``ofmap_elements`` finished outputs back to DRAM."""
    return dram_transfer_cycles(ofmap_elements * hw.bits_ofmap, hw)


def stall(load_cycles: Number, compute_cycles: Number) -> Number:
    """Stall of a phase whose transfer overlaps its compute: max(0, load - compute)."""
    return np.maximum(0, load_cycles - compute_cycles)


def rows_stall_and_slack(layer: LayerShape, hw: ArrayHardware, c_uv: Number, f_uv: Number, ifmap_w: Number,
                         row_cycles: Number, rows: Number) -> tuple[Number, Number, Number]:
    """Stall and slack of a block computed row by row, ``rows`` ofmap rows of ``row_cycles`` each, with
    the X and Y levels of the XYZiZo and XYZoZi nests (reference ``XtoYtoZtoF`` and ``XtoYtoFtoZ``).

    * X: the first row loads the filter rows, ``R S C_uv F_uv b_f`` bits, and ``R`` ifmap rows of
      ``ifmap_w`` columns: stall ``max(0, load - row_cycles)``, slack ``row_cycles - load`` where it
      does not stall (else 0);
    * Y: each of the ``rows - 1`` next rows loads ``U`` ifmap rows: stall
      ``max(0, load - row_cycles) (rows - 1)``, slack ``(row_cycles - load) (rows - 1)`` where that
      stall is 0 (else 0).

    Returns ``(filter bits of the first row, stall, slack)``, stall and slack summed over X and Y.
    """
    filter_bits = layer.filter_h * layer.filter_w * c_uv * f_uv * hw.bits_filter
    first_row_load = dram_transfer_cycles(filter_bits + layer.filter_h * ifmap_w * c_uv * hw.bits_ifmap, hw)
    stall_first_row = stall(first_row_load, row_cycles)
    slack_first_row = np.where(stall_first_row == 0, row_cycles - first_row_load, 0)

    next_row_load = dram_transfer_cycles(layer.stride * ifmap_w * c_uv * hw.bits_ifmap, hw)
    stall_next_rows = stall(next_row_load, row_cycles) * (rows - 1)
    slack_next_rows = np.where(stall_next_rows == 0, (row_cycles - next_row_load) * (rows - 1), 0)
    return filter_bits, stall_first_row + stall_next_rows, slack_first_row + slack_next_rows


def ifmap_extent(ofmap_extent_: Number, filter_extent: Number, stride: Number) -> Number:
    """Ifmap positions along one axis that produce ``ofmap_extent_`` outputs: (G - 1) * U + S.

    The inverse of :func:`ofmap_extent` for a whole number of outputs; used for
    the ifmap window of a subvolume (or strip) cut from the ofmap.
    """
    return (ofmap_extent_ - 1) * stride + filter_extent


def filter_dram_with_reloads(layer: LayerShape, hw: ArrayHardware, planes: Number, steps: Number) -> Number:
    """Filter elements fetched from DRAM when ``planes`` R x S filter planes serve ``steps`` steps.

    The filter SRAM keeps ``floor(fSRAM / (R S b_f))`` planes. If all
    ``planes`` fit, each weight is fetched once (``S R planes``); otherwise the
    planes that did not stay are fetched again for every step after the first
    (the steps alternate direction, so the resident planes are reused):
    ``S R planes + S R (planes - resident) (steps - 1)``.
    """
    r, s = layer.filter_h, layer.filter_w
    resident = np.floor(hw.fsram_bits / (r * s * hw.bits_filter))
    once = s * r * planes
    return np.where(resident >= planes, once, once + s * r * (planes - resident) * (steps - 1))


def ifmap_dram_over_filter_groups(
    per_group: Number, whole_ifmap: Number, resident_unit: Number, groups: Number, hw: ArrayHardware
) -> Number:
    """Ifmap DRAM fetches when the filters are the outermost loop, in ``groups`` groups.

    ``per_group`` is the ifmap traffic of one filter group, ``whole_ifmap`` the
    ifmap elements the layer (or strip) touches and ``resident_unit`` the
    elements of one unit the ifmap SRAM keeps between groups (``R C`` columns
    or ``R W`` row bands). If the whole ifmap fits the ifmap SRAM it is fetched
    once; with a single group (``ceil(groups) == 1``) there is nothing to reuse;
    otherwise each later group fetches the first group's traffic minus the
    ``resident_unit * floor(iSRAM / (resident_unit b_i))`` elements still held
    (reverse-order traversal, paper eq. 11), ``ceil(groups - 1)`` times.
    """
    whole_fits = hw.isram_bits >= whole_ifmap * hw.bits_ifmap
    resident = resident_unit * np.floor(hw.isram_bits / (resident_unit * hw.bits_ifmap))
    reused = per_group + (per_group - resident) * np.ceil(groups - 1)
    return np.where(whole_fits, whole_ifmap, np.where(np.ceil(groups) == 1, per_group, reused))


def stall_over_filter_groups(
    group_stall: Number, group_slack: Number, group_filter_bits: Number, groups: Number, hw: ArrayHardware
) -> Number:
    """Stall of ``groups`` filter groups (fractional count) each stalling ``group_stall`` cycles.

    The next group's ``group_filter_bits`` of filters can be prefetched into the
    filter SRAM space beyond one group's filters, during the ``group_slack``
    cycles of the group before: each later group then stalls
    ``max(0, group_stall - min(group_slack, prefetch cycles))``, and the total
    is ``group_stall + ceil(that * (groups - 1))``. Without room to prefetch
    (``fSRAM <= group_filter_bits``) or without slack every group stalls in
    full: ``ceil(group_stall * groups)``.
    """
    cannot_prefetch = (hw.fsram_bits <= group_filter_bits) | (group_slack <= 0)
    spare_filter_bits = hw.fsram_bits - group_filter_bits
    prefetch_cycles = dram_transfer_cycles(np.minimum(group_filter_bits, spare_filter_bits), hw)
    later_group_stall = stall(group_stall, np.minimum(group_slack, prefetch_cycles))
    with_prefetch = group_stall + np.ceil(later_group_stall * (groups - 1))
    return np.where(cannot_prefetch, np.ceil(group_stall * groups), with_prefetch)
