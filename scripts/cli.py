"""The ``deepopt-mip`` command line."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.metrics import AGGREGATIONS, METRIC_EXPONENTS, check_aggregate, check_metric

DEFAULT_NETWORK = "googlenet-v1"
DEFAULT_ARRAY = "32x64"
DEFAULT_SRAM_KB = "16,32,8"
DEFAULT_BITS = "8,8,32"
BATCH_HELP = ("batch of the FC layers (ONNX: overrides the input's first dimension; CSV or built-in: replaces "
              "the file's FC batch); conv layers run with batch 1")


def package_version() -> str:
    try:
        return version("deepopt-mip")
    except PackageNotFoundError:
        return "unknown"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2, like our input errors."""

    def error(self, message: str) -> None:
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="deepopt-mip", description="Co-design a systolic-array CNN accelerator and its per-layer schedule.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    nets = sub.add_parser("networks", help="list the built-in networks (layers, MACs)")
    nets.add_argument("--show", metavar="NETWORK", help="print the layers of one network (built-in name, CSV or ONNX file)")
    nets.add_argument("--convert", metavar="NETWORK", help="write a network (e.g. model.onnx) in our CSV format to --to FILE")
    nets.add_argument("--to", metavar="FILE", help="output CSV file of --convert")
    nets.add_argument("--batch", type=int, default=None, help=BATCH_HELP)

    ev = sub.add_parser("evaluate", help="one hardware point: per-layer best branch, LOS vs fixed schedules")
    ev.add_argument("--network", default=DEFAULT_NETWORK, help=f"built-in name, CSV or ONNX file (default {DEFAULT_NETWORK})")
    ev.add_argument("--batch", type=int, default=None, help=BATCH_HELP)
    ev.add_argument("--array", default=DEFAULT_ARRAY, help=f"PE rows x columns, J x K (default {DEFAULT_ARRAY})")
    ev.add_argument("--sram", default=DEFAULT_SRAM_KB, help=f"filter,ifmap,psum SRAM sizes in kB (default {DEFAULT_SRAM_KB})")
    ev.add_argument("--bits", default=DEFAULT_BITS, help=f"filter,ifmap,psum bit widths (default {DEFAULT_BITS})")
    ev.add_argument("--dram-bw", type=int, default=128, help="DRAM bandwidth in bits per cycle (default 128)")
    ev.add_argument("--tech", default=None, help="technology YAML file (default: the built-in 65 nm file)")
    ev.add_argument("--metric", default="edp", help=f"one of {', '.join(METRIC_EXPONENTS)} (default edp)")
    ev.add_argument("--aggregate", default="network", help=f"one of {', '.join(AGGREGATIONS)} (default network)")
    ev.add_argument("--json", metavar="FILE", help="write the full result as JSON")
    ev.add_argument("--csv", metavar="FILE", help="write every layer x branch cost as CSV")
    ev.add_argument("--scalesim", metavar="DIR", help="write SCALE-Sim config and topology files for this point")
    ev.add_argument("--plot", metavar="FILE", help="per-layer energy breakdown of the LOS schedule as PNG (needs matplotlib)")
    ev.add_argument("--quiet", action="store_true", help="print nothing (with --json/--csv)")

    al = sub.add_parser("allocate", help="optimal hardware point of a space and its per-layer schedule")
    al.add_argument("--network", default=DEFAULT_NETWORK, help=f"built-in name, CSV or ONNX file (default {DEFAULT_NETWORK})")
    al.add_argument("--batch", type=int, default=None, help=BATCH_HELP)
    al.add_argument("--space", default="deepopt-16mm2", help="built-in space name or YAML file (default deepopt-16mm2)")
    al.add_argument("--area-mm2", type=float, default=None, help="override the space's area budget (mm^2)")
    al.add_argument("--tech", default=None, help="technology YAML file (default: the built-in 65 nm file)")
    al.add_argument("--metric", default="edp", help=f"one of {', '.join(METRIC_EXPONENTS)} (default edp)")
    al.add_argument("--aggregate", default="network", help=f"one of {', '.join(AGGREGATIONS)} (default network)")
    al.add_argument("--solver", default="enumerate", help="enumerate (default)")
    al.add_argument("--top-k", type=int, default=5, help="runners-up to report (default 5)")
    al.add_argument("--json", metavar="FILE", help="write the solution as JSON")
    al.add_argument("--out", metavar="DIR", help="write solution.json/.yaml, layers.csv and manifest.yaml")
    al.add_argument("--scalesim", metavar="DIR", help="write SCALE-Sim config and topology files for the optimum")
    al.add_argument("--quiet", action="store_true", help="no progress and no table")

    rp = sub.add_parser("reproduce", help="the paper's Table 3, Fig. 9, Table 4 and Table 5 (CSV, Markdown, PNG)")
    rp.add_argument("--out", required=True, metavar="DIR", help="folder for the tables and plots")
    rp.add_argument("--quiet", action="store_true", help="no progress and no summary")

    va = sub.add_parser("validate", help="compare the model with the reference's per-branch numbers")
    va.add_argument("--reference", required=True, metavar="DIR", help="folder holding branches.csv")
    va.add_argument("--json", metavar="FILE", help="write the statistics as JSON")
    return parser


def load_network_cli(name: str, batch: int | None, quiet: bool = False):
    """load_network; an ONNX import's one-line summary of skipped operators goes to stderr."""
    from deepopt_mip.formulation.networks import load_network

    if batch is not None and batch < 1:
        raise InputError(f"--batch must be a positive integer, got {batch}")
    if str(name).lower().endswith(".onnx"):
        from deepopt_mip.formulation.onnx_import import import_onnx
        result = import_onnx(name, batch=batch)
        if not quiet:
            print(result.summary, file=sys.stderr)
        return result.network
    return load_network(name, batch=batch)


def run_networks(args) -> int:
    from deepopt_mip.scripts.networks_cmd import run
    if args.convert or args.to:
        from pathlib import Path

        from deepopt_mip.formulation.networks import write_network_csv
        if not (args.convert and args.to):
            raise InputError("--convert NETWORK and --to FILE go together")
        network = load_network_cli(args.convert, args.batch)
        source = Path(network.source).name if network.source else network.name
        write_network_csv(network, args.to, comments=[
            f"network {network.name}, converted from {source} by deepopt-mip {package_version()}",
            "format: data/networks/README.md of deepopt-mip"])
        print(f"wrote {args.to}: {len(network)} layers, {network.macs / 1e9:.3f} GMAC per image")
        return 0
    network = load_network_cli(args.show, args.batch) if args.show else None
    return run(args.show, network)


def run_evaluate(args) -> int:
    from deepopt_mip.formulation.hardware import HardwarePoint, parse_array, parse_triple
    from deepopt_mip.formulation.technology import load_technology
    from deepopt_mip.scripts import evaluate_cmd

    check_metric(args.metric)
    check_aggregate(args.aggregate)
    if args.plot:
        from deepopt_mip.scripts.energy_plot import require_matplotlib
        require_matplotlib()
    rows, cols = parse_array(args.array)
    fsram, isram, psram = parse_triple(args.sram, "--sram")
    bits_f, bits_i, bits_p = parse_triple(args.bits, "--bits", integer=True)
    hardware = HardwarePoint(rows=rows, cols=cols, fsram_kb=fsram, isram_kb=isram, psram_kb=psram,
                             bits_filter=bits_f, bits_ifmap=bits_i, bits_psum=bits_p,
                             dram_bw_bits_per_cycle=args.dram_bw)
    tech = load_technology(args.tech)
    for size in (fsram, isram, psram):
        tech.sram_energy_j_per_bit(size)
    network = load_network_cli(args.network, args.batch, args.quiet)
    return evaluate_cmd.run(network, hardware, tech, args.metric, args.aggregate, args.json, args.csv, args.quiet,
                            scalesim_dir=args.scalesim, plot_path=args.plot)


def run_allocate(args) -> int:
    from deepopt_mip.formulation.spaces import load_space
    from deepopt_mip.formulation.technology import load_technology
    from deepopt_mip.scripts.allocate_cmd import print_solution, write_outputs
    from deepopt_mip.scripts.progress import ProgressLine
    from deepopt_mip.solvers.enumeration import enumerate_space

    check_metric(args.metric)
    check_aggregate(args.aggregate)
    if args.solver != "enumerate":
        raise InputError(f"unknown solver {args.solver!r}: choose enumerate")
    if args.top_k < 0:
        raise InputError(f"--top-k must be >= 0, got {args.top_k}")
    tech = load_technology(args.tech)
    space = load_space(args.space, tech)
    if args.area_mm2 is not None:
        space = space.with_budget(args.area_mm2)
    network = load_network_cli(args.network, args.batch, args.quiet)
    progress = ProgressLine(f"enumerating {space.name}", quiet=args.quiet)
    try:
        solution = enumerate_space(network, space, tech, args.metric, args.aggregate, args.top_k, progress)
    finally:
        progress.close()
    if not args.quiet:
        print_solution(solution)
    write_outputs(solution, args.out, args.json, network, space, tech, package_version())
    if args.scalesim:
        from deepopt_mip.scripts.scalesim_export import export_scalesim
        export_scalesim(args.scalesim, network, solution.hardware, solution.branches, tech)
    return 0


def run_reproduce(args) -> int:
    from deepopt_mip.scripts.reproduce_cmd import run
    return run(args.out, quiet=args.quiet)


def run_validate(args) -> int:
    from deepopt_mip.scripts.validate_cmd import run
    return run(args.reference, args.json)


COMMANDS = {"networks": run_networks, "evaluate": run_evaluate, "allocate": run_allocate, "reproduce": run_reproduce,
            "validate": run_validate}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 0
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"deepopt-mip: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepopt-mip: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
