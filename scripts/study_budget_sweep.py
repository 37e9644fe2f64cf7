"""A budget sweep a researcher would run: three networks on one chip, each within its latency cap,
least total energy, for several area budgets; writes a CSV and a plot.

    python -m deepopt_mip.scripts.study_budget_sweep --out sweep/ [--budgets 9,12,16,20] [--solver mip]
        [--networks googlenet-v1=2.2e6,resnet-50=7.2e6,squeezenet-v1.1=0.8e6]

Each budget is one study (docs/studies.md) solved through the Python API;
the CSV has one row per budget and network (hardware, area, energy, delay,
cap), the plot the total energy and the chosen array size against budget.
A budget no point meets is recorded as infeasible, with the reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import deepopt_mip as dm
from deepopt_mip.scripts.output import check_output_dir, save_figure, write_csv

NETWORKS = {"googlenet-v1": 2.2e6, "resnet-50": 7.2e6, "squeezenet-v1.1": 0.8e6}
"""Network -> delay cap (cycles), the default study."""


def parse_networks(text: str) -> dict[str, float]:
    """'name=cap,name=cap' -> {name: cap in cycles}."""
    out = {}
    for part in text.split(","):
        name, sep, cap = part.partition("=")
        if not sep:
            raise dm.InputError(f"--networks takes name=cap pairs, got {part!r}")
        out[name.strip()] = float(cap)
    return out


def sweep_rows(budgets_mm2, solver: str, caps: dict[str, float]) -> list[dict]:
    tech = dm.load_technology()
    base = dm.load_space("deepopt-16mm2", tech)
    networks = [dm.StudyNetwork(dm.load_network(name), max_delay_cycles=cap) for name, cap in caps.items()]
    rows = []
    for budget in budgets_mm2:
        problem = dm.Problem(networks, "energy", base.with_budget(budget), tech)
        try:
            solution = dm.solve(problem, solver=solver)
        except dm.InputError as exc:
            rows.append({"budget_mm2": budget, "network": problem.label, "status": f"infeasible: {exc}"})
            continue
        hw = solution.hardware
        for n in solution.networks:
            rows.append({"budget_mm2": budget, "network": n.name, "status": solution.status, "J": hw.J,
                         "K": hw.K, "fsram_kb": hw.fsram_kb, "isram_kb": hw.isram_kb, "psram_kb": hw.psram_kb,
                         "area_mm2": solution.area_mm2, "energy_j": n.energy_j, "delay_cycles": n.delay_cycles,
                         "max_delay_cycles": n.max_delay_cycles, "total_energy_j": solution.objective})
    return rows


def plot(frame, path: Path, caps: dict[str, float]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    solved = frame.dropna(subset=["total_energy_j"]).drop_duplicates("budget_mm2")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(solved["budget_mm2"], solved["total_energy_j"] * 1e3, marker="o")
    left.set_xlabel("area budget [mm$^2$]")
    left.set_ylabel("total energy of the networks [mJ]")
    left.set_title("least energy with every delay cap met")
    right.plot(solved["budget_mm2"], solved["J"] * solved["K"], marker="o")
    for _, row in solved.iterrows():
        right.annotate(f"{row['J']:.0f}x{row['K']:.0f}\n{row['fsram_kb']:g}/{row['isram_kb']:g}/{row['psram_kb']:g} kB",
                       (row["budget_mm2"], row["J"] * row["K"]), fontsize=7, ha="center", va="bottom")
    right.margins(x=0.12, y=0.2)
    right.set_xlabel("area budget [mm$^2$]")
    right.set_ylabel("PEs (J x K)")
    right.set_title("chosen array and SRAMs (f/i/p)")
    fig.suptitle(" + ".join(caps) + " on one chip (" + ", ".join(f"{n} D <= {c:.3g}" for n, c in caps.items())
                 + ")", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main(argv=None) -> int:
    import pandas as pd
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for sweep.csv and sweep.png")
    parser.add_argument("--budgets", default="9,12,16,20", help="area budgets in mm^2, comma-separated")
    parser.add_argument("--solver", default="enumerate", choices=["enumerate", "mip"])
    parser.add_argument("--networks", default=",".join(f"{n}={c:g}" for n, c in NETWORKS.items()),
                        help="name=delay cap in cycles, comma-separated")
    args = parser.parse_args(argv)
    check_output_dir(args.out, "--out")
    caps = parse_networks(args.networks)
    budgets = [float(b) for b in args.budgets.split(",")]
    frame = pd.DataFrame(sweep_rows(budgets, args.solver, caps))
    out = Path(args.out)
    write_csv(out / "sweep.csv", frame)
    plot(frame, out / "sweep.png", caps)
    print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
