"""deepopt-mip sweep on this machine: sweep files, results against the solvers, resuming, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.sweeps import engines
from deepopt_mip.sweeps.cell import is_split
from deepopt_mip.sweeps.sweep_file import load_sweep
from deepopt_mip.sweeps.sweep import sweep
from sweep_cases import NINE, SMALL, cell_files, outputs, write_sweep

TECH = load_technology()


def test_results_equal_the_enumeration_cell_by_cell(serial_small):
    out, result = serial_small
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8 and list(table["network"][:4]) == ["alexnet"] * 4
    for _, row in table[table["status"] == "optimal"].iterrows():
        space = load_space("deepopt-16mm2", TECH).with_budget(row["budget_mm2"])
        want = enumerate_space(load_network(row["network"]), space, TECH, row["metric"], row["aggregate"], top_k=0)
        hw = want.hardware
        assert (row["J"], row["K"], row["fsram_kb"], row["isram_kb"], row["psram_kb"]) == (
            hw.J, hw.K, hw.fsram_kb, hw.isram_kb, hw.psram_kb)
        assert row["objective"] == pytest.approx(want.objective, rel=1e-15)
        assert row["energy_j"] == pytest.approx(want.energy_j, rel=1e-15)
        assert row["points"] == want.points == 3712
    parquet = pd.read_parquet(out / "results.parquet")
    assert list(parquet.columns) == list(table.columns)
    assert parquet["objective"].equals(result.results["objective"])


def test_plots_are_drawn(serial_small):
    out, result = serial_small
    assert [p.name for p in result.plots] == ["optimum_vs_budget.png", "hardware_vs_budget.png", "penalty.png"]
    for path in result.plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_a_budget_no_point_meets_is_recorded_with_the_least_area(serial_small):
    out, _ = serial_small
    table = pd.read_csv(out / "results.csv")
    infeasible = table[table["budget_mm2"] == 0.5]
    assert len(infeasible) == 4 and set(infeasible["status"]) == {"infeasible"}
    least_mm2 = (8 * 8 * TECH.pe_um2 + 12 * 1024 * TECH.sram_um2_per_byte) / 1e6  # 8x8 PEs, three 4 kB SRAMs
    assert infeasible["least_area_mm2"].to_numpy() == pytest.approx([least_mm2] * 4, rel=1e-12)
    assert infeasible["objective"].isna().all()


def test_each_cell_file_holds_the_allocate_payload(serial_small, tmp_path):
    out, _ = serial_small
    files = cell_files(out)
    assert len(files) == 8
    table = pd.read_csv(out / "results.csv")
    row = table[(table["network"] == "alexnet") & (table["budget_mm2"] == 4) & (table["metric"] == "edp")].iloc[0]
    record = json.loads((out / "cells" / f"{row['key']}.json").read_text())
    assert record["inputs"]["budget_mm2"] == 4 and record["inputs"]["metric"] == "edp"
    allocate = tmp_path / "allocate.json"
    assert main(["allocate", "--network", "alexnet", "--area-mm2", "4", "--metric", "edp", "--json", str(allocate),
                 "--quiet"]) == 0
    want = json.loads(allocate.read_text())
    got = record["solution"]
    for payload in (got, want):
        payload["solver"].pop("wall_s")
        payload["solver"].pop("solve_s", None)
    assert got == want


def test_penalty_matrix_is_each_network_on_the_others_optimum(serial_small):
    out, _ = serial_small
    table = pd.read_csv(out / "results.csv")
    penalty = pd.read_csv(out / "penalty.csv")
    assert len(penalty) == 2 * 2 * 2  # 2 metrics x 2 networks x 2 hardware points at 4 mm^2 (0.5 has none)
    space = load_space("deepopt-16mm2", TECH).with_budget(4)
    for _, row in penalty.iterrows():
        own = table[(table["network"] == row["network"]) & (table["metric"] == row["metric"])
                    & (table["budget_mm2"] == 4)].iloc[0]
        other = table[(table["network"] == row["on_hardware_of"]) & (table["metric"] == row["metric"])
                      & (table["budget_mm2"] == 4)].iloc[0]
        point = space.hardware_point(other["J"], other["K"], other["fsram_kb"], other["isram_kb"], other["psram_kb"])
        value = evaluate_point(load_network(row["network"]), point, TECH, row["metric"], "network").los.objective
        assert row["objective"] == pytest.approx(value, rel=1e-15)
        assert row["penalty_pct"] == pytest.approx((value / own["objective"] - 1) * 100, rel=1e-9, abs=1e-12)
        if row["network"] == row["on_hardware_of"]:
            assert row["penalty_pct"] == 0
        else:
            assert row["penalty_pct"] > 0  # the other optimum is a different point, and worse for this network


def test_local_pool_gives_the_same_bytes_as_serial(serial_small, tmp_path):
    out, _ = serial_small
    result = sweep(write_sweep(tmp_path, SMALL), tmp_path / "out", workers=2, plots=False)
    assert result.engine == "local pool" and result.ran == 8
    assert outputs(tmp_path / "out") == outputs(out)
    assert len(pd.read_csv(tmp_path / "out" / "timings.csv")) == 8


def test_rerun_skips_finished_cells_and_gives_the_same_bytes(serial_small, tmp_path):
    out, _ = serial_small
    study = write_sweep(tmp_path, SMALL)
    sweep(study, tmp_path / "out", workers=1, plots=False)
    manifest = (tmp_path / "out" / "manifest.yaml").read_bytes()
    for path in cell_files(tmp_path / "out")[:3]:
        path.unlink()
    (tmp_path / "out" / "results.csv").unlink()
    again = sweep(study, tmp_path / "out", workers=1, plots=False)
    assert (again.ran, again.skipped) == (3, 5)
    assert outputs(tmp_path / "out") == outputs(out)
    assert (tmp_path / "out" / "manifest.yaml").read_bytes() == manifest
    assert sweep(study, tmp_path / "out", workers=1, plots=False).ran == 0


def test_split_cells_equal_whole_cells(serial_small, tmp_path):
    out, _ = serial_small
    study = {**SMALL, "networks": ["alexnet"], "chunk_points": 2000}
    path = write_sweep(tmp_path, study)
    assert [is_split(cell) for cell in load_sweep(path).cells] == [False, False, True, True]  # 0 and 3,712 points
    result = sweep(path, tmp_path / "out", workers=2, plots=False)
    split = result.results
    whole = pd.read_parquet(out / "results.parquet")[:4]
    assert result.ran == 4
    columns = ["status", "J", "K", "fsram_kb", "isram_kb", "psram_kb", "area_mm2", "objective", "energy_j",
               "delay_cycles", "points", "least_area_mm2"]
    pd.testing.assert_frame_equal(split[columns], whole[columns])


def test_a_cell_of_several_networks_is_the_study_of_one_shared_chip(tmp_path):
    import deepopt_mip as dm
    study = {"networks": [["alexnet", "squeezenet-v1.1"]], "budgets_mm2": [4], "metrics": ["energy", "edp"],
             "solvers": ["both"]}
    table = sweep(write_sweep(tmp_path, study), tmp_path / "out", workers=1, plots=False).results
    space = load_space("deepopt-16mm2", TECH).with_budget(4)
    for _, row in table.iterrows():
        problem = dm.Problem([load_network("alexnet"), load_network("squeezenet-v1.1")], row["metric"], space, TECH)
        assert row["network"] == "alexnet+squeezenet-v1.1" and bool(row["agree"])
        assert row["objective"] == pytest.approx(dm.solve(problem).objective, rel=1e-12)


def test_a_cell_carries_each_networks_weight_and_caps(tmp_path):
    """A delay cap between alexnet's least delay and its delay at the unconstrained optimum binds: the cell's
    alexnet delay meets it, its energy rises, and the weight scales alexnet's term."""
    space = load_space("deepopt-16mm2", TECH).with_budget(4)
    least = enumerate_space(load_network("alexnet"), space, TECH, "delay", "network", top_k=1).objective
    free = sweep(write_sweep(tmp_path, {"networks": [["alexnet", "squeezenet-v1.1"]], "budgets_mm2": [4],
                                        "metrics": ["energy"]}, "free.yaml"), tmp_path / "free", workers=1,
                 plots=False)
    free_cell = json.loads(cell_files(tmp_path / "free")[0].read_text())["solution"]
    free_delay = free_cell["networks"][0]["delay_cycles"]
    assert least < free_delay
    cap = (least + free_delay) / 2
    study = {"networks": [[{"network": "alexnet", "weight": 2, "max_delay_cycles": cap}, "squeezenet-v1.1"]],
             "budgets_mm2": [4], "metrics": ["energy"]}
    result = sweep(write_sweep(tmp_path, study), tmp_path / "out", workers=1, plots=False)
    row = result.results.iloc[0]
    assert row["network"] == f"alexnet(w=2,D<={cap:g})+squeezenet-v1.1"
    payload = json.loads(cell_files(tmp_path / "out")[0].read_text())["solution"]
    capped, other = payload["networks"]
    assert capped["delay_cycles"] <= cap and capped["caps"]["max_delay_cycles"] == cap
    assert row["objective"] == pytest.approx(2 * capped["energy_j"] + other["energy_j"], rel=1e-12)
    assert capped["energy_j"] + other["energy_j"] > free.results.iloc[0]["objective"]
    assert load_sweep(write_sweep(tmp_path, study)).cells[0].key != load_sweep(
        write_sweep(tmp_path, {**study, "networks": [["alexnet", "squeezenet-v1.1"]]}, "plain.yaml")).cells[0].key


def test_solver_both_records_the_mip_and_the_agreement(tmp_path):
    study = {"networks": ["alexnet"], "budgets_mm2": [4], "metrics": ["delay"], "solvers": ["both"],
             "mip": {"time_limit_s": 300}}
    table = sweep(write_sweep(tmp_path, study), tmp_path / "out", workers=1, plots=False).results
    row = table.iloc[0]
    assert row["status"] == "optimal" and row["mip_status"] == "optimal" and bool(row["agree"])
    assert row["mip_objective"] == pytest.approx(row["objective"], rel=1e-6)
    timings = pd.read_csv(tmp_path / "out" / "timings.csv")
    assert timings["mip_solve_s"].notna().all() and timings["wall_s"].notna().all()


def _as_from_a_terminal() -> None:
    """In the child before it starts: Ctrl-C raises as in a terminal's foreground job, even when pytest runs as a
    background job, whose children inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_cli(study, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "deepopt_mip.scripts.cli", "sweep", str(study), "--out", str(out),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)


def _wait_for_cells(out, count, process, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while len(cell_files(out)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_killed_sweep_resumes_and_loses_nothing(serial_nine, tmp_path):
    reference, _ = serial_nine
    study = write_sweep(tmp_path, NINE)
    process = _run_cli(study, tmp_path / "out", "--workers", "1", "--quiet")
    _wait_for_cells(tmp_path / "out", 1, process)
    process.kill()
    process.wait()
    finished = len(cell_files(tmp_path / "out"))
    assert 1 <= finished < 9 and not (tmp_path / "out" / "results.csv").exists()
    again = sweep(study, tmp_path / "out", workers=1, plots=False)
    assert (again.ran, again.skipped) == (9 - finished, finished)
    assert len(cell_files(tmp_path / "out")) == 9
    for name in ("results.csv", "results.parquet", "penalty.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (reference / name).read_bytes()


def test_ctrl_c_stops_with_one_line_and_resumes(tmp_path):
    study = write_sweep(tmp_path, NINE)
    process = _run_cli(study, tmp_path / "out", "--workers", "2")
    _wait_for_cells(tmp_path / "out", 1, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "deepopt-mip: interrupted"
    leftovers = [p.name for p in (tmp_path / "out" / "cells").iterdir() if not p.name.endswith(".json")]
    assert leftovers == []
    finished = len(cell_files(tmp_path / "out"))
    again = sweep(study, tmp_path / "out", workers=2, plots=False)
    assert again.skipped == finished and again.ran == 9 - finished and len(cell_files(tmp_path / "out")) == 9


@pytest.mark.parametrize("data,message", [
    ({**SMALL, "budget": [4]}, "sweep.yaml: budget: unknown key"),
    ({**SMALL, "metrics": []}, "sweep.yaml: metrics: empty"),
    ({**SMALL, "networks": ["alexnet", "lenet"]}, "sweep.yaml: networks[1]: unknown network 'lenet'"),
    ({**SMALL, "networks": [["alexnet", "alexnet"]]}, "sweep.yaml: networks[0]: a network is named twice"),
    ({**SMALL, "budgets_mm2": [4, -1]}, "sweep.yaml: budgets_mm2[1]: must be a positive number"),
    ({**SMALL, "solvers": ["gurobi"]}, "sweep.yaml: solvers[0]: unknown value 'gurobi'"),
    ({**SMALL, "mip": {"gap": 0.1}}, "sweep.yaml: mip.gap: unknown key"),
    ({**SMALL, "networks": [[{"network": "alexnet", "cap": 1}]]}, "sweep.yaml: networks[0][0].cap: unknown key"),
    ({**SMALL, "networks": [{"network": "alexnet", "weight": -1}]}, "networks[0]: the weight of alexnet must be"),
    ({"networks": ["alexnet"]}, "sweep.yaml: budgets_mm2: missing"),
])
def test_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path, capsys, data, message):
    study = write_sweep(tmp_path, data)
    assert main(["sweep", str(study), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("deepopt-mip: error: ") and str(study.parent) in err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_out_folder_of_another_sweep_or_of_other_files_is_refused(tmp_path, capsys):
    first = write_sweep(tmp_path, {**NINE, "budgets_mm2": [3]}, "first.yaml")
    sweep(first, tmp_path / "out", workers=1, plots=False)
    second = write_sweep(tmp_path, {**NINE, "budgets_mm2": [4]}, "second.yaml")
    assert main(["sweep", str(second), "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    assert "holds the results of another sweep" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["sweep", str(second), "--out", str(tmp_path / "other"), "--workers", "1"]) == 2
    assert "holds no sweep" in capsys.readouterr().err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_unreachable_scheduler_is_one_line_naming_the_address(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(engines, "CONNECT_TIMEOUT_S", 1)
    study = write_sweep(tmp_path, NINE)
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert not (tmp_path / "out").exists()


def test_scheduler_without_dask_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    study = write_sweep(tmp_path, NINE)
    assert main(["sweep", str(study), "--out", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("deepopt-mip: error: --scheduler needs Dask distributed: "
                   "pip install 'deepopt-mip[distributed]'")


def test_cell_keys_depend_on_the_inputs_only(tmp_path):
    a = load_sweep(write_sweep(tmp_path, SMALL, "a.yaml"))
    b = load_sweep(write_sweep(tmp_path, {**SMALL, "name": "renamed", "description": "same cells"}, "b.yaml"))
    assert [c.key for c in a.cells] == [c.key for c in b.cells] and a.sweep_key == b.sweep_key
    assert len({c.key for c in a.cells}) == len(a.cells) == 8
    c = load_sweep(write_sweep(tmp_path, {**SMALL, "budgets_mm2": [0.5, 4.5]}, "c.yaml"))
    assert [x.key for x in c.cells[:2]] == [x.key for x in a.cells[:2]]  # alexnet at 0.5 mm^2 unchanged
    assert c.cells[2].key != a.cells[2].key
    assert [(x.network.name, x.budget_mm2, x.metric) for x in a.cells[:4]] == [
        ("alexnet", 0.5, "energy"), ("alexnet", 0.5, "edp"), ("alexnet", 4.0, "energy"), ("alexnet", 4.0, "edp")]


def test_a_lost_pool_worker_stops_with_one_message_and_the_rerun_finishes(tmp_path):
    import multiprocessing

    from deepopt_mip.solvers.solution import SolverFailure

    study = write_sweep(tmp_path, NINE)

    def kill_a_worker(done, total):
        if done == 1:
            os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)

    with pytest.raises(SolverFailure, match="a worker was lost .* run the same command again to resume"):
        sweep(study, tmp_path / "out", workers=2, plots=False, on_cell=kill_a_worker)
    finished = len(cell_files(tmp_path / "out"))
    assert 1 <= finished < 9
    again = sweep(study, tmp_path / "out", workers=2, plots=False)
    assert (again.ran, again.skipped) == (9 - finished, finished) and len(cell_files(tmp_path / "out")) == 9
