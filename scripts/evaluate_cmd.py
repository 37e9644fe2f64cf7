"""``deepopt-mip evaluate``: one hardware point, LOS versus the five fixed schedules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES, FC_ORDER_OF_BRANCH
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.metrics import METRIC_EXPONENTS, METRIC_LABELS, metric_value
from deepopt_mip.solvers.evaluation import PointEvaluation, evaluate_point
from deepopt_mip.scripts.names import NAME_WIDTH, short_names
from deepopt_mip.scripts.output import write_csv, write_json
from deepopt_mip.scripts.provenance import provenance


def branch_label(layer, branch: str) -> str:
    """A branch as shown to people: FC layers name their FC order too."""
    return f"{branch} (fc {FC_ORDER_OF_BRANCH[branch]})" if layer.kind == "fc" else branch


def fmt(value: float, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "infeasible"
    return f"{value:.{digits}g}"


def fmt_pct(value: float) -> str:
    return "infeasible" if not math.isfinite(value) else f"{value:+.1f}%"


def layer_table(ev: PointEvaluation) -> str:
    names = short_names([layer.name for layer in ev.network.layers], NAME_WIDTH)
    lines = [f"{'layer':<{NAME_WIDTH}} {'best branch':<20} {'energy [uJ]':>12} {'delay [cycles]':>15} {METRIC_LABELS[ev.metric]:>20}"]
    e_tab, d_tab = ev.tables.energy_j, ev.tables.delay_cycles
    for i, layer in enumerate(ev.network.layers):
        j = ev.los.branch_index[i]
        e, d = float(e_tab[i, j]), float(d_tab[i, j])
        value = float(metric_value(e, d, ev.metric))
        lines.append(f"{names[i]:<{NAME_WIDTH}} {branch_label(layer, BRANCHES[j]):<20} {fmt(e * 1e6):>12} {fmt(d, 9):>15} {fmt(value):>20}")
    return "\n".join(lines)


def summary_table(evals: dict[str, PointEvaluation], chosen: str) -> str:
    """Rows: LOS and each fixed schedule; columns: the metric totals and penalties."""
    metrics = list(evals)
    header = f"{'schedule':<10}" + "".join(f"{m + ' penalty':>16}" for m in metrics)
    lines = [header, f"{'LOS':<10}" + "".join(f"{'-':>16}" for _ in metrics)]
    for b in BRANCHES:
        lines.append(f"{b:<10}" + "".join(f"{fmt_pct(evals[m].penalty_pct(b)):>16}" for m in metrics))
    ev = evals[chosen]
    totals = [f"LOS {METRIC_LABELS[chosen]} = {fmt(ev.los.objective, 6)}  (E = {fmt(ev.los.energy_j * 1e3, 5)} mJ, "
              f"D = {fmt(ev.los.delay_cycles, 9)} cycles)"]
    for b in BRANCHES:
        fs = ev.fixed[b]
        totals.append(f"FS {b:<7} {METRIC_LABELS[chosen]} = {fmt(fs.objective, 6)}")
    return "\n".join(totals) + "\n\nPenalty of each fixed schedule over LOS, per metric:\n" + "\n".join(lines)


def payload(ev: PointEvaluation, evals: dict[str, PointEvaluation], tech, version: str) -> dict:
    """The JSON of ``evaluate --json``; infeasible values are null (README, Outputs)."""
    hw = ev.hardware
    layers = []
    for i, layer in enumerate(ev.network.layers):
        branches = {}
        for j, b in enumerate(BRANCHES):
            cost = ev.tables.details[i][b]
            e, d = float(ev.tables.energy_j[i, j]), float(ev.tables.delay_cycles[i, j])
            branches[b] = {
                "energy_j": e, "delay_cycles": d, "feasible": bool(np.isfinite(e) and np.isfinite(d)),
                "energy_parts_j": {"mac": float(cost.energy.mac_j), "rf": float(cost.energy.rf_j),
                                   "sram": float(cost.energy.sram_j), "dram": float(cost.energy.dram_j)},
                "counts": {k: float(v) for k, v in vars(cost.counts).items()},
            }
            if layer.kind == "fc":
                branches[b]["fc_order"] = FC_ORDER_OF_BRANCH[b]
        layers.append({"name": layer.name, "kind": layer.kind, "best_branch": BRANCHES[ev.los.branch_index[i]],
                       "branches": branches})
    return {
        "manifest": provenance(ev.network, tech, version),
        "network": ev.network.name,
        "hardware": {"J": hw.J, "K": hw.K, "fsram_kb": hw.fsram_kb, "isram_kb": hw.isram_kb,
                     "psram_kb": hw.psram_kb, "bits_filter": hw.bits_filter, "bits_ifmap": hw.bits_ifmap,
                     "bits_psum": hw.bits_psum, "dram_bw_bits_per_cycle": hw.dram_bw_bits_per_cycle},
        "metric": ev.metric,
        "aggregate": ev.aggregate,
        "los": {"total": ev.los.objective, "energy_j": ev.los.energy_j, "delay_cycles": ev.los.delay_cycles,
                "branches": [BRANCHES[j] for j in ev.los.branch_index]},
        "fixed": {b: {"total": ev.fixed[b].objective, "penalty_pct": ev.penalty_pct(b),
                      "energy_j": ev.fixed[b].energy_j, "delay_cycles": ev.fixed[b].delay_cycles} for b in BRANCHES},
        "penalties_by_metric": {m: {b: e.penalty_pct(b) for b in BRANCHES} for m, e in evals.items()},
        "layers": layers,
    }


def branch_frame(ev: PointEvaluation) -> pd.DataFrame:
    rows = []
    for i, layer in enumerate(ev.network.layers):
        for j, b in enumerate(BRANCHES):
            cost = ev.tables.details[i][b]
            rows.append({"layer": layer.name, "kind": layer.kind, "branch": b,
                         "fc_order": FC_ORDER_OF_BRANCH[b] if layer.kind == "fc" else "",
                         "los_choice": j == ev.los.branch_index[i],
                         "energy_j": float(ev.tables.energy_j[i, j]), "delay_cycles": float(ev.tables.delay_cycles[i, j]),
                         "mac_j": float(cost.energy.mac_j), "rf_j": float(cost.energy.rf_j),
                         "sram_j": float(cost.energy.sram_j), "dram_j": float(cost.energy.dram_j),
                         **{k: float(v) for k, v in vars(cost.counts).items()}})
    return pd.DataFrame(rows)


def run(network, hardware, tech, metric: str, aggregate: str, json_path=None, csv_path=None, quiet=False,
        scalesim_dir=None, plot_path=None, version: str = "unknown", fusion=False) -> int:
    tables = cost_tables(network.layers, hardware.arrays(), tech)
    evals = {m: evaluate_point(network, hardware, tech, m, aggregate, tables) for m in METRIC_EXPONENTS}
    ev = evals[metric]
    if fusion:
        from deepopt_mip.scripts import fusion_output
        from deepopt_mip.solvers.fusion_schedule import best_fusion, unfused_schedule
        fusion_output.require_graph(network)
        fused = best_fusion(network, hardware, tech, metric, aggregate)
        unfused = unfused_schedule(network, hardware, tech, metric, aggregate)
    if not quiet:
        print(f"network  {network.name}: {len(network)} layers, {network.macs / 1e9:.3f} GMAC per image")
        print(f"hardware {hardware.label()}")
        print(f"metric   {metric} ({METRIC_LABELS[metric]}), aggregation {aggregate}, technology {tech.name}\n")
        print(layer_table(ev))
        print()
        print(summary_table(evals, metric))
        if fusion:
            print(f"\nBest fusion and branches ({metric}, {aggregate}):")
            print(fusion_output.fusion_table(network, fused, unfused))
            print()
            print(fusion_output.fusion_summary(metric, hardware, fused, unfused, aggregate))
    if json_path:
        data = payload(ev, evals, tech, version)
        if fusion:
            data["fusion"] = fusion_output.fusion_payload(network, hardware, fused, unfused)
        write_json(json_path, data)
    if csv_path:
        write_csv(csv_path, branch_frame(ev))
    los_branches = [BRANCHES[j] for j in ev.los.branch_index]
    if scalesim_dir:
        from deepopt_mip.scripts.scalesim_export import export_scalesim
        export_scalesim(scalesim_dir, network, hardware, los_branches, tech, tables=tables)
    if plot_path and fusion:
        fusion_output.plot_fusion(plot_path, network, hardware, fused,
                                  title=f"best fusion for {metric} ({aggregate}), technology {tech.name}")
    elif plot_path:
        from deepopt_mip.scripts.energy_plot import plot_energy_breakdown
        plot_energy_breakdown(plot_path, network, hardware, tables, los_branches,
                              title=f"LOS schedule for {metric} ({aggregate}), technology {tech.name}")
    return 0
