"""The Python API: the README's example runs as written, the names the package exports, and the study
file reader."""

import re
import numpy as np
from pathlib import Path

import pytest

import deepopt_mip as dm
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


def test_the_readme_python_example_runs_as_written(capsys):
    namespace = {}
    exec(compile(readme_python_example(), "README.md", "exec"), namespace)
    solution, problem = namespace["solution"], namespace["problem"]
    out = capsys.readouterr().out
    assert solution.hardware.label() in out
    assert solution.status == "optimal"
    assert all(n.delay_cycles <= n.max_delay_cycles for n in solution.networks)
    assert len({b for n in solution.networks for b in n.branches}) <= problem.max_branches
    assert len(namespace["layers"]) == sum(len(n.network.layers) for n in problem.networks)


def test_the_package_exports_its_api_and_version():
    for name in dm.__all__:
        assert hasattr(dm, name), name
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", dm.__version__)


def test_solve_sends_the_papers_problem_to_the_one_network_solvers():
    tech = dm.load_technology()
    space = dm.load_space("deepopt-16mm2", tech).with_budget(4)
    problem = dm.Problem([dm.load_network("alexnet")], "edp", space, tech)
    solution = dm.solve(problem)
    assert solution.worst is None and solution.runners_up  # pruned by bounds: no worst point searched
    assert dm.solve(problem, prune=False).worst is not None
    assert solution.to_dict()["networks"][0]["name"] == "alexnet"
    with pytest.raises(InputError, match="unknown solver"):
        dm.solve(problem, solver="cplex")


STUDY = """
networks:
  - network: alexnet
    weight: 2
    max_delay_cycles: 2.3e6
  - squeezenet
metric: energy
area_mm2: 4
max_branches: 2
fixed: {J: 18, K: 24}
"""


def test_a_study_file_states_the_problem(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY)
    problem = dm.load_study(path)
    assert problem.names == ("alexnet", "squeezenet-v1.1")
    assert problem.networks[0].weight == 2 and problem.networks[0].max_delay_cycles == 2.3e6
    assert problem.max_branches == 2 and problem.space.budget_mm2 == 4
    assert problem.space.rows.min == problem.space.rows.max == 18
    out = tmp_path / "solution.json"
    assert main(["allocate", "--study", str(path), "--json", str(out), "--quiet"]) == 0
    import json
    payload = json.loads(out.read_text())
    assert (payload["hardware"]["J"], payload["hardware"]["K"]) == (18, 24)
    assert payload["objective"] == pytest.approx(dm.solve(problem).objective, rel=1e-12)


@pytest.mark.parametrize("change, key", [
    ("bogus: 1\n", "unknown key 'bogus'"),
    ("networks: []\n", "'networks' must be a non-empty list"),
])
def test_bad_study_files_are_one_line_naming_file_and_key(tmp_path, capsys, change, key):
    path = tmp_path / "study.yaml"
    text = STUDY.replace("networks:\n  - network: alexnet\n    weight: 2\n    max_delay_cycles: 2.3e6\n  - squeezenet\n",
                         "") + change if change.startswith("networks") else STUDY + change
    path.write_text(text)
    assert main(["allocate", "--study", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and key in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--weight", "vgg=2"], "unknown network 'vgg'"),
    (["--max-delay", "alexnet=0"], "positive"),
    (["--max-energy", "alexnet=nan"], "positive"),
    (["--max-branches", "0"], "max branches"),
    (["--weight", "alexnet"], "NET=VALUE"),
    (["--max-delay", "alexnet=1e5", "--metric", "energy"], "least delay any point reaches"),
    (["--study", "x.yaml"], "--study states the whole problem"),
])
def test_bad_study_options_are_one_line_and_exit_2(capsys, args, message):
    assert main(["allocate", "--network", "alexnet", "--area-mm2", "4", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_second_network_is_no_longer_ignored(tmp_path):
    out = tmp_path / "two.json"
    assert main(["allocate", "--network", "alexnet", "--network", "squeezenet", "--area-mm2", "4",
                 "--metric", "energy", "--json", str(out), "--quiet"]) == 0
    import json
    payload = json.loads(out.read_text())
    assert [n["name"] for n in payload["networks"]] == ["alexnet", "squeezenet-v1.1"]
    assert payload["objective"] == pytest.approx(sum(n["energy_j"] for n in payload["networks"]), rel=1e-12)


def test_compare_agrees_on_a_study_with_caps_and_a_branch_limit(capsys):
    assert main(["compare", "--network", "alexnet", "--network", "squeezenet", "--max-delay", "alexnet=2.3e6",
                 "--max-branches", "2", "--metric", "energy", "--area-mm2", "4"]) == 0
    assert "AGREE" in capsys.readouterr().out


def test_pareto_of_two_networks_with_a_cap_is_weighted_totals_within_the_cap(tmp_path):
    import pandas as pd
    import yaml
    assert main(["pareto", "--network", "alexnet", "--network", "squeezenet", "--weight", "alexnet=2",
                 "--max-delay", "alexnet=2.3e6", "--area-mm2", "4", "--points", "6", "--out", str(tmp_path),
                 "--quiet"]) == 0
    frame = pd.read_csv(tmp_path / "frontier.csv")
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert [n["name"] for n in manifest["networks"]] == ["alexnet", "squeezenet-v1.1"]
    assert manifest["networks"][0]["max_delay_cycles"] == 2.3e6
    energy, delay = frame["energy_j"].to_numpy(), frame["delay_cycles"].to_numpy()
    assert len(frame) >= 2 and (np.diff(energy[np.argsort(delay)]) < 0).all(), "not a frontier"
    assert frame["edp_optimal"].sum() == 1


def test_the_budget_sweep_script_writes_one_row_per_budget_and_network(tmp_path):
    import pandas as pd

    from deepopt_mip.scripts.study_budget_sweep import main as sweep
    assert sweep(["--out", str(tmp_path), "--budgets", "1,4", "--networks", "alexnet=2.3e6,squeezenet-v1.1=1.5e6"]) == 0
    frame = pd.read_csv(tmp_path / "sweep.csv")
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert frame.loc[frame["budget_mm2"] == 1, "status"].str.startswith("infeasible").all()
    solved = frame[frame["budget_mm2"] == 4]
    assert list(solved["network"]) == ["alexnet", "squeezenet-v1.1"]
    assert (solved["delay_cycles"] <= solved["max_delay_cycles"]).all()
    assert solved["total_energy_j"].iloc[0] == pytest.approx(solved["energy_j"].sum(), rel=1e-12)
