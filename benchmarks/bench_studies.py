"""Studies on one chip: MIP and enumeration times and the MIP's size, printed as a table.

    python benchmarks/bench_studies.py [--study three|two] [--area-mm2 16] [--metrics energy,edp] [--max-branches none,2]

The main case is the one docs/studies.md quotes: GoogleNet-v1, ResNet-50 and
SqueezeNet-v1.1 sharing a chip of deepopt-16mm2, a delay cap on each,
least total energy. Each row: the study, metric, branch limit, the optimum
(J x K, SRAM f/i/p kB), objective, the MIP's build and solve seconds, its
variables and constraints (last round), rounds of point offering, the
enumeration's seconds, and whether both agree (relative 1e-6).
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area-mm2", type=float, default=16.0)
    parser.add_argument("--metrics", default="energy,delay,edp")
    parser.add_argument("--max-branches", default="none,2")
    parser.add_argument("--study", default="three", choices=sorted(STUDIES))
    args = parser.parse_args()
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
