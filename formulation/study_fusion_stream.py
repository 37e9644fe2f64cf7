"""A study's fused bounds in bounded memory: stream over the in-budget slabs and keep a window of candidates.

:func:`~deepopt_mip.formulation.study_fusion_bounds.fused_study_bounds`
holds arrays of the whole grid cube per network (it is the reference this
pass is tested against). :func:`fused_study_stream` evaluates the slabs of
:func:`~deepopt_mip.formulation.fusion_stream.fusion_slabs` (the points
within the area budget, one ifmap SRAM size per slab; the same slabs for
every network), each network with the same
:func:`~deepopt_mip.formulation.fusion_stream.slab_points` as the
single-network fused pass, and its bound exactly as
:func:`~.study_fusion_bounds.fused_study_bounds` computes it
(:func:`block_fused_study_bounds`: the program's exact fused optimum for an
uncapped network with a separable metric, else
:func:`~.study_bounds.corner_bound` of the fused ideal corner
(min sum E, min sum D) with the caps), weighted and summed in the networks'
order, so every bound is the same bit for bit.

The window is the one of :mod:`~deepopt_mip.formulation.study_stream`
(:class:`~.study_stream.StudyWindow`, :func:`~.study_stream.window_stream`):
the points of finite bound with the least keys (bound, area, flat index),
the least bound left out, the counts of the first pass (valid points, points
of finite bound, per capped or product network the least fused corner delay
and energy), widened by another pass over the same slabs when a search needs
more.

Peak memory: each worker holds one slab of at most ``max_points`` points,
one network's program at a time (:func:`~.fusion_stream.fusion_bytes_per_point`,
the largest over the networks) and the study's running bound and keys
(:data:`~.study_stream.KEY_BYTES_PER_POINT`); the parent holds the window
(:func:`fused_study_stream_memory_bytes`). Neither grows with the grid.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from deepopt_mip.formulation.fusion_stream import (FUSION_BLOCK_POINTS, fusion_bytes_per_point, fusion_slabs,
                                                   pass_token, slab_points)
from deepopt_mip.formulation.grid_blocks import Block
from deepopt_mip.formulation.grid_stream import stream_memory_bytes
from deepopt_mip.formulation.grid_sums import Progress
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.study_bounds import corner_bound, exact_per_network
from deepopt_mip.formulation.study_stream import (KEPT_BYTES_PER_POINT, KEY_BYTES_PER_POINT, WINDOW_POINTS,
                                                  BlockBounds, StudyWindow, after_key, least_keys, window_stream)


def block_fused_study_bounds(slab: Block, problem: Problem, token, max_points: int,
                             key: tuple[float, float, int] | None, keep: int) -> BlockBounds:
    """Evaluate one slab for every network (module docstring; ``token`` names the pass,
    :func:`~.fusion_stream.pass_token`) and keep the ``keep`` least keys after ``key`` among its points of
    finite bound."""
    total = index = area = None
    least_delay, least_energy = {}, {}
    for item in problem.networks:
        if exact_per_network(problem, item):
            points, _ = slab_points(slab, problem.space, item.network, problem.tech, problem.metric, True, "none",
                                    max_points, token)
            bound = points.value
        else:
            points, _ = slab_points(slab, problem.space, item.network, problem.tech, "edp", False, "none",
                                    max_points, token)
            e_min, d_min = points.sums
            bound = corner_bound(e_min, d_min, item, problem.metric)
            if points.index.size:
                least_delay[item.name] = float(np.min(d_min))
                least_energy[item.name] = float(np.min(e_min))
        index, area = points.index, points.area_um2
        weighted = item.weight * bound
        total = weighted if total is None else total + weighted
        del points, bound, weighted
    finite = np.isfinite(total)
    where = np.flatnonzero(finite & after_key(total, area, index, key))
    kept = least_keys(index[where], total[where], area[where], keep)
    return BlockBounds(*kept, valid_points=int(index.size), finite_points=int(finite.sum()),
                       least_delay_cycles=least_delay, least_energy_j=least_energy)


def fused_study_bytes_per_point(problem: Problem) -> int:
    """Estimated peak bytes a worker holds per slab point: the largest network's program
    (:func:`~.fusion_stream.fusion_bytes_per_point`) and :data:`~.study_stream.KEY_BYTES_PER_POINT`."""
    return max(fusion_bytes_per_point(item.network, problem.space, exact_per_network(problem, item))
               for item in problem.networks) + KEY_BYTES_PER_POINT


def fused_study_stream_memory_bytes(problem: Problem, max_points: int, workers: int, window: int) -> int:
    """Estimated peak memory of :func:`fused_study_stream`: the workers' slabs
    (:func:`~.grid_stream.stream_memory_bytes` at :func:`fused_study_bytes_per_point`) and the parent's
    window."""
    return (stream_memory_bytes(max_points, workers, fused_study_bytes_per_point(problem))
            + KEPT_BYTES_PER_POINT * window)


def fused_study_stream(problem: Problem, progress: Progress | None = None, workers: int | None = None,
                       window: int = WINDOW_POINTS, max_points: int = FUSION_BLOCK_POINTS) -> StudyWindow:
    """The first pass (module docstring): the ``window`` least keys of the fused bounds and the counts.
    Before it starts, its memory (:func:`fused_study_stream_memory_bytes`) is checked against the machine's
    and a pass too large is refused in one line. ``progress(done, total)`` counts the points of the slabs
    evaluated, once per network."""
    work = partial(block_fused_study_bounds, problem=problem, token=pass_token(), max_points=max_points)
    return window_stream(problem, work, progress, workers, window, max_points,
                         list(fusion_slabs(problem.space, max_points)), fused_study_bytes_per_point(problem),
                         "the fusion program")
