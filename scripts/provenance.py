"""Where a result came from: the fields every command's manifest shares.

``allocate --out`` and ``pareto`` write them to ``manifest.yaml``;
``evaluate --json`` records them under ``manifest``. One function, so the
three agree field for field.
"""

from __future__ import annotations


def provenance(network, tech, version: str) -> dict:
    """Tool version, the network (name, source) and the technology (name, source, sha256 of its file)."""
    return {
        "deepopt_mip_version": version,
        "network": {"name": network.name, "source": network.source},
        "technology": {"name": tech.name, "source": tech.source_path, "sha256": tech.sha256},
    }


def space_record(space) -> dict:
    """The hardware space searched: name, source, sha256 of its file, area budget and tolerance."""
    return {"name": space.name, "source": space.source, "sha256": space.sha256,
            "budget_mm2": space.budget_mm2, "tolerance": space.tolerance}


def solver_options_record(options) -> dict:
    """The MIP options of a run (``None`` = HiGHS's default)."""
    return {"time_limit_s": options.time_limit_s, "mip_gap": options.mip_gap, "threads": options.threads}
