"""The command line: outputs, JSON contract, and one-line errors for bad input."""

import json
import shutil
import subprocess

import pandas as pd
import pytest
from reference_cases import load_sample

from deepopt_mip.scripts.cli import main

BRANCHES = ["XYZiZo", "XZiYZo", "XYZoZi", "XZoYZi", "ZiXYZo"]
TABLE3 = ["evaluate", "--network", "googlenet-v1", "--array", "32x64", "--sram", "16,32,8", "--bits", "8,8,32",
          "--aggregate", "layer-sum"]


def test_networks_lists_the_builtins(capsys):
    assert main(["networks"]) == 0
    out = capsys.readouterr().out
    for name in ("alexnet", "vgg-16", "squeezenet-v1.1", "googlenet-v1", "resnet-50"):
        assert name in out


def test_networks_show_prints_layers(capsys):
    assert main(["networks", "--show", "alexnet"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "fc8" in out


def test_evaluate_table3_json(tmp_path, capsys):
    """Paper Table 3 configuration; delay penalties equal the reference's (FC MAC energy does not enter delay).

    Reference values: shared reference los_summary.csv, GoogleNet-v1 on c1, pm_id 5 (delay).
    """
    out_json = tmp_path / "t3.json"
    assert main(TABLE3 + ["--metric", "delay", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    assert "LOS" in text and "penalty" in text
    result = json.loads(out_json.read_text())
    assert result["metric"] == "delay" and result["aggregate"] == "layer-sum"
    assert set(result["fixed"]) == set(BRANCHES)
    reference_delay_penalty_pct = {"XYZiZo": 19.395254099988708, "XZiYZo": 33.748427574979843,
                                   "XYZoZi": 27.183160183444489, "XZoYZi": 66.573484894427054}
    for b, pct in reference_delay_penalty_pct.items():
        assert result["fixed"][b]["penalty_pct"] == pytest.approx(pct, rel=1e-9)
    assert result["fixed"]["ZiXYZo"]["penalty_pct"] is None  # infinite: ZiXYZo delay-infeasible somewhere
    assert len(result["layers"]) == 58
    layer = result["layers"][0]
    assert layer["best_branch"] in BRANCHES
    assert set(layer["branches"]) == set(BRANCHES)
    assert {"energy_j", "delay_cycles", "feasible"} <= set(layer["branches"]["XYZiZo"])
    assert result["los"]["total"] <= min(v["total"] for v in result["fixed"].values() if v["total"] is not None)


def test_evaluate_energy_penalties_near_the_paper(tmp_path):
    """Paper Table 3 energy column: 11.7, 12.5, 15.4, 32.2, 613.7 %. Ours counts the batched FC layer's
    MAC energy per image (the reference counts 16 images), which moves the figures slightly."""
    out_json = tmp_path / "e.json"
    assert main(TABLE3 + ["--metric", "energy", "--json", str(out_json), "--quiet"]) == 0
    fixed = json.loads(out_json.read_text())["fixed"]
    paper = {"XYZiZo": 11.7, "XZiYZo": 12.5, "XYZoZi": 15.4, "XZoYZi": 32.2, "ZiXYZo": 613.7}
    for b, pct in paper.items():
        assert fixed[b]["penalty_pct"] == pytest.approx(pct, rel=0.01)


def test_evaluate_csv_has_every_layer_and_branch(tmp_path):
    out_csv = tmp_path / "t.csv"
    assert main(TABLE3 + ["--csv", str(out_csv), "--quiet"]) == 0
    frame = pd.read_csv(out_csv)
    assert len(frame) == 58 * 5
    assert frame.groupby("layer").los_choice.sum().eq(1).all()


def test_same_inputs_give_identical_json(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    main(TABLE3 + ["--json", str(a), "--quiet"])
    main(TABLE3 + ["--json", str(b), "--quiet"])
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("args, phrase", [
    (["evaluate", "--network", "lenet"], "unknown network"),
    (["evaluate", "--array", "0x64"], "--array"),
    (["evaluate", "--array", "32by64"], "--array"),
    (["evaluate", "--sram", "16,32"], "--sram"),
    (["evaluate", "--sram", "16,-32,8"], "--sram"),
    (["evaluate", "--array", "256x256"], "smaller than the array's filter registers"),
    (["evaluate", "--metric", "speed"], "unknown metric"),
    (["evaluate", "--aggregate", "sum"], "unknown aggregation"),
    (["evaluate", "--sram", "16,32,1024"], "1024"),
    (["evaluate", "--tech", "no-such-file.yaml"], "no-such-file.yaml"),
    (["validate", "--reference", "no-such-dir"], "branches.csv"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, phrase, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and phrase in err and "Traceback" not in err


def test_malformed_network_file(tmp_path, capsys):
    bad = tmp_path / "net.csv"
    bad.write_text("name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch\n"
                   "c1,conv,32,32,0,3,3,3,8,31,30,1,1,1\n")
    assert main(["evaluate", "--network", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "net.csv" in err and "ofmap_h" in err


def test_validate_on_a_reference_sample(tmp_path, capsys):
    sample = load_sample()
    (tmp_path / "ref").mkdir()
    sample.to_csv(tmp_path / "ref" / "branches.csv", index=False)
    out_json = tmp_path / "v.json"
    assert main(["validate", "--reference", str(tmp_path / "ref"), "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    keys = {"energy_median_rel_err", "energy_max_rel_err", "delay_median_rel_err", "delay_max_rel_err",
            "los_agree_energy", "los_agree_delay", "cases", "infeasible_mismatches"}
    assert keys <= set(result["overall"]) and set(result["networks"]) == {
        "alexnet", "vgg-16", "squeezenet-v1.1", "googlenet-v1", "resnet-50"}
    assert result["overall"]["energy_max_rel_err"] < 1e-9 and result["overall"]["delay_max_rel_err"] < 1e-9
    assert result["overall"]["infeasible_mismatches"] == 0
    assert result["overall"]["cases"] == int((sample.fc_flag == 0).sum())


def test_validate_reports_a_disagreement(tmp_path):
    """Corrupt one reference energy by 10 %: validate reports it rather than failing."""
    sample = load_sample()
    sample = sample[(sample.network == 3)].copy()
    sample.loc[sample.index[0], "energy_joule"] *= 1.1
    (tmp_path / "ref").mkdir()
    sample.to_csv(tmp_path / "ref" / "branches.csv", index=False)
    out_json = tmp_path / "v.json"
    assert main(["validate", "--reference", str(tmp_path / "ref"), "--json", str(out_json)]) == 0
    stats = json.loads(out_json.read_text())["overall"]
    assert stats["energy_max_rel_err"] == pytest.approx(1 - 1 / 1.1, rel=1e-9)


def test_console_script_error_has_no_traceback():
    exe = shutil.which("deepopt-mip")
    if exe is None:
        pytest.skip("console script not on PATH")
    proc = subprocess.run([exe, "evaluate", "--network", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "unknown network" in proc.stderr
