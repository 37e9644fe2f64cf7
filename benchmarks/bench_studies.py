"""Studies on one chip: MIP and enumeration times and the MIP's size, printed as a table.

    python benchmarks/bench_studies.py [--study three|two] [--area-mm2 16] [--metrics energy,edp] [--max-branches none,2]
    python benchmarks/bench_studies.py --scale [--study two] [--spaces paper sram16] [--metrics energy,edp]
                                       [--solver enumerate|mip|pareto] [--points all|N]
                                       [--python old=PATH ...] [--workers 1]

The main case is the one docs/studies.md quotes: GoogleNet-v1, ResNet-50 and
SqueezeNet-v1.1 sharing a chip of deepopt-16mm2, a delay cap on each,
least total energy. Each row: the study, metric, branch limit, the optimum
(J x K, SRAM f/i/p kB), objective, the MIP's build and solve seconds, its
variables and constraints (last round), rounds of point offering, the
enumeration's seconds, and whether both agree (relative 1e-6).

``--scale`` measures the grid pass of a study instead: each (space, metric,
interpreter) runs as a child process under ``/usr/bin/time -v`` and the
table gives its wall time, its CPU time (user + system), its peak resident memory (``Maximum resident set
size``: the largest single process; with ``--workers 1``, the default, the
whole run), the valid points, the passes of the streamed window (``-`` for a
code without it), the optimum and its objective, and whether every
interpreter found the same point and objective (relative 1e-9). ``--solver pareto``
measures the study frontier instead (``pareto`` with a study; ``--points``: ``all``, the whole frontier, or
that many delay limits; the metric is ignored): the table gives the frontier's points, the point of least
E*D of the weighted totals and that product, and "same" also asks every frontier point (grid point, totals,
schedule) to be the same bit for bit. ``--python
LABEL=PATH`` adds an interpreter (e.g. one whose ``deepopt_mip`` is an older
checkout, to compare with it); the running one is ``new``. Spaces are those
of benchmarks/bench_scale.py (``paper`` is the built-in deepopt-16mm2,
``sram16`` its J/K grid with every SRAM size 4..500 kB in 16 kB steps).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyomo.environ as pyo

from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers import study_mip
from deepopt_mip.solvers.study_enumeration import enumerate_study

STUDIES = {
    "three": {"googlenet-v1": 2.2e6, "resnet-50": 7.2e6, "squeezenet-v1.1": 0.8e6},
    "two": {"alexnet": 0.9e6, "squeezenet-v1.1": 0.8e6},
}
"""Networks -> delay caps (cycles), each binding at 16 mm^2: the least-energy design of each network alone is
slower."""


def model_size(problem: Problem) -> tuple[int, int]:
    """Variables and constraints of the last model the MIP built for ``problem`` (rebuilt here, not timed)."""
    sizes = []
    real = study_mip.study_model

    def recording(*args, **kwargs):
        model = real(*args, **kwargs)
        sizes.append((sum(1 for _ in model.component_data_objects(pyo.Var)),
                      sum(1 for _ in model.component_data_objects(pyo.Constraint))))
        return model

    study_mip.study_model = recording
    try:
        study_mip.mip_study(problem)
    finally:
        study_mip.study_model = real
    return sizes[-1], len(sizes)


SCALE_CHILD = """
import json, sys, time
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
passes = []
try:
    from deepopt_mip.formulation.study_stream import StudyWindow
    extend = StudyWindow.extend
    StudyWindow.extend = lambda self: (passes.append(1), extend(self))[1]
    passes.append(1)
except ImportError:
    pass
space, metric, solver, workers, caps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
tech = load_technology()
problem = Problem(tuple(StudyNetwork(load_network(n), max_delay_cycles=c) for n, c in caps.items()), metric,
                  load_space(space, tech), tech)
start = time.perf_counter()
if solver == "pareto":
    import hashlib, inspect
    from deepopt_mip.solvers import study_mip
    limits = None if sys.argv[6] == "all" else int(sys.argv[6])
    if "workers" in inspect.signature(study_mip.study_frontier).parameters:
        front = study_mip.study_frontier(problem, max_points=limits, workers=workers)
    else:  # a code whose frontier takes the full-grid pass: give that pass the same workers
        from deepopt_mip.formulation import study_bounds as full_pass
        grid_sums = full_pass.grid_sums
        full_pass.grid_sums = lambda *args, **kwargs: grid_sums(*args, **{**kwargs, "workers": workers})
        front = study_mip.study_frontier(problem, max_points=limits)
    best = min(front, key=lambda p: p.energy_j * p.delay_cycles)
    digest = hashlib.sha256(repr([(p.flat, p.energy_j, p.delay_cycles, [c.tolist() for c in p.counts])
                                  for p in front]).encode()).hexdigest()[:12]
    hw = best.hardware
    print(json.dumps({"wall_s": time.perf_counter() - start, "points": len(front),
                      "objective": best.energy_j * best.delay_cycles, "passes": None, "digest": digest,
                      "point": f"{hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}"}))
    sys.exit(0)
if solver == "mip":
    from deepopt_mip.solvers.study_mip import mip_study
    sol = mip_study(problem, workers=workers)
else:
    from deepopt_mip.solvers.study_enumeration import enumerate_study
    sol = enumerate_study(problem, top_k=1, workers=workers)
hw = sol.hardware
print(json.dumps({"wall_s": time.perf_counter() - start, "points": sol.points, "objective": sol.objective,
                  "passes": len(passes) or None,
                  "point": f"{hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}"}))
"""


def timed_child(python: str, argv: list[str], timeout_s: float) -> dict:
    """Run the scale child under /usr/bin/time -v: its JSON line, with ``elapsed_s`` and ``max_rss_mb``."""
    command = ["/usr/bin/time", "-v", python, "-c", SCALE_CHILD, *argv]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker processes (its own session), not only time
        proc.communicate()
        return {"error": f"over {timeout_s:g} s"}
    done = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr)
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): (\S+)", done.stderr))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[0][:60]}
    seconds = sum(float(part) * 60 ** n for n, part in enumerate(reversed(elapsed.group(1).split(":"))))
    return {**json.loads(lines[-1]), "elapsed_s": seconds, "cpu_s": cpu, "max_rss_mb": int(rss.group(1)) / 1024}


def scale(args) -> None:
    """The ``--scale`` table (module docstring)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_scale import space_file

    pythons = [("new", sys.executable)] + [tuple(p.split("=", 1)) for p in args.python]
    caps = json.dumps(STUDIES[args.study])
    print(f"study: {' + '.join(f'{n} (max delay {c:g})' for n, c in STUDIES[args.study].items())}, "
          f"solver {args.solver}, {args.workers} worker(s)")
    counted = "frontier pts" if args.solver == "pareto" else "valid points"
    print(f"{'space':<8}{'metric':<8}{'code':<6}{'wall s':>9}{'CPU s':>9}{'peak RSS MB':>13}{counted:>14}{'passes':>8}  "
          f"{'optimum':<20}{'objective':>14}  same")
    with tempfile.TemporaryDirectory() as folder:
        for space in args.spaces:
            where = space_file(space, folder)
            for metric in args.metrics.split(","):
                rows = [(label, timed_child(python, [where, metric, args.solver, str(args.workers), caps,
                                                     args.points], args.timeout)) for label, python in pythons]
                found = [r for _, r in rows if "error" not in r]
                same = all(r["point"] == found[0]["point"] and abs(r["objective"] - found[0]["objective"])
                           <= 1e-9 * abs(found[0]["objective"]) and r.get("digest") == found[0].get("digest")
                           for r in found)
                for label, r in rows:
                    if "error" in r:
                        print(f"{space:<8}{metric:<8}{label:<6}  {r['error']}", flush=True)
                        continue
                    print(f"{space:<8}{metric:<8}{label:<6}{r['elapsed_s']:>9.1f}{r['cpu_s']:>9.1f}{r['max_rss_mb']:>13.0f}"
                          f"{r['points']:>14,}{r['passes'] or '-':>8}  {r['point']:<20}{r['objective']:>14.6g}  "
                          f"{'yes' if same else 'NO'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area-mm2", type=float, default=16.0)
    parser.add_argument("--metrics", default="energy,delay,edp")
    parser.add_argument("--max-branches", default="none,2")
    parser.add_argument("--study", default="three", choices=sorted(STUDIES))
    parser.add_argument("--scale", action="store_true", help="the grid pass's wall time and memory (docstring)")
    parser.add_argument("--spaces", nargs="+", default=["paper", "sram16"])
    parser.add_argument("--solver", default="enumerate", choices=["enumerate", "mip", "pareto"])
    parser.add_argument("--points", default="all", help="pareto: frontier delay limits (N) or all")
    parser.add_argument("--python", action="append", default=[], help="LABEL=PATH: another interpreter to run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if args.scale:
        return scale(args)
    tech = load_technology()
    space = load_space("deepopt-16mm2", tech).with_budget(args.area_mm2)
    networks = tuple(StudyNetwork(load_network(name), max_delay_cycles=cap) for name, cap in STUDIES[args.study].items())
    print(f"{'networks':<40}{'metric':<8}{'limit':>6}  {'optimum':<20}{'objective':>14}{'MIP build':>10}"
          f"{'MIP solve':>10}{'vars':>8}{'cons':>8}{'rounds':>7}{'enum s':>8}  agree")
    for metric in args.metrics.split(","):
        for limit in args.max_branches.split(","):
            problem = Problem(networks, metric, space, tech, max_branches=None if limit == "none" else int(limit))
            start = time.perf_counter()
            enum = enumerate_study(problem, top_k=0)
            enum_s = time.perf_counter() - start
            mip = study_mip.mip_study(problem)
            (variables, constraints), rounds = model_size(problem)
            hw = mip.hardware
            agree = abs(mip.objective - enum.objective) <= 1e-6 * abs(enum.objective) and mip.status == "optimal"
            print(f"{problem.label:<40}{metric:<8}{limit:>6}  "
                  f"{f'{hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}':<20}{mip.objective:>14.6g}"
                  f"{mip.build_s:>10.2f}{mip.solve_s:>10.2f}{variables:>8}{constraints:>8}{rounds:>7}{enum_s:>8.2f}  "
                  f"{'yes' if agree else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
