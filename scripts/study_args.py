"""The command line's study options: several ``--network``s, weights, caps, a branch limit, fixed axes,
or a study file (``--study``), turned into one :class:`~deepopt_mip.formulation.problem.Problem`."""

from __future__ import annotations

import math

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import parse_array
from deepopt_mip.formulation.problem import Problem, StudyNetwork

DEFAULT_NETWORK = "googlenet-v1"
PER_NETWORK = (("weight", "--weight", "NET=W", "weight of a network in the objective (default 1)"),
               ("max_delay", "--max-delay", "NET=CYCLES", "cap on a network's total delay in cycles"),
               ("max_energy", "--max-energy", "NET=J", "cap on a network's total energy in joules"))


def add_study_args(parser) -> None:
    """Options of a study beyond the shared problem options (repeatable per-network settings)."""
    for dest, flag, metavar, text in PER_NETWORK:
        parser.add_argument(flag, dest=dest, action="append", default=[], metavar=metavar, help=f"{text}; repeatable")
    parser.add_argument("--max-branches", type=int, default=None, metavar="N",
                        help="use at most N distinct loop orders over all layers of all networks (1..5)")
    parser.add_argument("--fix-array", default=None, metavar="JxK", help="fix the PE array (choose the SRAMs)")
    parser.add_argument("--fix-sram", default=None, metavar="F,I,P",
                        help="fix SRAM sizes in kB; '*' leaves one free (e.g. 16,*,*)")
    parser.add_argument("--study", default=None, metavar="FILE",
                        help="read networks, weights, caps, metric, space etc. from a study file (docs/studies.md)")


def _per_network(values: list[str], flag: str, names: dict[str, str]) -> dict[str, float]:
    """NET=VALUE pairs keyed by network name; NET may be the name given to --network or the loaded name."""
    out: dict[str, float] = {}
    for text in values:
        key, sep, value = text.rpartition("=")
        if not sep or not key:
            raise InputError(f"{flag} takes NET=VALUE, got {text!r}")
        if key not in names:
            raise InputError(f"{flag} {text}: unknown network {key!r} (the study's networks: "
                             f"{', '.join(sorted(set(names.values())))})")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{flag} {text}: {value!r} is not a number") from None
        if not (math.isfinite(number) and number > 0):
            raise InputError(f"{flag} {text}: must be a positive finite number")
        out[names[key]] = number
    return out


def _fixed_axes(args) -> dict:
    fixed = {}
    if args.fix_array:
        fixed["rows"], fixed["cols"] = parse_array(args.fix_array)
    if args.fix_sram:
        parts = args.fix_sram.split(",")
        if len(parts) != 3:
            raise InputError(f"--fix-sram takes F,I,P in kB with '*' for a free size, got {args.fix_sram!r}")
        for key, part in zip(("fsram_kb", "isram_kb", "psram_kb"), parts):
            if part.strip() != "*":
                try:
                    fixed[key] = float(part)
                except ValueError:
                    raise InputError(f"--fix-sram: {part!r} is not a size in kB") from None
    return fixed


STUDY_FLAGS = ("weight", "max_delay", "max_energy", "max_branches", "fix_array", "fix_sram")


def problem_from_args(args, load_network, load_space_and_tech) -> Problem:
    """The study the options state. ``load_network(name, batch)`` loads one network and
    ``load_space_and_tech()`` gives (technology, space) from the shared options."""
    if args.study:
        given = [f"--{flag.replace('_', '-')}" for flag in STUDY_FLAGS if getattr(args, flag)] + (
            ["--network"] if args.network else [])
        if given:
            raise InputError(f"--study states the whole problem: drop {', '.join(given)} or the study file")
        from deepopt_mip.formulation.study_file import load_study
        return load_study(args.study, network_loader=load_network)
    tech, space = load_space_and_tech()
    networks = [load_network(name, args.batch) for name in (args.network or [DEFAULT_NETWORK])]
    names = {}
    for given, network in zip(args.network or [DEFAULT_NETWORK], networks):
        names[given] = names[network.name] = network.name
    weights = _per_network(args.weight, "--weight", names)
    delays = _per_network(args.max_delay, "--max-delay", names)
    energies = _per_network(args.max_energy, "--max-energy", names)
    fixed = _fixed_axes(args)
    if fixed:
        space = space.restricted(**fixed)
        for key in ("fsram_kb", "isram_kb", "psram_kb"):
            if key in fixed:
                tech.sram_energy_j_per_bit(fixed[key])
    items = tuple(StudyNetwork(n, weight=weights.get(n.name, 1.0), max_delay_cycles=delays.get(n.name),
                               max_energy_j=energies.get(n.name)) for n in networks)
    return Problem(networks=items, metric=args.metric, space=space, tech=tech, aggregate=args.aggregate,
                   max_branches=args.max_branches)
