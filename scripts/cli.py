"""The ``deepopt-mip`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_stream import PRUNE_AUTO_POINTS
from deepopt_mip.formulation.metrics import AGGREGATIONS, METRIC_EXPONENTS, check_aggregate, check_metric
from deepopt_mip.formulation.technology import BUILTIN_TECHNOLOGIES, DEFAULT_TECHNOLOGY
from deepopt_mip.scripts.output import check_figure_file, check_output_dir, check_output_file
from deepopt_mip.scripts.study_args import DEFAULT_NETWORK, add_study_args
from deepopt_mip.solvers.solution import SolverFailure

DEFAULT_ARRAY = "32x64"
DEFAULT_SRAM_KB = "16,32,8"
DEFAULT_BITS = "8,8,32"
EXIT_STATUS_HELP = """exit status:
  0    success
  1    compare: the MIP and the enumeration disagree; validate --max-rel-error X: a relative energy or delay
       error above X (or a feasibility mismatch)
  2    bad input: an unknown option or value, a malformed file, an output path that cannot be written
       (checked before any work starts)
  3    the solver ended without a solution (e.g. a --time-limit hit before the MIP found one)
  130  interrupted (Ctrl-C)
  141  the reader of the output closed the pipe (e.g. | head)"""
TECH_HELP = (f"built-in technology ({', '.join(BUILTIN_TECHNOLOGIES)}; default {DEFAULT_TECHNOLOGY}) "
             "or a technology YAML file")
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


def add_problem_args(parser, metric: bool = True) -> None:
    """Network, space, technology (and metric and aggregation) options shared by the space commands."""
    parser.add_argument("--network", action="append", default=None,
                        help=f"built-in name, CSV or ONNX file (default {DEFAULT_NETWORK}); repeat it for several "
                             f"networks sharing one chip" if metric else
                             f"built-in name, CSV or ONNX file (default {DEFAULT_NETWORK})")
    parser.add_argument("--batch", type=int, default=None, help=BATCH_HELP)
    parser.add_argument("--space", default="deepopt-16mm2", help="built-in space name or YAML file (default deepopt-16mm2)")
    parser.add_argument("--area-mm2", type=float, default=None, help="override the space's area budget (mm^2)")
    parser.add_argument("--tech", default=None, help=TECH_HELP)
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes evaluating the grid (default: one per CPU for large grids)")
    if metric:
        parser.add_argument("--metric", default="edp", help=f"one of {', '.join(METRIC_EXPONENTS)} (default edp)")
        parser.add_argument("--aggregate", default="network",
                            help=f"one of {', '.join(AGGREGATIONS)} (default network)")


def add_mip_args(parser) -> None:
    parser.add_argument("--time-limit", type=float, default=None, metavar="S",
                        help="MIP: wall-clock limit in seconds for the solves (default none)")
    parser.add_argument("--mip-gap", type=float, default=None, metavar="G",
                        help="MIP: relative optimality gap at which HiGHS stops (default 1e-9)")
    parser.add_argument("--threads", type=int, default=None, help="MIP: HiGHS threads (default: HiGHS's choice)")


def mip_options(args):
    from deepopt_mip.solvers.highs_driver import DEFAULT_MIP_GAP, MipOptions
    try:
        return MipOptions(time_limit_s=args.time_limit,
                          mip_gap=DEFAULT_MIP_GAP if args.mip_gap is None else args.mip_gap, threads=args.threads)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def check_workers(workers: int | None) -> int | None:
    """--workers: a positive number of processes, or None for the default."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    return workers


def load_space_and_tech(args):
    """(technology, space) from the shared options."""
    from deepopt_mip.formulation.spaces import load_space
    from deepopt_mip.formulation.technology import interpolation_note, load_technology

    if getattr(args, "metric", None) is not None:
        check_metric(args.metric)
        check_aggregate(args.aggregate)
    tech = load_technology(args.tech)
    space = load_space(args.space, tech)
    if args.area_mm2 is not None:
        space = space.with_budget(args.area_mm2)
    note = interpolation_note(tech, space.fsram_kb + space.isram_kb + space.psram_kb, f"space {space.name}")
    if note is not None and not args.quiet:
        print(f"deepopt-mip: note: {note}", file=sys.stderr)
    return tech, space


def load_problem(args):
    """(technology, space, network) from the shared options, for the commands that take one network."""
    if args.network and len(args.network) > 1:
        raise InputError(f"{args.command} takes one --network, got {len(args.network)} "
                         f"({', '.join(args.network)})")
    tech, space = load_space_and_tech(args)
    return tech, space, load_network_cli((args.network or [DEFAULT_NETWORK])[0], args.batch, args.quiet)


def load_study_problem(args, fusion: bool = False):
    """The study (one or more networks, weights, caps, branch limit, fixed axes, or --study FILE); ``fusion``
    (--fusion) turns fusion on for it (a study file may also say ``fusion: true``)."""
    from dataclasses import replace

    from deepopt_mip.scripts.study_args import problem_from_args
    problem = problem_from_args(args, lambda name, batch: load_network_cli(name, batch, args.quiet),
                                lambda: load_space_and_tech(args))
    return replace(problem, fusion=True) if fusion and not problem.fusion else problem


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="deepopt-mip", description="Co-design a systolic-array CNN accelerator and its per-layer schedule.",
                    epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    ev.add_argument("--tech", default=None, help=TECH_HELP)
    ev.add_argument("--metric", default="edp", help=f"one of {', '.join(METRIC_EXPONENTS)} (default edp)")
    ev.add_argument("--aggregate", default="network", help=f"one of {', '.join(AGGREGATIONS)} (default network)")
    ev.add_argument("--json", metavar="FILE", help="write the full result as JSON")
    ev.add_argument("--csv", metavar="FILE", help="write every layer x branch cost as CSV")
    ev.add_argument("--scalesim", metavar="DIR", help="write SCALE-Sim config and topology files for this point")
    ev.add_argument("--plot", metavar="FILE", help="per-layer energy breakdown of the LOS schedule as PNG (needs matplotlib)")
    ev.add_argument("--quiet", action="store_true", help="print nothing (with --json/--csv)")
    ev.add_argument("--fusion", action="store_true",
                    help="also the best inter-layer fusion on this point (docs/model.md section 11)")

    al = sub.add_parser("allocate", help="optimal hardware point of a space and its per-layer schedule")
    add_problem_args(al)
    add_study_args(al)
    al.add_argument("--solver", default="enumerate", help="enumerate (default) or mip")
    add_mip_args(al)
    al.add_argument("--top-k", type=int, default=5, help="runners-up to report (default 5; enumeration only)")
    al.add_argument("--prune", choices=("auto", "on", "off"), default="auto",
                    help="skip blocks by lower bounds (one network, enumeration): auto (default) on spaces of "
                         f"more than {PRUNE_AUTO_POINTS:,} in-budget block points; off evaluates every point "
                         "and also finds the worst point")
    al.add_argument("--json", metavar="FILE", help="write the solution as JSON")
    al.add_argument("--out", metavar="DIR", help="write solution.json/.yaml, layers.csv and manifest.yaml")
    al.add_argument("--scalesim", metavar="DIR", help="write SCALE-Sim config and topology files for the optimum")
    al.add_argument("--quiet", action="store_true", help="no progress and no table")
    al.add_argument("--fusion", action="store_true",
                    help="layers may hand their outputs over in the ifmap SRAM (docs/model.md section 11)")

    co = sub.add_parser("compare", help="solve one allocation by MIP and by enumeration; exit 0 only if they agree")
    add_problem_args(co)
    add_study_args(co)
    add_mip_args(co)
    co.add_argument("--json", metavar="FILE",
                    help="write both solutions and the agreement as JSON (no timings, so the file is byte-identical "
                         "across runs; the printed table has them)")
    co.add_argument("--quiet", action="store_true", help="print nothing: the exit status says whether they agree")
    co.add_argument("--fusion", action="store_true",
                    help="with inter-layer fusion (every metric and aggregation; studies too, docs/studies.md)")

    pa = sub.add_parser("pareto", help="the exact energy-delay frontier of a space by epsilon-constraint MIPs")
    add_problem_args(pa, metric=False)
    add_study_args(pa)
    add_mip_args(pa)
    pa.add_argument("--points", default="30",
                    help="frontier points to compute: a number (delay limits spread evenly, default 30) or 'all'")
    pa.add_argument("--out", metavar="DIR", required=True, help="write frontier.csv, frontier.png and manifest.yaml")
    pa.add_argument("--quiet", action="store_true", help="no progress and no table")
    pa.add_argument("--fusion", action="store_true",
                    help="the frontier with inter-layer fusion (one network; docs/mip.md section 9)")

    rp = sub.add_parser("reproduce", help="the paper's Table 3, Fig. 9, Table 4 and Table 5 (CSV, Markdown, PNG)")
    rp.add_argument("--out", required=True, metavar="DIR", help="folder for the tables and plots")
    rp.add_argument("--quiet", action="store_true", help="no progress and no summary")

    sc = sub.add_parser("scalesim-compare", help="SCALE-Sim's cycles beside ours, per layer, for a --scalesim folder")
    sc.add_argument("dir", metavar="DIR", help="the folder --scalesim wrote (and SCALE-Sim's results/ in it)")
    sc.add_argument("--results", metavar="PATH",
                    help="SCALE-Sim's COMPUTE_REPORT.csv or the folder holding it (default DIR/results/<run_name>)")
    sc.add_argument("--csv", metavar="FILE", help="write the comparison as CSV")
    sc.add_argument("--quiet", action="store_true", help="print nothing (with --csv)")

    sw = sub.add_parser("sweep", help="run a sweep (networks x budgets x metrics x ...) locally or on a Dask cluster")
    sw.add_argument("sweep_file", metavar="SWEEP.yaml", help="the sweep file (format: docs/sweep.md)")
    sw.add_argument("--out", required=True, metavar="DIR",
                    help="folder for the cells, tables, plots and manifest (a rerun resumes it)")
    sw.add_argument("--workers", type=int, default=None,
                    help="local worker processes (default: one per CPU; 1 runs the cells in this process)")
    sw.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                    help="run the cells on the Dask cluster of this scheduler (needs deepopt-mip[distributed])")
    sw.add_argument("--quiet", action="store_true", help="no progress and no summary")

    va = sub.add_parser("validate", help="compare the model with the reference's per-branch numbers")
    va.add_argument("--reference", required=True, metavar="DIR|FILE",
                    help="the reference's per-branch CSV, or a folder holding it as branches.csv ('#' lines are comments)")
    va.add_argument("--json", metavar="FILE", help="write the statistics as JSON")
    va.add_argument("--max-rel-error", type=float, default=None, metavar="X",
                    help="exit 1 if the largest relative error |ours - ref| / |ref| of any per-branch energy or "
                         "delay exceeds X, or a case is infeasible on one side only (batched FC layers counted "
                         "the reference's way); without it validate only reports")
    return parser


def load_network_cli(name: str, batch: int | None, quiet: bool = False):
    """load_network; an ONNX import's one-line summary of skipped operators goes to stderr."""
    from deepopt_mip.formulation.networks import is_onnx_path, load_network

    if batch is not None and batch < 1:
        raise InputError(f"--batch must be a positive integer, got {batch}")
    if is_onnx_path(name):
        from deepopt_mip.formulation.onnx_import import import_onnx
        result = import_onnx(name, batch=batch)
        if not quiet:
            print(result.summary, file=sys.stderr)
        return result.network
    return load_network(name, batch=batch)


def check_outputs(args, files: tuple[str, ...] = (), dirs: tuple[str, ...] = (), figures: tuple[str, ...] = ()) -> None:
    """Check the output options named in ``files``, ``figures`` and ``dirs`` (attribute names of ``args``) before
    any work; two options naming the same file are refused too (the second would overwrite the first)."""
    seen: dict = {}
    for name in files + figures:
        path = getattr(args, name)
        if path is None:
            continue
        if name in figures:
            check_figure_file(path, f"--{name}")
        else:
            check_output_file(path, f"--{name}")
        key = os.path.realpath(path)
        if key in seen:
            raise InputError(f"--{name} {path}: the same file as --{seen[key]}")
        seen[key] = name
    for name in dirs:
        if getattr(args, name) is not None:
            check_output_dir(getattr(args, name), f"--{name}")


def run_networks(args) -> int:
    from deepopt_mip.scripts.networks_cmd import run
    if args.to is not None:
        check_output_file(args.to, "--to")
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

    check_outputs(args, files=("json", "csv"), dirs=("scalesim",), figures=("plot",))
    check_metric(args.metric)
    check_aggregate(args.aggregate)
    if args.plot:
        from deepopt_mip.scripts.energy_plot import require_matplotlib
        require_matplotlib()
    rows, cols = parse_array(args.array)
    fsram, isram, psram = parse_triple(args.sram, "--sram")
    bits_f, bits_i, bits_p = parse_triple(args.bits, "--bits", integer=True)
    hardware = HardwarePoint(J=rows, K=cols, fsram_kb=fsram, isram_kb=isram, psram_kb=psram,
                             bits_filter=bits_f, bits_ifmap=bits_i, bits_psum=bits_p,
                             dram_bw_bits_per_cycle=args.dram_bw)
    tech = load_technology(args.tech)
    for size in (fsram, isram, psram):
        tech.sram_energy_j_per_bit(size)
    network = load_network_cli(args.network, args.batch, args.quiet)
    return evaluate_cmd.run(network, hardware, tech, args.metric, args.aggregate, args.json, args.csv, args.quiet,
                            scalesim_dir=args.scalesim, plot_path=args.plot, version=package_version(),
                            fusion=args.fusion)


def run_allocate(args) -> int:
    from deepopt_mip.scripts.allocate_cmd import print_solution, write_outputs
    from deepopt_mip.scripts.progress import ProgressLine

    check_outputs(args, files=("json",), dirs=("out", "scalesim"))
    if args.solver not in ("enumerate", "mip"):
        raise InputError(f"unknown solver {args.solver!r}: choose enumerate or mip")
    if args.top_k < 0:
        raise InputError(f"--top-k must be >= 0, got {args.top_k}")
    if args.fusion and not is_study(args):
        from deepopt_mip.scripts import fusion_allocate_cmd
        fusion_allocate_cmd.check_args(args)
        tech, space, network = load_problem(args)
        options = mip_options(args) if args.solver == "mip" else None
        return fusion_allocate_cmd.run(network, space, tech, args.metric, args.aggregate, args.solver, args.top_k,
                                       options, args.json, args.out, args.quiet,
                                       ProgressLine(f"{args.solver} over {space.name} with fusion", quiet=args.quiet),
                                       package_version(), check_workers(args.workers))
    options = mip_options(args) if args.solver == "mip" else None
    problem = load_study_problem(args, args.fusion)
    if args.scalesim and len(problem.networks) > 1:
        raise InputError("--scalesim exports one network: give one --network")
    if args.scalesim and problem.fusion:
        raise InputError("--scalesim exports unfused schedules: drop --scalesim or fusion")
    from deepopt_mip.study import solve
    verb = "enumerating" if args.solver == "enumerate" else "building the MIP over"
    progress = ProgressLine(f"{verb} {problem.space.name}", quiet=args.quiet)
    try:
        solution = solve(problem, args.solver, options, top_k=args.top_k, progress=progress,
                         workers=check_workers(args.workers), prune={"auto": None, "on": True, "off": False}[args.prune])
    finally:
        progress.close()
    write_outputs(solution, args.out, args.json, problem, package_version(), options)
    if args.scalesim:
        from deepopt_mip.scripts.scalesim_export import export_scalesim
        export_scalesim(args.scalesim, problem.networks[0].network, solution.hardware, solution.branches,
                        problem.tech)
    if not args.quiet:
        print_solution(solution)
    return 0


def refuse_study_options(args, why: str) -> None:
    """Refuse the study options given (rather than drop them), in one line saying ``why``."""
    from deepopt_mip.scripts.study_args import STUDY_FLAGS
    given = [f"--{flag.replace('_', '-')}" for flag in STUDY_FLAGS if getattr(args, flag)]
    if args.study:
        given.append("--study")
    if args.network and len(args.network) > 1:
        given.append("the second --network")
    if given:
        raise InputError(f"{why}: drop {', '.join(given)}")


def is_study(args) -> bool:
    """Several networks, a study file or a study option: --fusion then goes to the study solvers
    (docs/studies.md, "Fusion"); one plain network keeps the single-network fusion path and its outputs."""
    from deepopt_mip.scripts.study_args import STUDY_FLAGS
    return bool(args.study or (args.network and len(args.network) > 1)
                or any(getattr(args, flag) for flag in STUDY_FLAGS))


def run_compare(args) -> int:
    check_outputs(args, files=("json",))
    if args.fusion and not is_study(args):
        from deepopt_mip.scripts import fusion_allocate_cmd
        args.solver = "mip"
        fusion_allocate_cmd.check_args(args)
        tech, space, network = load_problem(args)
        return fusion_allocate_cmd.run_compare(network, space, tech, args.metric, args.aggregate, mip_options(args),
                                               args.json, args.quiet, check_workers(args.workers))
    from deepopt_mip.scripts.compare_cmd import run
    options = mip_options(args)
    return run(load_study_problem(args, args.fusion), options, args.json, args.quiet, check_workers(args.workers))


def run_pareto(args) -> int:
    check_outputs(args, dirs=("out",))
    from deepopt_mip.scripts.pareto_cmd import run
    if args.points == "all":
        points = None
    else:
        try:
            points = int(args.points)
        except ValueError:
            raise InputError(f"--points must be a whole number or 'all', got {args.points!r}") from None
        if points < 2:
            raise InputError(f"--points must be at least 2, got {points}")
    options = mip_options(args)
    args.metric, args.aggregate = "edp", "network"
    if args.fusion:
        refuse_study_options(args, "pareto --fusion takes one network (a study with fusion is solved by "
                                   "allocate and compare)")
        tech, space, network = load_problem(args)
        return run(network, space, tech, options, points, args.out, args.quiet, package_version(),
                   check_workers(args.workers), fusion=True)
    problem = load_study_problem(args)
    if problem.fusion:
        raise InputError("pareto does not take a study with fusion (the study file says fusion: true)")
    if not problem.is_single_network:
        from deepopt_mip.scripts.pareto_cmd import run_study
        return run_study(problem, options, points, args.out, args.quiet, package_version(),
                         check_workers(args.workers))
    return run(problem.networks[0].network, problem.space, problem.tech, options, points, args.out, args.quiet,
               package_version(), check_workers(args.workers))


def run_reproduce(args) -> int:
    check_outputs(args, dirs=("out",))
    from deepopt_mip.scripts.reproduce_cmd import run
    return run(args.out, quiet=args.quiet)


def run_scalesim_compare(args) -> int:
    from deepopt_mip.scripts.scalesim_compare_cmd import run
    return run(args.dir, args.results, args.csv, args.quiet)

def run_sweep(args) -> int:
    from deepopt_mip.sweeps.sweep import sweep
    if args.workers is not None and args.scheduler is not None:
        raise InputError("--workers and --scheduler exclude each other (the cluster has its own workers)")
    result = sweep(args.sweep_file, args.out, workers=args.workers, scheduler=args.scheduler, quiet=args.quiet)
    if not args.quiet:
        counts = result.results["status"].value_counts()
        print(f"{len(result.results)} cells ({result.ran} run on {result.engine}, {result.skipped} from an earlier "
              f"run) in {result.wall_s:.1f} s: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
        print(f"wrote {args.out}: results.csv, results.parquet, timings.csv, penalty.csv, manifest.yaml, cells/"
              + "".join(f", {p.name}" for p in result.plots))
    return 0


def run_validate(args) -> int:
    check_outputs(args, files=("json",))
    from deepopt_mip.scripts.validate_cmd import run
    return run(args.reference, args.json, args.max_rel_error)


COMMANDS = {"networks": run_networks, "evaluate": run_evaluate, "allocate": run_allocate, "compare": run_compare,
            "pareto": run_pareto, "reproduce": run_reproduce, "validate": run_validate,
            "scalesim-compare": run_scalesim_compare, "sweep": run_sweep}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 0
        if args.command in ("allocate", "compare", "pareto", "reproduce"):
            from deepopt_mip.formulation.allocator import keep_freed_memory
            keep_freed_memory()  # grid passes run in this process too (small grids, --workers 1)
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"deepopt-mip: error: {exc}", file=sys.stderr)
        return 2
    except SolverFailure as exc:
        print(f"deepopt-mip: solver failed: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("deepopt-mip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, and keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # a write the output checks could not foresee (disk full, a folder removed meanwhile): one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"deepopt-mip: error: cannot write {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
