"""Blocks of a hardware space's grid that cover the points within the area budget, and little else.

A point (J, K, f, i, p) is within the budget when
J*K*pe_um2 + (f + i + p) * 1024 * sram_um2_per_byte <= limit, i.e. when its
SRAM total f + i + p is at most the pair's *room*
room(J, K) = (limit - J*K*pe_um2) / (1024 * sram_um2_per_byte) kB.
For one pair the in-budget SRAM sizes form a simplex in the (f, i, p) cube
(a sixth of it for linear steps), and rooms fall with J*K, so over a fine
grid only a few percent of the cube :func:`~.spaces.grid_shape` describes
lies within the budget.

The grid pass evaluates the cost model on boxes that broadcast (pairs x a
filter range x an ifmap range x a psum range: most terms of the model
depend on a few axes only, so a box costs far less per point than a list
of points). :func:`budget_blocks` covers the in-budget points with such
boxes:

* pairs are sorted by room, largest first, and cut into *groups* of
  consecutive pairs;
* a group's in-budget region (for its largest room) is cut into psum bands
  and, per psum band, filter bands; each (psum band, filter band) box takes
  the ifmap sizes that fit beside the band's smallest psum and filter sizes;
* a box times the group's pairs is cut into blocks of at most ``max_points``
  points (fewer pairs per block, in near-equal parts, then a box split along
  its longest axis).

Larger groups and fewer bands make fewer, larger blocks but evaluate more
over-budget points, and every block costs a fixed overhead (one pass of
Python over the layers and branches: about as much as evaluating
:data:`CALL_POINTS` points) plus a little per row of pairs
(:data:`ROW_POINTS`). :func:`pair_groups` therefore chooses the group
boundaries, and each group's band count from :data:`BAND_COUNTS`, of least
``points + CALL_POINTS * blocks + ROW_POINTS * rows``, by a shortest path
over the pairs sorted by room.

Every in-budget point lies in exactly one block (the boxes of a group are
disjoint, the groups are disjoint), and blocks hold over-budget points too
(the area mask of the pass drops them). The cover needs memory for the
pairs and the size lists only, never for the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.spaces import HardwareSpace

BAND_COUNTS = (1, 2, 3, 4, 6, 8)
"""Most psum bands of a group, and most filter bands per psum band; the cover tries each per group."""
GROUP_BOUNDARIES = 240
"""Most places in the pairs sorted by room where the cover may start a group (evenly spaced in that
order; every place when there are no more pairs than this): bounds the cover's own work on fine spaces."""
CALL_POINTS = 20_000
"""The fixed cost of evaluating one block, in points' worth of evaluation (measured on GoogleNet over the
blocks of the sram16 space of benchmarks/bench_scale.py, one core: 0.24 s per block against 7.9
microseconds per point for energy, 30,000 points' worth; 0.36 s against 28 for E*D, 13,000): between
the two."""
ROW_POINTS = 10
"""The cost of each row of a block (each (filter, ifmap, psum) size triple: numpy's inner loops run along
the block's pairs), in points' worth: about 130 microseconds per row in the same measurement."""
ROOM_SLACK = 1e-9
"""Relative slack on a room when choosing sizes, so rounding never drops an in-budget point (the pass's
exact area test decides)."""


@dataclass(frozen=True)
class Block:
    """Pairs ``pairs`` (indices into the space's pairs, ascending) x SRAM index ranges f, i, p."""

    pairs: np.ndarray
    f: slice
    i: slice
    p: slice

    @property
    def size(self) -> int:
        return int(self.pairs.size * (self.f.stop - self.f.start) * (self.i.stop - self.i.start)
                   * (self.p.stop - self.p.start))


def pair_rooms_kb(space: HardwareSpace, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """SRAM kB each pair may hold within the area limit: (limit - J*K*pe_um2) / (1024 * sram_um2_per_byte)."""
    return (space.limit_um2 - rows * cols * space.pe_um2) / (1024 * space.sram_um2_per_byte)


def _fit_count(sizes: np.ndarray, room: float) -> int:
    """How many of the ascending ``sizes`` are at most ``room`` (with :data:`ROOM_SLACK`)."""
    return int(np.searchsorted(sizes, room * (1 + ROOM_SLACK) + ROOM_SLACK, side="right"))


def _bands(count: int, bands: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into at most ``bands`` consecutive runs of near-equal length."""
    bands = max(1, min(bands, count))
    edges = [round(count * k / bands) for k in range(bands + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _boxes(room: float, f_kb: np.ndarray, i_kb: np.ndarray, p_kb: np.ndarray, bands: int):
    """Disjoint (f, i, p) index boxes covering every size triple with f + i + p <= ``room``."""
    n_p = _fit_count(p_kb, room - f_kb[0] - i_kb[0])
    for p0, p1 in _bands(n_p, bands):
        n_f = _fit_count(f_kb, room - p_kb[p0] - i_kb[0])
        for f0, f1 in _bands(n_f, bands):
            n_i = _fit_count(i_kb, room - p_kb[p0] - f_kb[f0])
            if n_i:
                yield slice(f0, f1), slice(0, n_i), slice(p0, p1)


def _split(box: tuple[slice, slice, slice], max_points: int):
    """``box`` cut along its longest axis until each part has at most ``max_points`` points."""
    lengths = [s.stop - s.start for s in box]
    if math.prod(lengths) <= max_points or max(lengths) == 1:
        yield box
        return
    axis = int(np.argmax(lengths))
    s = box[axis]
    middle = s.start + lengths[axis] // 2
    for part in (slice(s.start, middle), slice(middle, s.stop)):
        yield from _split(tuple(part if a == axis else box[a] for a in range(3)), max_points)


def _parts(room: float, sizes, max_points: int, bands: int) -> list[tuple[slice, slice, slice]]:
    """The boxes of a group whose largest room is ``room``, cut to at most ``max_points`` points per pair."""
    return [part for box in _boxes(room, *sizes, bands) for part in _split(box, max_points)]


def _box_points(part: tuple[slice, slice, slice]) -> int:
    return math.prod(s.stop - s.start for s in part)


def _group_costs(parts: list[tuple[slice, slice, slice]], pairs: np.ndarray, max_points: int) -> np.ndarray:
    """``points + CALL_POINTS * blocks + ROW_POINTS * rows`` of a group of ``pairs`` pairs (an array of
    counts) covered by ``parts``, each part cut into blocks of at most ``max_points`` points."""
    if not parts:
        return np.zeros(pairs.size)
    per_pair = np.array([_box_points(part) for part in parts])
    blocks = -(-pairs[:, None] // np.maximum(1, max_points // per_pair)[None, :])
    return (pairs[:, None] * per_pair + blocks * (CALL_POINTS + ROW_POINTS * per_pair)).sum(axis=1)


def _fit_signature(room: float, sizes) -> bytes:
    """For every (filter, ifmap) size pair, how many psum sizes fit beside it in ``room``. Rooms of equal
    signature have the same in-budget triples, hence (rounding at a size's edge aside) the same boxes, and
    share one cost estimate; the blocks themselves are built from each group's own room."""
    f_kb, i_kb, p_kb = sizes
    rest = room - f_kb[:, None] - i_kb[None, :]
    return np.searchsorted(p_kb, rest * (1 + ROOM_SLACK) + ROOM_SLACK, side="right").tobytes()


def pair_groups(rooms: np.ndarray, sizes, max_points: int) -> list[tuple[np.ndarray, int]]:
    """Pair indices sorted by room (largest first, ties in grid order) cut into groups, each with its band
    count, of least total cost (:func:`_group_costs`): a shortest path over the group boundaries (at most
    :data:`GROUP_BOUNDARIES`), ties to the one found first. Pairs with no room at all are left out."""
    order = np.lexsort((np.arange(rooms.size), -rooms))
    order = order[rooms[order] > 0]
    if order.size == 0:
        return []
    places = np.unique(np.linspace(0, order.size, min(order.size, GROUP_BOUNDARIES) + 1).round().astype(int))
    gaps = np.unique((places[None, :] - places[:, None])[np.triu_indices(places.size, 1)])
    best = np.full(places.size, np.inf)
    best[0] = 0.0
    came_from = np.zeros(places.size, dtype=int)
    bands_of = np.zeros(places.size, dtype=int)
    least: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # signature -> least cost per gap, its bands
    for a in range(places.size - 1):
        room = float(rooms[order[places[a]]])
        key = _fit_signature(room, sizes)
        if key not in least:
            costs = np.array([_group_costs(_parts(room, sizes, max_points, bands), gaps, max_points)
                              for bands in BAND_COUNTS])
            pick = np.argmin(costs, axis=0)
            least[key] = costs[pick, np.arange(gaps.size)], np.asarray(BAND_COUNTS)[pick]
        cost, bands = (x[np.searchsorted(gaps, places[a + 1:] - places[a])] for x in least[key])
        total = best[a] + cost
        better = total < best[a + 1:]
        best[a + 1:][better] = total[better]
        came_from[a + 1:][better] = a
        bands_of[a + 1:][better] = bands[better]
    groups, b = [], places.size - 1
    while b > 0:
        a = came_from[b]
        groups.append((order[places[a]:places[b]], int(bands_of[b])))
        b = a
    return groups[::-1]


def budget_blocks(space: HardwareSpace, max_points: int = 300_000, ifmap: int | None = None):
    """Yield :class:`Block` s of at most ``max_points`` points covering every in-budget point once (with
    ``ifmap``, an index into the ifmap SRAM sizes: every in-budget point of that size, each block of that
    size alone).

    A block never exceeds ``max_points`` (a single pair times a single SRAM
    triple is the smallest block, 1 point). The groups and their band
    counts are those of least estimated cost (:func:`pair_groups`): which
    ones changes the work, never a result.
    """
    rows, cols = space.array_pairs()
    sizes = tuple(np.asarray(s, dtype=float) for s in space.fitting_sizes())
    first_ifmap = 0 if ifmap is None else int(ifmap)
    if ifmap is not None:
        sizes = (sizes[0], sizes[1][first_ifmap:first_ifmap + 1], sizes[2])
    if not (rows.size and all(s.size for s in sizes)):
        return
    max_points = max(1, int(max_points))
    rooms = pair_rooms_kb(space, rows, cols)
    for group, bands in pair_groups(rooms, sizes, max_points):
        for f, i, p in _parts(float(rooms[group[0]]), sizes, max_points, bands):
            blocks = -(-group.size // max(1, max_points // _box_points((f, i, p))))
            for pairs in np.array_split(group, blocks):  # near-equal blocks: none with a few pairs only
                yield Block(np.sort(pairs), f, slice(i.start + first_ifmap, i.stop + first_ifmap), p)


def in_budget_points(space: HardwareSpace) -> int:
    """How many grid points lie within the area budget (registers aside): sum over pairs and filter sizes
    of the (ifmap, psum) size pairs that fit the rest of the pair's room."""
    rows, cols = space.array_pairs()
    f_kb, i_kb, p_kb = (np.asarray(s, dtype=float) for s in space.fitting_sizes())
    if not (rows.size and f_kb.size and i_kb.size and p_kb.size):
        return 0
    rooms = pair_rooms_kb(space, rows, cols)
    total = 0
    for f in f_kb:
        rest = rooms - f  # per pair, kB left for ifmap + psum
        for i in i_kb:
            total += int(np.searchsorted(p_kb, (rest - i) * (1 + ROOM_SLACK) + ROOM_SLACK, side="right").sum())
    return total
