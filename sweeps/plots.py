"""The sweep's plots (PNG, needs matplotlib: ``pip install 'deepopt-mip[plot]'``).

* ``optimum_vs_budget.png``: the optimum of each metric against the area
  budget, one line per network, one panel per metric (and aggregation,
  space, technology, solver where the sweep varies them);
* ``hardware_vs_budget.png``: the optimal J x K (number of PEs, labelled
  J x K) and filter/ifmap/psum SRAM sizes against the budget, a row of
  panels per metric;
* ``penalty.png``: the cross-network penalty matrix (paper Table 5) of
  every budget and metric: each network (row) on each network's optimal
  hardware (column), penalty in percent over its own optimum.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from deepopt_mip.formulation.metrics import METRIC_LABELS
from deepopt_mip.scripts.output import save_figure

PANEL_COLUMNS = ["metric", "aggregate", "space", "technology", "solver"]


def _panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per combination of the panel columns, in the table's order; the title names only the
    columns the sweep varies (and always the metric)."""
    varying = [c for c in PANEL_COLUMNS if c == "metric" or frame[c].nunique() > 1]
    panels = []
    for values, rows in frame.groupby(varying, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        title = ", ".join(METRIC_LABELS.get(v, v) if c == "metric" else str(v) for c, v in zip(varying, values))
        panels.append((title, rows))
    return panels


def _solved(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["objective"].notna()]


def optimum_vs_budget(results: pd.DataFrame, path: Path, plt) -> Path | None:
    solved = _solved(results)
    panels = _panels(solved)
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    for ax, (title, frame) in zip(axes.flat, panels):
        for network, lines in frame.groupby("network", sort=False):
            ax.plot(lines["budget_mm2"], lines["objective"], marker="o", label=network)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("area budget [mm^2]")
        ax.set_ylabel("optimum")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Optimum against the area budget")
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def hardware_vs_budget(results: pd.DataFrame, path: Path, plt) -> Path | None:
    from matplotlib.ticker import ScalarFormatter

    solved = _solved(results)
    panels = _panels(solved)
    if not panels:
        return None
    quantities = [("PEs (J x K)", None), ("filter SRAM [kB]", "fsram_kb"), ("ifmap SRAM [kB]", "isram_kb"),
                  ("psum SRAM [kB]", "psram_kb")]
    fig, axes = plt.subplots(len(panels), 4, figsize=(16, 3.2 * len(panels)), squeeze=False)
    for row, (title, frame) in zip(axes, panels):
        for network, lines in frame.groupby("network", sort=False):
            for ax, (label, column) in zip(row, quantities):
                if column is None:
                    pes = lines["J"].astype(float) * lines["K"].astype(float)
                    ax.plot(lines["budget_mm2"], pes, marker="o", label=network)
                    for x, y, j, k in zip(lines["budget_mm2"], pes, lines["J"], lines["K"]):
                        ax.annotate(f"{j}x{k}", (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3))
                else:
                    ax.plot(lines["budget_mm2"], lines[column], marker="o", label=network)
        for ax, (label, column) in zip(row, quantities):
            ax.set_title(f"{title}: {label}", fontsize=8)
            ax.set_xlabel("area budget [mm^2]")
            if column is not None:
                ax.set_yscale("log", base=2)
                ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Optimal hardware against the area budget")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def penalty_matrices(penalty: pd.DataFrame, path: Path, plt) -> Path | None:
    if penalty.empty:
        return None
    panels = _panels(penalty)
    budgets = list(dict.fromkeys(penalty["budget_mm2"]))
    fig, axes = plt.subplots(len(panels), len(budgets), figsize=(3.8 * len(budgets), 3.6 * len(panels)),
                             squeeze=False)
    for row, (title, frame) in zip(axes, panels):
        for ax, budget in zip(row, budgets):
            cells = frame[frame["budget_mm2"] == budget]
            names = list(dict.fromkeys(cells["network"]))
            if not names:
                ax.set_visible(False)
                continue
            matrix = cells.pivot(index="network", columns="on_hardware_of", values="penalty_pct").loc[names, names]
            top = matrix[matrix.abs() != float("inf")].max().max()
            top = top if top > 0 else 1.0
            ax.imshow(matrix.clip(upper=top).to_numpy(dtype=float), cmap="Reds", vmin=0, vmax=top)
            for i in range(len(names)):
                for j in range(len(names)):
                    value = matrix.iat[i, j]
                    ax.text(j, i, "inf" if value == float("inf") else f"{value:.1f}", ha="center", va="center",
                            fontsize=6, color="white" if value > 0.6 * top else "black")
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=6)
            ax.set_yticks(range(len(names)), names, fontsize=6)
            ax.set_title(f"{title}, {budget:g} mm^2", fontsize=8)
    fig.suptitle("Penalty [%] of each network (row) on another network's optimal hardware (column)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def draw_plots(out: Path, results: pd.DataFrame, penalty: pd.DataFrame, quiet: bool = True) -> tuple[Path, ...]:
    """Every plot that has data; none (with a note unless quiet) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not quiet:
            print("sweep: no plots (they need matplotlib: pip install 'deepopt-mip[plot]')", file=sys.stderr)
        return ()
    out = Path(out)
    drawn = [optimum_vs_budget(results, out / "optimum_vs_budget.png", plt),
             hardware_vs_budget(results, out / "hardware_vs_budget.png", plt),
             penalty_matrices(penalty, out / "penalty.png", plt)]
    return tuple(p for p in drawn if p is not None)
