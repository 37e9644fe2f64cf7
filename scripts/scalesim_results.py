"""SCALE-Sim's results read back and set beside ours, per layer (``deepopt-mip scalesim-compare DIR``).

``--scalesim DIR`` writes SCALE-Sim's inputs and our per-layer cycles
(``DIR/layers.csv``, see ``scripts/scalesim_export.py``). Run SCALE-Sim on
them (docs/scalesim.md)::

    python -m scalesim.scale -c DIR/scalesim.cfg -t DIR/topology.csv -l DIR/layout.csv -p DIR/results

It writes ``DIR/results/<run_name>/COMPUTE_REPORT.csv``, one row per
topology row::

    LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, Overall Util %, Mapping Efficiency %, Compute Util %,

``LayerID`` is the topology row's index. ``Total Cycles`` is the compute
phase including memory stalls, so ``Total Cycles - Stall Cycles`` is its
stall-free compute, comparable with our ``cycles_ideal``, and
``Total Cycles`` with our ``delay_cycles``. A layer of ours made of several
topology rows (a grouped convolution, one row per group) adds up its rows;
an FC layer, one GEMM over its batch in SCALE-Sim, is divided by the batch
(ours are per image).
"""

from __future__ import annotations

import configparser
import csv
import math
from dataclasses import dataclass
from pathlib import Path

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.names import NAME_WIDTH, short_names

REPORT_NAME = "COMPUTE_REPORT.csv"
RESULTS_FOLDER = "results"
"""Where the run instruction of ``scalesim.cfg`` tells SCALE-Sim to write (``-p DIR/results``)."""
REPORT_COLUMNS = {"LayerID": "layer_id", "Total Cycles (incl. prefetch)": "total_cycles_incl_prefetch",
                  "Total Cycles": "total_cycles", "Stall Cycles": "stall_cycles",
                  "Overall Util %": "overall_util_pct", "Mapping Efficiency %": "mapping_efficiency_pct",
                  "Compute Util %": "compute_util_pct"}
LAYER_COLUMNS = ("layer", "kind", "branch", "dataflow", "scalesim_rows", "batch", "cycles_ideal", "cycles_stall",
                 "delay_cycles")


@dataclass(frozen=True)
class ReportRow:
    """One row of SCALE-Sim's COMPUTE_REPORT.csv (cycles of one topology row, the whole batch)."""

    layer_id: int
    total_cycles: float
    stall_cycles: float
    compute_util_pct: float

    @property
    def compute_cycles(self) -> float:
        """Stall-free compute cycles: Total Cycles - Stall Cycles."""
        return self.total_cycles - self.stall_cycles


def _number(text: str, label: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{label}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{label}: {text.strip()!r} is not a finite number >= 0")
    return value


def read_compute_report(path) -> list[ReportRow]:
    """The rows of a COMPUTE_REPORT.csv, in LayerID order; an InputError naming file and line if malformed."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = [[cell.strip() for cell in row] for row in csv.reader(handle)]
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    lines = [[c for c in row if c != ""] for row in lines]
    lines = [row for row in lines if row]
    if not lines:
        raise InputError(f"{path}: empty, expected SCALE-Sim's compute report")
    header = lines[0]
    missing = [c for c in ("LayerID", "Total Cycles", "Stall Cycles", "Compute Util %") if c not in header]
    if missing:
        raise InputError(f"{path}: not a SCALE-Sim compute report (no column {', '.join(missing)})")
    index = {name: header.index(name) for name in header}
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        label = f"{path}, line {number}"
        if len(cells) != len(header):
            raise InputError(f"{label}: {len(cells)} fields, the header has {len(header)}")
        layer_id = _number(cells[index["LayerID"]], f"{label}, LayerID")
        total = _number(cells[index["Total Cycles"]], f"{label}, Total Cycles")
        stall = _number(cells[index["Stall Cycles"]], f"{label}, Stall Cycles")
        if stall > total:
            raise InputError(f"{label}: Stall Cycles {stall:g} exceed Total Cycles {total:g}")
        rows.append(ReportRow(int(layer_id), total, stall, _number(cells[index["Compute Util %"]],
                                                                   f"{label}, Compute Util %")))
    ids = [r.layer_id for r in rows]
    if ids != list(range(len(rows))):
        raise InputError(f"{path}: LayerID should run 0, 1, ... {len(rows) - 1} in order")
    return rows


def read_topology_names(directory) -> list[str]:
    """The layer names of ``DIR/topology.csv`` in row order (SCALE-Sim's LayerID is the row index)."""
    path = Path(directory) / "topology.csv"
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row]
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc}); is {directory} a --scalesim folder?") from None
    return [row[0].strip() for row in rows[1:]]


def read_our_layers(directory) -> list[dict]:
    """``DIR/layers.csv`` as written by ``--scalesim``: our layers, their topology rows and cycles."""
    path = Path(directory) / "layers.csv"
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc}); is {directory} a --scalesim folder?") from None
    if not rows or any(c not in rows[0] for c in LAYER_COLUMNS):
        raise InputError(f"{path}: not the layers.csv of --scalesim (columns {', '.join(LAYER_COLUMNS)})")
    return rows


def config_value(directory, section: str, key: str) -> str | None:
    """A value of ``DIR/scalesim.cfg`` (SCALE-Sim's ``key : value`` or ``key = value`` lines), or None."""
    parser = configparser.ConfigParser()
    try:
        parser.read(Path(directory) / "scalesim.cfg", encoding="utf-8")
        return parser.get(section, key).strip()
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None


def run_name(directory) -> str | None:
    """The ``run_name`` of ``DIR/scalesim.cfg`` (SCALE-Sim's results subfolder), or None."""
    return config_value(directory, "general", "run_name")


def find_compute_report(directory, results=None) -> Path:
    """The COMPUTE_REPORT.csv of an export folder: ``results`` (the file, or a folder holding it or its run
    folder), by default ``DIR/results/<run_name>/``."""
    where = Path(results) if results is not None else Path(directory) / RESULTS_FOLDER
    if where.is_file():
        return where
    name = run_name(directory)
    candidates = [where / REPORT_NAME] + ([where / name / REPORT_NAME] if name else [])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = sorted(where.glob(f"*/{REPORT_NAME}")) if where.is_dir() else []
    if len(found) == 1:
        return found[0]
    hint = (f"run SCALE-Sim first: python -m scalesim.scale -c {directory}/scalesim.cfg -t {directory}/topology.csv "
            f"-l {directory}/layout.csv -p {directory}/{RESULTS_FOLDER}")
    if found:
        raise InputError(f"{where}: {len(found)} SCALE-Sim runs ({', '.join(p.parent.name for p in found)}); "
                         f"pass the one to compare with --results")
    raise InputError(f"no {REPORT_NAME} in {where}; {hint}")


@dataclass(frozen=True)
class LayerComparison:
    """One of our layers beside SCALE-Sim's cycles for it, per image."""

    layer: str
    branch: str
    dataflow: str
    batch: int
    ours_compute_cycles: float
    ours_delay_cycles: float
    scalesim_compute_cycles: float
    scalesim_total_cycles: float
    scalesim_stall_cycles: float

    @property
    def compute_ratio(self) -> float:
        """SCALE-Sim's stall-free compute cycles / our compute cycles."""
        return self.scalesim_compute_cycles / self.ours_compute_cycles if self.ours_compute_cycles else math.inf

    @property
    def total_ratio(self) -> float:
        """SCALE-Sim's total cycles (stalls included) / our delay."""
        return self.scalesim_total_cycles / self.ours_delay_cycles if self.ours_delay_cycles else math.inf


def compare_layers(layers: list[dict], topology_names: list[str], report: list[ReportRow],
                   label: str = "the SCALE-Sim report") -> list[LayerComparison]:
    """Per layer of ours: our cycles and SCALE-Sim's, its topology rows added up, FC layers per image."""
    if len(report) != len(topology_names):
        raise InputError(f"{label}: {len(report)} layers, but topology.csv has {len(topology_names)} rows "
                         f"(results of another export?)")
    row_of = {name: row for name, row in zip(topology_names, report)}
    out = []
    for layer in layers:
        rows = []
        for name in layer["scalesim_rows"].split(" "):
            if name not in row_of:
                raise InputError(f"layers.csv: layer {layer['layer']}: topology row {name!r} not in topology.csv")
            rows.append(row_of[name])
        batch = int(layer["batch"]) if layer["kind"] == "fc" else 1
        out.append(LayerComparison(
            layer=layer["layer"], branch=layer["branch"], dataflow=layer["dataflow"], batch=batch,
            ours_compute_cycles=float(layer["cycles_ideal"]), ours_delay_cycles=float(layer["delay_cycles"]),
            scalesim_compute_cycles=sum(r.compute_cycles for r in rows) / batch,
            scalesim_total_cycles=sum(r.total_cycles for r in rows) / batch,
            scalesim_stall_cycles=sum(r.stall_cycles for r in rows) / batch))
    return out


def load_comparison(directory, results=None) -> tuple[list[LayerComparison], Path]:
    """Read an export folder and SCALE-Sim's report on it; compare them per layer."""
    report_path = find_compute_report(directory, results)
    rows = compare_layers(read_our_layers(directory), read_topology_names(directory),
                          read_compute_report(report_path), str(report_path))
    return rows, report_path


def comparison_table(rows: list[LayerComparison]) -> str:
    """The printed table: per layer, compute cycles and total cycles (ours: delay), ours and SCALE-Sim's."""
    names = short_names([r.layer for r in rows], NAME_WIDTH)
    head = (f"{'layer':<{NAME_WIDTH}} {'branch':<7}{'df':<3}{'compute: ours':>14}{'SCALE-Sim':>11}{'ratio':>7}"
            f"{'total: ours':>13}{'SCALE-Sim':>11}{'stall':>10}{'ratio':>7}")
    lines = [head]
    for name, r in zip(names, rows):
        note = f"  (per image of {r.batch})" if r.batch > 1 else ""
        lines.append(f"{name:<{NAME_WIDTH}} {r.branch:<7}{r.dataflow:<3}{r.ours_compute_cycles:>14,.0f}"
                     f"{r.scalesim_compute_cycles:>11,.0f}{r.compute_ratio:>7.2f}{r.ours_delay_cycles:>13,.0f}"
                     f"{r.scalesim_total_cycles:>11,.0f}{r.scalesim_stall_cycles:>10,.0f}{r.total_ratio:>7.2f}{note}")
    ours_c, theirs_c = sum(r.ours_compute_cycles for r in rows), sum(r.scalesim_compute_cycles for r in rows)
    ours_t, theirs_t = sum(r.ours_delay_cycles for r in rows), sum(r.scalesim_total_cycles for r in rows)
    stall = sum(r.scalesim_stall_cycles for r in rows)
    lines.append(f"{'total':<{NAME_WIDTH}} {'':<7}{'':<3}{ours_c:>14,.0f}{theirs_c:>11,.0f}"
                 f"{theirs_c / ours_c if ours_c else math.inf:>7.2f}{ours_t:>13,.0f}{theirs_t:>11,.0f}{stall:>10,.0f}"
                 f"{theirs_t / ours_t if ours_t else math.inf:>7.2f}")
    return "\n".join(lines)


def comparison_records(rows: list[LayerComparison]) -> list[dict]:
    """Rows for CSV (full layer names, cycles per image, ratios SCALE-Sim / ours)."""
    return [{"layer": r.layer, "branch": r.branch, "dataflow": r.dataflow, "batch": r.batch,
             "ours_compute_cycles": r.ours_compute_cycles, "scalesim_compute_cycles": r.scalesim_compute_cycles,
             "compute_ratio": r.compute_ratio, "ours_delay_cycles": r.ours_delay_cycles,
             "scalesim_total_cycles": r.scalesim_total_cycles, "scalesim_stall_cycles": r.scalesim_stall_cycles,
             "total_ratio": r.total_ratio} for r in rows]
