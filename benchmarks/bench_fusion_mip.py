"""The MIP with fusion against the enumeration with fusion: agreement and build/solve seconds per case.

    python benchmarks/bench_fusion_mip.py [--networks ...] [--budgets 16 4] [--cases energy edp@layer-sum ...]

Cases are METRIC (network aggregation) or METRIC@layer-sum: by default
network energy, network delay, layer-sum E*D (separable: one model) and
the network products E*D, E^2*D, E*D^2 (the fusion frontier model and its
product search, docs/mip.md section 9). One row per case; besides wall
seconds, the CPU seconds (this process's threads and its finished worker
processes, :func:`cpu_s`) of the whole MIP allocation and of the
enumeration, which a loaded machine does not inflate as it does wall
seconds.
"""

from __future__ import annotations

import argparse
import os
import time

from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate

CASES = ["energy", "delay", "edp@layer-sum", "edp", "e2dp", "ed2p"]


def case(text: str) -> tuple[str, str]:
    """'edp@layer-sum' -> ('edp', 'layer-sum'); 'edp' -> ('edp', 'network')."""
    metric, _, aggregate = text.partition("@")
    return metric, aggregate or "network"


def cpu_s() -> float:
    """User + system CPU seconds of this process and of its waited-for children (the grid pass's workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="*", default=list(BUILTIN_NETWORKS))
    parser.add_argument("--budgets", nargs="*", type=float, default=[16.0, 4.0])
    parser.add_argument("--cases", nargs="*", default=CASES)
    args = parser.parse_args()
    tech = load_technology(None)
    print("| network | mm^2 | metric | MIP objective | enumeration objective | rel. diff | MIP build s | "
          "MIP solve s | MIP CPU s | enumeration s | enumeration CPU s | edges fused |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.networks:
        network = load_network(name)
        for budget in args.budgets:
            space = load_space("deepopt-16mm2", tech).with_budget(budget)
            for metric, aggregate in map(case, args.cases):
                cpu = cpu_s()
                mip = mip_fusion_allocate(network, space, tech, metric, aggregate).solution
                mip_cpu = cpu_s() - cpu
                start, cpu = time.perf_counter(), cpu_s()
                enum = enumerate_fusion(network, space, tech, metric, aggregate, top_k=0)
                enum_s, enum_cpu = time.perf_counter() - start, cpu_s() - cpu
                diff = abs(mip.objective - enum.solution.objective) / abs(enum.solution.objective)
                print(f"| {name} | {budget:g} | {metric} ({aggregate}) | {mip.objective:.9g} | "
                      f"{enum.solution.objective:.9g} | {diff:.1e} | {mip.build_s:.1f} | {mip.solve_s:.2f} | "
                      f"{mip_cpu:.1f} | {enum_s:.1f} | {enum_cpu:.1f} | {len(enum.fused.fused_edges)} |", flush=True)


if __name__ == "__main__":
    main()
