"""``deepopt-mip allocate``: the optimal hardware point of a space and its schedule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from deepopt_mip.formulation.metrics import METRIC_LABELS
from deepopt_mip.scripts.names import NAME_WIDTH, short_names
from deepopt_mip.scripts.output import atomic_write_text, json_safe, write_csv, write_json
from deepopt_mip.scripts.provenance import provenance, solver_options_record, space_record
from deepopt_mip.solvers.solution import Solution


def hardware_dict(hw) -> dict:
    return {"J": hw.rows, "K": hw.cols, "fsram_kb": hw.fsram_kb, "isram_kb": hw.isram_kb, "psram_kb": hw.psram_kb,
            "bits_filter": hw.bits_filter, "bits_ifmap": hw.bits_ifmap, "bits_psum": hw.bits_psum,
            "dram_bw_bits_per_cycle": hw.dram_bw_bits_per_cycle}


def solution_payload(sol: Solution) -> dict:
    solver = {"name": sol.solver, "status": sol.status, "wall_s": round(sol.wall_s, 3)}
    if sol.solver != "enumerate":
        solver.update({"gap": sol.gap, "best_bound": sol.best_bound, "build_s": round(sol.build_s, 3),
                       "solve_s": round(sol.solve_s, 3)})
    return {
        "network": sol.network,
        "hardware": hardware_dict(sol.hardware),
        "area_mm2": sol.area_mm2,
        "metric": sol.metric,
        "aggregate": sol.aggregate,
        "objective": sol.objective,
        "energy_j": sol.energy_j,
        "delay_cycles": sol.delay_cycles,
        "layers": [{"name": n, "branch": b, "energy_j": e, "delay_cycles": d}
                   for n, b, e, d in zip(sol.layer_names, sol.branches, sol.layer_energy_j, sol.layer_delay_cycles)],
        "solver": solver,
        "points": sol.points,
        "runners_up": [{"hardware": hardware_dict(r.hardware), "objective": r.objective, "area_mm2": r.area_mm2}
                       for r in sol.runners_up],
        "worst": None if sol.worst is None else {"hardware": hardware_dict(sol.worst.hardware),
                                                  "objective": sol.worst.objective, "area_mm2": sol.worst.area_mm2},
    }


def deterministic(payload: dict) -> dict:
    """The payload without timings, for files that must be byte-identical across runs."""
    out = dict(payload)
    out["solver"] = {k: v for k, v in payload["solver"].items() if not k.endswith("_s")}
    return out


def print_solution(sol: Solution) -> None:
    hw = sol.hardware
    print(f"network   {sol.network}, metric {sol.metric} ({METRIC_LABELS[sol.metric]}), aggregation {sol.aggregate}")
    print(f"optimum   {hw.rows}x{hw.cols} PEs, SRAM filter/ifmap/psum {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
          f"area {sol.area_mm2:.3f} mm^2")
    print(f"objective {sol.objective:.6g}   E = {sol.energy_j * 1e3:.5g} mJ, D = {sol.delay_cycles:,.0f} cycles")
    print(f"solver    {sol.solver}: {sol.status}, {sol.points:,} points, {sol.wall_s:.2f} s"
          + (f" (build {sol.build_s:.2f} s, solve {sol.solve_s:.2f} s), gap {sol.gap:.2e}"
             if sol.solver != "enumerate" else ""))
    if sol.worst is not None:
        print(f"worst     {sol.worst.hardware.rows}x{sol.worst.hardware.cols}, SRAM "
              f"{sol.worst.hardware.fsram_kb:g}/{sol.worst.hardware.isram_kb:g}/{sol.worst.hardware.psram_kb:g} kB: "
              f"{sol.worst.objective:.6g} ({sol.worst.objective / sol.objective:.2f}x the optimum)")
    if sol.runners_up:
        print("runners-up:")
        for r in sol.runners_up:
            print(f"  {r.hardware.rows}x{r.hardware.cols}, SRAM {r.hardware.fsram_kb:g}/{r.hardware.isram_kb:g}/"
                  f"{r.hardware.psram_kb:g} kB, {r.area_mm2:.3f} mm^2: {r.objective:.6g}")
    print(f"\n{'layer':<{NAME_WIDTH}} {'branch':>8}{'energy [uJ]':>14}{'delay [cycles]':>16}")
    names = short_names(sol.layer_names, NAME_WIDTH)
    for n, b, e, d in zip(names, sol.branches, sol.layer_energy_j, sol.layer_delay_cycles):
        print(f"{n:<{NAME_WIDTH}} {b:>8}{e * 1e6:>14.5g}{d:>16.0f}")


def manifest(sol: Solution, network, space, tech, version: str, options=None) -> dict:
    out = provenance(network, tech, version)
    out.update({"space": space_record(space), "metric": sol.metric, "aggregate": sol.aggregate,
                "solver": sol.solver})
    if options is not None:
        out["solver_options"] = solver_options_record(options)
    return out


def write_outputs(sol: Solution, out_dir, json_path, network, space, tech, version: str, options=None) -> None:
    payload = solution_payload(sol)
    if json_path:
        write_json(json_path, payload)
    if out_dir:
        out = Path(out_dir)
        stable = deterministic(payload)
        write_json(out / "solution.json", stable)
        atomic_write_text(out / "solution.yaml", yaml.safe_dump(json_safe(stable), sort_keys=False))
        write_csv(out / "layers.csv", pd.DataFrame(payload["layers"]))
        atomic_write_text(out / "manifest.yaml",
                          yaml.safe_dump(json_safe(manifest(sol, network, space, tech, version, options)),
                                         sort_keys=False))
