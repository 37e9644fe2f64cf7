"""Enumeration speed and memory: every paper network on a space, per metric and aggregation.

    python benchmarks/bench_enumeration.py [--space deepopt-16mm2] [--networks ...] [--metrics ...] [--aggregates ...]
                                           [--workers N]

Prints one row per run: hardware points, wall time, points per second, peak
Python-heap memory of this process (tracemalloc, which sees numpy's arrays),
and the optimum. Large grids are evaluated by worker processes (one per CPU
unless ``--workers`` says otherwise): tracemalloc does not see them (nor do
they trace), so the peak resident sizes of this process and of the largest
worker are printed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc

from deepopt_mip.formulation.metrics import METRIC_EXPONENTS
from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="deepopt-16mm2")
    parser.add_argument("--area-mm2", type=float, default=None)
    parser.add_argument("--networks", nargs="+", default=list(BUILTIN_NETWORKS))
    parser.add_argument("--metrics", nargs="+", default=list(METRIC_EXPONENTS))
    parser.add_argument("--aggregates", nargs="+", default=["layer-sum", "network"])
    parser.add_argument("--workers", type=int, default=None, help="processes evaluating the grid (default: CPUs)")
    args = parser.parse_args()
    tech = load_technology()
    space = load_space(args.space, tech)
    if args.area_mm2:
        space = space.with_budget(args.area_mm2)
    print(f"space {space.name}, budget {space.budget_mm2:g} mm^2")
    print(f"{'network':<17}{'metric':<8}{'aggregate':<11}{'points':>8}{'wall s':>9}{'points/s':>10}{'peak MB':>9}  optimum")
    for name in args.networks:
        network = load_network(name)
        for aggregate in args.aggregates:
            for metric in args.metrics:
                tracemalloc.start()
                start = time.perf_counter()
                sol = enumerate_space(network, space, tech, metric, aggregate, top_k=5, workers=args.workers)
                wall = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                hw = sol.hardware
                print(f"{name:<17}{metric:<8}{aggregate:<11}{sol.points:>8}{wall:>9.2f}{sol.points / wall:>10.0f}"
                      f"{peak:>9.0f}  {hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB "
                      f"{sol.objective:.4g}", flush=True)

    try:
        import resource
    except ImportError:  # not POSIX: no worker processes either
        return
    unit = 2**20 if sys.platform == "darwin" else 2**10  # ru_maxrss is in bytes on macOS, kB on Linux
    own, worker = (resource.getrusage(who).ru_maxrss / unit for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak resident size: this process {own:.0f} MB, largest worker process {worker:.0f} MB")


if __name__ == "__main__":
    main()
