"""``evaluate --plot FILE``: per-layer energy breakdown of a schedule as a PNG.

One stacked bar per layer (MAC, register file, SRAM, DRAM energy, in uJ per
image) for the branch the schedule chose, the layer (long names shortened by
``scripts/names.py``) and branch named under the bar.
Needs matplotlib (``pip install 'deepopt-mip[plot]'``); the file is written
to a temporary name and renamed, so it is never half-written.
"""

from __future__ import annotations

import math
from pathlib import Path

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.names import short_names
from deepopt_mip.scripts.output import save_figure

MATPLOTLIB_MISSING = "--plot needs matplotlib: pip install 'deepopt-mip[plot]'"
PLOT_NAME_WIDTH = 24
"""Layer names under the bars are shortened to this many characters (scripts/names.py)."""
PARTS = (("mac_j", "MAC", "#4c72b0"), ("rf_j", "register file", "#55a868"), ("sram_j", "SRAM", "#dd8452"),
         ("dram_j", "DRAM", "#c44e52"))


def require_matplotlib():
    """The pyplot module on the Agg backend, or an InputError saying how to install it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(MATPLOTLIB_MISSING) from None
    return plt


def energy_parts_uj(tables, branches) -> dict[str, list[float]]:
    """Per layer, the energy parts (uJ) of the chosen branch; NaN where the branch is infeasible."""
    out: dict[str, list[float]] = {key: [] for key, _, _ in PARTS}
    for i, branch in enumerate(branches):
        energy = tables.details[i][branch].energy
        feasible = math.isfinite(float(tables.energy_j[i, BRANCHES.index(branch)]))
        for key, _, _ in PARTS:
            out[key].append(float(getattr(energy, key)) * 1e6 if feasible else float("nan"))
    return out


def plot_energy_breakdown(path, network, hardware, tables, branches, title: str = "") -> Path:
    """Draw the stacked per-layer energy of ``branches`` into the PNG ``path``; return the path."""
    plt = require_matplotlib()
    path = Path(path)
    if path.exists() and path.is_dir():
        raise InputError(f"--plot {path}: is a folder")
    parts = energy_parts_uj(tables, branches)
    n = len(network.layers)
    xs = list(range(n))
    width_in = min(max(6.0, 0.28 * n + 2.5), 40.0)
    names = short_names([layer.name for layer in network.layers], PLOT_NAME_WIDTH)
    labels = [f"{name} [{branch}]" for name, branch in zip(names, branches)]
    longest = max((len(label) for label in labels), default=10)
    height_in = 4.4 + 0.075 * longest * (7 / 8 if n > 20 else 1)  # room for the vertical labels
    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=110)
    bottom = [0.0] * n
    for key, label, colour in PARTS:
        values = [0.0 if math.isnan(v) else v for v in parts[key]]
        ax.bar(xs, values, bottom=bottom, color=colour, label=label, width=0.8, edgecolor="none")
        bottom = [b + v for b, v in zip(bottom, values)]
    infeasible = [i for i in xs if math.isnan(parts["mac_j"][i])]
    for i in infeasible:
        ax.annotate("infeasible", (i, 0), xytext=(0, 3), textcoords="offset points", rotation=90, ha="center",
                    va="bottom", fontsize=8, color="grey")
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=90, fontsize=7 if n > 20 else 8)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("energy per image [uJ]")
    total_uj = sum(bottom)
    summary = f"{total_uj / 1e3:.4g} mJ per image"
    if infeasible:
        summary = f"infeasible on {len(infeasible)} of {n} layers ({summary} on the others)"
    lines = [f"{network.name} on {hardware.label()}", summary + (f"; {title}" if title and n > 20 else "")]
    if title and n <= 20:
        lines.append(title)
    ax.set_title("\n".join(lines), fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # beside the bars, not on them
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    save_figure(fig, path)
    return path
