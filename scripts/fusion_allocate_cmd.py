"""``deepopt-mip allocate --fusion``: the optimal hardware point when layers may hand over on chip."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.allocate_cmd import manifest, print_solution
from deepopt_mip.scripts.fusion_output import fusion_payload, fusion_summary, fusion_table, require_graph
from deepopt_mip.scripts.output import atomic_write_text, json_safe, write_csv, write_json

UNSUPPORTED = ("weight", "max_delay", "max_energy", "max_branches", "fix_array", "fix_sram", "study", "scalesim")


def check_args(args) -> None:
    """Refuse what --fusion does not cover (one line, exit status 2), before any work."""
    if args.solver not in ("enumerate", "mip"):
        raise InputError(f"unknown solver {args.solver!r}: choose enumerate or mip")
    if args.network and len(args.network) > 1:
        raise InputError("allocate --fusion takes one --network (studies of several networks are not covered)")
    given = [name for name in UNSUPPORTED if getattr(args, name, None) not in (None, False, [], ())]
    if given:
        raise InputError("allocate --fusion does not combine with "
                         + ", ".join("--" + name.replace("_", "-") for name in given))


def payload(network, allocation) -> dict:
    """The solution's JSON (:meth:`Solution.to_dict`) with the ``fusion`` block of the optimum's hardware."""
    out = allocation.solution.to_dict()
    out["fusion"] = fusion_payload(network, allocation.solution.hardware, allocation.fused, allocation.unfused)
    return out


def solve(network, space, tech, metric: str, aggregate: str, solver: str, top_k: int, options, progress,
          workers: int | None = None):
    """The allocation with fusion by ``solver`` (``enumerate`` or ``mip``), the grid pass by ``workers``
    processes (None: the default)."""
    require_graph(network)
    try:
        if solver == "mip":
            from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate
            return mip_fusion_allocate(network, space, tech, metric, aggregate, options, progress, workers)
        from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
        return enumerate_fusion(network, space, tech, metric, aggregate, top_k, progress, workers=workers)
    finally:
        progress.close()


def write_out_dir(out_dir, network, space, tech, allocation, version: str, options) -> None:
    """What ``allocate --out`` writes (:func:`~.allocate_cmd.write_outputs`), with fusion: solution.json and
    solution.yaml (no timings) with the ``fusion`` block, layers.csv with each layer's fusion columns, and
    manifest.yaml with ``fusion: true``."""
    out = Path(out_dir)
    stable = allocation.solution.to_dict(timings=False)
    stable["fusion"] = fusion_payload(network, allocation.solution.hardware, allocation.fused, allocation.unfused)
    write_json(out / "solution.json", stable)
    atomic_write_text(out / "solution.yaml", yaml.safe_dump(json_safe(stable), sort_keys=False))
    write_csv(out / "layers.csv", pd.DataFrame([
        {**row, "input_fused": fused["input_fused"], "output_fused": fused["output_fused"],
         "resident_bits": fused["resident_bits"]}
        for row, fused in zip(stable["layers"], stable["fusion"]["layers"])]))
    record = {**manifest(allocation.solution, network, space, tech, version, options), "fusion": True}
    atomic_write_text(out / "manifest.yaml", yaml.safe_dump(json_safe(record), sort_keys=False))


def run(network, space, tech, metric: str, aggregate: str, solver: str, top_k: int, options, json_path, out_dir,
        quiet: bool, progress, version: str = "", workers: int | None = None) -> int:
    allocation = solve(network, space, tech, metric, aggregate, solver, top_k, options, progress, workers)
    if json_path:
        write_json(json_path, payload(network, allocation))
    if out_dir:
        write_out_dir(out_dir, network, space, tech, allocation, version, options)
    if not quiet:
        print_solution(allocation.solution)
        print("\nFusion at the optimum:")
        print(fusion_table(network, allocation.fused, allocation.unfused))
        print()
        print(fusion_summary(metric, allocation.solution.hardware, allocation.fused, allocation.unfused,
                             aggregate))
    return 0


def run_compare(network, space, tech, metric: str, aggregate: str, options, json_path, quiet: bool,
                workers: int | None = None) -> int:
    """``compare --fusion``: the allocation with fusion by MIP and by enumeration; 0 if they agree."""
    from deepopt_mip.scripts.progress import ProgressLine
    from deepopt_mip.study import AGREEMENT

    results = {}
    for solver in ("mip", "enumerate"):
        progress = ProgressLine(f"{solver} over {space.name} with fusion", quiet=quiet)
        results[solver] = solve(network, space, tech, metric, aggregate, solver, 0, options, progress,
                                workers).solution
    mip, enum = results["mip"], results["enumerate"]
    difference = abs(mip.objective - enum.objective) / max(abs(enum.objective), 1e-300)
    agree = difference <= AGREEMENT and mip.status == "optimal"
    if not quiet:
        print(f"{network.name} with fusion, {space.name} ({space.budget_mm2:g} mm^2), metric {metric}, "
              f"aggregation {aggregate}")
        for name, sol in results.items():
            hw = sol.hardware
            print(f"{name:<10}{hw.J:>4}x{hw.K:<4}{hw.fsram_kb:>6g}/{hw.isram_kb:g}/{hw.psram_kb:<6g}"
                  f"{sol.area_mm2:>9.3f}{sol.objective:>16.9g}{sol.wall_s:>9.2f} s  {sol.status}")
        print(f"agreement: relative difference {difference:.2e} (tolerance {AGREEMENT:g}): "
              f"{'AGREE' if agree else 'DISAGREE'}")
    if json_path:
        from deepopt_mip.solvers.solution import hardware_dict
        write_json(json_path, {
            "network": network.name, "space": space.name, "metric": metric, "aggregate": aggregate, "fusion": True,
            "agree": agree, "relative_difference": difference, "tolerance": AGREEMENT,
            "solvers": {name: {"hardware": hardware_dict(sol.hardware), "objective": sol.objective,
                               "energy_j": sol.energy_j, "delay_cycles": sol.delay_cycles, "status": sol.status,
                               "area_mm2": sol.area_mm2} for name, sol in results.items()}})
    return 0 if agree else 1
