"""The grid pass in bounded memory: stream over the in-budget blocks and keep only the candidates.

:func:`~deepopt_mip.formulation.grid_sums.grid_sums` returns arrays of the
whole grid cube. A search for the best ``k`` points (and the worst one)
needs far less: :func:`stream_candidates` evaluates the blocks of
:func:`~deepopt_mip.formulation.grid_blocks.budget_blocks` (the points within
the area budget, never the over-budget cube), each with the same
:func:`~deepopt_mip.formulation.grid_sums.chunk_sums` as the full pass (so
every number is the same, bit for bit), and keeps per block only the points
that can still be among the best ``k`` or be the worst (:func:`keep_candidates`).
With ``prune`` it skips what lower bounds (:mod:`~deepopt_mip.formulation.grid_bounds`,
docs/model.md 6.1) show cannot be among the best ``k`` (:func:`stream_candidates`).

Peak memory: each worker holds one block of at most ``max_points`` points
and the cost model's temporaries on it, about :data:`BYTES_PER_POINT` bytes
per point (:func:`stream_memory_bytes`); the parent holds the candidates.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_blocks import Block, budget_blocks
from deepopt_mip.formulation.grid_bounds import (ROUNDING_MARGIN, PairBounds, block_lower_bound,
                                                least_energy_per_bit, pair_bounds, point_lower_bounds)
from deepopt_mip.formulation.grid_sums import (Progress, _start_worker, chunk_sums, distinct_layers, sums_bounds,
                                              worker_count, worker_map)
from deepopt_mip.formulation.memory import check_memory
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.spaces import HardwareSpace, grid_shape
from deepopt_mip.formulation.technology import Technology

BYTES_PER_POINT = 600
"""Peak bytes a worker holds per point of its block (the cost model's temporaries and 1 or 8 running
sums; measured on AlexNet and GoogleNet, energy and E*D, blocks of 300 000 points: 340-450 bytes)."""
PRUNE_BLOCK_POINTS = 48_000
"""Most points of a block of a pruned pass (a few times a block's fixed cost, ``grid_blocks.CALL_POINTS``):
smaller blocks can be skipped more finely and give an incumbent sooner."""
PRUNE_AUTO_POINTS = 500_000
"""``prune=None`` (auto) prunes a pass whose in-budget blocks hold more points than this. Below it (the
paper's grids: about 100,000 block points at 16 mm^2, in two blocks) pruning saves no time (the bounds
leave 40-90 % of the points and the first blocks must be evaluated to find an incumbent;
benchmarks/bench_scale.py) and would drop
the worst point, so the whole pass runs; above it (fine spaces) it evaluates a few percent."""
BASE_BYTES = 100 * 2**20
"""Memory of a process before it evaluates anything (Python, numpy, the package: about 64 MB measured)."""


@dataclass(frozen=True)
class Candidates:
    """Grid points (flat indices into :func:`~.spaces.grid_shape`, ascending) with their bounds and area."""

    index: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    area_um2: np.ndarray

    @staticmethod
    def empty() -> "Candidates":
        return Candidates(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0))

    @staticmethod
    def joined(parts: list["Candidates"]) -> "Candidates":
        return Candidates(*(np.concatenate([getattr(c, name) for c in parts])
                            for name in ("index", "lower", "upper", "area_um2")))

    def take(self, where: np.ndarray) -> "Candidates":
        return Candidates(self.index[where], self.lower[where], self.upper[where], self.area_um2[where])


@dataclass(frozen=True)
class StreamResult:
    """The kept candidates; the valid (in-budget, registers-fit) points; the points evaluated; the grid
    cube; the points of every in-budget block (what an unpruned pass evaluates); whether bounds pruned."""

    candidates: Candidates
    valid_points: int
    evaluated_points: int
    grid_points: int
    block_points: int
    pruned: bool
    runnable_points: int
    """Valid points where every layer has a feasible branch (a finite bound), among those evaluated."""


def keep_candidates(found: Candidates, k: int, separable: bool) -> Candidates:
    """The points of ``found`` that can be among the ``k`` best or be the worst point of any grid
    containing them, sorted by flat index.

    Separable objectives (``lower`` = ``upper`` = the exact objective): the
    first ``k`` by (objective, area, index) and the last one by (objective
    descending, area, index), among finite objectives.

    Products (``lower`` <= exact objective <= ``upper``, points with a finite
    ``upper``): the k-th least exact objective is at most the k-th least
    ``upper`` U_k, so a point with ``lower`` > U_k is never among the k best;
    the worst exact objective is at least the greatest ``lower`` L_max, so a
    point with ``upper`` < L_max is never the worst. Kept: ``lower`` <= U_k or
    ``upper`` >= L_max. The points that fix U_k and L_max are kept, so keeping
    from a union of kept sets keeps what keeping from the union would.
    """
    if separable:
        finite = np.flatnonzero(np.isfinite(found.lower))
        value, area, index = found.lower[finite], found.area_um2[finite], found.index[finite]
        best = finite[np.lexsort((index, area, value))[:k]]
        worst = finite[np.lexsort((index, area, -value))[:1]]
        keep = np.union1d(best, worst)
    else:
        finite = np.flatnonzero(np.isfinite(found.upper))
        if finite.size == 0:
            return Candidates.empty()
        upper, lower = found.upper[finite], found.lower[finite]
        kth_upper = np.partition(upper, k - 1)[k - 1] if upper.size >= k else np.inf
        keep = finite[(lower <= kth_upper) | (upper >= lower.max())]
    kept = found.take(keep)
    return kept.take(np.argsort(kept.index, kind="stable"))


def block_hardware(space: HardwareSpace, block: Block):
    """The hardware of a block, broadcast as (pairs, filter, ifmap, psum), its area and its valid mask."""
    from deepopt_mip.formulation.hardware import array_hardware, registers_fit

    rows, cols = space.array_pairs()
    f_kb, i_kb, p_kb = (np.asarray(s) for s in space.fitting_sizes())
    j = rows[block.pairs][:, None, None, None]
    k = cols[block.pairs][:, None, None, None]
    f = f_kb[block.f][None, :, None, None]
    i = i_kb[block.i][None, None, :, None]
    p = p_kb[block.p][None, None, None, :]
    hw = array_hardware(j, k, f, i, p, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
                        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
                        dram_block_bits=space.dram_block_bits)
    area = space.area_um2(j, k, f, i, p)
    return hw, area, (area <= space.limit_um2) & registers_fit(hw)


def block_flat_index(space: HardwareSpace, block: Block) -> np.ndarray:
    """Flat grid indices of a block's points, in the block's (pairs, filter, ifmap, psum) order."""
    shape = grid_shape(space)
    a = block.pairs[:, None, None, None]
    b = np.arange(block.f.start, block.f.stop)[None, :, None, None]
    c = np.arange(block.i.start, block.i.stop)[None, None, :, None]
    d = np.arange(block.p.start, block.p.stop)[None, None, None, :]
    return ((a * shape[1] + b) * shape[2] + c) * shape[3] + d


def live_box(block: Block, live: np.ndarray) -> Block:
    """The smallest block (its pairs, and index ranges of sizes) holding every ``True`` of ``live``
    (shaped as ``block``: pairs x filter x ifmap x psum)."""
    def span(part: slice, axis: int) -> slice:
        where = np.flatnonzero(live.any(axis=tuple(a for a in range(4) if a != axis)))
        return slice(part.start + int(where[0]), part.start + int(where[-1]) + 1)

    return Block(block.pairs[live.any(axis=(1, 2, 3))], span(block.f, 1), span(block.i, 2), span(block.p, 3))


def block_sums(block: Block, space: HardwareSpace, layers, tech: Technology, metric: str,
               separable: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Evaluate one block: its valid points' flat indices, area (um^2) and sums
    (:func:`~deepopt_mip.formulation.grid_sums.chunk_sums`), each a 1-D array over those points."""
    try:
        hw, area, valid = block_hardware(space, block)
        where = np.flatnonzero(valid.ravel())
        if where.size == 0:
            return np.zeros(0, np.int64), np.zeros(0), [np.zeros(0) for _ in range(1 if separable else 8)]
        sums = chunk_sums(hw, layers, tech, metric, separable)
        return (block_flat_index(space, block).ravel()[where], np.broadcast_to(area, valid.shape).ravel()[where],
                [s.ravel()[where] for s in sums])
    except MemoryError:
        raise InputError(f"out of memory evaluating a block of {block.size:,} points of space {space.name!r}: "
                         f"use fewer --workers") from None


def live_block(block: Block, space: HardwareSpace, tech: Technology, metric: str, separable: bool,
               bounds: PairBounds, limit: float) -> Block | None:
    """The smallest sub-block holding every valid point of ``block`` whose lower bound
    (:func:`~.grid_bounds.point_lower_bounds`) is at most ``limit`` (None if there is none): the points
    outside it cannot beat ``limit``."""
    _, _, valid = block_hardware(space, block)
    e_f, e_i, e_p = (tech.sram_energy_j_per_bit(np.asarray(sizes, dtype=float)[part])
                     for sizes, part in zip(space.fitting_sizes(), (block.f, block.i, block.p)))
    lower = point_lower_bounds(bounds, block.pairs, e_f, e_i, e_p, block.p, metric, separable)
    live = np.broadcast_to(valid, lower.shape) & ~(lower > limit)  # a NaN bound never skips
    return live_box(block, live) if live.any() else None


def block_candidates(block: Block, space: HardwareSpace, layers, tech: Technology, metric: str, separable: bool,
                     k: int, bounds: PairBounds | None = None,
                     limit: float = np.inf) -> tuple[Candidates, int, int, int]:
    """Evaluate one block: its kept candidates, its number of valid points, the points evaluated and the
    runnable ones among them (valid, and every layer has a feasible branch: a finite bound).

    With ``bounds`` and a finite ``limit`` only :func:`live_block` is evaluated.
    """
    valid_points = valid_count(space, block)
    if not valid_points:
        return Candidates.empty(), 0, 0, 0
    if bounds is not None and np.isfinite(limit):
        block = live_block(block, space, tech, metric, separable, bounds, limit)
        if block is None:
            return Candidates.empty(), valid_points, 0, 0
    index, area, sums = block_sums(block, space, layers, tech, metric, separable)
    lower, upper = sums_bounds(sums, np.ones(index.size, dtype=bool), metric, separable)
    found = Candidates(index, lower, upper, area)
    return keep_candidates(found, k, separable), valid_points, block.size, int(np.isfinite(lower).sum())


def stream_memory_bytes(max_points: int, workers: int, bytes_per_point: int = BYTES_PER_POINT) -> int:
    """Estimated peak memory of :func:`stream_candidates`: per process the base, per worker a block of
    ``bytes_per_point`` bytes per point."""
    return (workers + 1) * BASE_BYTES + workers * bytes_per_point * max_points


def incumbent(kept: Candidates, k: int, separable: bool) -> float:
    """The value a point must beat to be among the ``k`` best: the k-th least exact objective (separable) or
    upper bound (products) of the candidates kept so far; ``inf`` while fewer than ``k`` are finite."""
    values = kept.lower if separable else kept.upper
    values = values[np.isfinite(values)]
    return float(np.partition(values, k - 1)[k - 1]) if values.size >= k else np.inf


def block_pair_bounds(network: Network, space: HardwareSpace, tech: Technology) -> PairBounds:
    """:func:`~.grid_bounds.pair_bounds` of the network's distinct layers on every J/K pair of ``space``."""
    from deepopt_mip.formulation.hardware import array_hardware

    rows, cols = space.array_pairs()
    return pair_bounds(distinct_layers(network), array_hardware(
        rows, cols, 0.0, 0.0, 0.0, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
        dram_block_bits=space.dram_block_bits), tech, np.asarray(space.fitting_sizes()[2], dtype=float))


def bounded_blocks(blocks: list[Block], bounds: PairBounds, space: HardwareSpace, tech: Technology, metric: str,
                   separable: bool) -> list[tuple[float, Block]]:
    """The blocks cut into blocks of pairs of like bound (at most :data:`PRUNE_BLOCK_POINTS` points, at
    least one pair), each with the lower bound of its points, least bound first (ties in the cover's
    order), so that good incumbents are found early. A block's bound is its pairs' least
    (:func:`~.grid_bounds.block_lower_bound`) with the least per-bit energy of each of its size ranges."""
    sizes = [np.asarray(s, dtype=float) for s in space.fitting_sizes()]
    least: dict[tuple[int, int, int], float] = {}

    def least_e(axis: int, part: slice) -> float:
        key = (axis, part.start, part.stop)
        if key not in least:
            least[key] = least_energy_per_bit(tech, sizes[axis][part])
        return least[key]

    out = []
    for block in blocks:
        pair_bound = block_lower_bound(bounds, block.pairs, least_e(0, block.f), least_e(1, block.i),
                                       least_e(2, block.p), block.p, metric, separable)
        order = np.argsort(pair_bound, kind="stable")
        per_pair = block.size // block.pairs.size
        step = max(1, PRUNE_BLOCK_POINTS // per_pair)
        for start in range(0, order.size, step):
            part = order[start:start + step]
            out.append((float(pair_bound[part[0]]), Block(np.sort(block.pairs[part]), block.f, block.i, block.p)))
    return sorted(out, key=lambda item: item[0])


def valid_count(space: HardwareSpace, block: Block) -> int:
    """Points of ``block`` within the area budget whose SRAMs hold the registers (no cost evaluated)."""
    return int(block_hardware(space, block)[2].sum())


@contextmanager
def _lazy_pool(workers: int, space: HardwareSpace):
    """A process pool of ``workers`` (None for one: evaluate here), with the one-line errors of
    :func:`~deepopt_mip.formulation.grid_sums.worker_map`."""
    try:
        with ExitStack() as stack:
            yield None if workers <= 1 else stack.enter_context(ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker))
    except BrokenProcessPool:
        raise InputError(f"a worker process of the grid pass over space {space.name!r} died (out of memory?): "
                         f"use fewer --workers") from None
    except MemoryError:
        raise InputError(f"out of memory in the grid pass over space {space.name!r}: "
                         f"use fewer --workers") from None


def checked_blocks(space: HardwareSpace, max_points: int, workers: int | None,
                   bytes_per_point: int = BYTES_PER_POINT, kept_bytes: int = 0, blocks: list[Block] | None = None,
                   what: str = "the grid pass") -> tuple[list[Block], int, int]:
    """The blocks (by default those of :func:`~.grid_blocks.budget_blocks`), their points and the number of
    worker processes, after checking :func:`stream_memory_bytes` (``bytes_per_point`` per block point in a
    worker) plus ``kept_bytes`` (what the caller keeps) against the machine's memory: a pass too large is
    refused in one line, which names the pass as ``what``."""
    blocks = list(budget_blocks(space, max_points)) if blocks is None else blocks
    total = sum(block.size for block in blocks)
    workers = worker_count(workers, total)
    check_memory(stream_memory_bytes(max_points, workers, bytes_per_point) + kept_bytes,
                 f"{what} over space {space.name!r} "
                 f"({workers} worker{'s' if workers > 1 else ''} x blocks of {max_points:,} points)")
    return blocks, total, workers


def stream_blocks(space: HardwareSpace, work, progress: Progress | None = None, max_points: int = 300_000,
                  workers: int | None = None, bytes_per_point: int = BYTES_PER_POINT, kept_bytes: int = 0,
                  blocks: list[Block] | None = None, what: str = "the grid pass"):
    """Yield ``(block, work(block))`` for every block (by default those of
    :func:`~.grid_blocks.budget_blocks`), in order, evaluated by ``workers`` processes
    (:func:`~.grid_sums.worker_map`), after :func:`checked_blocks`.

    ``work`` must hold no more than a block's evaluation (:func:`block_sums`)
    and return only what its caller keeps. ``progress(done, total)`` counts
    evaluated points (in-budget points and the few over-budget ones the
    blocks hold).
    """
    blocks, total, workers = checked_blocks(space, max_points, workers, bytes_per_point, kept_bytes, blocks, what)
    done = 0
    with worker_map(work, blocks, workers, space) as results:
        for block, result in zip(blocks, results):
            done += block.size
            yield block, result
            if progress:
                progress(done, total)


def stream_candidates(network: Network, space: HardwareSpace, tech: Technology, metric: str, separable: bool,
                      k: int, progress: Progress | None = None, max_points: int = 300_000,
                      workers: int | None = None, prune: bool | None = None) -> StreamResult:
    """The candidates for the ``k`` best points (and, without ``prune``, the worst), block by block.

    ``prune=None`` (the default) prunes when the blocks hold more than
    :data:`PRUNE_AUTO_POINTS` points. Without ``prune`` every in-budget block
    is evaluated. With ``prune`` the blocks are taken in increasing lower bound
    (:func:`bounded_blocks`) and each is evaluated only on the pairs whose
    bound is at most the incumbent (:func:`incumbent`, the k-th best value
    found so far) times 1 + :data:`~.grid_bounds.ROUNDING_MARGIN`: a skipped
    point's objective exceeds the k-th best, so the ``k`` best are the
    same (ties included); the worst point is not searched.

    ``progress(done, total)`` counts the points of evaluated and skipped
    blocks against those of every block. The result does not depend on
    ``max_points`` or ``workers``.
    """
    blocks, total, workers = checked_blocks(space, max_points, workers)
    work = partial(block_candidates, space=space, layers=distinct_layers(network), tech=tech, metric=metric,
                   separable=separable, k=k)
    prune = total > PRUNE_AUTO_POINTS if prune is None else bool(prune)
    if prune:
        bounds = block_pair_bounds(network, space, tech)
        queue = bounded_blocks(blocks, bounds, space, tech, metric, separable)
    else:
        bounds, queue = None, [(-np.inf, b) for b in blocks]
    kept, valid_points, done, evaluated, runnable_points = Candidates.empty(), 0, 0, 0, 0

    def take(block: Block, found: Candidates, valid: int, points: int, runnable: int) -> None:
        nonlocal kept, valid_points, done, evaluated, runnable_points
        kept = keep_candidates(Candidates.joined([kept, found]), k, separable)
        valid_points += valid
        evaluated += points
        runnable_points += runnable
        done += block.size
        if progress:
            progress(done, total)

    with _lazy_pool(workers if len(blocks) > 1 else 1, space) as pool:
        running: dict = {}  # future -> its block (results are taken as they finish: keeping is order-free)
        for bound, block in queue:
            if pool is not None and len(running) >= workers:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    take(running.pop(future), *future.result())
            limit = incumbent(kept, k, separable) * (1 + ROUNDING_MARGIN)
            if bound > limit:  # no point of the block can win: count its valid points, evaluate nothing
                take(block, Candidates.empty(), valid_count(space, block), 0, 0)
            elif pool is None:
                take(block, *work(block, bounds=bounds, limit=limit))
            else:
                running[pool.submit(work, block, bounds=bounds, limit=limit)] = block
        for future in as_completed(running):
            take(running[future], *future.result())
    return StreamResult(kept, valid_points, evaluated, int(np.prod(grid_shape(space))), total, prune, runnable_points)
