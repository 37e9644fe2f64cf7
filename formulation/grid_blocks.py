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

* pairs are sorted by room, largest first, and cut into *groups* whose
  rooms lie within :data:`GROUP_ROOM_RATIO` of the group's largest;
* a group's in-budget region (for its largest room) is cut into psum bands
  and, per psum band, filter bands; each (psum band, filter band) box takes
  the ifmap sizes that fit beside the band's smallest psum and filter sizes;
* a box times the group's pairs is cut into blocks of at most ``max_points``
  points (fewer pairs per block, then a box split along its longest axis).

Finer groups and bands evaluate fewer over-budget points but make more,
smaller blocks, and every block costs a fixed overhead (one pass of Python
over the layers and branches: about as much as evaluating
:data:`CALL_POINTS` points). :func:`budget_blocks` therefore tries a few
group ratios and band counts and keeps the cover of least
``points + CALL_POINTS * blocks``.

Every in-budget point lies in exactly one block (the boxes of a group are
disjoint, the groups are disjoint), and blocks hold over-budget points too
(the area mask of the pass drops them). The cover needs memory for the
pairs and the size lists only, never for the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.spaces import HardwareSpace

GROUP_ROOM_RATIOS = (0.0, 0.5, 0.7, 0.85, 0.93)
"""Pairs of one group have rooms within this factor of the group's largest (the group's boxes are built
for the largest room, so a pair of room r wastes the points between r and the largest room); 0 makes one
group of all pairs. The cover tries each."""
BAND_COUNTS = (1, 2, 3, 4, 6, 8)
"""Most psum bands of a group, and most filter bands per psum band; the cover tries each."""
CALL_POINTS = 12_000
"""The fixed cost of evaluating one block, in points' worth of evaluation (measured on AlexNet and
GoogleNet: about 35 ms and 200 ms per block against 3 and 17 microseconds per point on one core)."""
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
    edges = np.linspace(0, count, bands + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


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
    if int(np.prod(lengths)) <= max_points or max(lengths) == 1:
        yield box
        return
    axis = int(np.argmax(lengths))
    s = box[axis]
    middle = s.start + lengths[axis] // 2
    for part in (slice(s.start, middle), slice(middle, s.stop)):
        yield from _split(tuple(part if a == axis else box[a] for a in range(3)), max_points)


def pair_groups(rooms: np.ndarray, ratio: float) -> list[np.ndarray]:
    """Pair indices sorted by room (largest first, ties in grid order), cut into groups whose rooms lie
    within ``ratio`` of their largest; pairs with no room at all are left out."""
    order = np.lexsort((np.arange(rooms.size), -rooms))
    order = order[rooms[order] > 0]
    groups, start = [], 0
    while start < order.size:
        top = rooms[order[start]]
        stop = start + int(np.searchsorted(-rooms[order[start:]], -ratio * top, side="right"))
        stop = max(stop, start + 1)
        groups.append(order[start:stop])
        start = stop
    return groups


def _cover(rooms, sizes, max_points: int, ratio: float, bands: int):
    """(group, box part, pairs per block) of one cover (see the module docstring)."""
    for group in pair_groups(rooms, ratio):
        for box in _boxes(float(rooms[group[0]]), *sizes, bands):
            for part in _split(box, max_points):
                per_pair = int(np.prod([s.stop - s.start for s in part]))
                yield group, part, max(1, max_points // per_pair)


def _cover_cost(rooms, sizes, max_points: int, ratio: float, bands: int) -> int:
    """``points + CALL_POINTS * blocks`` of a cover."""
    cost = 0
    for group, part, step in _cover(rooms, sizes, max_points, ratio, bands):
        blocks = -(-group.size // step)
        cost += group.size * int(np.prod([s.stop - s.start for s in part])) + CALL_POINTS * blocks
    return cost


def budget_blocks(space: HardwareSpace, max_points: int = 300_000):
    """Yield :class:`Block` s of at most ``max_points`` points covering every in-budget point once.

    A block never exceeds ``max_points`` (a single pair times a single SRAM
    triple is the smallest block, 1 point). Of the covers for every
    :data:`GROUP_ROOM_RATIOS` x :data:`BAND_COUNTS`, the one of least
    estimated cost is used (the first on a tie): which one changes the
    work, never a result.
    """
    rows, cols = space.array_pairs()
    sizes = tuple(np.asarray(s, dtype=float) for s in space.fitting_sizes())
    if not (rows.size and all(s.size for s in sizes)):
        return
    max_points = max(1, int(max_points))
    rooms = pair_rooms_kb(space, rows, cols)
    choices = [(ratio, bands) for ratio in GROUP_ROOM_RATIOS for bands in BAND_COUNTS]
    ratio, bands = min(choices, key=lambda c: _cover_cost(rooms, sizes, max_points, *c))
    for group, part, step in _cover(rooms, sizes, max_points, ratio, bands):
        for start in range(0, group.size, step):
            yield Block(np.sort(group[start:start + step]), *part)


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
