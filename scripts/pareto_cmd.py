"""``deepopt-mip pareto``: the energy-delay frontier of a space, as CSV and PNG.

Writes ``frontier.csv`` (one row per frontier point: totals, E*D, hardware,
how many layers run each branch), ``frontier.png`` (energy versus delay, the
E*D-optimal point marked, and for contrast the best fixed schedule on that
hardware) and ``manifest.yaml`` (inputs, options, times). The E*D optimum is
found by the same model's product search, so it is exact even when only some
frontier points are computed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.spaces import UM2_PER_MM2
from deepopt_mip.scripts.energy_plot import require_matplotlib
from deepopt_mip.scripts.output import atomic_write_text, json_safe, save_figure, write_csv
from deepopt_mip.scripts.progress import ProgressLine
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.highs_driver import HighsDriver
from deepopt_mip.solvers.mip import mip_frontier, product_search


def branch_mix(counts: np.ndarray) -> str:
    """'XYZiZo:20 XZiYZo:37': how many layers run each branch (branches no layer runs left out)."""
    totals = counts.sum(axis=0)
    return " ".join(f"{b}:{int(n)}" for b, n in zip(BRANCHES, totals) if n)


def frontier_frame(points, built) -> pd.DataFrame:
    area = built.data.points.area_um2
    return pd.DataFrame([{
        "energy_j": p.energy_j, "delay_cycles": p.delay_cycles, "edp_j_cycles": p.energy_j * p.delay_cycles,
        "J": p.hardware.rows, "K": p.hardware.cols, "fsram_kb": p.hardware.fsram_kb,
        "isram_kb": p.hardware.isram_kb, "psram_kb": p.hardware.psram_kb,
        "area_mm2": float(area[p.point]) / UM2_PER_MM2, "branches": branch_mix(p.branch_counts)}
        for p in points])


def plot_frontier(path: Path, frame: pd.DataFrame, best, fixed_name: str, fixed, title: str) -> None:
    """Energy (mJ) versus delay (million cycles), written atomically."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(7, 5))
    by_delay = frame.sort_values("delay_cycles")
    ax.step(by_delay["delay_cycles"] / 1e6, by_delay["energy_j"] * 1e3, where="post", color="#4c72b0", lw=1)
    ax.plot(by_delay["delay_cycles"] / 1e6, by_delay["energy_j"] * 1e3, "o", ms=3, color="#4c72b0",
            label=f"frontier ({len(frame)} points)")
    ax.plot(best.delay_cycles / 1e6, best.energy_j * 1e3, "*", ms=14, color="#c44e52",
            label=f"E*D optimum ({best.hardware.rows}x{best.hardware.cols})")
    if fixed is not None:
        ax.plot(fixed.delay_cycles / 1e6, fixed.energy_j * 1e3, "X", ms=10, color="#dd8452",
                label=f"best fixed schedule there ({fixed_name})")
    bottom, top = ax.get_ylim()
    delays = np.linspace(frame["delay_cycles"].min(), frame["delay_cycles"].max(), 100)
    ax.plot(delays / 1e6, best.energy_j * best.delay_cycles / delays * 1e3, "--", color="#c44e52", lw=0.8,
            label="E*D = optimum")
    ax.set_ylim(bottom, top)
    ax.set_xlabel("delay [million cycles]")
    ax.set_ylabel("energy [mJ]")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=120)
    finally:
        plt.close(fig)


def run(network, space, tech, options, max_points, out_dir, quiet, version, workers=None) -> int:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    progress = ProgressLine(f"building the frontier model over {space.name}", quiet=quiet)
    found = []

    def on_point(point):
        found.append(point)
        if not quiet and sys.stderr.isatty():
            print(f"\rfrontier: {len(found)} points", end="", file=sys.stderr, flush=True)

    try:
        points, built, solve_s = mip_frontier(network, space, tech, options, progress, workers=workers,
                                              max_points=max_points,
                                              on_point=on_point)
    finally:
        progress.close()
        if not quiet and sys.stderr.isatty():
            print(file=sys.stderr)
    search = product_search(built, "edp", HighsDriver(options), options.time_limit_s)
    best = search.best
    if not any(p.delay_cycles == best.delay_cycles and p.energy_j == best.energy_j for p in points):
        points = sorted(points + [best], key=lambda p: (p.energy_j, p.delay_cycles))
    frame = frontier_frame(points, built)
    frame["edp_optimal"] = [p is best or (p.energy_j == best.energy_j and p.delay_cycles == best.delay_cycles)
                            for p in points]
    evaluation = evaluate_point(network, best.hardware, tech, "edp", "network")
    finite = {b: s for b, s in evaluation.fixed.items() if s.feasible}
    fixed_name = min(finite, key=lambda b: finite[b].objective) if finite else ""
    fixed = finite.get(fixed_name)
    write_csv(out / "frontier.csv", frame)
    wall = time.perf_counter() - start
    try:
        plot_frontier(out / "frontier.png", frame, best, fixed_name, fixed,
                      f"{network.name} on {space.name} ({space.budget_mm2:g} mm^2)")
        png = "frontier.png"
    except InputError as exc:
        print(f"deepopt-mip: {exc}; frontier.png not written", file=sys.stderr)
        png = None
    manifest = {
        "deepopt_mip_version": version,
        "network": {"name": network.name, "source": network.source},
        "space": {"name": space.name, "source": space.source, "sha256": space.sha256,
                  "budget_mm2": space.budget_mm2, "tolerance": space.tolerance},
        "technology": {"name": tech.name, "source": tech.source_path, "sha256": tech.sha256},
        "points_requested": "all" if max_points is None else max_points,
        "solver_options": {"time_limit_s": options.time_limit_s, "mip_gap": options.mip_gap,
                           "threads": options.threads},
        "frontier_points": len(points), "offered_hardware_points": built.data.points.size,
        "grid_points": built.data.points.grid_points,
        "edp_optimum": {"energy_j": best.energy_j, "delay_cycles": best.delay_cycles,
                        "edp_j_cycles": search.objective, "proven": search.proven},
        "build_s": round(built.build_s, 3), "solve_s": round(solve_s + search.solve_s, 3), "wall_s": round(wall, 3),
        "files": ["frontier.csv"] + ([png] if png else []),
    }
    atomic_write_text(out / "manifest.yaml", yaml.safe_dump(json_safe(manifest), sort_keys=False))
    if not quiet:
        hw = best.hardware
        print(f"{network.name} on {space.name}: {len(points)} frontier points "
              f"({built.data.points.size} of {built.data.points.grid_points:,} hardware points can hold one), "
              f"{wall:.1f} s")
        print(f"E*D optimum: {hw.rows}x{hw.cols}, SRAM {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
              f"E = {best.energy_j * 1e3:.5g} mJ, D = {best.delay_cycles:,.0f} cycles, E*D = {search.objective:.6g}")
        if fixed is not None:
            print(f"best fixed schedule there ({fixed_name}): E*D = {fixed.objective:.6g} "
                  f"({(fixed.objective / search.objective - 1) * 100:.1f} % worse)")
        print(f"wrote {out / 'frontier.csv'}" + (f", {out / png}" if png else "") + f", {out / 'manifest.yaml'}")
    return 0
