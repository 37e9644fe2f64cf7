"""Solve, compare and evaluate studies: the functions of the Python API (docs/studies.md).

:func:`solve` sends the paper's problem (one network, weight 1, no caps, no
branch limit) to the single-network solvers, which also report runners-up
(and, without pruning, the worst point), and every other study to the study solvers; both give
the same optimum on the paper's problem (tests/test_study_solvers.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.networks import Network
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.formulation.study_file import load_study
from deepopt_mip.formulation.technology import Technology, load_technology
from deepopt_mip.solvers.evaluation import PointEvaluation, evaluate_point
from deepopt_mip.solvers.highs_driver import MipOptions
from deepopt_mip.solvers.solution import Solution

__all__ = ["AGREEMENT", "Comparison", "compare", "evaluate", "load_study", "relative_difference", "solve"]

SOLVERS = ("enumerate", "mip")
AGREEMENT = 1e-6
"""Relative difference within which the MIP and the enumeration agree."""


def solve(problem: Problem, solver: str = "enumerate", options: MipOptions | None = None, *, top_k: int = 5,
          progress=None, workers: int | None = None, prune: bool | None = None,
          fusion: bool | None = None) -> Solution:
    """The optimum of ``problem`` by ``solver`` (``enumerate`` or ``mip``; ``options`` for the MIP,
    ``top_k`` runners-up for the enumeration; ``progress(done, total)`` is called during grid passes).
    The one-network enumeration skips blocks by bounds with ``prune`` True; False evaluates every block
    and finds the worst point too; None (the default) prunes fine spaces only (docs/model.md section 6.1).
    ``fusion`` (None: ``problem.fusion``) lets layers hand outputs over on chip (docs/studies.md,
    "Fusion"); such studies go to the study solvers with fusion, one network included (``prune`` is not
    used there)."""
    if solver not in SOLVERS:
        raise InputError(f"unknown solver {solver!r}: choose enumerate or mip")
    if fusion is not None and fusion != problem.fusion:
        problem = replace(problem, fusion=bool(fusion))
    if problem.fusion:
        if solver == "enumerate":
            from deepopt_mip.solvers.study_fusion_enumeration import enumerate_fused_study
            return enumerate_fused_study(problem, top_k, progress, workers)
        from deepopt_mip.solvers.study_fusion_mip import mip_fused_study
        return mip_fused_study(problem, options, progress, workers)
    if problem.is_single_network:
        network = problem.networks[0].network
        if solver == "enumerate":
            from deepopt_mip.solvers.enumeration import enumerate_space
            return enumerate_space(network, problem.space, problem.tech, problem.metric, problem.aggregate, top_k,
                                   progress, workers=workers, prune=prune)
        from deepopt_mip.solvers.mip import mip_allocate
        return mip_allocate(network, problem.space, problem.tech, problem.metric, problem.aggregate, options,
                            progress, workers)
    if solver == "enumerate":
        from deepopt_mip.solvers.study_enumeration import enumerate_study
        return enumerate_study(problem, top_k, progress, workers)
    from deepopt_mip.solvers.study_mip import mip_study
    return mip_study(problem, options, progress, workers)


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


@dataclass(frozen=True)
class Comparison:
    """The same study solved by the MIP and by the enumeration, with wall seconds of each. ``agree``: the
    objectives are within :data:`AGREEMENT` (relative) and the MIP proved its optimum."""

    mip: Solution
    enumerate: Solution
    mip_wall_s: float
    enumerate_wall_s: float

    @property
    def relative_difference(self) -> float:
        return relative_difference(self.mip.objective, self.enumerate.objective)

    @property
    def agree(self) -> bool:
        return self.relative_difference <= AGREEMENT and self.mip.status == "optimal"


def compare(problem: Problem, options: MipOptions | None = None, *, mip_progress=None, enumerate_progress=None,
            workers: int | None = None, fusion: bool | None = None) -> Comparison:
    """Solve ``problem`` by both solvers (each by its own route) and set the results side by side."""
    start = time.perf_counter()
    mip = solve(problem, "mip", options, progress=mip_progress, workers=workers, fusion=fusion)
    mip_wall = time.perf_counter() - start
    start = time.perf_counter()
    enum = solve(problem, "enumerate", top_k=1, progress=enumerate_progress, workers=workers, fusion=fusion)
    return Comparison(mip=mip, enumerate=enum, mip_wall_s=mip_wall, enumerate_wall_s=time.perf_counter() - start)


def evaluate(network: Network, hardware: HardwarePoint, metric: str = "edp", aggregate: str = "network",
             tech: Technology | None = None) -> PointEvaluation:
    """One hardware point: each layer's best branch (LOS) and every fixed schedule (paper Table 3)."""
    return evaluate_point(network, hardware, tech or load_technology(), metric, aggregate)
