"""A sweep's output folder: cell files, manifest, tidy tables, timings, penalty matrix.

Layout of ``--out DIR``::

    manifest.yaml        tool version, the sweep file (source, sha256, axes), every input's sha256,
                         solver options; the same for every run of the same sweep file
    cells/KEY.json       one file per finished cell (its record, deepopt_mip.sweeps.cell), written
                         atomically when the cell finishes; KEY is the sha256 of the cell's inputs
    results.csv          one row per cell, in the sweep file.s order (columns: RESULT_COLUMNS)
    results.parquet      the same table
    timings.csv          seconds per cell (the only output that changes from run to run)
    penalty.csv          cross-network penalty: each network on each other network's optimum
    *.png                plots (deepopt_mip.sweeps.plots), with matplotlib installed

Everything but timings.csv is a function of the inputs only: a rerun, an
interrupted run finished later, or the same sweep on a cluster gives the
same bytes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pandas as pd
import yaml

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.output import atomic_write_text, json_safe, write_csv, write_json
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.sweeps.sweep_file import SweepSpec, members_label, mip_options_dict, network_sha256

CELLS = "cells"
MANIFEST = "manifest.yaml"
INPUT_COLUMNS = ["network", "batch", "budget_mm2", "metric", "aggregate", "space", "technology", "solver"]
RESULT_COLUMNS = INPUT_COLUMNS + [
    "status", "J", "K", "fsram_kb", "isram_kb", "psram_kb", "area_mm2", "objective", "energy_j", "delay_cycles",
    "gap", "points", "least_area_mm2", "mip_status", "mip_objective", "mip_gap", "agree", "message", "key"]
TIMING_COLUMNS = INPUT_COLUMNS + ["wall_s", "mip_build_s", "mip_solve_s", "mip_wall_s", "key"]


def cell_path(out: Path, key: str) -> Path:
    return Path(out) / CELLS / f"{key}.json"


def read_cell(out: Path, key: str) -> dict | None:
    """A finished cell's record, or None if it has not finished (or its file is not a record of that key)."""
    path = cell_path(out, key)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("key") == key else None


def write_cell(out: Path, record: dict) -> None:
    write_json(cell_path(out, record["key"]), record)


def manifest(spec: SweepSpec, version: str) -> dict:
    seen_networks, seen_spaces, seen_techs = {}, {}, {}
    for cell in spec.cells:
        for network in cell.networks:
            seen_networks.setdefault(network.name, {"name": network.name, "source": network.source,
                                                    "sha256": network_sha256(network)})
        seen_spaces.setdefault(cell.space_label, {"name": cell.space_label, "source": cell.space.source,
                                                  "sha256": cell.space.sha256})
        seen_techs.setdefault(cell.tech_label, {"name": cell.tech_label, "source": cell.tech.source_path,
                                                "sha256": cell.tech.sha256})
    return {
        "deepopt_mip_version": version,
        "sweep": {"name": spec.name, "description": spec.description, "source": spec.source,
                  "sha256": spec.sha256, "sweep_key": spec.sweep_key},
        "axes": spec.axes,
        "batch": spec.batch,
        "inputs": {"networks": list(seen_networks.values()), "spaces": list(seen_spaces.values()),
                   "technologies": list(seen_techs.values())},
        "solver_options": {"enumerate": {"top_k": 5, "chunk_points": spec.chunk_points},
                           "mip": mip_options_dict(spec.mip)},
        "cells": len(spec.cells),
    }


def prepare_out_dir(out: Path, spec: SweepSpec, version: str) -> None:
    """Check ``out`` before any work and write the manifest: a new or empty folder, or one holding an
    earlier run of the same sweep by the same version (which the sweep resumes)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    existing = out / MANIFEST
    if existing.is_file():
        try:
            old = yaml.safe_load(existing.read_text(encoding="utf-8"))
            old_key, old_version = old["sweep"]["sweep_key"], old["deepopt_mip_version"]
        except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
            raise InputError(f"--out {out}: its {MANIFEST} is not a sweep manifest; choose another folder") from None
        if old_key != spec.sweep_key:
            raise InputError(f"--out {out}: holds the results of another sweep ({old['sweep'].get('name')}); "
                             f"choose another folder")
        if old_version != version:
            raise InputError(f"--out {out}: written by deepopt-mip {old_version}, this is {version}; "
                             f"choose another folder")
    elif out.is_dir() and any(out.iterdir()):
        raise InputError(f"--out {out}: exists, is not empty and holds no sweep; choose an empty or new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(existing, yaml.safe_dump(json_safe(manifest(spec, version)), sort_keys=False))
    except OSError as exc:
        raise InputError(f"--out {out}: cannot be written ({exc.strerror})") from None


def _payload_row(payload: dict | None) -> dict:
    if payload is None:
        return {}
    hw = payload["hardware"]
    return {"J": hw["J"], "K": hw["K"], "fsram_kb": hw["fsram_kb"], "isram_kb": hw["isram_kb"],
            "psram_kb": hw["psram_kb"], "area_mm2": payload["area_mm2"], "objective": payload["objective"],
            "energy_j": payload["energy_j"], "delay_cycles": payload["delay_cycles"],
            "gap": payload["solver"].get("gap", 0.0), "points": payload["points"]}


def _inputs_row(spec: SweepSpec, index: int) -> dict:
    cell = spec.cells[index]
    return {"network": members_label(cell.members), "batch": cell.batch, "budget_mm2": cell.budget_mm2,
            "metric": cell.metric, "aggregate": cell.aggregate, "space": cell.space_label,
            "technology": cell.tech_label, "solver": cell.solver}


def results_frame(spec: SweepSpec, records: list[dict]) -> pd.DataFrame:
    """One row per cell in the sweep file.s order (``records[i]`` is cell i's record)."""
    rows = []
    for index, record in enumerate(records):
        mip = record.get("mip")
        row = _inputs_row(spec, index) | {"status": record["status"]} | _payload_row(record["solution"])
        row |= {"least_area_mm2": record["least_area_mm2"], "agree": record["agree"], "message": record["message"],
                "key": record["key"]}
        if mip is not None:
            row |= {"mip_status": mip["solver"]["status"], "mip_objective": mip["objective"],
                    "mip_gap": mip["solver"]["gap"]}
        rows.append(row)
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for column in ("batch", "J", "K", "points"):
        frame[column] = frame[column].astype("Int64")
    for column in ("agree",):
        frame[column] = frame[column].astype("boolean")
    for column in ("fsram_kb", "isram_kb", "psram_kb", "area_mm2", "objective", "energy_j", "delay_cycles", "gap",
                   "least_area_mm2", "mip_objective", "mip_gap"):
        frame[column] = frame[column].astype("float64")
    return frame


def timings_frame(spec: SweepSpec, records: list[dict]) -> pd.DataFrame:
    rows = []
    for index, record in enumerate(records):
        solution, mip = record["solution"], record.get("mip")
        main = (solution or {}).get("solver", {})
        row = _inputs_row(spec, index) | {"wall_s": main.get("wall_s"), "key": record["key"]}
        if main.get("name") == "mip":
            row |= {"mip_build_s": main.get("build_s"), "mip_solve_s": main.get("solve_s"),
                    "mip_wall_s": main.get("wall_s")}
        if mip is not None:
            row |= {"mip_build_s": mip["solver"]["build_s"], "mip_solve_s": mip["solver"]["solve_s"],
                    "mip_wall_s": mip["solver"]["wall_s"]}
        rows.append(row)
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def penalty_frame(spec: SweepSpec, records: list[dict]) -> pd.DataFrame:
    """Table 5 of the paper for every group of cells that differ only in their network: the metric of each
    network (row) on each other network's optimal hardware, and its penalty over the network's own optimum,
    (objective on that hardware - own optimum) / own optimum * 100."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for index, cell in enumerate(spec.cells):
        if cell.plain and records[index]["solution"] is not None:
            groups[(cell.budget_mm2, cell.metric, cell.aggregate, cell.space_label, cell.tech_label,
                    cell.solver)].append(index)
    rows = []
    for members in groups.values():
        if len(members) < 2:
            continue
        for a in members:
            cell = spec.cells[a]
            own = records[a]["solution"]["objective"]
            for b in members:
                hw = records[b]["solution"]["hardware"]
                point = spec.cells[b].space.hardware_point(hw["J"], hw["K"], hw["fsram_kb"], hw["isram_kb"],
                                                            hw["psram_kb"])
                value = own if a == b else evaluate_point(cell.network, point, cell.tech, cell.metric,
                                                          cell.aggregate).los.objective
                penalty = (value - own) / own * 100.0 if math.isfinite(value) else math.inf
                rows.append(_inputs_row(spec, a) | {"on_hardware_of": spec.cells[b].network.name,
                                                     "objective": value, "penalty_pct": penalty})
    frame = pd.DataFrame(rows, columns=[*INPUT_COLUMNS, "on_hardware_of", "objective", "penalty_pct"])
    frame["batch"] = frame["batch"].astype("Int64")
    return frame


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as Parquet (pyarrow), atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, engine="pyarrow", index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_tables(out: Path, spec: SweepSpec, records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """results.csv/.parquet, timings.csv and penalty.csv; returns the results and penalty tables."""
    out = Path(out)
    results = results_frame(spec, records)
    write_csv(out / "results.csv", results)
    write_parquet(out / "results.parquet", results)
    write_csv(out / "timings.csv", timings_frame(spec, records))
    penalty = penalty_frame(spec, records)
    write_csv(out / "penalty.csv", penalty)
    return results, penalty

