"""``deepopt-mip pareto``: the energy-delay frontier of a space, as CSV and PNG.

Writes ``frontier.csv`` (one row per frontier point: totals, E*D, hardware,
how many layers run each branch), ``frontier.png`` (energy versus delay, the
E*D-optimal point marked, and for contrast the best fixed schedule on that
hardware) and ``manifest.yaml`` (inputs, options, times). The E*D optimum is
found by the same model's product search, so it is exact even when only some
frontier points are computed. With ``--fusion`` the frontier is over every
fusion set as well (docs/mip.md section 9): the CSV adds the fused edges'
count and the fused consumers, the plot's contrast is the best unfused
schedule on the optimum's hardware, and the manifest names the fused edges.
"""

from __future__ import annotations

import math
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
from deepopt_mip.scripts.provenance import provenance, solver_options_record, space_record
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.highs_driver import HighsDriver
from deepopt_mip.solvers.mip import mip_frontier, product_search


def branch_mix(counts: np.ndarray) -> str:
    """'XYZiZo:20 XZiYZo:37': how many layers run each branch (branches no layer runs left out)."""
    totals = counts.sum(axis=0)
    return " ".join(f"{b}:{int(n)}" for b, n in zip(BRANCHES, totals) if n)


TOTAL_UNKNOWN = "unknown; use --points all"


def frontier_counts(max_points: int | None, found: int) -> dict:
    """How many frontier points were asked for, how many distinct ones the sweep found, how many exist.

    With ``--points N`` the sweep solves N delay limits; limits that land on
    the same point give one point, so it finds at most N. How many points the
    whole frontier has is known only when the sweep ran to its end
    (``--points all``).
    """
    return {"points_requested": "all" if max_points is None else max_points,
            "distinct_points_found": found,
            "points_on_frontier": found if max_points is None else TOTAL_UNKNOWN,
            "edp_optimum_added": False}


def counts_sentence(counts: dict) -> str:
    """The counts of ``frontier_counts`` for people, one line."""
    found = counts["distinct_points_found"]
    added = " + the E*D optimum" if counts["edp_optimum_added"] else ""
    if counts["points_requested"] == "all":
        return f"frontier: the whole frontier (--points all), {found} points{added}"
    return (f"frontier: {counts['points_requested']} delay limits asked (--points {counts['points_requested']}), "
            f"{found} distinct points found{added}; points on the whole frontier: unknown (use --points all)")


def frontier_frame(points, built, network=None) -> pd.DataFrame:
    """One row per frontier point; with fusion (``network`` given) also how many edges are fused and the
    fused consumers (their inputs stay on chip), ';'-separated."""
    area = built.data.points.area_um2
    rows = []
    for p in points:
        row = {"energy_j": p.energy_j, "delay_cycles": p.delay_cycles, "edp_j_cycles": p.energy_j * p.delay_cycles,
               "J": p.hardware.J, "K": p.hardware.K, "fsram_kb": p.hardware.fsram_kb,
               "isram_kb": p.hardware.isram_kb, "psram_kb": p.hardware.psram_kb,
               "area_mm2": float(area[p.point]) / UM2_PER_MM2, "branches": branch_mix(p.branch_counts)}
        if network is not None:
            row["fused_edges"] = len(built.data.graph.fused_edges(p.fused))
            row["fused_consumers"] = ";".join(network.layers[m].name for m in sorted(p.fused))
        rows.append(row)
    return pd.DataFrame(rows)


def hardware_key(row) -> str:
    """A frontier row's hardware as people read it: 'J x K, SRAM f/i/p kB'."""
    return (f"{int(row['J'])}x{int(row['K'])}, SRAM {row['fsram_kb']:g}/{row['isram_kb']:g}/"
            f"{row['psram_kb']:g} kB")


def hardware_changes(frame: pd.DataFrame) -> tuple[list[tuple[int, int]], list[str]]:
    """Along the frontier by increasing delay: (position, hardware number) where the hardware changes, and the
    distinct hardware in order of first appearance (number n is entry n - 1)."""
    distinct: list[str] = []
    changes = []
    previous = None
    for position, (_, row) in enumerate(frame.sort_values("delay_cycles").iterrows()):
        key = hardware_key(row)
        if key not in distinct:
            distinct.append(key)
        if key != previous:
            changes.append((position, distinct.index(key) + 1))
        previous = key
    return changes, distinct


def plot_frontier(path: Path, frame: pd.DataFrame, best, contrast_label: str, contrast, title: str,
                  counts: dict | None = None) -> None:
    """Energy (mJ) versus delay (million cycles), each point's hardware numbered where it changes; atomic."""
    plt = require_matplotlib()
    changes, distinct = hardware_changes(frame)
    fig, ax = plt.subplots(figsize=(10, max(5.0, 1.2 + 0.17 * len(distinct))))
    by_delay = frame.sort_values("delay_cycles")
    delay_m, energy_mj = by_delay["delay_cycles"].to_numpy() / 1e6, by_delay["energy_j"].to_numpy() * 1e3
    ax.step(delay_m, energy_mj, where="post", color="#4c72b0", lw=1)
    found = f"frontier ({len(frame)} points"
    if counts and counts["points_requested"] != "all":
        found += f"; --points {counts['points_requested']}: whole frontier not computed"
    ax.plot(delay_m, energy_mj, "o", ms=3, color="#4c72b0", label=found + ")")
    ax.plot(best.delay_cycles / 1e6, best.energy_j * 1e3, "*", ms=14, color="#c44e52",
            label=f"E*D optimum ({best.hardware.J}x{best.hardware.K})")
    if contrast is not None:
        ax.plot(contrast.delay_cycles / 1e6, contrast.energy_j * 1e3, "X", ms=10, color="#dd8452",
                label=contrast_label)
    bottom, top = ax.get_ylim()
    delays = np.linspace(frame["delay_cycles"].min(), frame["delay_cycles"].max(), 100)
    ax.plot(delays / 1e6, best.energy_j * best.delay_cycles / delays * 1e3, "--", color="#c44e52", lw=0.8,
            label="E*D = optimum")
    ax.set_ylim(bottom, top)
    span = max(float(delay_m[-1] - delay_m[0]), 1e-12)
    labelled: dict[int, float] = {}
    for n, (position, number) in enumerate(changes):
        if abs(delay_m[position] - labelled.get(number, -math.inf)) < 0.03 * span:
            continue  # hardware switching back and forth: its number once per stretch of the frontier
        labelled[number] = delay_m[position]
        ax.annotate(str(number), (delay_m[position], energy_mj[position]), xytext=(4, 4 if n % 2 else -10),
                    textcoords="offset points", fontsize=7, color="#333333")
    ax.text(1.02, 1.0, "hardware (numbered where it\nchanges along the frontier):\n"
            + "\n".join(f"{n}: {key}" for n, key in enumerate(distinct, start=1)),
            transform=ax.transAxes, va="top", ha="left", fontsize=7, family="monospace")
    ax.set_xlabel("delay [million cycles]")
    ax.set_ylabel("energy [mJ]")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def contrast_at(network, hardware, tech, fusion: bool):
    """(label, schedule or None): without fusion the best fixed schedule on ``hardware`` (one branch for every
    layer), with fusion the best unfused schedule there, each for E*D."""
    if fusion:
        from deepopt_mip.solvers.fusion_schedule import unfused_schedule
        return "best unfused schedule there", unfused_schedule(network, hardware, tech, "edp", "network")
    evaluation = evaluate_point(network, hardware, tech, "edp", "network")
    finite = {b: s for b, s in evaluation.fixed.items() if s.feasible}
    if not finite:
        return "", None
    name = min(finite, key=lambda b: finite[b].objective)
    return f"best fixed schedule there ({name})", finite[name]


def run(network, space, tech, options, max_points, out_dir, quiet, version, workers=None, fusion: bool = False) -> int:
    """The frontier of one network (with ``fusion``, every fusion set too: docs/mip.md section 9)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    if fusion:
        from deepopt_mip.scripts.fusion_output import require_graph
        require_graph(network)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    progress = ProgressLine(f"building the frontier model over {space.name}" + (" with fusion" if fusion else ""),
                            quiet=quiet)
    found = []

    def on_point(point):
        found.append(point)
        if not quiet and sys.stderr.isatty():
            print(f"\rfrontier: {len(found)} points", end="", file=sys.stderr, flush=True)

    if fusion:
        from deepopt_mip.solvers.fusion_mip import mip_fusion_frontier as sweep
    else:
        sweep = mip_frontier
    try:
        points, built, solve_s = sweep(network, space, tech, options, progress, workers=workers,
                                       max_points=max_points, on_point=on_point)
    finally:
        progress.close()
        if not quiet and sys.stderr.isatty():
            print(file=sys.stderr)
    search = product_search(built, "edp", HighsDriver(options), options.time_limit_s)
    best = search.best
    counts = frontier_counts(max_points, len(points))
    if not any(p.delay_cycles == best.delay_cycles and p.energy_j == best.energy_j for p in points):
        points = sorted(points + [best], key=lambda p: (p.energy_j, p.delay_cycles))
        counts["edp_optimum_added"] = True
    counts["points_written"] = len(points)
    frame = frontier_frame(points, built, network if fusion else None)
    frame["edp_optimal"] = [p is best or (p.energy_j == best.energy_j and p.delay_cycles == best.delay_cycles)
                            for p in points]
    contrast_label, contrast = contrast_at(network, best.hardware, tech, fusion)
    write_csv(out / "frontier.csv", frame)
    wall = time.perf_counter() - start
    title = f"{network.name} on {space.name} ({space.budget_mm2:g} mm^2)" + (", with fusion" if fusion else "")
    try:
        plot_frontier(out / "frontier.png", frame, best, contrast_label, contrast, title, counts)
        png = "frontier.png"
    except InputError as exc:
        print(f"deepopt-mip: {exc}; frontier.png not written", file=sys.stderr)
        png = None
    optimum = {"energy_j": best.energy_j, "delay_cycles": best.delay_cycles, "edp_j_cycles": search.objective,
               "proven": search.proven}
    if fusion:
        optimum["fused_edges"] = [list(edge) for edge in built.data.graph.fused_edges(best.fused)]
        optimum["unfused_at_same_hardware"] = {"energy_j": contrast.energy_j, "delay_cycles": contrast.delay_cycles,
                                               "edp_j_cycles": contrast.objective}
    manifest = {
        **provenance(network, tech, version),
        "space": space_record(space),
        "solver_options": solver_options_record(options),
        **({"fusion": True} if fusion else {}),
        "frontier": counts,
        "offered_hardware_points": built.data.points.size,
        "grid_points": built.data.points.grid_points,
        "edp_optimum": optimum,
        "build_s": round(built.build_s, 3), "solve_s": round(solve_s + search.solve_s, 3), "wall_s": round(wall, 3),
        "files": ["frontier.csv"] + ([png] if png else []),
    }
    atomic_write_text(out / "manifest.yaml", yaml.safe_dump(json_safe(manifest), sort_keys=False))
    if not quiet:
        hw = best.hardware
        print(f"{network.name} on {space.name}{' with fusion' if fusion else ''} ({built.data.points.size} of "
              f"{built.data.points.grid_points:,} hardware points can hold a frontier point), {wall:.1f} s")
        print(counts_sentence(counts))
        print(f"E*D optimum: {hw.J}x{hw.K}, SRAM {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
              f"E = {best.energy_j * 1e3:.5g} mJ, D = {best.delay_cycles:,.0f} cycles, E*D = {search.objective:.6g}"
              + (f", {len(optimum['fused_edges'])} edges fused" if fusion else ""))
        if contrast is not None:
            print(f"{contrast_label}: E*D = {contrast.objective:.6g} "
                  f"({(contrast.objective / search.objective - 1) * 100:.1f} % worse)")
        print(f"wrote {out / 'frontier.csv'}" + (f", {out / png}" if png else "") + f", {out / 'manifest.yaml'}")
    return 0


def study_frontier_frame(points) -> pd.DataFrame:
    """One row per frontier point of a study: weighted totals, E*D of them, hardware, branch mix of all networks."""
    return pd.DataFrame([{
        "energy_j": p.energy_j, "delay_cycles": p.delay_cycles, "edp_j_cycles": p.energy_j * p.delay_cycles,
        "J": p.hardware.J, "K": p.hardware.K, "fsram_kb": p.hardware.fsram_kb,
        "isram_kb": p.hardware.isram_kb, "psram_kb": p.hardware.psram_kb, "area_mm2": p.area_mm2,
        "branches": branch_mix(np.concatenate(p.counts))} for p in points])


def run_study(problem, options, max_points, out_dir, quiet, version, workers=None) -> int:
    """The frontier of a study (several networks, or caps, or a branch limit): weighted total energy against
    weighted total delay (docs/studies.md); the point of least E*D among those computed is marked."""
    from deepopt_mip.scripts.allocate_cmd import study_manifest
    from deepopt_mip.solvers.study_mip import study_frontier
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    progress = ProgressLine(f"bounding {problem.space.name}", quiet=quiet)
    try:
        points = study_frontier(problem, options, progress, max_points, workers=workers)
    finally:
        progress.close()
    counts = frontier_counts(max_points, len(points))
    counts["points_written"] = len(points)
    frame = study_frontier_frame(points)
    best_row = int(np.argmin(frame["edp_j_cycles"].to_numpy()))
    best = points[best_row]
    frame["edp_optimal"] = [n == best_row for n in range(len(points))]
    write_csv(out / "frontier.csv", frame)
    wall = time.perf_counter() - start
    title = f"{problem.label} on {problem.space.name} ({problem.space.budget_mm2:g} mm^2), weighted totals"
    try:
        plot_frontier(out / "frontier.png", frame, best, "", None, title, counts)
        png = "frontier.png"
    except InputError as exc:
        print(f"deepopt-mip: {exc}; frontier.png not written", file=sys.stderr)
        png = None
    manifest = {**study_manifest(None, problem, version, options), "frontier": counts,
                "quantities": "weighted total energy (J) and weighted total delay (cycles) over the networks",
                "least_edp_among_points_computed": {"energy_j": best.energy_j, "delay_cycles": best.delay_cycles,
                                                    "edp_j_cycles": best.energy_j * best.delay_cycles,
                                                    "exact": max_points is None},
                "wall_s": round(wall, 3), "files": ["frontier.csv"] + ([png] if png else [])}
    atomic_write_text(out / "manifest.yaml", yaml.safe_dump(json_safe(manifest), sort_keys=False))
    if not quiet:
        hw = best.hardware
        print(f"{problem.label} on {problem.space.name}: frontier of weighted total energy and delay, {wall:.1f} s")
        print(counts_sentence(counts))
        print(f"least E*D of the weighted totals {'(whole frontier)' if max_points is None else 'among these points'}: "
              f"{hw.J}x{hw.K}, SRAM {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
              f"E = {best.energy_j * 1e3:.5g} mJ, D = {best.delay_cycles:,.0f} cycles")
        print(f"wrote {out / 'frontier.csv'}" + (f", {out / png}" if png else "") + f", {out / 'manifest.yaml'}")
    return 0
