"""deepopt-mip's Python API: load networks, spaces and technologies, state a study, solve it.

    import deepopt_mip as dm

    tech = dm.load_technology()
    space = dm.load_space("deepopt-16mm2", tech).with_budget(16)
    problem = dm.Problem(
        networks=[dm.StudyNetwork(dm.load_network("googlenet-v1"), max_delay_cycles=2.2e6),
                  dm.StudyNetwork(dm.load_network("resnet-50"), weight=2.0)],
        metric="energy", space=space, tech=tech)
    solution = dm.solve(problem, solver="mip")
    solution.to_json(); solution.to_frame()
    dm.compare(problem).agree
    dm.sweep("study.yaml", "out/")     # many cells, locally or on a Dask cluster (docs/sweep.md)

The study (networks with weights and caps, metric, aggregation, space,
technology, branch limit) and its semantics are in docs/studies.md; the
result's keys in the same place.
"""

from __future__ import annotations

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.networks import Network, builtin_network_names, load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import HardwareSpace, load_space
from deepopt_mip.formulation.technology import Technology, load_technology
from deepopt_mip.solvers.highs_driver import MipOptions
from deepopt_mip.solvers.solution import NetworkResult, Solution, SolverFailure
from deepopt_mip.study import Comparison, compare, evaluate, load_study, solve
from deepopt_mip.sweeps.sweep import sweep

__all__ = [
    "Comparison", "HardwarePoint", "HardwareSpace", "InputError", "MipOptions", "Network", "NetworkResult",
    "Problem", "Solution", "SolverFailure", "StudyNetwork", "Technology", "__version__", "builtin_network_names",
    "compare", "evaluate", "load_network", "load_space", "load_study", "load_technology", "solve", "sweep",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("deepopt-mip")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
