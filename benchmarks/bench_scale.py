"""Enumeration on fine hardware spaces: wall time, peak memory, points evaluated, evaluations per second.

    python benchmarks/bench_scale.py [--spaces paper sram16 ...] [--networks alexnet googlenet]
                                     [--metrics energy] [--workers 2] [--timeout 600] [--check-full]
                                     [--no-prune] [--compare-unpruned]

Each run is a child process (``enumerate_space``, the streaming pass); the
table gives its wall time, its CPU time (user + system, itself and its
workers), the peak resident memory of its whole process tree (sampled every
0.2 s from /proc, so the sum over the parent and its workers) and of its
largest single process (``ru_maxrss``, what ``/usr/bin/time -v`` reports),
the in-budget points, the share of the grid cube evaluated and of the
in-budget blocks' points (what the unpruned pass evaluates; below 100% where
the bounds of docs/model.md 6.1 skip blocks), layer-branch
evaluations per second of wall time (points evaluated x distinct layers x
5 branches / wall) and per CPU second, and the optimum. A run past
``--timeout`` seconds is killed and reported as such.

Runs prune by bounds unless ``--no-prune``; ``--compare-unpruned`` also
runs the unpruned streaming pass and reports its time and whether it gives
the same point and objective. ``--check-full`` also solves every space whose cube has at most
``--full-max-points`` points by the full-grid (unpruned) enumeration and
reports whether both give the same point and objective. The last table gives,
per network and metric, how much lower each fine space's optimum is than the
paper grid's (``deepopt-16mm2``).

Spaces (all at 16 mm^2, aspect ratio 0.5, J and K from 8, SRAM sizes within
the technology's 4..512 kB):

=========  =========================================================
paper      the built-in deepopt-16mm2: J, K step 2, SRAMs 4..512 kB in powers of two
sram16     J, K step 2; every SRAM 4..500 kB in 16 kB steps
sram8      J, K step 2; every SRAM 4..508 kB in 8 kB steps
jk1-sram8  J, K step 1; every SRAM 4..508 kB in 8 kB steps
jk1-sram4  J, K step 1; every SRAM 4..508 kB in 4 kB steps
=========  =========================================================
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRAM_STEPS = {"paper": None, "sram16": (2, 16, 500), "sram8": (2, 8, 508), "jk1-sram8": (1, 8, 508),
              "jk1-sram4": (1, 4, 508)}

CHILD = """
import json, sys, time
from deepopt_mip.formulation.grid_sums import distinct_layers
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import grid_shape, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.formulation.allocator import keep_freed_memory
from deepopt_mip.solvers.enumeration import enumerate_space
space_name, network_name, metric, workers, full, prune = sys.argv[1:7]
keep_freed_memory()
tech = load_technology()
space = load_space(space_name, tech)
network = load_network(network_name)
start = time.perf_counter()
sol = enumerate_space(network, space, tech, metric, "network", top_k=1, workers=int(workers), full_grid=full == "1",
                      prune=prune == "1")
wall = time.perf_counter() - start
cube = 1
for n in grid_shape(space):
    cube *= n
hw = sol.hardware
print(json.dumps({"wall_s": wall, "points": sol.points, "evaluated": sol.points_evaluated, "cube": cube,
                  "unpruned": sol.points_unpruned,
                  "layers": len(distinct_layers(network)), "objective": sol.objective,
                  "point": f"{hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}"}))
"""


def space_yaml(name: str) -> str | None:
    """The YAML of a benchmark space (None: the built-in paper space)."""
    if SRAM_STEPS[name] is None:
        return None
    jk_step, sram_step, top = SRAM_STEPS[name]
    sizes = f"{{min: 4, max: {top}, step: {sram_step}}}"
    return (f"name: {name}\nrows: {{min: 8, max: auto, step: {jk_step}}}\ncols: {{min: 8, max: auto, step: {jk_step}}}\n"
            f"aspect_min_ratio: 0.5\nsram_kb: {{filter: {sizes}, ifmap: {sizes}, psum: {sizes}}}\n"
            "bits: {filter: 8, ifmap: 8, psum: 32}\ndram: {bandwidth_bits_per_cycle: 128, block_bits: 128}\n"
            "area: {budget_mm2: 16, tolerance: 0.0}\n")


def space_file(name: str, folder: str) -> str:
    """What ``--space`` takes for a benchmark space: the built-in's name, or a YAML file written in ``folder``."""
    text = space_yaml(name)
    if text is None:
        return "deepopt-16mm2"
    path = Path(folder) / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (from /proc)."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


def run_child(space: str, network: str, metric: str, workers: int, full: bool, timeout_s: float,
              prune: bool = True) -> dict:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, space, network, metric, str(workers), "1" if full else "0",
                             "1" if prune else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        out, err = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker processes (its own session)
        out, err = proc.communicate()
        timed_out = True
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"wall_total_s": wall, "tree_peak_mb": peak[0] / 2**20, "timed_out": timed_out,
              "returncode": proc.returncode,
              "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}
    if not timed_out and proc.returncode == 0:
        result.update(json.loads(out.strip().splitlines()[-1]))
    elif not timed_out:
        result["error"] = (err.strip().splitlines() or ["?"])[-1]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=list(SRAM_STEPS), choices=list(SRAM_STEPS))
    parser.add_argument("--networks", nargs="+", default=["alexnet", "googlenet"])
    parser.add_argument("--metrics", nargs="+", default=["energy"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed")
    parser.add_argument("--check-full", action="store_true", help="also solve small spaces by the full grid")
    parser.add_argument("--no-prune", action="store_true", help="evaluate every in-budget block (no bounds)")
    parser.add_argument("--compare-unpruned", action="store_true",
                        help="also run the unpruned streaming pass and report its time and whether it agrees")
    parser.add_argument("--full-max-points", type=int, default=70_000_000)
    args = parser.parse_args()
    print(f"{'space':<11}{'network':<11}{'metric':<8}{'cube':>11}{'in budget':>11}{'evaluated':>10}{'of blocks':>10}"
          f"{'wall s':>8}{'cpu s':>8}{'tree MB':>9}{'proc MB':>9}{'M ev/s':>8}{'M ev/cpu-s':>11}  optimum")
    optimum = {}
    with tempfile.TemporaryDirectory() as folder:
        for space in args.spaces:
            where = space_file(space, folder)
            for network in args.networks:
                for metric in args.metrics:
                    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                    r = run_child(where, network, metric, args.workers, False, args.timeout, not args.no_prune)
                    proc_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                    proc_mb = f"{proc_mb:.0f}" if proc_mb > before / 1024 else f"<={proc_mb:.0f}"
                    head = f"{space:<11}{network:<11}{metric:<8}"
                    if r["timed_out"] or "error" in r:
                        reason = f"killed after {args.timeout:.0f} s" if r["timed_out"] else r["error"]
                        print(f"{head}{'':>11}{'':>11}{'':>10}{'':>10}{r['wall_total_s']:>8.1f}{r.get('cpu_s', 0):>8.1f}"
                              f"{r['tree_peak_mb']:>9.0f}{proc_mb:>9}  {reason}", flush=True)
                        continue
                    evals = r["evaluated"] * r["layers"] * 5
                    optimum[space, network, metric] = r["objective"]
                    print(f"{head}{r['cube']:>11,}{r['points']:>11,}{r['evaluated'] / r['cube']:>10.1%}"
                          f"{r['evaluated'] / max(r['unpruned'], 1):>10.1%}"
                          f"{r['wall_s']:>8.1f}{r.get('cpu_s', 0):>8.1f}{r['tree_peak_mb']:>9.0f}{proc_mb:>9}"
                          f"{evals / r['wall_s'] / 1e6:>8.1f}{evals / max(r.get('cpu_s', 0), 1e-9) / 1e6:>11.1f}"
                          f"  {r['point']} {r['objective']:.6g}", flush=True)
                    if args.compare_unpruned and not args.no_prune:
                        plain = run_child(where, network, metric, args.workers, False, args.timeout, False)
                        if plain["timed_out"] or "error" in plain:
                            print(f"{'':<30}unpruned: {'killed' if plain['timed_out'] else plain['error']}")
                        else:
                            same = plain["point"] == r["point"] and plain["objective"] == r["objective"]
                            print(f"{'':<30}unpruned: {plain['wall_s']:.1f} s wall, {plain.get('cpu_s', 0):.1f} cpu s "
                                  f"(pruned / unpruned cpu: {r.get('cpu_s', 0) / max(plain.get('cpu_s', 0), 1e-9):.2f}), "
                                  f"{'SAME point and objective' if same else 'DIFFERENT: ' + plain['point']}",
                                  flush=True)
                    if args.check_full and r["cube"] <= args.full_max_points:
                        full = run_child(where, network, metric, args.workers, True, args.timeout)
                        if full["timed_out"] or "error" in full:
                            print(f"{'':<30}full grid: {'killed' if full['timed_out'] else full['error']}")
                        else:
                            same = full["point"] == r["point"] and full["objective"] == r["objective"]
                            print(f"{'':<30}full grid: {full['wall_s']:.1f} s, tree {full['tree_peak_mb']:.0f} MB, "
                                  f"{'SAME point and objective' if same else 'DIFFERENT: ' + full['point']}",
                                  flush=True)
    papers = {(n, m): v for (s, n, m), v in optimum.items() if s == "paper"}
    if papers:
        print("\noptimum below the paper grid's (1 - fine / paper):")
        for (space, network, metric), value in optimum.items():
            if space != "paper" and (network, metric) in papers:
                print(f"  {space:<11}{network:<11}{metric:<8}{1 - value / papers[network, metric]:8.2%}")


if __name__ == "__main__":
    main()
