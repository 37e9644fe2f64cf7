"""``deepopt-mip allocate --fusion``: the optimal hardware point when layers may hand over on chip."""

from __future__ import annotations

from pathlib import Path

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.allocate_cmd import print_solution
from deepopt_mip.scripts.fusion_output import fusion_payload, fusion_summary, fusion_table, require_graph
from deepopt_mip.scripts.output import write_json

UNSUPPORTED = ("weight", "max_delay", "max_energy", "max_branches", "fix_array", "fix_sram", "study", "scalesim")


def check_args(args) -> None:
    """Refuse what --fusion does not cover (one line, exit status 2), before any work."""
    if args.solver != "enumerate":
        raise InputError("allocate --fusion: only --solver enumerate (the MIP with fusion is not implemented)")
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


def run(network, space, tech, metric: str, aggregate: str, top_k: int, json_path, out_dir, quiet: bool,
        progress) -> int:
    from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion

    require_graph(network)
    try:
        allocation = enumerate_fusion(network, space, tech, metric, aggregate, top_k, progress)
    finally:
        progress.close()
    data = payload(network, allocation)
    if json_path:
        write_json(json_path, data)
    if out_dir:
        write_json(Path(out_dir) / "solution.json", data)
    if not quiet:
        print_solution(allocation.solution)
        print("\nFusion at the optimum:")
        print(fusion_table(network, allocation.fused, allocation.unfused))
        print()
        print(fusion_summary(metric, allocation.solution.hardware, allocation.fused, allocation.unfused))
    return 0
