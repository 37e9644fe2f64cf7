"""What ``--fusion`` adds to the outputs: the per-layer fusion table, the JSON ``fusion`` block, the plot.

No equation here: every number comes from a
:class:`~deepopt_mip.solvers.fusion_schedule.FusionSchedule` (the fused
optimum and the best unfused schedule of the same hardware).
"""

from __future__ import annotations

import math

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import BITS_PER_KB
from deepopt_mip.formulation.metrics import METRIC_LABELS


def _fmt(value: float, digits: int = 4) -> str:
    return "infeasible" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _saved_pct(unfused: float, fused: float) -> str:
    if not (math.isfinite(unfused) and math.isfinite(fused)) or unfused == 0:
        return "-"
    return f"{(unfused - fused) / unfused * 100:.2f}%"


def require_graph(network) -> None:
    """--fusion needs to know which layer reads which: refuse a network without its graph."""
    if not network.has_graph:
        raise InputError(f"--fusion: network {network.name!r} has no graph (no inputs column, "
                         "data/networks/README.md): nothing can be fused")


def fusion_table(network, fused, unfused) -> str:
    """Per layer: the fused optimum's branch, whether its input and output stay on chip, resident kB."""
    lines = [f"{'layer':<28} {'branch':<8} {'input':>6} {'output':>7} {'resident [kB]':>14} "
             f"{'energy [uJ]':>12} {'delay [cycles]':>15}"]
    for i, layer in enumerate(network.layers):
        lines.append(
            f"{layer.name:<28} {BRANCHES[fused.branch_index[i]]:<8} {'fused' if fused.fused_in[i] else 'DRAM':>6} "
            f"{'fused' if fused.fused_out[i] else 'DRAM':>7} {fused.reserved_bits[i] / BITS_PER_KB:>14.4g} "
            f"{_fmt(fused.layer_energy_j[i] * 1e6):>12} {_fmt(fused.layer_delay_cycles[i], 9):>15}")
    return "\n".join(lines)


def fusion_summary(metric: str, hardware, fused, unfused, aggregate: str = "network") -> str:
    """Totals with and without fusion on the same hardware, and what fusion saves."""
    rows = [("DRAM traffic [Mbit]", unfused.dram_bits(hardware) / 1e6, fused.dram_bits(hardware) / 1e6),
            ("energy [mJ]", unfused.energy_j * 1e3, fused.energy_j * 1e3),
            ("delay [cycles]", unfused.delay_cycles, fused.delay_cycles),
            (METRIC_LABELS[metric] + (" (layer-sum)" if aggregate == "layer-sum" else ""), unfused.objective,
             fused.objective)]
    lines = [f"fusion: {len(fused.fused_edges)} of the graph's edges fused "
             f"({len(fused.fused)} layers read their input on chip)",
             f"{'':<30} {'unfused':>14} {'fused':>14} {'saved':>9}"]
    lines += [f"{name:<30} {_fmt(u, 8):>14} {_fmt(f, 8):>14} {_saved_pct(u, f):>9}" for name, u, f in rows]
    return "\n".join(lines)


def fusion_payload(network, hardware, fused, unfused) -> dict:
    """The JSON ``fusion`` block (unfused = the same hardware and the best unfused schedule)."""
    return {
        "fused_edges": [[p, c] for p, c in fused.fused_edges],
        "dram_bits_unfused": unfused.dram_bits(hardware), "dram_bits_fused": fused.dram_bits(hardware),
        "energy_j_unfused": unfused.energy_j, "energy_j_fused": fused.energy_j,
        "delay_cycles_unfused": unfused.delay_cycles, "delay_cycles_fused": fused.delay_cycles,
        "objective_unfused": unfused.objective, "objective_fused": fused.objective,
        "layers": [{"name": layer.name, "branch": BRANCHES[fused.branch_index[i]],
                    "input_fused": fused.fused_in[i], "output_fused": fused.fused_out[i],
                    "resident_bits": fused.reserved_bits[i], "energy_j": fused.layer_energy_j[i],
                    "delay_cycles": fused.layer_delay_cycles[i]}
                   for i, layer in enumerate(network.layers)],
    }


def plot_fusion(path, network, hardware, fused, title: str = ""):
    """The per-layer energy breakdown of the fused optimum, each fused edge drawn as an arc above the bars."""
    from deepopt_mip.scripts.energy_plot import PARTS, require_matplotlib
    from deepopt_mip.scripts.output import save_figure

    plt = require_matplotlib()
    n = len(network.layers)
    xs = list(range(n))
    fig, ax = plt.subplots(figsize=(min(max(6.0, 0.28 * n + 2.5), 40.0), 5.5), dpi=110)
    bottom = [0.0] * n
    for key, label, colour in PARTS:
        values = [float(getattr(c.energy, key)) * 1e6 if math.isfinite(float(c.energy_j)) else 0.0
                  for c in fused.layer_costs]
        ax.bar(xs, values, bottom=bottom, color=colour, label=label, width=0.8, edgecolor="none")
        bottom = [b + v for b, v in zip(bottom, values)]
    top = max(bottom + [1e-12])
    index = {layer.name: i for i, layer in enumerate(network.layers)}
    base = top * 1.03
    for producer, consumer in fused.fused_edges:
        a, b = index[producer], index[consumer]
        ax.annotate("", xy=(b, base), xytext=(a, base),
                    arrowprops={"arrowstyle": "->", "color": "#8172b3", "lw": 1.0, "shrinkA": 0, "shrinkB": 0,
                                "connectionstyle": "arc3,rad=-0.35"})
    ax.set_ylim(0, top * 1.45)
    ax.plot([], [], color="#8172b3", label="fused edge")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{layer.name} [{BRANCHES[fused.branch_index[i]]}]" for i, layer in enumerate(network.layers)],
                       rotation=90, fontsize=7 if n > 20 else 8)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("energy per image [uJ]")
    ax.set_title(f"{network.name} on {hardware.label()}\n{len(fused.fused_edges)} fused edges"
                 + (f"; {title}" if title else ""), fontsize=10)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    save_figure(fig, path)
    return path
