"""Solving one cell of a spec: the only place a sweep calls the solvers.

:func:`run_cell` returns the cell's record, a JSON-able dict::

    key, inputs        the cell's key and inputs (deepopt_mip.sweeps.sweep_file.Cell.inputs)
    status             "optimal" (or the MIP's status), "infeasible" (no point meets the budget),
                       "no-schedule" (every point has a layer no branch can run), "failed" (the MIP)
    solution           the allocation's payload (the same as ``allocate --json``) or None;
                       the enumeration's for solver "both"
    mip                solver "both": the MIP's payload
    agree              solver "both": the MIP proved its optimum and equals the enumeration's
                       objective to a relative 1e-6
    least_area_mm2     "infeasible": the least area any point of the space needs
    message            why there is no solution, or None

A cell whose sweep file sets ``chunk_points`` and whose grid is larger is split
into blocks (:func:`cell_blocks`), each solved by :func:`run_block`
anywhere, and :func:`finish_blocks` reduces them exactly
(:mod:`deepopt_mip.solvers.chunked`) into the same record.
"""

from __future__ import annotations

import time

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_blocks import Block, in_budget_points
from deepopt_mip.formulation.spaces import UM2_PER_MM2, grid_chunks, smallest_point_area_um2
from deepopt_mip.formulation.problem import Problem
from deepopt_mip.study import AGREEMENT, relative_difference, solve
from deepopt_mip.solvers.chunked import ChunkBest, chunk_best, chunk_blocks, chunked_solution, reduce_bests
from deepopt_mip.solvers.solution import SolverFailure
from deepopt_mip.sweeps.sweep_file import Cell

CELL_WORKERS = 1
"""Processes the enumeration of one cell uses: the sweep runs cells in parallel instead (and a Dask worker
process may not start processes of its own)."""


def _record(cell: Cell, status: str, **fields) -> dict:
    out = {"key": cell.key, "inputs": cell.inputs(), "status": status, "solution": None, "mip": None,
           "agree": None, "relative_difference": None, "least_area_mm2": None, "message": None}
    out.update(fields)
    return out


def _infeasible(cell: Cell) -> dict:
    least = smallest_point_area_um2(cell.space) / UM2_PER_MM2
    return _record(cell, "infeasible", least_area_mm2=least,
                   message=f"no point of {cell.space_label} fits {cell.budget_mm2:g} mm^2; "
                           f"the least area any point needs is {least:.4f} mm^2")


def _fits_budget(cell: Cell) -> bool:
    """Whether some grid point meets the budget (the enumeration's validity: area and registers)."""
    return any(chunk.valid.any() for chunk in grid_chunks(cell.space))


def _problem(cell: Cell) -> Problem:
    """The cell as a study (docs/studies.md): its networks share the chip, with their weights and caps."""
    return Problem(networks=cell.members, metric=cell.metric, space=cell.space, tech=cell.tech,
                   aggregate=cell.aggregate)


def _enumerate(cell: Cell):
    return solve(_problem(cell), "enumerate", top_k=5, workers=CELL_WORKERS)


def _mip(cell: Cell):
    return solve(_problem(cell), "mip", cell.mip, workers=CELL_WORKERS)


def run_cell(cell: Cell) -> dict:
    """Solve one cell with its solver(s); never raises for a budget or schedule no point meets."""
    if not _fits_budget(cell):
        return _infeasible(cell)
    try:
        if cell.solver == "mip":
            solution = _mip(cell)
            return _record(cell, solution.status, solution=solution.to_dict())
        solution = _enumerate(cell)
    except InputError as exc:
        return _record(cell, "no-schedule", message=str(exc))
    except SolverFailure as exc:
        return _record(cell, "failed", message=str(exc))
    record = _record(cell, solution.status, solution=solution.to_dict())
    if cell.solver == "both":
        record.update(_compare(cell, solution))
    return record


def _compare(cell: Cell, enumerated) -> dict:
    """The MIP beside an enumeration: its payload and whether both agree."""
    try:
        mip = _mip(cell)
    except SolverFailure as exc:
        return {"agree": False, "message": f"MIP failed: {exc}"}
    difference = relative_difference(mip.objective, enumerated.objective)
    return {"mip": mip.to_dict(), "agree": bool(difference <= AGREEMENT and mip.status == "optimal"),
            "relative_difference": difference}


def is_split(cell: Cell) -> bool:
    """Whether the cell is solved in blocks: the sweep file sets chunk_points, more points than that lie
    within the budget, and the solver enumerates one network without weight or caps (a MIP is one model;
    a study of several networks or with caps is solved whole)."""
    return (cell.chunk_points is not None and cell.solver == "enumerate" and cell.plain
            and in_budget_points(cell.space) > cell.chunk_points)


def cell_blocks(cell: Cell) -> list[Block]:
    return chunk_blocks(cell.space, cell.chunk_points)


def run_block(cell: Cell, block: Block) -> tuple[ChunkBest, float]:
    """One block of a split cell: its best point and the seconds it took."""
    start = time.perf_counter()
    best = chunk_best(cell.network, cell.space, cell.tech, cell.metric, cell.aggregate, block)
    return best, time.perf_counter() - start


def finish_blocks(cell: Cell, results: list[tuple[ChunkBest, float]]) -> dict:
    """The record of a split cell from its blocks' results (any order)."""
    best = reduce_bests([b for b, _ in results])
    if best.valid_points == 0:
        return _infeasible(cell)
    try:
        solution = chunked_solution(cell.network, cell.space, cell.tech, cell.metric, cell.aggregate, best,
                                    sum(s for _, s in results))
    except InputError as exc:
        return _record(cell, "no-schedule", message=str(exc))
    return _record(cell, solution.status, solution=solution.to_dict())
