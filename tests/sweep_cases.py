"""Small studies for the sweep tests (deepopt-16mm2 cut to a few mm^2: thousands of points per cell)."""

from pathlib import Path

import yaml

TABLES = ("results.csv", "results.parquet", "penalty.csv")
"""The tables that must be byte-identical between runs and engines (timings.csv is not; manifest.yaml is
too for the same sweep file, but it names the sweep file's path)."""

SMALL = {"name": "small", "networks": ["alexnet", "squeezenet-v1.1"], "budgets_mm2": [0.5, 4],
         "metrics": ["energy", "edp"]}
"""8 cells: two networks, a budget no point meets and 4 mm^2 (3,712 points), two metrics."""

NINE = {"name": "nine", "networks": ["alexnet"], "budgets_mm2": [3, 4, 5], "metrics": ["energy", "delay", "edp"]}
"""9 cells of alexnet, for interrupting a sweep in the middle."""


def write_sweep(folder: Path, data: dict, name: str = "sweep.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (Path(folder) / name).read_bytes() for name in TABLES}


def cell_files(folder: Path) -> list[Path]:
    return sorted((Path(folder) / "cells").glob("*.json"))
