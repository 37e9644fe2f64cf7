"""The grid pass's hot loop in one process: layer-branch evaluations per CPU second, optionally old vs new.

    python benchmarks/bench_hotloop.py [--spaces paper sram16] [--networks googlenet alexnet]
                                       [--metrics energy edp] [--checkouts . ../other-checkout] [--repeat 2]

For every space, network and metric, a child process evaluates every block
of the streaming pass (``grid_blocks.budget_blocks``, blocks of at most
300,000 points) with ``grid_sums.chunk_sums``, one after the other in that
one process, and reports its CPU time (``time.process_time``: what the
pass costs, much less sensitive to other jobs on the machine than wall
time) and, from the same run, the largest block alone. Figures are
layer-branch evaluations: evaluated points x distinct layers x 5 branches,
per CPU second (``M ev/CPU-s``); two workers on two idle cores give about
twice the per-CPU figure in wall time (``bench_scale.py`` measures that).

``--checkouts`` names source trees of this repository (default: the one
this script is in); each child imports ``deepopt_mip`` from its tree, so
one run compares two versions (say, a checkout of the main branch against
this one) under the same load. Runs of the checkouts alternate, ``--repeat``
times each, and the table gives each run. Spaces are those of
``bench_scale.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import SRAM_STEPS, space_file  # noqa: E402

CHILD = """
import importlib.util, json, sys, time
root, space_name, network_name, metric = sys.argv[1:5]
# deepopt_mip from the tree ``root``: the package is api/, its subpackages the tree's top-level folders
spec = importlib.util.spec_from_file_location("deepopt_mip", root + "/api/__init__.py",
                                              submodule_search_locations=[root + "/api", root])
package = importlib.util.module_from_spec(spec)
sys.modules["deepopt_mip"] = package
spec.loader.exec_module(package)
from deepopt_mip.formulation.allocator import keep_freed_memory
from deepopt_mip.formulation.grid_blocks import budget_blocks
from deepopt_mip.formulation.grid_stream import block_hardware
from deepopt_mip.formulation.grid_sums import chunk_sums, distinct_layers, is_separable
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
keep_freed_memory()
tech = load_technology()
space = load_space(space_name, tech)
layers = distinct_layers(load_network(network_name))
separable = is_separable(metric, "network")
blocks = list(budget_blocks(space, 300_000))
largest = max(blocks, key=lambda b: b.size)
chunk_sums(block_hardware(space, blocks[0])[0], layers, tech, metric, separable)  # warm up
cpu = time.process_time(); wall = time.perf_counter()
for block in blocks:
    chunk_sums(block_hardware(space, block)[0], layers, tech, metric, separable)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
hw = block_hardware(space, largest)[0]
one = time.process_time()
chunk_sums(hw, layers, tech, metric, separable)
one = time.process_time() - one
print(json.dumps({"blocks": len(blocks), "points": sum(b.size for b in blocks), "largest": largest.size,
                  "layers": len(layers), "cpu_s": cpu, "wall_s": wall, "largest_cpu_s": one}))
"""


def run(root: Path, space: str, network: str, metric: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), space, network, metric], capture_output=True,
                         text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["paper", "sram16"], choices=list(SRAM_STEPS))
    parser.add_argument("--networks", nargs="+", default=["googlenet"])
    parser.add_argument("--metrics", nargs="+", default=["energy", "edp"])
    parser.add_argument("--checkouts", nargs="+", type=Path, default=[Path(__file__).resolve().parent.parent])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    names = [str(c) for c in args.checkouts]
    print(f"{'checkout':<24}{'space':<9}{'network':<11}{'metric':<8}{'blocks':>7}{'points':>11}{'CPU s':>8}"
          f"{'wall s':>8}{'M ev/CPU-s':>11}{'largest':>9}{'M ev/CPU-s':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for space in args.spaces:
            where = space_file(space, folder)
            for network in args.networks:
                for metric in args.metrics:
                    for _ in range(args.repeat):
                        for root, name in zip(args.checkouts, names):
                            r = run(root.resolve(), where, network, metric)
                            head = f"{name[-23:]:<24}{space:<9}{network:<11}{metric:<8}"
                            if "error" in r:
                                print(f"{head}  {r['error']}", flush=True)
                                continue
                            per_point = r["layers"] * 5 / 1e6
                            print(f"{head}{r['blocks']:>7}{r['points']:>11,}{r['cpu_s']:>8.1f}{r['wall_s']:>8.1f}"
                                  f"{r['points'] * per_point / r['cpu_s']:>11.1f}{r['largest']:>9,}"
                                  f"{r['largest'] * per_point / r['largest_cpu_s']:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
