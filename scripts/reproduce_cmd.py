"""``deepopt-mip reproduce``: the paper's tables and figure, as CSV, Markdown and PNG.

* Table 3: FS penalties over LOS, GoogleNet-v1 on 32x64, SRAM 16/32/8 kB,
  8/8/32 bits, all five metrics (layer-sum, as the paper).
* Fig. 9: E*D penalty of each FS scheme, five networks, on the two hardware
  configurations of the reference's runs c1 (32x64, 16/32/8 kB, 8-bit) and
  c2 (64x32, 64/32/8 kB, 16-bit).
* Table 4: optimal allocation per metric for GoogleNet-v1 at 16 mm^2 and the
  best-vs-worst ratio over the space.
* Table 5: penalty of running each network on another network's E*D-optimal
  hardware.

Everything here orchestrates solver calls and formats their results.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS, METRIC_LABELS
from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.output import atomic_write_text, save_figure, write_csv
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point

TABLE3_HARDWARE = HardwarePoint(32, 64, 16, 32, 8)
FIG9_HARDWARE = {"c1": TABLE3_HARDWARE,
                 "c2": HardwarePoint(64, 32, 64, 32, 8, bits_filter=16, bits_ifmap=16, bits_psum=32)}
AGGREGATE = "layer-sum"
INFEASIBLE = "infeasible"
"""How a table shows a missing (infinite) value; CSV writes inf (README, Outputs)."""


def metric_unit(metric: str) -> str:
    """'J*cycles' for edp: the unit in brackets of the metric's label."""
    return METRIC_LABELS[metric].split("[", 1)[1].rstrip("]")


def hardware_text(hw) -> str:
    """'32 x 64 PEs, SRAM f/i/p 16/32/8 kB, 8/8/32-bit': a hardware point spelled out."""
    return (f"{hw.J} x {hw.K} PEs, SRAM f/i/p {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
            f"{hw.bits_filter}/{hw.bits_ifmap}/{hw.bits_psum}-bit")


def fig9_configs_text() -> str:
    """What c1 and c2 are, one line each."""
    return "\n".join(f"* {name}: {hardware_text(hw)}" for name, hw in FIG9_HARDWARE.items())


def number(v, digits: int = 1) -> str:
    """A table cell: ``digits`` decimals from 1 to 1e6 (and for 0), else four significant digits (0.02128)."""
    if v == float("inf"):
        return INFEASIBLE
    if v == 0 or 1 <= abs(v) < 1e6:
        return f"{v:.{digits}f}"
    return f"{v:.4g}"


def markdown(frame: pd.DataFrame, digits: int = 1, headers: dict[str, str] | None = None) -> str:
    """A GitHub table of ``frame``: floats by ``number``, columns renamed by ``headers`` (CSV name -> label)."""
    headers = headers or {}

    def cell(v):
        return number(v, digits) if isinstance(v, float) else str(v)
    header = "| " + " | ".join(headers.get(c, str(c)) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def penalty_column(branch: str) -> str:
    return f"penalty_pct_{branch}"


PENALTY_HEADERS = {penalty_column(b): f"{b} penalty [%]" for b in BRANCHES}


def table3(tech) -> pd.DataFrame:
    """Per metric: the LOS total (in the metric's unit) and each fixed schedule's penalty over it (%)."""
    network = load_network("googlenet-v1")
    tables = cost_tables(network.layers, TABLE3_HARDWARE.arrays(), tech)
    rows = []
    for metric in METRIC_EXPONENTS:
        ev = evaluate_point(network, TABLE3_HARDWARE, tech, metric, AGGREGATE, tables)
        rows.append({"metric": metric, "los_total": ev.los.objective, "los_total_unit": metric_unit(metric),
                     **{penalty_column(b): ev.penalty_pct(b) for b in BRANCHES}})
    return pd.DataFrame(rows)


def table3_markdown(t3: pd.DataFrame) -> str:
    shown = t3.drop(columns="los_total_unit").assign(metric=[METRIC_LABELS[m] for m in t3.metric])
    return (f"Table 3: penalty of each fixed schedule (FS) over layer-specific optimal scheduling (LOS), "
            f"GoogleNet-v1 on {hardware_text(TABLE3_HARDWARE)}, {AGGREGATE} aggregation.\n\n"
            + markdown(shown, headers={"metric": "metric [unit]", "los_total": "LOS total", **PENALTY_HEADERS}))


def fig9(tech) -> pd.DataFrame:
    rows = []
    for config, hardware in FIG9_HARDWARE.items():
        for name in BUILTIN_NETWORKS:
            ev = evaluate_point(load_network(name), hardware, tech, "edp", AGGREGATE)
            rows.append({"config": config, "network": name, **{penalty_column(b): ev.penalty_pct(b) for b in BRANCHES}})
    return pd.DataFrame(rows)


def fig9_markdown(f9: pd.DataFrame) -> str:
    return ("Fig. 9: E*D penalty of each fixed schedule over LOS, five networks, on two hardware "
            f"configurations ({AGGREGATE} aggregation):\n\n{fig9_configs_text()}\n\n"
            + markdown(f9, headers={"config": "config (above)",
                                    **{penalty_column(b): f"{b} E*D penalty [%]" for b in BRANCHES}}))


def table4(tech, space, progress) -> pd.DataFrame:
    network = load_network("googlenet-v1")
    rows = []
    for metric in METRIC_EXPONENTS:
        sol = enumerate_space(network, space, tech, metric, AGGREGATE, top_k=0, prune=False)  # the worst point too
        hw, worst = sol.hardware, sol.worst.hardware
        rows.append({"metric": metric, "J": hw.J, "K": hw.K, "fsram_kb": hw.fsram_kb,
                     "isram_kb": hw.isram_kb, "psram_kb": hw.psram_kb, "area_mm2": sol.area_mm2,
                     "objective": sol.objective, "objective_unit": metric_unit(metric),
                     "worst_J": worst.J, "worst_K": worst.K, "worst_fsram_kb": worst.fsram_kb,
                     "worst_isram_kb": worst.isram_kb, "worst_psram_kb": worst.psram_kb,
                     "worst_objective": sol.worst.objective,
                     "best_vs_worst": sol.worst.objective / sol.objective, "points": sol.points})
        progress(metric)
    return pd.DataFrame(rows)


def array_text(j, k) -> str:
    return f"{int(j)} x {int(k)}"


def sram_text(f, i, p) -> str:
    return f"{f:g}/{i:g}/{p:g}"


def table4_markdown(t4: pd.DataFrame, space) -> str:
    shown = pd.DataFrame({
        "metric [unit]": [METRIC_LABELS[m] for m in t4.metric],
        "J x K": [array_text(j, k) for j, k in zip(t4.J, t4.K)],
        "SRAM f/i/p [kB]": [sram_text(*r) for r in zip(t4.fsram_kb, t4.isram_kb, t4.psram_kb)],
        "area [mm^2]": t4.area_mm2, "optimum": t4.objective,
        "worst point J x K, SRAM f/i/p [kB]": [f"{array_text(j, k)}, {sram_text(f, i, p)}" for j, k, f, i, p in zip(
            t4.worst_J, t4.worst_K, t4.worst_fsram_kb, t4.worst_isram_kb, t4.worst_psram_kb)],
        "worst": t4.worst_objective, "worst / best [x]": t4.best_vs_worst})
    return (f"Table 4: optimal hardware of GoogleNet-v1 per metric on {space.name} ({space.budget_mm2:g} mm^2, "
            f"{int(t4.points.iloc[0]):,} points), {AGGREGATE} aggregation, and the worst point for contrast.\n\n"
            + markdown(shown, digits=2))


def table5(tech, space, progress) -> tuple[pd.DataFrame, dict]:
    """E*D penalty (%) of each network (row) on each network's E*D-optimal hardware (column); and that hardware."""
    networks = {name: load_network(name) for name in BUILTIN_NETWORKS}
    optimum = {}
    for name, network in networks.items():
        optimum[name] = enumerate_space(network, space, tech, "edp", AGGREGATE, top_k=0)
        progress(name)
    rows = []
    for run_name, network in networks.items():
        own = optimum[run_name].objective
        row = {"network": run_name}
        for hw_name, sol in optimum.items():
            value = evaluate_point(network, sol.hardware, tech, "edp", AGGREGATE).los.objective
            row[f"edp_penalty_pct_on_{hw_name}_hw"] = (value - own) / own * 100.0
        rows.append(row)
    return pd.DataFrame(rows), {name: sol.hardware for name, sol in optimum.items()}


def table5_markdown(t5: pd.DataFrame, hardware: dict) -> str:
    headers = {f"edp_penalty_pct_on_{name}_hw": f"on {name} hw [%]" for name in hardware}
    listing = "\n".join(f"* {name} hw: {hardware_text(hw)}" for name, hw in hardware.items())
    return ("Table 5: E*D penalty (%) of running a network (row) on another network's E*D-optimal hardware "
            f"(column), {AGGREGATE} aggregation. The hardware:\n\n{listing}\n\n" + markdown(t5, headers=headers))


def _plot(path: Path, draw) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = draw(plt)
    save_figure(fig, path, dpi=120, bbox_inches="tight")
    return True


OUTLIER_FACTOR = 2.5
"""A bar more than this many times the next tallest is cut at the axis top, its value written on it."""


def axis_top(values: list[float]) -> float | None:
    """The y-axis top that cuts outliers (bars ``OUTLIER_FACTOR`` x taller than the next), or None."""
    finite = sorted(v for v in values if math.isfinite(v))
    if len(finite) < 2:
        return None
    for high, low in zip(reversed(finite), list(reversed(finite))[1:]):
        if low > 0 and high <= OUTLIER_FACTOR * low:
            break
        if low > 0 and high > OUTLIER_FACTOR * low:
            return 1.35 * low
    return None


def _bars(frame: pd.DataFrame, groups: list[str], series: dict[str, str], title: str, ylabel: str,
          log: bool = False, notes: str = "", value_format: str = "{:.1f}"):
    """Grouped bars: one group per row (labelled by ``groups``), one bar per ``series`` column (legend label).

    Nothing is dropped silently: an infinite value is a bar-less 'infeasible' mark, a bar cut at the axis
    top carries its value, and so does a bar too small to see.
    """
    def draw(plt):
        fig, ax = plt.subplots(figsize=(10, 4.6))
        width = 0.8 / len(series)
        all_values = [float(v) for column in series for v in frame[column]]
        top = None if log else axis_top(all_values)
        finite_max = max((v for v in all_values if math.isfinite(v)), default=1.0)
        height = top if top is not None else finite_max * 1.1
        for n, (column, label) in enumerate(series.items()):
            xs = [i + n * width for i in range(len(frame))]
            values = [float(v) for v in frame[column]]
            shown = [v if math.isfinite(v) else float("nan") for v in values]
            if top is not None:
                shown = [min(v, top) for v in shown]
            bars = ax.bar(xs, shown, width, label=label)
            for x, v, bar in zip(xs, values, bars):
                if not math.isfinite(v):
                    ax.text(x, 0, " infeasible", rotation=90, ha="center", va="bottom", fontsize=7, color="grey")
                elif top is not None and v > top:
                    bar.set_hatch("//")
                    ax.text(x, top * 0.97, value_format.format(v), ha="center", va="top", fontsize=7,
                            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "grey"})
                elif log or v < 0.02 * height:  # log axis: values are hard to read off; tiny bars are invisible
                    ax.text(x, v, value_format.format(v), ha="center", va="bottom", fontsize=7,
                            rotation=0 if log else 90)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(frame))])
        ax.set_xticklabels(groups, rotation=0, fontsize=8)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom=1.0)
        else:
            ax.set_ylim(0, height)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.grid(axis="y", alpha=0.3)
        if notes:
            ax.set_xlabel(notes, fontsize=8)
        return fig
    return draw


def run(out_dir, quiet: bool = False, space_name: str = "deepopt-16mm2", steps=("table3", "fig9", "table4", "table5")) -> int:
    from deepopt_mip.scripts.progress import ProgressLine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tech = load_technology()
    space = load_space(space_name, tech)
    total = 2 + len(METRIC_EXPONENTS) + len(BUILTIN_NETWORKS)
    line = ProgressLine("reproducing", quiet=quiet)
    done = [0]

    def step(_label=None):
        done[0] += 1
        line(done[0], total)

    pngs = []
    try:
        if "table3" in steps:
            t3 = table3(tech)
            step()
            write_csv(out / "table3.csv", t3)
            atomic_write_text(out / "table3.md", table3_markdown(t3))
            pngs.append(_plot(out / "table3.png", _bars(
                t3, [METRIC_LABELS[m].split(" [")[0] for m in t3.metric], {penalty_column(b): b for b in BRANCHES},
                f"Table 3: penalty of each fixed schedule over LOS, GoogleNet-v1\n{hardware_text(TABLE3_HARDWARE)}, "
                f"{AGGREGATE}", "penalty over LOS [%]",
                notes="A hatched bar is cut at the axis top, its value [%] written on it. 'infeasible': the schedule "
                      "cannot run some layer (delay infinite).")))
        if "fig9" in steps:
            f9 = fig9(tech)
            step()
            write_csv(out / "fig9.csv", f9)
            atomic_write_text(out / "fig9.md", fig9_markdown(f9))
            for config, hardware in FIG9_HARDWARE.items():
                part = f9[f9.config == config]
                pngs.append(_plot(out / f"fig9_{config}.png", _bars(
                    part, list(part.network), {penalty_column(b): b for b in BRANCHES},
                    f"Fig. 9 ({config}): E*D penalty of each fixed schedule over LOS, {AGGREGATE}\n"
                    f"{config} = {hardware_text(hardware)}", "E*D penalty over LOS [%]",
                    notes="'infeasible': the schedule cannot run some layer of the network on this hardware "
                          "(delay, hence E*D, infinite).")))
        if "table4" in steps:
            t4 = table4(tech, space, step)
            write_csv(out / "table4.csv", t4)
            atomic_write_text(out / "table4.md", table4_markdown(t4, space))
            groups = [f"{METRIC_LABELS[m].split(' [')[0]} optimum:\n{array_text(j, k)} PEs\nSRAM {sram_text(f, i, p)} kB"
                      for m, j, k, f, i, p in zip(t4.metric, t4.J, t4.K, t4.fsram_kb, t4.isram_kb, t4.psram_kb)]
            pngs.append(_plot(out / "table4.png", _bars(
                t4, groups, {"best_vs_worst": "worst / best point of the space"},
                f"Table 4: optimal hardware of GoogleNet-v1 per metric, {space.name} ({space.budget_mm2:g} mm^2), "
                f"{AGGREGATE}", "worst / best [x] (log scale)", log=True, value_format="{:.1f}x",
                notes="SRAM sizes are filter/ifmap/psum.")))
        if "table5" in steps:
            t5, hardware = table5(tech, space, step)
            write_csv(out / "table5.csv", t5)
            atomic_write_text(out / "table5.md", table5_markdown(t5, hardware))
            pngs.append(_plot(out / "table5.png", _bars(
                t5, list(t5.network),
                {f"edp_penalty_pct_on_{name}_hw": f"on {name}'s hw: {array_text(hw.J, hw.K)}, "
                                                  f"{sram_text(hw.fsram_kb, hw.isram_kb, hw.psram_kb)} kB"
                 for name, hw in hardware.items()},
                f"Table 5: E*D penalty of a network (group) on another network's E*D-optimal hardware (bar), "
                f"{AGGREGATE}", "E*D penalty [%]", notes="SRAM sizes are filter/ifmap/psum.")))
    finally:
        line.close()
    if not quiet:
        print(f"wrote the tables to {out}")
        if pngs and not all(pngs):
            print("PNG plots need matplotlib: pip install 'deepopt-mip[plot]'")
    return 0
