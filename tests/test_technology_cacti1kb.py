"""The built-in technology with the reference's full 1 kB SRAM energy table, and the note on interpolated sizes."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml

from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.hardware import HardwarePoint, array_hardware, registers_fit
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import (BUILTIN_TECHNOLOGIES, FINER_TECHNOLOGY, interpolation_note,
                                                load_technology)
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.evaluation import evaluate_point
from deepopt_mip.solvers.mip import mip_allocate
from deepopt_mip.solvers.schedule import best_schedule

FINE = "deepopt-65nm-cacti1kb"
DATA = Path(__file__).parent / "data"


def reference_table() -> dict[int, float]:
    """The reference's per-bit SRAM energy at every whole kB (tests/data, copied from the reference's output)."""
    with open(DATA / "reference_sram_energy_table.csv", newline="") as handle:
        rows = [r for r in csv.reader(handle) if r and not r[0].startswith("#")]
    assert rows[0] == ["sram_kB", "E_EySRAM_perbit_joule"]
    return {int(size): float(energy) for size, energy in rows[1:]}


@pytest.fixture(scope="module")
def fine():
    return load_technology(FINE)


@pytest.fixture(scope="module")
def default():
    return load_technology()


def test_builtin_and_listed(fine):
    assert FINE in BUILTIN_TECHNOLOGIES and FINER_TECHNOLOGY["deepopt-65nm"] == FINE
    assert fine.name == FINE and fine.source_path == f"deepopt_mip.data:technology/{FINE}.yaml"
    assert load_technology(f" {FINE} ") == fine


def test_every_whole_kb_is_priced_exactly_from_the_reference_table(fine):
    table = reference_table()
    assert sorted(table) == list(range(4, 513))
    sizes = np.array(sorted(table), dtype=float)
    want = np.array([table[int(s)] for s in sizes])
    np.testing.assert_array_equal(fine.sram_energy_j_per_bit(sizes), want)
    for size in (9, 23, 95, 298):  # scalar lookups too, just after each large fall of the table
        assert float(fine.sram_energy_j_per_bit(size)) == table[size]
    assert fine.interpolated_sizes_kb(sizes) == ()


def test_the_table_is_not_monotone_and_is_accepted_as_it_is(fine):
    table = reference_table()
    falls = [s for s in range(5, 513) if table[s] < table[s - 1]]
    assert {9, 23, 95, 298} <= set(falls)
    assert fine.sram_energy_j_per_bit(298) < fine.sram_energy_j_per_bit(297)


def test_other_numbers_equal_the_default_and_tables_agree_at_its_points(fine, default):
    for field in ("add_j_per_bit", "mul8_j", "rf_j_per_bit", "dram_j_per_bit", "sram_um2_per_byte", "pe_um2"):
        assert getattr(fine, field) == getattr(default, field), field
    np.testing.assert_array_equal(fine.sram_energy_j_per_bit(np.array(default.sram_sizes_kb)),
                                  default.sram_j_per_bit)


def test_same_results_as_the_default_on_power_of_two_hardware(fine, default):
    network = load_network("squeezenet-v1.1")
    hw = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=32, psram_kb=8)
    a = evaluate_point(network, hw, fine, "edp", "network")
    b = evaluate_point(network, hw, default, "edp", "network")
    np.testing.assert_array_equal(a.tables.energy_j, b.tables.energy_j)
    assert a.los.objective == b.los.objective


@pytest.mark.parametrize("size_kb", [9, 23, 95, 298])
def test_layer_energy_uses_the_table_value_at_the_size(fine, default, size_kb):
    """A technology whose whole table is the reference's value at ``size_kb`` prices that size the same."""
    value = reference_table()[size_kb]
    flat = dataclasses.replace(default, name="flat", sram_sizes_kb=(4, 512), sram_j_per_bit=(value, value))
    network = load_network("alexnet")
    hw = HardwarePoint(J=16, K=16, fsram_kb=size_kb, isram_kb=size_kb, psram_kb=size_kb)
    got = evaluate_point(network, hw, fine, "energy", "network").tables.energy_j
    want = evaluate_point(network, hw, flat, "energy", "network").tables.energy_j
    np.testing.assert_array_equal(got, want)
    interpolated = evaluate_point(network, hw, default, "energy", "network").tables.energy_j
    finite = np.isfinite(got)
    assert finite.any() and np.all(got[finite] != interpolated[finite])  # the default prices these sizes otherwise


def write_space(path: Path, sizes: list[int], budget_mm2: float = 5.0) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "falls", "rows": {"min": 16, "max": 32, "step": 8}, "cols": {"min": 16, "max": 32, "step": 8},
        "aspect_min_ratio": 0.5, "sram_kb": {"filter": sizes, "ifmap": sizes, "psum": sizes},
        "bits": {"filter": 8, "ifmap": 8, "psum": 32}, "dram": {"bandwidth_bits_per_cycle": 128, "block_bits": 128},
        "area": {"budget_mm2": budget_mm2, "tolerance": 0.0}}))
    return path


def brute_force_optima(network, space, tech, metrics):
    """Per metric, the least LOS objective over every hardware point of the space: the points listed by
    hand, the cost model on all of them at once, then each point's best schedule on its own."""
    points = [(j, k, f, i, p)
              for j in range(space.rows.min, space.rows.max + 1, space.rows.step)
              for k in range(space.cols.min, space.cols.max + 1, space.cols.step)
              if min(j, k) >= space.aspect_min_ratio * max(j, k)
              for f in space.fsram_kb for i in space.isram_kb for p in space.psram_kb
              if space.area_um2(j, k, f, i, p) <= space.limit_um2]
    hw = array_hardware(*(np.array(axis, dtype=float) for axis in zip(*points)))
    points = [pt for pt, fits in zip(points, registers_fit(hw)) if fits]
    hw = array_hardware(*(np.array(axis, dtype=float) for axis in zip(*points)))
    tables = cost_tables(network.layers, hw, tech)
    return {metric: min(best_schedule(tables.energy_j[..., n], tables.delay_cycles[..., n], metric,
                                      "network").objective for n in range(len(points))) for metric in metrics}


def test_solvers_are_exact_where_a_larger_sram_is_cheaper_per_bit(tmp_path, fine):
    """Sizes on both sides of two falls of the table: the enumeration, the MIP and a brute force agree."""
    space = load_space(write_space(tmp_path / "falls.yaml", [8, 9, 22, 23]), fine)
    network = load_network("alexnet")
    metrics = ("energy", "edp")
    want = brute_force_optima(network, space, fine, metrics)
    for metric in metrics:
        enum = enumerate_space(network, space, fine, metric, "network", top_k=1)
        mip = mip_allocate(network, space, fine, metric, "network")
        assert enum.objective == pytest.approx(want[metric], rel=1e-12)
        assert mip.objective == pytest.approx(want[metric], rel=1e-9) and mip.status == "optimal"
        hw = enum.hardware
        assert {9, 23} & {hw.fsram_kb, hw.isram_kb, hw.psram_kb}  # the optimum uses a size just after a fall


def test_note_names_the_interpolated_sizes_and_the_finer_technology(default, fine):
    note = interpolation_note(default, (4, 9, 16, 20, 9), "space s")
    assert note is not None and "\n" not in note
    assert "9, 20 kB of space s" in note and "deepopt-65nm's" in note and f"--tech {FINE}" in note
    assert interpolation_note(default, (4, 8, 12, 512), "space s") is None
    assert interpolation_note(fine, (4, 9, 20, 511), "space s") is None
    assert "--tech" not in interpolation_note(fine, (9.5,), "space s")


def test_allocate_prints_the_note_once_on_stderr(tmp_path, capsys):
    space = str(write_space(tmp_path / "falls.yaml", [8, 9, 16]))
    args = ["allocate", "--network", "alexnet", "--space", space, "--metric", "energy", "--top-k", "0"]
    assert main(args) == 0
    err = capsys.readouterr().err.splitlines()
    notes = [line for line in err if line.startswith("deepopt-mip: note:")]
    assert len(notes) == 1 and "SRAM size 9 kB of space falls" in notes[0] and f"--tech {FINE}" in notes[0]
    assert main([*args, "--tech", FINE]) == 0
    assert "note" not in capsys.readouterr().err
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_no_note_on_the_builtin_space(capsys):
    assert main(["allocate", "--network", "alexnet", "--area-mm2", "2", "--top-k", "0", "--quiet"]) == 0
    assert main(["allocate", "--network", "alexnet", "--area-mm2", "2", "--top-k", "0"]) == 0
    assert "note" not in capsys.readouterr().err


def test_tech_help_lists_the_builtin_technologies(capsys):
    with pytest.raises(SystemExit):
        main(["allocate", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse may wrap a name at its hyphens
    for name in BUILTIN_TECHNOLOGIES:
        assert name in text
