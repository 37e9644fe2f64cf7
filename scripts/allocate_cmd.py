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


def solution_payload(sol: Solution) -> dict:
    """The ``--json`` payload: :meth:`Solution.to_dict`."""
    return sol.to_dict()


def evaluated_text(sol: Solution) -> str:
    """", N grid points evaluated", with the share of the in-budget blocks' points where bounds pruned some."""
    if not sol.points_evaluated:
        return ""
    text = f", {sol.points_evaluated:,} grid points evaluated"
    if sol.points_unpruned and sol.points_evaluated < sol.points_unpruned:
        text += (f" ({sol.points_evaluated / sol.points_unpruned:.1%} of {sol.points_unpruned:,}; "
                 f"the rest skipped by bounds, worst point not searched)")
    return text


def print_solution(sol: Solution) -> None:
    hw = sol.hardware
    print(f"network   {sol.network}, metric {sol.metric} ({METRIC_LABELS[sol.metric]}), aggregation {sol.aggregate}")
    print(f"optimum   {hw.J}x{hw.K} PEs, SRAM filter/ifmap/psum {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB, "
          f"area {sol.area_mm2:.3f} mm^2")
    print(f"objective {sol.objective:.6g}   E = {sol.energy_j * 1e3:.5g} mJ, D = {sol.delay_cycles:,.0f} cycles")
    print(f"solver    {sol.solver}: {sol.status}, {sol.points:,} points, {sol.wall_s:.2f} s"
          + (f" (build {sol.build_s:.2f} s, solve {sol.solve_s:.2f} s), gap {sol.gap:.2e}"
             if sol.solver != "enumerate" else
             evaluated_text(sol)))
    if sol.networks:
        print(f"networks  {len(sol.networks)}" + (f", at most {sol.max_branches} distinct branches"
                                                   if sol.max_branches else ""))
        for n in sol.networks:
            caps = ", ".join(([f"D <= {n.max_delay_cycles:,.0f}"] if n.max_delay_cycles is not None else [])
                             + ([f"E <= {n.max_energy_j:.6g} J"] if n.max_energy_j is not None else []))
            print(f"  {n.name:<20} weight {n.weight:g}: E = {n.energy_j * 1e3:.5g} mJ, D = {n.delay_cycles:,.0f} "
                  f"cycles, {sol.metric} {n.objective:.6g}" + (f" (caps: {caps})" if caps else "")
                  + (f", {len(n.fused_edges)} edges fused" if n.fused_edges is not None else ""))
    if sol.worst is not None:
        print(f"worst     {sol.worst.hardware.J}x{sol.worst.hardware.K}, SRAM "
              f"{sol.worst.hardware.fsram_kb:g}/{sol.worst.hardware.isram_kb:g}/{sol.worst.hardware.psram_kb:g} kB: "
              f"{sol.worst.objective:.6g} ({sol.worst.objective / sol.objective:.2f}x the optimum)")
    if sol.runners_up:
        print("runners-up:")
        for r in sol.runners_up:
            print(f"  {r.hardware.J}x{r.hardware.K}, SRAM {r.hardware.fsram_kb:g}/{r.hardware.isram_kb:g}/"
                  f"{r.hardware.psram_kb:g} kB, {r.area_mm2:.3f} mm^2: {r.objective:.6g}")
    print(f"\n{'layer':<{NAME_WIDTH}} {'branch':>8}{'energy [uJ]':>14}{'delay [cycles]':>16}")
    names = short_names(sol.layer_names, NAME_WIDTH)
    for n, b, e, d in zip(names, sol.branches, sol.layer_energy_j, sol.layer_delay_cycles):
        print(f"{n:<{NAME_WIDTH}} {b:>8}{e * 1e6:>14.5g}{d:>16.0f}")


def manifest(sol: Solution | None, network, space, tech, version: str, options=None) -> dict:
    out = provenance(network, tech, version)
    out["space"] = space_record(space)
    if sol is not None:
        out.update({"metric": sol.metric, "aggregate": sol.aggregate, "solver": sol.solver})
    if options is not None:
        out["solver_options"] = solver_options_record(options)
    return out


def study_manifest(sol: Solution, problem, version: str, options=None) -> dict:
    """:func:`manifest` of a study: every network with its source, weight and caps, and the branch limit."""
    out = manifest(sol, problem.networks[0].network, problem.space, problem.tech, version, options)
    if not problem.is_single_network:
        out["network"] = {"name": problem.label, "source": None}
        out["networks"] = [{"name": n.name, "source": n.network.source, "weight": n.weight, **n.caps()}
                           for n in problem.networks]
        out["max_branches"] = problem.max_branches
    if problem.fusion:
        out["fusion"] = True
    return out


def write_outputs(sol: Solution, out_dir, json_path, problem, version: str, options=None) -> None:
    payload = solution_payload(sol)
    if json_path:
        write_json(json_path, payload)
    if out_dir:
        out = Path(out_dir)
        stable = sol.to_dict(timings=False)
        write_json(out / "solution.json", stable)
        atomic_write_text(out / "solution.yaml", yaml.safe_dump(json_safe(stable), sort_keys=False))
        write_csv(out / "layers.csv", pd.DataFrame(payload["layers"]))
        atomic_write_text(out / "manifest.yaml",
                          yaml.safe_dump(json_safe(study_manifest(sol, problem, version, options)), sort_keys=False))
