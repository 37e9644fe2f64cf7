"""Read a study file (YAML): the networks sharing one chip, their weights and caps, and the rest.

Format (docs/studies.md)::

    networks:                      # one or more
      - network: googlenet-v1      # built-in name, CSV or ONNX file (relative to this file)
        weight: 1                  # optional, default 1
        max_delay_cycles: 2.2e6    # optional cap on the network's total delay
        max_energy_j: 0.02         # optional cap on its total energy
        batch: 16                  # optional: FC batch (as --batch)
    metric: energy                 # energy, delay, edp, e2dp, ed2p (default edp)
    aggregate: network             # network (default) or layer-sum
    space: deepopt-16mm2           # built-in name or YAML file (default deepopt-16mm2)
    area_mm2: 16                   # optional: override the space's budget
    technology: FILE               # optional: technology YAML (default the built-in 65 nm)
    max_branches: 2                # optional: at most this many distinct branches (1..5)
    fixed: {J: 32, K: 64}          # optional: fix axes (J, K, fsram_kb, isram_kb, psram_kb)
    fusion: true                   # optional: layers may hand outputs over on chip (default false)

Any other key, a missing ``networks`` list or a bad value is one error line
naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from deepopt_mip.formulation.errors import InputError, read_input_text
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.problem import Problem, StudyNetwork
from deepopt_mip.formulation.spaces import DEFAULT_SPACE, load_space
from deepopt_mip.formulation.technology import load_technology

STUDY_KEYS = {"networks", "metric", "aggregate", "space", "area_mm2", "technology", "max_branches", "fixed", "fusion"}
NETWORK_KEYS = {"network", "weight", "max_delay_cycles", "max_energy_j", "batch"}
FIXED_KEYS = {"J": "rows", "K": "cols", "fsram_kb": "fsram_kb", "isram_kb": "isram_kb", "psram_kb": "psram_kb"}


def _relative(value: str, base: Path) -> str:
    """A file name is read relative to the study file; a built-in name stays as it is."""
    candidate = base / value
    return str(candidate) if not Path(value).is_absolute() and candidate.exists() else value


def parse_study(text: str, where: str, base: Path | None = None, network_loader=load_network) -> Problem:
    """The :class:`Problem` a study file states (``where`` names it in errors)."""
    base = base or Path(".")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "not valid YAML")
        raise InputError(f"{where}: not valid YAML ({first.strip()})") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: a study file is a YAML mapping")
    unknown = sorted(str(k) for k in set(data) - STUDY_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(STUDY_KEYS))})")
    entries = data.get("networks")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{where}: key 'networks' must be a non-empty list of networks")

    def fail(key: str, message: str):
        raise InputError(f"{where}: {key}: {message}")

    networks = []
    for i, entry in enumerate(entries):
        key = f"networks[{i}]"
        if isinstance(entry, str):
            entry = {"network": entry}
        if not isinstance(entry, dict):
            fail(key, "must be a network name or a mapping with 'network'")
        extra = sorted(str(k) for k in set(entry) - NETWORK_KEYS)
        if extra:
            fail(f"{key}.{extra[0]}", f"unknown key (known: {', '.join(sorted(NETWORK_KEYS))})")
        if not isinstance(entry.get("network"), str):
            fail(f"{key}.network", "missing or not a name")
        batch = entry.get("batch")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            fail(f"{key}.batch", f"must be a positive whole number, got {batch!r}")
        try:
            network = network_loader(_relative(entry["network"], base), batch=batch)
            networks.append(StudyNetwork(network, weight=entry.get("weight", 1.0),
                                         max_delay_cycles=entry.get("max_delay_cycles"),
                                         max_energy_j=entry.get("max_energy_j")))
        except InputError as exc:
            fail(key, str(exc))
    try:
        tech = load_technology(_relative(data["technology"], base) if data.get("technology") else None)
        space = load_space(_relative(str(data.get("space", DEFAULT_SPACE)), base), tech)
        if data.get("area_mm2") is not None:
            space = space.with_budget(data["area_mm2"])
        fixed = data.get("fixed") or {}
        if not isinstance(fixed, dict) or set(fixed) - set(FIXED_KEYS):
            fail("fixed", f"must map some of {', '.join(FIXED_KEYS)} to values")
        space = space.restricted(**{FIXED_KEYS[k]: v for k, v in fixed.items()})
        fusion = data.get("fusion", False)
        if not isinstance(fusion, bool):
            fail("fusion", f"must be true or false, got {fusion!r}")
        return Problem(networks=tuple(networks), metric=str(data.get("metric", "edp")), space=space, tech=tech,
                       aggregate=str(data.get("aggregate", "network")), max_branches=data.get("max_branches"), fusion=fusion)
    except InputError as exc:
        if str(exc).startswith(f"{where}:"):
            raise
        raise InputError(f"{where}: {exc}") from None


def load_study(path: str | Path, network_loader=load_network) -> Problem:
    """A study file (see the module docstring); ``network_loader(name, batch=...)`` loads each network."""
    path = Path(path)
    return parse_study(read_input_text(path, "study file"), str(path), path.parent, network_loader)
