"""A study's bounds in bounded memory: stream over the in-budget blocks and keep a window of candidates.

:func:`~deepopt_mip.formulation.study_bounds.study_bounds` holds arrays of
the whole grid cube per network. The searches of a study (bound and prune in
the enumeration, lazy offering in the MIP) need only the points in
increasing bound, as far as their proof reaches. :func:`study_stream`
evaluates the blocks of :func:`~deepopt_mip.formulation.grid_blocks.budget_blocks`
(the same blocks for every network), each network with the same
:func:`~deepopt_mip.formulation.grid_stream.block_sums` as the single-network
pass and its bound exactly as :mod:`~deepopt_mip.formulation.study_bounds`
computes it (:func:`block_study_bounds`: the separable exact pass, or
:func:`~.study_bounds.corner_bound` of the ideal corner with the caps),
weighted and summed in the networks' order, so every bound is the same bit
for bit.

Points are ordered by the key (bound, area, flat index), the order of
:meth:`~.study_bounds.StudyBounds.candidate_order`. A pass keeps the points
of finite bound whose key follows a given key (none for the first pass) and,
of those, the ``window`` least keys and the least key it drops
(:attr:`StudyWindow.beyond` is that key's bound, every dropped point's bound
is at least it; ``inf`` when nothing was dropped). A search that reaches the
end of the window without a proof calls :meth:`StudyWindow.extend`: one more
pass keeps the next keys after the last kept one, as many again as are
kept (the window doubles), until the proof holds or every point is kept.
So no answer depends on the window size, only the number of passes does.

The first pass also counts the valid points (within the budget, registers
fit) and, per capped or product network, the least delay and energy of its
ideal corner over them (the one-line messages of
:func:`~.study_bounds.infeasible_study_message`).

Peak memory: each worker holds one block of at most ``max_points`` points,
one network at a time, about :data:`STUDY_BYTES_PER_POINT` bytes per point;
the parent holds the window, about :data:`KEPT_BYTES_PER_POINT` bytes per
kept point (:func:`study_stream_memory_bytes`). Neither grows with the grid.
The study frontier (``pareto`` with a study) streams the same blocks with a
screen of its own (:mod:`~deepopt_mip.formulation.study_corners`).

The window's passes take the per-block work and the blocks
(:func:`window_stream`): a study with fusion keeps the same window over the
slabs of the fusion program
(:mod:`~deepopt_mip.formulation.study_fusion_stream`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from deepopt_mip.formulation.grid_blocks import Block
from deepopt_mip.formulation.grid_stream import BYTES_PER_POINT, block_sums, stream_blocks, stream_memory_bytes
from deepopt_mip.formulation.grid_sums import Progress, distinct_layers, is_separable
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.study_bounds import corner_bound, exact_per_network

WINDOW_POINTS = 20_000
"""Candidates the first pass keeps (later passes keep as many again as are kept): about 2.5 MB in the parent.
Every study of ``benchmarks/bench_studies.py --scale`` reached its proof within it (one pass)."""
KEY_BYTES_PER_POINT = 64
"""Bytes a worker holds per block point across the networks: the study's running bound, the points' indices
and areas and the key selection's temporaries (8 arrays of 8 bytes)."""
STUDY_BYTES_PER_POINT = BYTES_PER_POINT + KEY_BYTES_PER_POINT
"""Peak bytes a worker holds per block point: one network's evaluation (:data:`~.grid_stream.BYTES_PER_POINT`)
and :data:`KEY_BYTES_PER_POINT`. Measured: 256 MB peak resident memory with one worker for a two-network
study on a space of 1.25 M block points (``bench_studies.py --scale``, ``sram16``), against the estimate's
0.40 GB."""
KEPT_BYTES_PER_POINT = 128
"""Peak bytes the parent holds per kept point: the window's index, bound and area (24 bytes) and, while
merging a block's keys, both windows and the sort's permutation."""


def study_stream_memory_bytes(max_points: int, workers: int, window: int) -> int:
    """Estimated peak memory of :func:`study_stream`: the streaming pass's workers
    (:func:`~.grid_stream.stream_memory_bytes` at :data:`STUDY_BYTES_PER_POINT`) and the parent's window."""
    return stream_memory_bytes(max_points, workers, STUDY_BYTES_PER_POINT) + KEPT_BYTES_PER_POINT * window


@dataclass(frozen=True)
class BlockBounds:
    """One block's kept keys (flat index, study bound, area in um^2; least key first), its valid points, its
    points of finite bound, and per capped or product network its least corner delay (cycles) and energy (J)
    over its valid points."""

    index: np.ndarray
    lower: np.ndarray
    area_um2: np.ndarray
    valid_points: int
    finite_points: int
    least_delay_cycles: dict[str, float]
    least_energy_j: dict[str, float]


def after_key(lower: np.ndarray, area: np.ndarray, index: np.ndarray, key: tuple[float, float, int] | None):
    """Where (bound, area, index) follows ``key`` in lexicographic order (everywhere when ``key`` is None)."""
    if key is None:
        return np.ones(lower.size, dtype=bool)
    bound, area_key, index_key = key
    return (lower > bound) | ((lower == bound) & ((area > area_key) | ((area == area_key) & (index > index_key))))


def least_keys(index: np.ndarray, lower: np.ndarray, area: np.ndarray, count: int):
    """The ``count`` least keys (bound, area, index) of the points, least first, as (index, lower, area)."""
    order = np.lexsort((index, area, lower))[:count]
    return index[order], lower[order], area[order]


def block_study_bounds(block: Block, problem: Problem, layers: list, key: tuple[float, float, int] | None,
                       keep: int) -> BlockBounds:
    """Evaluate one block for every network (module docstring) and keep the ``keep`` least keys after ``key``
    among its points of finite bound."""
    space, tech = problem.space, problem.tech
    total = index = area = None
    least_delay, least_energy = {}, {}
    for item, network_layers in zip(problem.networks, layers):
        if exact_per_network(problem, item):
            index, area, (bound,) = block_sums(block, space, network_layers, tech, problem.metric, True)
        else:
            pass_metric = problem.metric if not is_separable(problem.metric, "network") else "edp"
            index, area, sums = block_sums(block, space, network_layers, tech, pass_metric, False)
            e_min, d_min = sums[0], sums[1]
            bound = corner_bound(e_min, d_min, item, problem.metric)
            if index.size:
                least_delay[item.name] = float(np.min(d_min))
                least_energy[item.name] = float(np.min(e_min))
            del sums, e_min, d_min
        weighted = item.weight * bound
        total = weighted if total is None else total + weighted
        del bound, weighted
    finite = np.isfinite(total)
    finite_points = int(finite.sum())
    where = np.flatnonzero(finite & after_key(total, area, index, key))
    kept = least_keys(index[where], total[where], area[where], keep)
    return BlockBounds(*kept, valid_points=int(index.size), finite_points=finite_points,
                       least_delay_cycles=least_delay, least_energy_j=least_energy)


@dataclass
class StudyWindow:
    """The points of finite study bound with the least keys (bound, area, flat index), least first:
    ``index`` (flat grid indices), ``lower`` (the study's bound), ``area_um2``; ``beyond``, the least bound of
    a point left out (``inf`` when every point of finite bound is kept); from the first pass, the valid
    points, the points of finite bound, per capped or product network the least corner delay and energy;
    ``exact`` when the bound is the objective (every network separable and uncapped, no branch limit)."""

    problem: Problem
    index: np.ndarray
    lower: np.ndarray
    area_um2: np.ndarray
    beyond: float
    valid_points: int
    finite_points: int
    least_delay_cycles: dict[str, float]
    least_energy_j: dict[str, float]
    exact: bool
    passes: int = 1
    stream: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        return int(self.index.size)

    @property
    def more(self) -> bool:
        """Whether some point of finite bound is not in the window."""
        return self.size < self.finite_points

    def area_of(self, flat: int) -> float:
        """Area (um^2) of the kept point at flat index ``flat``."""
        return float(self.area_um2[np.flatnonzero(self.index == flat)[0]])

    def extend(self) -> None:
        """One more pass: keep as many more keys as are kept, those following the last kept one."""
        if not self.more:
            return
        found = _pass((float(self.lower[-1]), float(self.area_um2[-1]), int(self.index[-1])), max(self.size, 1),
                      **self.stream)
        self.index = np.concatenate([self.index, found[0]])
        self.lower = np.concatenate([self.lower, found[1]])
        self.area_um2 = np.concatenate([self.area_um2, found[2]])
        self.beyond = found[3]
        self.passes += 1


@dataclass
class PassCounts:
    """What the first pass counts over every block (:class:`StudyWindow`)."""

    valid_points: int = 0
    finite_points: int = 0
    least_delay_cycles: dict[str, float] = field(default_factory=dict)
    least_energy_j: dict[str, float] = field(default_factory=dict)

    def add(self, found: BlockBounds) -> None:
        self.valid_points += found.valid_points
        self.finite_points += found.finite_points
        for mine, theirs in ((self.least_delay_cycles, found.least_delay_cycles),
                             (self.least_energy_j, found.least_energy_j)):
            for name, value in theirs.items():
                mine[name] = min(mine.get(name, math.inf), value)


def _pass(key, keep: int, problem: Problem, block_work, progress: Progress | None, max_points: int,
          workers: int | None, blocks: list[Block] | None = None, bytes_per_point: int = STUDY_BYTES_PER_POINT,
          what: str = "the grid pass", counts: PassCounts | None = None):
    """One pass over the blocks (by default those of :func:`~.grid_blocks.budget_blocks`), each evaluated by
    ``block_work(block, key=, keep=)`` (a :class:`BlockBounds`; ``bytes_per_point`` per block point in a
    worker, its memory checked up front by :func:`~.grid_stream.stream_blocks`, the pass named ``what``):
    the ``keep`` least keys after ``key`` (index, lower, area), the least bound after them (``inf`` if
    none); each block's counts added to ``counts`` (if given)."""
    work = partial(block_work, key=key, keep=keep + 1)
    networks = len(problem.networks)
    scaled = None if progress is None else (lambda done, total: progress(done * networks, total * networks))
    index, lower, area = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    for _, found in stream_blocks(problem.space, work, scaled, max_points, workers, bytes_per_point,
                                  KEPT_BYTES_PER_POINT * (keep + 1), blocks, what):
        index, lower, area = least_keys(np.concatenate([index, found.index]), np.concatenate([lower, found.lower]),
                                        np.concatenate([area, found.area_um2]), keep + 1)
        if counts is not None:
            counts.add(found)
    beyond = float(lower[keep]) if lower.size > keep else math.inf
    return index[:keep], lower[:keep], area[:keep], beyond


def window_stream(problem: Problem, block_work, progress: Progress | None, workers: int | None, window: int,
                  max_points: int, blocks: list[Block] | None = None, bytes_per_point: int = STUDY_BYTES_PER_POINT,
                  what: str = "the grid pass") -> StudyWindow:
    """The first pass of a window over ``blocks`` evaluated by ``block_work`` (:func:`_pass`): the ``window``
    least keys and the counts; its :meth:`~StudyWindow.extend` passes over the same blocks again."""
    if window < 1:
        raise ValueError(f"a window holds at least 1 point, got {window}")
    stream = dict(problem=problem, block_work=block_work, progress=progress, max_points=max_points,
                  workers=workers, blocks=blocks, bytes_per_point=bytes_per_point, what=what)
    counts = PassCounts()
    index, lower, area, beyond = _pass(None, window, counts=counts, **stream)
    exact = problem.max_branches is None and all(exact_per_network(problem, n) for n in problem.networks)
    return StudyWindow(problem=problem, index=index, lower=lower, area_um2=area, beyond=beyond,
                       valid_points=counts.valid_points, finite_points=counts.finite_points,
                       least_delay_cycles=counts.least_delay_cycles, least_energy_j=counts.least_energy_j,
                       exact=exact, stream=stream)


def study_stream(problem: Problem, progress: Progress | None = None, workers: int | None = None,
                 window: int = WINDOW_POINTS, max_points: int = 300_000) -> StudyWindow:
    """The first pass (module docstring): the ``window`` least keys and the counts, each block evaluated by
    :func:`block_study_bounds`."""
    layers = [distinct_layers(item.network) for item in problem.networks]
    return window_stream(problem, partial(block_study_bounds, problem=problem, layers=layers), progress, workers,
                         window, max_points)
