"""MIP size and speed against enumeration: every paper network on a space, per metric (network aggregation).

    python benchmarks/bench_mip.py [--space deepopt-16mm2] [--area-mm2 A] [--networks ...] [--metrics ...]
                                   [--aggregate A] [--time-limit S] [--threads N] [--repeat N]
                                   [--no-enumeration]

Prints one row per network and metric: the size of the MIP (variables, of
which binary and general integer, constraints, nonzeros: linear terms of the
active constraint bodies plus the objective's), the hardware points offered
to the model out of the grid's valid points, build and solve seconds, the
solver's status and gap, the hardware point found (rows x cols, filter/ifmap/
psum SRAM kB) and its objective, and, unless ``--no-enumeration``, the
enumeration's wall time for the same problem, the MIP's total wall time
(build, solve and the re-evaluation of the optimum) over the enumeration's,
the same in CPU seconds (this process and its finished grid workers: the
better measure on a loaded machine), and the relative difference of the two optima ("ok" when it is at most
1e-6). With ``--repeat N`` both run N times, alternately (so a load on the
machine falls on both alike), and the least time of each is reported. Rows
are printed as they finish, then the whole table again at the end.
"""

from __future__ import annotations

import argparse
import resource
import time

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.highs_driver import MipOptions
from deepopt_mip.solvers.mip import build, solve_built

AGREE_RTOL = 1e-6


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (the grid pass's worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


HEADER = (f"{'network':<17}{'metric':<8}{'vars':>8}{'bin':>6}{'int':>6}{'cons':>8}{'nonzeros':>10}"
          f"{'points':>14}{'build s':>9}{'solve s':>9}  {'status':<11}{'gap':>8}  {'hardware':<22}{'objective':>11}"
          f"{'enum s':>9}{'mip s':>9}{'ratio':>7}{'enum cpu':>9}{'mip cpu':>9}{'ratio':>7}{'rel diff':>10}  agree")


def model_size(model: pyo.ConcreteModel) -> tuple[int, int, int, int, int]:
    """Variables, binaries, general integers, active constraints and nonzeros of a Pyomo model."""
    variables = list(model.component_data_objects(pyo.Var))
    binary = sum(v.is_binary() for v in variables)
    integer = sum(v.is_integer() for v in variables) - binary
    constraints = list(model.component_data_objects(pyo.Constraint, active=True))
    bodies = [c.body for c in constraints] + [o.expr for o in model.component_data_objects(pyo.Objective, active=True)]
    nonzeros = 0
    for body in bodies:
        repn = generate_standard_repn(body, compute_values=False)
        nonzeros += len(repn.linear_vars) + len(repn.quadratic_vars)
    return len(variables), binary, integer, len(constraints), nonzeros


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="deepopt-16mm2")
    parser.add_argument("--area-mm2", type=float, default=None)
    parser.add_argument("--networks", nargs="+", default=list(BUILTIN_NETWORKS))
    parser.add_argument("--metrics", nargs="+", default=["energy", "delay", "edp"])
    parser.add_argument("--time-limit", type=float, default=None, help="seconds per HiGHS solve (default: none)")
    parser.add_argument("--threads", type=int, default=None, help="HiGHS threads (default: HiGHS's choice)")
    parser.add_argument("--aggregate", default="network", help="network (default) or layer-sum")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each solver, alternately; least time kept")
    parser.add_argument("--no-enumeration", action="store_true", help="skip the enumeration columns")
    args = parser.parse_args()
    tech = load_technology()
    space = load_space(args.space, tech)
    if args.area_mm2:
        space = space.with_budget(args.area_mm2)
    options = MipOptions(time_limit_s=args.time_limit, threads=args.threads)
    print(f"space {space.name}, budget {space.budget_mm2:g} mm^2, aggregate {args.aggregate}")
    print(HEADER, flush=True)
    rows = []
    for name in args.networks:
        network = load_network(name)
        for metric in args.metrics:
            mip_s, enum_s, mip_cpu, enum_cpu = [], [], [], []
            for _ in range(max(1, args.repeat)):
                start, start_cpu = time.perf_counter(), cpu_seconds()
                built = build(network, space, tech, metric, args.aggregate)
                sol = solve_built(built, network, tech, metric, args.aggregate, options)
                mip_s.append(time.perf_counter() - start)
                mip_cpu.append(cpu_seconds() - start_cpu)
                if not args.no_enumeration:
                    start, start_cpu = time.perf_counter(), cpu_seconds()
                    exact = enumerate_space(network, space, tech, metric, args.aggregate, top_k=1)
                    enum_s.append(time.perf_counter() - start)
                    enum_cpu.append(cpu_seconds() - start_cpu)
            variables, binary, integer, constraints, nonzeros = model_size(built.model)
            hw = sol.hardware
            found = f"{hw.J}x{hw.K} {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}"
            points = f"{built.data.points.size}/{built.data.points.grid_points}"
            row = (f"{name:<17}{metric:<8}{variables:>8}{binary:>6}{integer:>6}{constraints:>8}{nonzeros:>10}"
                   f"{points:>14}{sol.build_s:>9.2f}{sol.solve_s:>9.2f}  {sol.status:<11}{sol.gap:>8.1e}  "
                   f"{found:<22}{sol.objective:>11.4g}")
            if not args.no_enumeration:
                rel = abs(sol.objective - exact.objective) / abs(exact.objective)
                row += (f"{min(enum_s):>9.2f}{min(mip_s):>9.2f}{min(mip_s) / min(enum_s):>7.2f}"
                        f"{min(enum_cpu):>9.2f}{min(mip_cpu):>9.2f}{min(mip_cpu) / min(enum_cpu):>7.2f}{rel:>10.1e}  "
                        f"{'ok' if rel <= AGREE_RTOL else 'NO'}")
            rows.append(row)
            print(row, flush=True)
    print()
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
