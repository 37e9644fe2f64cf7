"""What fusion saves on the built-in networks: the README's fusion table.

    python benchmarks/fusion_report.py [--metric edp] [--space deepopt-16mm2] [--networks ...]

Per network (and VGG-16's first five conv layers alone): at the paper's
Table 3 hardware (32x64 PEs, SRAM 16/32/8 kB) the best unfused schedule and
the best fusion and branches; over the space (16 mm^2) the unfused and the
fused optimum, with the hardware each chooses. Deterministic numbers (no
timing enters them); the wall time of each allocation is printed apart.
"""

from __future__ import annotations

import argparse
import time

from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, Network, load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_schedule import best_fusion, unfused_schedule

TABLE3 = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=32, psram_kb=8)


def vgg_first_five() -> Network:
    vgg = load_network("vgg-16")
    return Network("vgg-16 conv1_1..conv3_1", vgg.layers[:5], inputs=(NETWORK_INPUT,) + vgg.inputs[1:5])


def pct(before: float, after: float) -> str:
    return f"{(before - after) / before * 100:.1f}"


def hw_text(hw: HardwarePoint) -> str:
    return f"{hw.J}x{hw.K}, {hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", default="edp")
    parser.add_argument("--space", default="deepopt-16mm2")
    parser.add_argument("--networks", nargs="*", default=[*BUILTIN_NETWORKS, "vgg5"])
    args = parser.parse_args()
    tech = load_technology(None)
    space = load_space(args.space, tech)
    print("| network | where | hardware (JxK, f/i/p kB) | edges fused | DRAM saved % | energy saved % | "
          "delay saved % | E*D saved % |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.networks:
        network = vgg_first_five() if name == "vgg5" else load_network(name)
        rows = []
        fused = best_fusion(network, TABLE3, tech, args.metric, "network")
        plain = unfused_schedule(network, TABLE3, tech, args.metric, "network")
        rows.append(("Table 3", TABLE3, fused, plain))
        start = time.perf_counter()
        unfused_opt = enumerate_space(network, space, tech, args.metric, "network", top_k=0)
        allocation = enumerate_fusion(network, space, tech, args.metric, "network", top_k=0)
        wall = time.perf_counter() - start
        here = unfused_schedule(network, unfused_opt.hardware, tech, args.metric, "network")
        rows.append((f"optimum, unfused: {hw_text(unfused_opt.hardware)}", allocation.solution.hardware,
                     allocation.fused, here))
        for where, hw, f, u in rows:
            edp_f = f.energy_j * f.delay_cycles
            edp_u = u.energy_j * u.delay_cycles
            print(f"| {network.name} | {where} | {hw_text(hw)} | {len(f.fused_edges)} of {len(network.edges)} | "
                  f"{pct(u.dram_bits(hw if where == 'Table 3' else unfused_opt.hardware), f.dram_bits(hw))} | "
                  f"{pct(u.energy_j, f.energy_j)} | {pct(u.delay_cycles, f.delay_cycles)} | {pct(edp_u, edp_f)} |",
                  flush=True)
        print(f"<!-- {network.name}: both allocations {wall:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
