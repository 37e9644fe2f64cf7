"""Solve a Pyomo model with HiGHS (through Pyomo's ``highs`` interface to highspy).

One :class:`HighsDriver` keeps one persistent solver, so re-solving the same
model after a change of a mutable parameter (the epsilon-constraint's delay
limit) reuses HiGHS's model instead of rebuilding it.

:class:`ArrayHighs` passes a small integer program to highspy as arrays,
without Pyomo: the frontier merge solves hundreds of models of a few dozen
integers each, where Pyomo's per-solve overhead (about 0.1 s) would be
nearly all of the time, and HiGHS's own a few milliseconds.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import TerminationCondition

from deepopt_mip.solvers.solution import SolverFailure

DEFAULT_MIP_GAP = 1e-9
"""Relative gap at which HiGHS stops by default: far below the 1e-6 at which results are compared."""

PRIMAL_FEASIBILITY_TOLERANCE = 1e-9
"""Primal feasibility tolerance of the LPs (coefficients are scaled to order 1)."""

MIP_FEASIBILITY_TOLERANCE = 1e-8
"""HiGHS's MIP feasibility tolerance: integrality, and the rows in its branch and bound. Not 1e-9: at 1e-9
HiGHS 1.16 with presolve off proved optimal a schedule 2e-4 above a feasible one (SqueezeNet's fused frontier
at 4 mm^2 lost a point, at 2 mm^2 six); at 1e-8 both presolve settings gave the exact frontier in every case
checked (docs/mip.md section 9.2). At most a tenth of the sweep's step (:data:`~.mip.SWEEP_STEP`)."""


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
                      solver_options={"primal_feasibility_tolerance": PRIMAL_FEASIBILITY_TOLERANCE,
                                      "mip_feasibility_tolerance": MIP_FEASIBILITY_TOLERANCE,
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


_ARRAY_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kTimeLimit: "time limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
}


def _silent_highs() -> "highspy.Highs":
    """A HiGHS instance that prints nothing (the first one of a process writes a banner to the C-level
    stdout, before any option can be set: it is sent to the null device)."""
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        highs = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    highs.setOptionValue("output_flag", False)
    return highs


class ArrayHighs:
    """Solves min c.x s.t. row_lower <= A x <= row_upper, 0 <= x <= col_upper, x integer, given as arrays
    (A in compressed rows), with the options of :class:`HighsDriver`."""

    def __init__(self, options: MipOptions | None = None) -> None:
        self.options = options or MipOptions()
        self._highs = _silent_highs()
        for name, value in (("mip_rel_gap", self.options.mip_gap), ("mip_abs_gap", 0.0),
                            ("primal_feasibility_tolerance", PRIMAL_FEASIBILITY_TOLERANCE),
                            ("mip_feasibility_tolerance", MIP_FEASIBILITY_TOLERANCE)):
            self._highs.setOptionValue(name, value)
        # One thread unless told otherwise: on these models it halves HiGHS's time. But HiGHS has one thread
        # pool per process, sized by its first solve; if that was another size, HiGHS refuses the run and
        # the solve falls back to its default (as the Pyomo route, which sets no size of its own).
        self._single_thread = self.options.threads is None
        self._highs.setOptionValue("threads", 1 if self._single_thread else int(self.options.threads))

    def solve(self, cost: np.ndarray, col_upper: np.ndarray, rows: tuple[np.ndarray, np.ndarray, np.ndarray],
              row_lower: np.ndarray, row_upper: np.ndarray,
              time_limit_s: float | None = None) -> tuple[MipResult, np.ndarray | None]:
        """(result, x or None without a solution); infinite row bounds are HiGHS's infinity."""
        highs = self._highs
        highs.clearModel()
        columns = cost.size
        highs.addCols(columns, cost.astype(float), np.zeros(columns), col_upper.astype(float), 0,
                      np.zeros(columns, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
        starts, index, value = rows
        inf = highspy.kHighsInf
        highs.addRows(starts.size, np.where(np.isfinite(row_lower), row_lower, -inf),
                      np.where(np.isfinite(row_upper), row_upper, inf), index.size, starts, index, value)
        highs.changeColsIntegrality(columns, np.arange(columns, dtype=np.int32),
                                    np.array([highspy.HighsVarType.kInteger] * columns))
        limit = self.options.time_limit_s if time_limit_s is None else time_limit_s
        highs.setOptionValue("time_limit", inf if limit is None else max(float(limit), 1e-3))
        start = time.perf_counter()
        run_status = highs.run()
        if run_status == highspy.HighsStatus.kError and self._single_thread:
            self._single_thread = False
            highs.setOptionValue("threads", 0)
            run_status = highs.run()
        elapsed = time.perf_counter() - start
        if run_status == highspy.HighsStatus.kError:
            raise SolverFailure(f"HiGHS refused the model: {highs.modelStatusToString(highs.getModelStatus())}")
        model_status = highs.getModelStatus()
        status = _ARRAY_STATUS.get(model_status, highs.modelStatusToString(model_status))
        info = highs.getInfo()
        has_solution = (int(info.primal_solution_status) == int(highspy.SolutionStatus.kSolutionStatusFeasible)
                        and status != "infeasible")
        objective = float(info.objective_function_value) if has_solution else None
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
        gap = 0.0 if status == "optimal" and objective is not None else math.inf
        if objective is not None and bound is not None:
            gap = max(0.0, objective - bound) / max(abs(objective), 1e-300)
        x = np.array(highs.getSolution().col_value) if has_solution else None
        return MipResult(status=status, objective=objective, bound=bound, gap=gap, solve_s=elapsed), x
