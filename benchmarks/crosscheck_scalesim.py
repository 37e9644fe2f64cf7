"""Cross-check our compute cycles against SCALE-Sim on the files ``--scalesim DIR`` writes.

Not part of the test suite, and it installs nothing: it needs SCALE-Sim beside
deepopt-mip (``pip install 'deepopt-mip[scalesim]'``). For each network it runs

    deepopt-mip evaluate --network NET --array JxK --sram F,I,P --scalesim OUT/NET --quiet

then reads ``OUT/NET/scalesim.cfg``, ``topology.csv`` and ``layout.csv`` with
SCALE-Sim's own readers and, for every topology row, runs SCALE-Sim's compute
model (its operand matrices and the systolic-array class of the layer's
closest dataflow, from ``layers.csv``) to get the cycles SCALE-Sim reports for
that layer when memory never stalls: the number of cycles of its output
demand matrix, minus one, which is its ``Total Cycles`` in a stall-free run.
Beside them: our ``cycles_ideal`` of the chosen branch (compute cycles per
image) and the ratio SCALE-Sim / ours. Grouped layers add up their groups;
FC layers are one GEMM over the batch, divided by the batch (per image).

``--full`` runs SCALE-Sim's complete cycle-level simulation (memory model,
stalls) on the same files instead: much slower and, in SCALE-Sim 3.0.0,
broken by NumPy >= 2.4 (SCALE-Sim PR #162); the ``scalesim`` extra pins a
NumPy it runs under. ``deepopt-mip scalesim-compare DIR`` reads the results
of such a run made by hand (docs/scalesim.md).

    python benchmarks/crosscheck_scalesim.py --network squeezenet-v1.1 --network alexnet
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import sys
import tempfile
import time
from pathlib import Path

from deepopt_mip.scripts.names import short_names

SCALESIM_MISSING = "SCALE-Sim is not installed: pip install 'deepopt-mip[scalesim]' (this script installs nothing)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--network", action="append", help="network (repeatable; default squeezenet-v1.1 and alexnet)")
    p.add_argument("--array", default="32x64", help="J x K (default 32x64, the paper's Table 3)")
    p.add_argument("--sram", default="16,32,8", help="filter,ifmap,psum kB (default 16,32,8)")
    p.add_argument("--bits", default="8,8,32")
    p.add_argument("--metric", default="energy", help="metric the LOS schedule minimises (default energy)")
    p.add_argument("--aggregate", default="layer-sum")
    p.add_argument("--out", help="folder for the exported files (default: a temporary folder)")
    p.add_argument("--full", action="store_true",
                   help="run SCALE-Sim's full simulation (slow; needs the numpy<2.4 of the scalesim extra)")
    return p.parse_args(argv)


def export(network: str, args, directory: Path) -> None:
    from deepopt_mip.scripts.cli import main

    code = main(["evaluate", "--network", network, "--array", args.array, "--sram", args.sram, "--bits", args.bits,
                 "--metric", args.metric, "--aggregate", args.aggregate, "--quiet", "--scalesim", str(directory)])
    if code != 0:
        raise SystemExit(f"deepopt-mip evaluate failed for {network} (exit {code})")


def read_layers(directory: Path) -> list[dict]:
    with open(directory / "layers.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def scalesim_compute_cycles(directory: Path, dataflow_of_row: dict[str, str]) -> dict[str, int]:
    """Per topology row: SCALE-Sim's stall-free cycles for the row's dataflow (compute model only)."""
    from scalesim.compute.operand_matrix import operand_matrix
    from scalesim.compute.systolic_compute_is import systolic_compute_is
    from scalesim.compute.systolic_compute_os import systolic_compute_os
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.topology_utils import topologies

    compute_class = {"os": systolic_compute_os, "ws": systolic_compute_ws, "is": systolic_compute_is}
    config = scale_config()
    config.read_conf_file(str(directory / "scalesim.cfg"))
    topo = topologies()
    topo.load_arrays(topofile=str(directory / "topology.csv"))
    layout = layouts()
    layout.load_arrays(layoutfile=str(directory / "layout.csv"))
    out: dict[str, int] = {}
    for layer_id in range(topo.get_num_layers()):
        name = topo.topo_arrays[layer_id][0]
        config.df = dataflow_of_row[name]
        operands = operand_matrix()
        operands.set_params(config_obj=config, topoutil_obj=topo, layoututil_obj=layout, layer_id=layer_id)
        _, ifmap = operands.get_ifmap_matrix()
        _, filt = operands.get_filter_matrix()
        _, ofmap = operands.get_ofmap_matrix()
        compute = compute_class[config.df]()
        compute.set_params(config_obj=config, ifmap_op_mat=ifmap, filter_op_mat=filt, ofmap_op_mat=ofmap)
        compute.create_ofmap_demand_mat()
        out[name] = int(compute.ofmap_demand_matrix.shape[0]) - 1
        del compute, operands
    return out


def scalesim_full_cycles(directory: Path, workdir: Path) -> dict[str, tuple[int, int]]:
    """Per topology row: (total cycles, stall cycles) of SCALE-Sim's full simulation of the exported files."""
    from scalesim.scale_sim import scalesim

    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(directory / "scalesim.cfg"),
                       topology=str(directory / "topology.csv"), layout=str(directory / "layout.csv"))
        sim.run_scale(top_path=str(workdir))
    names = [row[0] for row in sim.topo.topo_arrays]
    out = {}
    for name, layer in zip(names, sim.runner.single_layer_sim_object_list):
        items = layer.get_compute_report_items()
        out[name] = (int(items[1]), int(items[2]))
    return out


def compare(network: str, args, root: Path) -> list[dict]:
    directory = root / network
    export(network, args, directory)
    layers = read_layers(directory)
    dataflow_of_row = {row: layer["dataflow"] for layer in layers for row in layer["scalesim_rows"].split(" ")}
    started = time.perf_counter()
    if args.full:
        full = scalesim_full_cycles(directory, root / f"{network}-scalesim-out")
        theirs = {k: v[0] - v[1] for k, v in full.items()}
    else:
        theirs = scalesim_compute_cycles(directory, dataflow_of_row)
    elapsed = time.perf_counter() - started
    rows = []
    for layer in layers:
        batch = int(layer["batch"]) if layer["kind"] == "fc" else 1
        total = sum(theirs[r] for r in layer["scalesim_rows"].split(" "))
        ours = float(layer["cycles_ideal"])
        rows.append({"layer": layer["layer"], "branch": layer["branch"], "dataflow": layer["dataflow"],
                     "ours": ours, "scalesim": total / batch, "batch": batch,
                     "ratio": (total / batch) / ours if ours else math.inf})
    print(f"\n{network}: {args.array}, SRAM f/i/p {args.sram} kB, LOS for {args.metric} ({args.aggregate}); "
          f"SCALE-Sim {'full simulation, total - stall' if args.full else 'compute model, stall-free'} "
          f"cycles in {elapsed:.1f} s")
    print(f"{'layer':<28}{'branch':>8}{'df':>4}{'ours':>12}{'SCALE-Sim':>12}{'ratio':>8}")
    for r, name in zip(rows, short_names([r["layer"] for r in rows], 27)):
        note = f"  (per image of {r['batch']})" if r["batch"] > 1 else ""
        print(f"{name:<28}{r['branch']:>8}{r['dataflow']:>4}{r['ours']:>12,.0f}{r['scalesim']:>12,.0f}"
              f"{r['ratio']:>8.2f}{note}")
    ours_total = sum(r["ours"] for r in rows)
    theirs_total = sum(r["scalesim"] for r in rows)
    ratios = sorted(r["ratio"] for r in rows)
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    print(f"{'total':<28}{'':>8}{'':>4}{ours_total:>12,.0f}{theirs_total:>12,.0f}{theirs_total / ours_total:>8.2f}"
          f"   (per-layer ratio: min {ratios[0]:.2f}, median {median:.2f}, max {ratios[-1]:.2f})")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import scalesim  # noqa: F401
    except ImportError:
        print(SCALESIM_MISSING, file=sys.stderr)
        return 1
    if args.full:
        import numpy
        major, minor = (int(x) for x in numpy.__version__.split(".")[:2])
        if (major, minor) >= (2, 4):
            print(f"warning: numpy {numpy.__version__}: SCALE-Sim 3.0.0's memory model fails with numpy >= 2.4 "
                  "(SCALE-Sim PR #162); pip install 'deepopt-mip[scalesim]' pins numpy<2.4", file=sys.stderr)
    networks = args.network or ["squeezenet-v1.1", "alexnet"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out) if args.out else Path(tmp)
        for network in networks:
            compare(network, args, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
