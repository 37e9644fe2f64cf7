"""Running a spec: every cell once, on an engine, resumably (format and outputs: docs/sweep.md).

:func:`sweep` checks the output folder, writes the manifest, skips the
cells whose result file is already there, submits the others to the engine
(a split cell as one task per grid block), writes each cell's record
atomically as soon as it is complete, and at the end writes the tables and
plots from the records of all cells. A run stopped at any point loses at
most the cells in flight; the same call again finishes the rest and gives
the same tables.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deepopt_mip.solvers.solution import SolverFailure
from deepopt_mip.sweeps.cell import cell_blocks, finish_blocks, is_split, run_block, run_cell
from deepopt_mip.sweeps.engines import make_engine
from deepopt_mip.sweeps.outputs import prepare_out_dir, read_cell, write_cell, write_tables
from deepopt_mip.sweeps.sweep_file import SweepSpec, load_sweep


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("deepopt-mip")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: the results table, how many cells it ran and how many an earlier run had
    finished, the engine's name and the wall time (s)."""

    results: pd.DataFrame
    penalty: pd.DataFrame
    out_dir: Path
    ran: int
    skipped: int
    engine: str
    wall_s: float
    plots: tuple[Path, ...]


class SweepProgress:
    """``cells done / total`` with the elapsed time and an ETA, on stderr: one line per cell, or one
    line redrawn on a terminal; nothing when quiet."""

    def __init__(self, total: int, skipped: int, quiet: bool, stream=None) -> None:
        self.total, self.skipped = total, skipped
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.done = 0

    def __call__(self, label: str, status: str) -> None:
        self.done += 1
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.start
        left = self.total - self.skipped - self.done
        eta = elapsed / self.done * left
        line = (f"sweep: {self.skipped + self.done}/{self.total} cells ({label}: {status}), "
                f"{_duration(elapsed)} elapsed, ETA {_duration(eta)}")
        self.stream.write(f"\r{line:<120}" if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def sweep(spec: SweepSpec | str | Path, out_dir: str | Path, workers: int | None = None, scheduler=None,
          quiet: bool = True, plots: bool = True, on_cell=None) -> SweepResult:
    """Run every cell of ``spec`` (a :class:`SweepSpec` or a sweep file) into ``out_dir``.

    ``workers``: local processes (default one per CPU; 1 runs here).
    ``scheduler``: a Dask scheduler address (``tcp://HOST:PORT``) or a
    ``distributed.Client``; the cells then run on that cluster.
    ``on_cell(done, total)`` is called after each cell is written.
    """
    start = time.perf_counter()
    spec = spec if isinstance(spec, SweepSpec) else load_sweep(spec)
    out = Path(out_dir)
    with make_engine(workers, scheduler) as engine:
        prepare_out_dir(out, spec, package_version())
        records: list[dict | None] = [read_cell(out, cell.key) for cell in spec.cells]
        todo = [cell for cell, record in zip(spec.cells, records) if record is None]
        skipped = len(spec.cells) - len(todo)
        progress = SweepProgress(len(spec.cells), skipped, quiet)
        if not quiet:
            print(f"sweep {spec.name}: {len(spec.cells)} cells, {skipped} done by an earlier run, "
                  f"{len(todo)} to run on {engine.name} ({engine.workers} workers)", file=sys.stderr)
        try:
            _run(engine, todo, out, records, progress, on_cell, len(spec.cells))
        finally:
            progress.close()
    results, penalty = write_tables(out, spec, records)
    drawn: tuple[Path, ...] = ()
    if plots:
        from deepopt_mip.sweeps.plots import draw_plots
        drawn = draw_plots(out, results, penalty, quiet)
    return SweepResult(results=results, penalty=penalty, out_dir=out, ran=len(todo), skipped=skipped,
                       engine=engine.name, wall_s=time.perf_counter() - start, plots=drawn)


def _run(engine, todo, out: Path, records: list, progress: SweepProgress, on_cell, total: int) -> None:
    """Submit the cells (split ones block by block), write each record when its cell is complete."""
    owner = {}
    pending_blocks: dict[int, int] = {}
    block_results: dict[int, list] = {}
    for cell in todo:
        if is_split(cell):
            blocks = cell_blocks(cell)
            pending_blocks[cell.index] = len(blocks)
            block_results[cell.index] = []
            for block in blocks:
                owner[engine.submit(run_block, cell, block)] = (cell, True)
        else:
            owner[engine.submit(run_cell, cell)] = (cell, False)
    for future in engine.completed(list(owner)):
        cell, is_block = owner[future]
        try:
            result = future.result()
        except engine.lost_worker_errors as exc:
            done = sum(r is not None for r in records)
            raise SolverFailure(f"{engine.name}: a worker was lost ({type(exc).__name__}); the {done} finished cells "
                                f"are kept in {out}: run the same command again to resume") from None
        if is_block:
            block_results[cell.index].append(result)
            pending_blocks[cell.index] -= 1
            if pending_blocks[cell.index]:
                continue
            result = finish_blocks(cell, block_results.pop(cell.index))
        write_cell(out, result)
        records[cell.index] = result
        progress(cell.label(), result["status"])
        if on_cell is not None:
            on_cell(sum(r is not None for r in records), total)
