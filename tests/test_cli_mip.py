"""The MIP commands: allocate --solver mip, compare and pareto (outputs, exit codes, errors)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.evaluation import evaluate_point

SMALL = ["--network", "alexnet", "--area-mm2", "4"]
"""deepopt-16mm2 cut to 4 mm^2: 3,712 points, seconds per solve."""


def test_allocate_mip_json_has_solver_fields_and_matches_enumeration(tmp_path):
    mip, enum = tmp_path / "mip.json", tmp_path / "enum.json"
    assert main(["allocate", *SMALL, "--metric", "edp", "--solver", "mip", "--json", str(mip), "--quiet"]) == 0
    assert main(["allocate", *SMALL, "--metric", "edp", "--json", str(enum), "--quiet"]) == 0
    got, want = json.loads(mip.read_text()), json.loads(enum.read_text())
    assert got["solver"]["name"] == "mip" and got["solver"]["status"] == "optimal"
    assert {"gap", "build_s", "solve_s", "best_bound"} <= set(got["solver"])
    assert got["solver"]["gap"] <= 1e-6
    assert got["objective"] == pytest.approx(want["objective"], rel=1e-6)
    layers = got["layers"]
    assert sum(x["energy_j"] for x in layers) == pytest.approx(got["energy_j"], rel=1e-12)
    assert sum(x["delay_cycles"] for x in layers) == pytest.approx(got["delay_cycles"], rel=1e-12)


def test_allocate_mip_out_records_solver_options(tmp_path):
    assert main(["allocate", *SMALL, "--metric", "energy", "--solver", "mip", "--mip-gap", "1e-7",
                 "--time-limit", "120", "--out", str(tmp_path), "--quiet"]) == 0
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert manifest["solver"] == "mip"
    assert manifest["solver_options"] == {"time_limit_s": 120.0, "mip_gap": 1e-7, "threads": None}


def test_compare_agrees_and_exits_zero(tmp_path, capsys):
    """A second run with --quiet prints nothing and writes a byte-identical JSON file (no timings in it)."""
    out, again = tmp_path / "compare.json", tmp_path / "again.json"
    assert main(["compare", *SMALL, "--metric", "delay", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "AGREE" in text and "mip" in text and "enumerate" in text
    result = json.loads(out.read_text())
    assert result["agree"] is True and result["relative_difference"] <= 1e-6
    assert result["solvers"]["mip"]["objective"] == pytest.approx(result["solvers"]["enumerate"]["objective"],
                                                                  rel=1e-6)
    assert main(["compare", *SMALL, "--metric", "delay", "--json", str(again), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert again.read_bytes() == out.read_bytes()


def test_compare_exits_one_when_the_solvers_disagree(monkeypatch, capsys):
    import deepopt_mip.solvers.mip as mip
    real = mip.mip_allocate

    def off_by_a_little(*args, **kwargs):
        from dataclasses import replace
        sol = real(*args, **kwargs)
        return replace(sol, objective=sol.objective * (1 + 1e-5))

    monkeypatch.setattr(mip, "mip_allocate", off_by_a_little)
    assert main(["compare", *SMALL, "--metric", "energy"]) == 1
    assert "DISAGREE" in capsys.readouterr().out


def test_pareto_writes_a_nondominated_frontier_with_the_edp_optimum(tmp_path):
    assert main(["pareto", *SMALL, "--points", "all", "--out", str(tmp_path), "--quiet"]) == 0
    frame = pd.read_csv(tmp_path / "frontier.csv")
    assert (tmp_path / "frontier.png").stat().st_size > 0
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert manifest["frontier"] == {"points_requested": "all", "distinct_points_found": len(frame),
                                    "points_on_frontier": len(frame), "edp_optimum_added": False,
                                    "points_written": len(frame)}
    assert len(frame) >= 2
    energy, delay = frame["energy_j"].to_numpy(), frame["delay_cycles"].to_numpy()
    for n in range(len(frame)):
        others = np.arange(len(frame)) != n
        assert not np.any((energy[others] <= energy[n]) & (delay[others] <= delay[n])), "a dominated row"
    best = frame[frame["edp_optimal"]]
    assert len(best) == 1
    assert best["edp_j_cycles"].iloc[0] == pytest.approx((energy * delay).min(), rel=1e-12)
    tech = load_technology()
    space = load_space("deepopt-16mm2", tech).with_budget(4)
    row = best.iloc[0]
    hw = space.hardware_point(row["J"], row["K"], row["fsram_kb"], row["isram_kb"], row["psram_kb"])
    los = evaluate_point(load_network("alexnet"), hw, tech, "edp", "network").los
    assert los.objective == pytest.approx(row["edp_j_cycles"], rel=1e-9)


def test_pareto_counts_asked_found_and_existing_points(tmp_path, capsys):
    """--points 3 finds at most 3 distinct points, all on the whole frontier, whose size it leaves unknown."""
    assert main(["pareto", *SMALL, "--points", "all", "--out", str(tmp_path / "all"), "--quiet"]) == 0
    assert main(["pareto", *SMALL, "--points", "3", "--out", str(tmp_path / "three")]) == 0
    printed = capsys.readouterr().out
    whole = pd.read_csv(tmp_path / "all" / "frontier.csv")
    some = pd.read_csv(tmp_path / "three" / "frontier.csv")
    counts = yaml.safe_load((tmp_path / "three" / "manifest.yaml").read_text())["frontier"]
    assert counts["points_requested"] == 3
    assert counts["points_on_frontier"] == "unknown; use --points all"
    assert counts["points_written"] == len(some) == counts["distinct_points_found"] + counts["edp_optimum_added"]
    assert 2 <= counts["distinct_points_found"] <= 3 < len(whole)
    on_whole = set(zip(whole["energy_j"], whole["delay_cycles"]))
    assert set(zip(some["energy_j"], some["delay_cycles"])) <= on_whole
    assert (f"3 delay limits asked (--points 3), {counts['distinct_points_found']} distinct points found"
            in printed) and "unknown (use --points all)" in printed


def test_hardware_is_numbered_where_it_changes_along_the_frontier():
    from deepopt_mip.scripts.pareto_cmd import hardware_changes
    frame = pd.DataFrame({"delay_cycles": [5, 1, 2, 3, 4], "J": [8, 16, 16, 8, 16], "K": [8] * 5,
                          "fsram_kb": [4.0] * 5, "isram_kb": [4.0] * 5, "psram_kb": [4.0, 4.0, 4.0, 8.0, 4.0]})
    changes, distinct = hardware_changes(frame)
    assert distinct == ["16x8, SRAM 4/4/4 kB", "8x8, SRAM 4/4/8 kB", "8x8, SRAM 4/4/4 kB"]
    assert changes == [(0, 1), (2, 2), (3, 1), (4, 3)]


@pytest.mark.parametrize("args, message", [
    (["pareto", "--points", "1", "--out", "x"], "--points must be at least 2"),
    (["pareto", "--points", "many", "--out", "x"], "--points must be a whole number"),
    (["allocate", "--solver", "mip", "--time-limit", "-1"], "time limit must be a positive"),
    (["allocate", "--solver", "mip", "--mip-gap", "1.5"], "MIP gap must be in"),
    (["compare", "--threads", "0"], "threads must be at least 1"),
    (["allocate", "--solver", "cplex"], "unknown solver"),
    (["allocate", "--solver", "mip", "--area-mm2", "0.01"], "area budget"),
])
def test_bad_mip_options_give_one_line_and_status_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_closed_pipe_ends_quietly():
    import subprocess
    import sys
    proc = subprocess.run(f"{sys.executable} -m deepopt_mip.scripts.cli evaluate | head -1", shell=True,
                          capture_output=True, text=True)
    assert proc.stdout.startswith("network") and "Traceback" not in proc.stderr


def test_solves_with_different_thread_counts_in_one_process_all_find_the_optimum():
    from deepopt_mip.solvers.highs_driver import MipOptions
    from deepopt_mip.solvers.mip import mip_allocate
    tech = load_technology()
    space = load_space("deepopt-16mm2", tech).with_budget(4)
    network = load_network("alexnet")
    results = [mip_allocate(network, space, tech, "delay", "network", MipOptions(threads=t)) for t in (None, 1, 2, 1)]
    assert {r.status for r in results} == {"optimal"}
    assert len({r.objective for r in results}) == 1
