"""``deepopt-mip compare``: one allocation solved by the MIP and by enumeration, side by side.

Exit status 0 only if both optima agree to a relative 1e-6 (and the MIP
proved its optimum); 1 otherwise. ``quiet`` prints nothing: the exit status
is the answer. The JSON file holds the results only, no timings (those are in
the printed table), so the same inputs give a byte-identical file.
"""

from __future__ import annotations

import time

from deepopt_mip.scripts.allocate_cmd import hardware_dict
from deepopt_mip.scripts.output import write_json
from deepopt_mip.scripts.progress import ProgressLine
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.mip import mip_allocate

AGREEMENT = 1e-6


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def _row(name, sol, wall_s):
    hw = sol.hardware
    return (f"{name:<10}{hw.rows:>4}x{hw.cols:<4}{hw.fsram_kb:>6g}/{hw.isram_kb:g}/{hw.psram_kb:<6g}"
            f"{sol.area_mm2:>9.3f}{sol.objective:>16.9g}{sol.energy_j * 1e3:>12.6g}{sol.delay_cycles:>14,.0f}"
            f"{sol.build_s:>9.2f}{sol.solve_s:>9.2f}{wall_s:>9.2f}  {sol.status}")


def run(network, space, tech, metric, aggregate, options, json_path, quiet) -> int:
    progress = ProgressLine(f"MIP over {space.name}", quiet=quiet)
    start = time.perf_counter()
    try:
        mip = mip_allocate(network, space, tech, metric, aggregate, options, progress)
    finally:
        progress.close()
    mip_wall = time.perf_counter() - start
    progress = ProgressLine(f"enumerating {space.name}", quiet=quiet)
    start = time.perf_counter()
    try:
        enum = enumerate_space(network, space, tech, metric, aggregate, top_k=1, progress=progress)
    finally:
        progress.close()
    enum_wall = time.perf_counter() - start
    difference = relative_difference(mip.objective, enum.objective)
    agree = difference <= AGREEMENT and mip.status == "optimal"
    if not quiet:
        print(f"{network.name}, {space.name} ({space.budget_mm2:g} mm^2), metric {metric}, aggregation {aggregate}")
        print(f"{'solver':<10}{'J x K':<9}{'SRAM f/i/p kB':<14}{'area mm2':>9}{'objective':>16}{'E [mJ]':>12}"
              f"{'D [cycles]':>14}{'build s':>9}{'solve s':>9}{'wall s':>9}  status")
        print(_row("mip", mip, mip_wall))
        print(_row("enumerate", enum, enum_wall))
        same_point = mip.hardware == enum.hardware
        print(f"agreement: relative difference {difference:.2e} (tolerance {AGREEMENT:g}): "
              f"{'AGREE' if agree else 'DISAGREE'}" + ("" if same_point else " (different points of equal cost)"
                                                        if agree else ""))
    if json_path:
        write_json(json_path, {
            "network": network.name, "space": space.name, "metric": metric, "aggregate": aggregate,
            "agree": agree, "relative_difference": difference, "tolerance": AGREEMENT,
            "solvers": {name: {"hardware": hardware_dict(sol.hardware), "objective": sol.objective,
                               "energy_j": sol.energy_j, "delay_cycles": sol.delay_cycles, "status": sol.status,
                               "area_mm2": sol.area_mm2}
                        for name, sol in (("mip", mip), ("enumerate", enum))}})
    return 0 if agree else 1
