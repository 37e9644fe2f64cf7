"""Sweep files: the axes of a sweep and the cells they span (format: docs/sweep.md).

A sweep file is a YAML mapping::

    name: five-networks            # optional, text
    description: ...               # optional, text
    networks: [alexnet, vgg-16]    # required: built-in names or CSV/ONNX files; an entry may be a
                                   #   list of several, one chip shared by them (the objective is the
                                   #   weighted sum of their metrics, docs/studies.md); a network may be
                                   #   a mapping {network, weight, max_delay_cycles, max_energy_j}
    budgets_mm2: [4, 9, 16, 25]    # required: area budgets, positive numbers
    metrics: [energy, delay, edp]  # default [edp]
    aggregations: [network]        # default [network]
    spaces: [deepopt-16mm2]        # default [deepopt-16mm2]: built-in names or YAML files
    technologies: [deepopt-65nm]   # default [deepopt-65nm]: built-in names or YAML files
    solvers: [enumerate]           # default [enumerate]; enumerate, mip, or both (with agreement)
    batch: 16                      # optional: the FC layers' batch
    mip: {time_limit_s: 600, mip_gap: 1.0e-9, threads: 2}   # optional MIP options
    chunk_points: 300000           # optional: split each cell's grid into tasks of at most this many points

The cells are the product of the axes, in the order networks, budgets,
metrics, aggregations, spaces, technologies, solvers (the last varies
fastest). Relative file paths are taken from the sweep file's folder. Each
cell has a key: the sha256 of its inputs (names and the sha256 of the
network, space and technology contents, the budget, metric, aggregation,
solver, the MIP options of MIP cells and the chunk size), which names its
result file, so reruns find finished cells and parallel runs never collide.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import yaml

from deepopt_mip.formulation.errors import InputError, read_input_text
from deepopt_mip.formulation.metrics import AGGREGATIONS, METRIC_EXPONENTS
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.problem import StudyNetwork
from deepopt_mip.formulation.spaces import DEFAULT_SPACE, BUILTIN_SPACES, HardwareSpace, load_space
from deepopt_mip.formulation.technology import BUILTIN_TECHNOLOGIES, DEFAULT_TECHNOLOGY, Technology, load_technology
from deepopt_mip.solvers.highs_driver import DEFAULT_MIP_GAP, MipOptions

SOLVERS = ("enumerate", "mip", "both")
AXES = ("networks", "budgets_mm2", "metrics", "aggregations", "spaces", "technologies", "solvers")
_DEFAULTS = {"metrics": ["edp"], "aggregations": ["network"], "spaces": [DEFAULT_SPACE],
             "technologies": [DEFAULT_TECHNOLOGY], "solvers": ["enumerate"]}
_KEYS = set(AXES) | {"name", "description", "batch", "mip", "chunk_points"}
_MIP_KEYS = {"time_limit_s", "mip_gap", "threads"}


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def network_sha256(network: Network) -> str:
    """sha256 of a network's name and layers (as our CSV format writes them), whatever file it came from."""
    return content_sha256(network.name + "\n" + network.to_frame().to_csv(index=False, lineterminator="\n"))


@dataclass(frozen=True)
class Cell:
    """One allocation problem of a sweep, with its inputs loaded (so a worker needs no files).

    ``members`` holds the networks sharing the chip with their weights and caps (one, or several: a
    study of docs/studies.md). ``space`` carries the cell's budget.
    """

    index: int
    members: tuple[StudyNetwork, ...]
    budget_mm2: float
    metric: str
    aggregate: str
    space: HardwareSpace
    space_label: str
    tech: Technology
    tech_label: str
    solver: str
    mip: MipOptions | None
    batch: int | None
    chunk_points: int | None

    @property
    def networks(self) -> tuple[Network, ...]:
        return tuple(member.network for member in self.members)

    @property
    def network(self) -> Network:
        return self.networks[0]

    @property
    def plain(self) -> bool:
        """One network with weight 1 and no caps: the paper's problem."""
        return len(self.members) == 1 and self.members[0].weight == 1 and not self.members[0].capped

    def inputs(self) -> dict:
        """Everything the result depends on, as plain data (the key is its sha256)."""
        out = {
            "networks": [_member_inputs(m) for m in self.members],
            "batch": self.batch,
            "budget_mm2": self.budget_mm2,
            "metric": self.metric,
            "aggregate": self.aggregate,
            "space": {"name": self.space_label, "sha256": self.space.sha256},
            "technology": {"name": self.tech_label, "sha256": self.tech.sha256},
            "solver": self.solver,
            "chunk_points": self.chunk_points,
        }
        if self.solver != "enumerate":
            out["mip"] = mip_options_dict(self.mip)
        return out

    @property
    def key(self) -> str:
        return content_sha256(json.dumps(self.inputs(), sort_keys=True))

    def label(self) -> str:
        return (f"{members_label(self.members)} {self.budget_mm2:g} mm^2 {self.metric} {self.aggregate} "
                f"{self.space_label} {self.tech_label} {self.solver}")


def _member_inputs(member: StudyNetwork) -> dict:
    """A network's inputs; weight and caps only where set (so a plain cell keeps the key it always had)."""
    out = {"name": member.name, "sha256": network_sha256(member.network)}
    if member.weight != 1:
        out["weight"] = member.weight
    out |= {name: value for name, value in member.caps().items() if value is not None}
    return out


def member_label(member: StudyNetwork) -> str:
    """``googlenet-v1``, or with its weight and caps: ``googlenet-v1(w=2,D<=2.2e+06,E<=0.02)``."""
    notes = ([f"w={member.weight:g}"] if member.weight != 1 else []) + [
        f"{short}<={value:g}" for short, value in (("D", member.max_delay_cycles), ("E", member.max_energy_j))
        if value is not None]
    return member.name + (f"({','.join(notes)})" if notes else "")


def members_label(members) -> str:
    return "+".join(member_label(m) for m in members)


def mip_options_dict(options: MipOptions | None) -> dict | None:
    if options is None:
        return None
    return {"time_limit_s": options.time_limit_s, "mip_gap": options.mip_gap, "threads": options.threads}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: its axes, its cells, where it came from."""

    name: str
    description: str
    source: str
    sha256: str
    axes: dict
    cells: tuple[Cell, ...]
    mip: MipOptions
    chunk_points: int | None
    batch: int | None

    @property
    def sweep_key(self) -> str:
        """sha256 of the cells' keys in order: two sweep files with this key run the same cells."""
        return content_sha256("\n".join(cell.key for cell in self.cells))


def _fail(where: str, key: str, message: str):
    raise InputError(f"{where}: {key}: {message}")


def _axis(where: str, data: dict, key: str) -> list:
    values = data.get(key, _DEFAULTS.get(key))
    if values is None:
        _fail(where, key, "missing (a list of at least one value)")
    if not isinstance(values, list):
        values = [values]
    if not values:
        _fail(where, key, "empty: give at least one value")
    return values


def _text_choice(where: str, key: str, values: list, allowed) -> list[str]:
    for i, value in enumerate(values):
        if not isinstance(value, str) or value not in allowed:
            _fail(where, f"{key}[{i}]", f"unknown value {value!r} (choose from {', '.join(allowed)})")
    if len(set(values)) != len(values):
        _fail(where, key, "a value appears twice")
    return values


def _budgets(where: str, values: list) -> list[float]:
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            _fail(where, f"budgets_mm2[{i}]", f"must be a positive number of mm^2, got {value!r}")
        out.append(float(value))
    if len(set(out)) != len(out):
        _fail(where, "budgets_mm2", "a budget appears twice")
    return out


def _resolve(entry: str, base: Path, builtins) -> str:
    """A built-in name as it is; a file path relative to the sweep file's folder."""
    if entry in builtins:
        return entry
    path = Path(entry)
    return str(path if path.is_absolute() else base / path)


_MEMBER_KEYS = {"network", "weight", "max_delay_cycles", "max_energy_j"}


def _member(where: str, key: str, item, base: Path, batch: int | None) -> StudyNetwork:
    """One network of an entry: a name or file, or a mapping with its weight and caps."""
    from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, NETWORK_ALIASES, _looks_like_a_name

    spec = item if isinstance(item, dict) else {"network": item}
    unknown = sorted(str(k) for k in set(spec) - _MEMBER_KEYS)
    if unknown:
        _fail(where, f"{key}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_MEMBER_KEYS))})")
    name = spec.get("network")
    if not isinstance(name, str) or not name.strip():
        _fail(where, key, f"must be a network name or file, or a mapping with 'network', got {item!r}")
    as_name = name.strip().lower() in BUILTIN_NETWORKS or name.strip().lower() in NETWORK_ALIASES or (
        _looks_like_a_name(name) and not (base / name).exists())
    try:
        network = load_network(name if as_name else _resolve(name, base, ()), batch=batch)
        return StudyNetwork(network, weight=spec.get("weight", 1.0), max_delay_cycles=spec.get("max_delay_cycles"),
                            max_energy_j=spec.get("max_energy_j"))
    except InputError as exc:
        _fail(where, key, str(exc))


def _networks(where: str, values: list, base: Path, batch: int | None) -> list[tuple[str, tuple[StudyNetwork, ...]]]:
    out = []
    for i, entry in enumerate(values):
        items = entry if isinstance(entry, list) else [entry]
        if not items:
            _fail(where, f"networks[{i}]", "an empty list: give at least one network")
        members = tuple(_member(where, f"networks[{i}]" + (f"[{j}]" if isinstance(entry, list) else ""), item,
                                base, batch) for j, item in enumerate(items))
        if len({m.name for m in members}) != len(members):
            _fail(where, f"networks[{i}]", f"a network is named twice in {'+'.join(m.name for m in members)}")
        out.append((members_label(members), members))
    if len({label for label, _ in out}) != len(out):
        _fail(where, "networks", "a network appears twice")
    return out


def _mip(where: str, spec) -> MipOptions:
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        _fail(where, "mip", f"must map some of {', '.join(sorted(_MIP_KEYS))}, got {spec!r}")
    unknown = sorted(str(k) for k in set(spec) - _MIP_KEYS)
    if unknown:
        _fail(where, f"mip.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_MIP_KEYS))})")
    try:
        return MipOptions(time_limit_s=None if spec.get("time_limit_s") is None else float(spec["time_limit_s"]),
                          mip_gap=float(spec.get("mip_gap", DEFAULT_MIP_GAP)),
                          threads=None if spec.get("threads") is None else int(spec["threads"]))
    except (TypeError, ValueError) as exc:
        _fail(where, "mip", str(exc))


def _positive_int_or_none(where: str, key: str, value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(where, key, f"must be a positive integer, got {value!r}")
    return value


def parse_sweep(data, where: str, base: Path, text: str = "") -> SweepSpec:
    """A :class:`SweepSpec` from the YAML mapping ``data`` (``where`` names it in messages)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: a sweep file is a YAML mapping of the keys {', '.join(sorted(_KEYS))}")
    unknown = sorted(str(k) for k in set(data) - _KEYS)
    if unknown:
        _fail(where, unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            _fail(where, key, f"must be text, got {data[key]!r}")
    batch = _positive_int_or_none(where, "batch", data.get("batch"))
    chunk_points = _positive_int_or_none(where, "chunk_points", data.get("chunk_points"))
    raw = {key: _axis(where, data, key) for key in AXES}
    networks = _networks(where, raw["networks"], base, batch)
    budgets = _budgets(where, raw["budgets_mm2"])
    metrics = _text_choice(where, "metrics", raw["metrics"], tuple(METRIC_EXPONENTS))
    aggregations = _text_choice(where, "aggregations", raw["aggregations"], AGGREGATIONS)
    solvers = _text_choice(where, "solvers", raw["solvers"], SOLVERS)
    mip = _mip(where, data.get("mip"))
    techs = []
    for i, entry in enumerate(raw["technologies"]):
        if not isinstance(entry, str):
            _fail(where, f"technologies[{i}]", f"must be a built-in name or a file, got {entry!r}")
        try:
            techs.append((entry, load_technology(_resolve(entry, base, BUILTIN_TECHNOLOGIES))))
        except InputError as exc:
            _fail(where, f"technologies[{i}]", str(exc))
    spaces = []
    for i, entry in enumerate(raw["spaces"]):
        if not isinstance(entry, str):
            _fail(where, f"spaces[{i}]", f"must be a built-in name or a file, got {entry!r}")
        spaces.append(entry)
    for key, values in (("technologies", [t for t, _ in techs]), ("spaces", spaces)):
        if len(set(values)) != len(values):
            _fail(where, key, "a value appears twice")
    loaded_spaces: dict[tuple[int, int], HardwareSpace] = {}
    for (s, entry), (t, (_, tech)) in product(enumerate(spaces), enumerate(techs)):
        try:
            loaded_spaces[s, t] = load_space(_resolve(entry, base, BUILTIN_SPACES), tech)
        except InputError as exc:
            _fail(where, f"spaces[{s}]", str(exc))
    cells = []
    for (label, nets), budget, metric, aggregate, (s, space_label), (t, (tech_label, tech)), solver in product(
            networks, budgets, metrics, aggregations, enumerate(spaces), enumerate(techs), solvers):
        cells.append(Cell(index=len(cells), members=nets, budget_mm2=budget, metric=metric, aggregate=aggregate,
                          space=loaded_spaces[s, t].with_budget(budget), space_label=space_label, tech=tech,
                          tech_label=tech_label, solver=solver, mip=None if solver == "enumerate" else mip,
                          batch=batch, chunk_points=chunk_points))
    axes = {"networks": [label for label, _ in networks], "budgets_mm2": budgets, "metrics": metrics,
            "aggregations": aggregations, "spaces": spaces, "technologies": [t for t, _ in techs], "solvers": solvers}
    return SweepSpec(name=str(data.get("name") or Path(where).stem), description=str(data.get("description") or ""),
                 source=where, sha256=content_sha256(text), axes=axes, cells=tuple(cells), mip=mip,
                 chunk_points=chunk_points, batch=batch)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (one :class:`InputError` line naming the file and the key)."""
    path = Path(path)
    text = read_input_text(path, "sweep file")
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise InputError(f"{path}: not valid YAML ({first.strip()})") from None
    return parse_sweep(data, str(path), path.parent, text)
