"""Solve a Pyomo model with HiGHS (through Pyomo's ``highs`` interface to highspy).

One :class:`HighsDriver` keeps one persistent solver, so re-solving the same
model after a change of a mutable parameter (the epsilon-constraint's delay
limit) reuses HiGHS's model instead of rebuilding it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from deepopt_mip.solvers.solution import SolverFailure

DEFAULT_MIP_GAP = 1e-9
"""Relative gap at which HiGHS stops by default: far below the 1e-6 at which results are compared."""

FEASIBILITY_TOLERANCE = 1e-9
"""Primal and integer feasibility tolerance (coefficients are scaled to order 1)."""


@dataclass(frozen=True)
class MipOptions:
    """What the user may set: wall-clock limit per solve (s), relative MIP gap, HiGHS threads."""

    time_limit_s: float | None = None
    mip_gap: float = DEFAULT_MIP_GAP
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not (self.time_limit_s > 0 and math.isfinite(self.time_limit_s)):
            raise ValueError(f"time limit must be a positive number of seconds, got {self.time_limit_s!r}")
        if not (0 <= self.mip_gap < 1):
            raise ValueError(f"MIP gap must be in [0, 1), got {self.mip_gap!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads!r}")


@dataclass(frozen=True)
class MipResult:
    """One solve: status ("optimal", "time limit", "infeasible", ...), objective and best bound
    (in the model's scaled units, None without them), relative gap, and the solve's wall time."""

    status: str
    objective: float | None
    bound: float | None
    gap: float
    solve_s: float

    @property
    def has_solution(self) -> bool:
        return self.objective is not None


_STATUS = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time limit",
    TerminationCondition.iterationLimit: "iteration limit",
    TerminationCondition.provenInfeasible: "infeasible",
    TerminationCondition.locallyInfeasible: "infeasible",
    TerminationCondition.infeasibleOrUnbounded: "infeasible",
    TerminationCondition.interrupted: "interrupted",
}


class HighsDriver:
    """Solves models with fixed options; :meth:`solve` loads the solution into the model."""

    def __init__(self, options: MipOptions | None = None) -> None:
        self.options = options or MipOptions()
        self._solver = SolverFactory("highs")
        if not self._solver.available():
            raise SolverFailure("HiGHS is not available: install the highspy package")

    def solve(self, model: pyo.ConcreteModel, time_limit_s: float | None = None) -> MipResult:
        """Solve (within ``time_limit_s`` if given, else the options' limit); the result's status says
        whether it is optimal. Never raises on infeasibility (see :meth:`solve_or_fail`)."""
        opts = self.options
        limit = opts.time_limit_s if time_limit_s is None else time_limit_s
        start = time.perf_counter()
        kwargs = dict(load_solutions=False, raise_exception_on_nonoptimal_result=False, rel_gap=opts.mip_gap,
                      solver_options={"primal_feasibility_tolerance": FEASIBILITY_TOLERANCE,
                                      "mip_feasibility_tolerance": FEASIBILITY_TOLERANCE,
                                      "mip_abs_gap": 0.0, **getattr(model, "highs_options", {})})
        if limit is not None:
            kwargs["time_limit"] = max(limit, 1e-3)
        if opts.threads is not None:
            kwargs["threads"] = opts.threads
            # HiGHS keeps one thread scheduler per process; a solve asking for another thread count than
            # the scheduler has ends without a solution, so start a fresh scheduler at the asked count.
            highspy.Highs.resetGlobalScheduler(True)
        results = self._solver.solve(model, **kwargs)
        elapsed = time.perf_counter() - start
        status = _STATUS.get(results.termination_condition, str(results.termination_condition.name))
        objective = results.incumbent_objective
        if objective is not None and math.isfinite(objective):
            results.solution_loader.load_vars()
        else:
            objective = None
        bound = results.objective_bound
        bound = float(bound) if bound is not None and math.isfinite(bound) else None
        gap = 0.0 if status == "optimal" and objective is not None else math.inf
        if objective is not None and bound is not None:
            gap = max(0.0, objective - bound) / max(abs(objective), 1e-300)
        return MipResult(status=status, objective=objective, bound=bound, gap=gap, solve_s=elapsed)

    def solve_or_fail(self, model: pyo.ConcreteModel, what: str, time_limit_s: float | None = None) -> MipResult:
        """Solve; raise :class:`SolverFailure` naming ``what`` if there is no solution."""
        result = self.solve(model, time_limit_s)
        if not result.has_solution:
            hint = " (raise --time-limit)" if result.status == "time limit" else ""
            raise SolverFailure(f"HiGHS found no solution for {what}: {result.status}{hint}")
        return result
