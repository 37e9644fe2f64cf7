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

from pathlib import Path

import pandas as pd

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS
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


def markdown(frame: pd.DataFrame, digits: int = 1) -> str:
    """A GitHub table of ``frame`` with floats rounded to ``digits``."""
    def cell(v):
        if isinstance(v, float):
            if v == float("inf"):
                return "inf"
            return f"{v:.{digits}f}" if 0.01 <= abs(v) < 1e6 or v == 0 else f"{v:.4g}"
        return str(v)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def table3(tech) -> pd.DataFrame:
    network = load_network("googlenet-v1")
    tables = cost_tables(network.layers, TABLE3_HARDWARE.arrays(), tech)
    rows = []
    for metric in METRIC_EXPONENTS:
        ev = evaluate_point(network, TABLE3_HARDWARE, tech, metric, AGGREGATE, tables)
        rows.append({"metric": metric, "los_total": ev.los.objective,
                     **{f"penalty_pct_{b}": ev.penalty_pct(b) for b in BRANCHES}})
    return pd.DataFrame(rows)


def fig9(tech) -> pd.DataFrame:
    rows = []
    for config, hardware in FIG9_HARDWARE.items():
        for name in BUILTIN_NETWORKS:
            ev = evaluate_point(load_network(name), hardware, tech, "edp", AGGREGATE)
            rows.append({"config": config, "network": name, **{b: ev.penalty_pct(b) for b in BRANCHES}})
    return pd.DataFrame(rows)


def table4(tech, space, progress) -> pd.DataFrame:
    network = load_network("googlenet-v1")
    rows = []
    for metric in METRIC_EXPONENTS:
        sol = enumerate_space(network, space, tech, metric, AGGREGATE, top_k=0)
        hw = sol.hardware
        rows.append({"metric": metric, "J": hw.rows, "K": hw.cols, "fsram_kb": hw.fsram_kb,
                     "isram_kb": hw.isram_kb, "psram_kb": hw.psram_kb, "area_mm2": sol.area_mm2,
                     "objective": sol.objective, "worst_objective": sol.worst.objective,
                     "best_vs_worst": sol.worst.objective / sol.objective, "points": sol.points})
        progress(metric)
    return pd.DataFrame(rows)


def table5(tech, space, progress) -> pd.DataFrame:
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
            row[f"on {hw_name} hw"] = (value - own) / own * 100.0
        rows.append(row)
    return pd.DataFrame(rows)


def _plot(path: Path, draw) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig = draw(plt)
    try:
        save_figure(fig, path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return True


def _bars(frame: pd.DataFrame, groups: str, series: list[str], title: str, ylabel: str, log: bool = False):
    def draw(plt):
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(series)
        for n, column in enumerate(series):
            values = frame[column].replace(float("inf"), float("nan"))
            label = column if values.notna().all() else f"{column} (missing bars: infeasible)"
            ax.bar([i + n * width for i in range(len(frame))], values, width, label=label)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(frame))])
        ax.set_xticklabels(frame[groups], rotation=0)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
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
            atomic_write_text(out / "table3.md", markdown(t3))
            pngs.append(_plot(out / "table3.png", _bars(t3, "metric", [f"penalty_pct_{b}" for b in BRANCHES[:4]],
                                                        "Table 3: FS penalty over LOS, GoogleNet-v1, 32x64, 16/32/8 kB",
                                                        "penalty [%]")))
        if "fig9" in steps:
            f9 = fig9(tech)
            step()
            write_csv(out / "fig9.csv", f9)
            atomic_write_text(out / "fig9.md", markdown(f9))
            for config in FIG9_HARDWARE:
                part = f9[f9.config == config]
                pngs.append(_plot(out / f"fig9_{config}.png",
                                  _bars(part, "network", list(BRANCHES),
                                        f"Fig. 9: E*D penalty of each FS scheme over LOS ({config})", "penalty [%]")))
        if "table4" in steps:
            t4 = table4(tech, space, step)
            write_csv(out / "table4.csv", t4)
            atomic_write_text(out / "table4.md", markdown(t4, digits=3))
            pngs.append(_plot(out / "table4.png", _bars(t4, "metric", ["best_vs_worst"],
                                                        "Table 4: worst / best point of the space, GoogleNet-v1, 16 mm^2",
                                                        "ratio (log scale)", log=True)))
        if "table5" in steps:
            t5 = table5(tech, space, step)
            write_csv(out / "table5.csv", t5)
            atomic_write_text(out / "table5.md", markdown(t5))
            pngs.append(_plot(out / "table5.png", _bars(t5, "network", [c for c in t5.columns if c != "network"],
                                                        "Table 5: E*D penalty on another network's optimal hardware",
                                                        "penalty [%]")))
    finally:
        line.close()
    if not quiet:
        print(f"wrote the tables to {out}")
        if pngs and not all(pngs):
            print("PNG plots need matplotlib: pip install 'deepopt-mip[plot]'")
    return 0
