"""``deepopt-mip compare``: one allocation or study solved by the MIP and by enumeration, side by side.

Exit status 0 only if both optima agree to a relative 1e-6 (and the MIP
proved its optimum); 1 otherwise. ``quiet`` prints nothing: the exit status
is the answer. The JSON file holds the results only, no timings (those are in
the printed table), so the same inputs give a byte-identical file.
"""

from __future__ import annotations


from deepopt_mip.scripts.output import write_json
from deepopt_mip.scripts.progress import ProgressLine
from deepopt_mip.solvers.solution import hardware_dict
from deepopt_mip.study import AGREEMENT, compare


def _row(name, sol, wall_s):
    hw = sol.hardware
    return (f"{name:<10}{hw.J:>4}x{hw.K:<4}{hw.fsram_kb:>6g}/{hw.isram_kb:g}/{hw.psram_kb:<6g}"
            f"{sol.area_mm2:>9.3f}{sol.objective:>16.9g}{sol.energy_j * 1e3:>12.6g}{sol.delay_cycles:>14,.0f}"
            f"{sol.build_s:>9.2f}{sol.solve_s:>9.2f}{wall_s:>9.2f}  {sol.status}")


def run(problem, options, json_path, quiet, workers=None) -> int:
    space = problem.space
    mip_progress = ProgressLine(f"MIP over {space.name}", quiet=quiet)
    enum_progress = ProgressLine(f"enumerating {space.name}", quiet=quiet)
    try:
        result = compare(problem, options, mip_progress=mip_progress, enumerate_progress=enum_progress,
                         workers=workers)
    finally:
        mip_progress.close()
        enum_progress.close()
    mip, enum = result.mip, result.enumerate
    difference, agree = result.relative_difference, result.agree
    if not quiet:
        print(f"{problem.label}, {space.name} ({space.budget_mm2:g} mm^2), metric {problem.metric}, "
              f"aggregation {problem.aggregate}" + (", with fusion" if problem.fusion else "") + ("" if problem.is_single_network else
                                                    f", {len(problem.networks)} networks"
                                                    + "".join(f"; {n.name}: weight {n.weight:g}"
                                                              + "".join(f", {k} {v:g}" for k, v in n.caps().items()
                                                                        if v is not None)
                                                              for n in problem.networks)
                                                    + (f"; at most {problem.max_branches} branches"
                                                       if problem.max_branches else "")))
        print(f"{'solver':<10}{'J x K':<9}{'SRAM f/i/p kB':<14}{'area mm2':>9}{'objective':>16}{'E [mJ]':>12}"
              f"{'D [cycles]':>14}{'build s':>9}{'solve s':>9}{'wall s':>9}  status")
        print(_row("mip", mip, result.mip_wall_s))
        print(_row("enumerate", enum, result.enumerate_wall_s))
        same_point = mip.hardware == enum.hardware
        print(f"agreement: relative difference {difference:.2e} (tolerance {AGREEMENT:g}): "
              f"{'AGREE' if agree else 'DISAGREE'}" + ("" if same_point else " (different points of equal cost)"
                                                        if agree else ""))
    if json_path:
        write_json(json_path, {
            "network": problem.label, "space": space.name, "metric": problem.metric, "aggregate": problem.aggregate,
            "networks": [{"name": n.name, "weight": n.weight, **n.caps()} for n in problem.networks],
            "max_branches": problem.max_branches, **({"fusion": True} if problem.fusion else {}),
            "agree": agree, "relative_difference": difference, "tolerance": AGREEMENT,
            "solvers": {name: {"hardware": hardware_dict(sol.hardware), "objective": sol.objective,
                               "energy_j": sol.energy_j, "delay_cycles": sol.delay_cycles, "status": sol.status,
                               "area_mm2": sol.area_mm2}
                        for name, sol in (("mip", mip), ("enumerate", enum))}})
    return 0 if agree else 1
