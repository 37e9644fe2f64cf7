"""The technology file and its loader."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
import yaml

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.technology import Technology, load_technology

# Source: shared reference deepopt-golden/configs_status.csv (the reference's
# Tech_param per configuration, computed by its LOS_Main.m defaults).
# c1: 8-bit filter/ifmap, 32-bit psum; SRAM filter/ifmap/psum 16/32/8 kB.
C1_ADD_J_PER_BIT = 5.5727023319615922e-15
C1_MUL_J = 3.566529492455419e-13  # 8-bit multiply
C1_RF_J_PER_BIT = 9.5850480109739392e-14
C1_DRAM_J_PER_BIT = 1.9170096021947878e-11
C1_SRAM_J_PER_BIT = {16: 2.066767973637298e-13, 32: 2.8141398495490883e-13, 8: 1.6873925277824625e-13}
# c2: 16-bit filter/ifmap, so Energy_Mul_element is the 16-bit multiply.
C2_MUL16_J = 1.4266117969821676e-12

# Source: shared reference deepopt-golden/sram_energy_table.csv (the full CACTI
# table, 1 kB steps), a few sizes that are not points of the built-in file.
FULL_TABLE_J_PER_BIT = {
    5: 1.276765297152465e-13,
    9: 1.4933533897646747e-13,  # just after the 8 -> 9 kB fall of the CACTI table
    20: 2.38864724412388e-13,
    100: 5.751028806584363e-13,
    200: 9.836445682000764e-13,
    298: 1.0764172606192698e-12,  # the worst point: just after the 297 -> 298 kB fall
    450: 1.4816764392398861e-12,
}
# Worst relative error of the built-in file's interpolation against the full
# table over 4..512 kB, as measured and stated in the YAML file: 15.57 %.
MEASURED_WORST_REL_ERROR = 0.1558


@pytest.fixture(scope="module")
def tech() -> Technology:
    return load_technology()


@pytest.fixture(scope="module")
def builtin_text() -> str:
    return (resources.files("deepopt_mip.data").joinpath("technology")
            .joinpath("deepopt-65nm.yaml").read_text(encoding="utf-8"))


def test_builtin_reproduces_reference_energies(tech):
    assert tech.name == "deepopt-65nm"
    assert tech.add_j_per_bit == pytest.approx(C1_ADD_J_PER_BIT, rel=1e-15)
    assert tech.mul8_j == pytest.approx(C1_MUL_J, rel=1e-15)
    assert tech.mul_j(8) == pytest.approx(C1_MUL_J, rel=1e-15)
    assert tech.mul_j(16) == pytest.approx(C2_MUL16_J, rel=1e-15)
    assert tech.rf_j_per_bit == pytest.approx(C1_RF_J_PER_BIT, rel=1e-15)
    assert tech.dram_j_per_bit == pytest.approx(C1_DRAM_J_PER_BIT, rel=1e-15)
    sizes = list(C1_SRAM_J_PER_BIT)
    got = tech.sram_energy_j_per_bit(np.array(sizes))
    np.testing.assert_array_equal(got, [C1_SRAM_J_PER_BIT[s] for s in sizes])


def test_builtin_areas(tech):
    # OHA_Main.m: Area_SRAM_per_byte and Area_per_PE = 0.1 * (2 kB SRAM area / 0.9)
    assert tech.sram_um2_per_byte == 32.54567020263672
    assert tech.pe_um2 == pytest.approx(0.1 * (2 * 1024 * 32.54567020263672 / 0.9), rel=1e-15)


def test_builtin_provenance(tech, builtin_text):
    assert tech.source_path == "deepopt_mip.data:technology/deepopt-65nm.yaml"
    assert tech.sha256 == hashlib.sha256(builtin_text.encode("utf-8")).hexdigest()
    assert load_technology("deepopt-65nm") == tech


def test_table_shape(tech):
    expected = [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
    assert tech.sram_sizes_kb == tuple(float(s) for s in expected)
    assert len(tech.sram_j_per_bit) == len(expected)
    assert tech.sram_range_kb == (4.0, 512.0)


def test_interpolation_exact_at_points_and_monotone(tech):
    at_points = tech.sram_energy_j_per_bit(np.array(tech.sram_sizes_kb))
    np.testing.assert_array_equal(at_points, tech.sram_j_per_bit)
    dense = tech.sram_energy_j_per_bit(np.linspace(4, 512, 2033))
    assert np.all(np.diff(dense) >= 0)
    # midway between two points: the mean of the two
    mid = tech.sram_energy_j_per_bit(20.0)
    assert mid == pytest.approx((tech.sram_j_per_bit[4] + tech.sram_j_per_bit[5]) / 2, rel=1e-12)


def test_interpolation_within_measured_error(tech):
    sizes = np.array(list(FULL_TABLE_J_PER_BIT))
    full = np.array(list(FULL_TABLE_J_PER_BIT.values()))
    rel = np.abs(tech.sram_energy_j_per_bit(sizes) - full) / full
    assert rel.max() <= MEASURED_WORST_REL_ERROR
    assert rel[list(FULL_TABLE_J_PER_BIT).index(298)] > 0.155  # the stated worst case is real
    assert rel[list(FULL_TABLE_J_PER_BIT).index(200)] < 0.001


def test_interpolation_broadcasts(tech):
    sizes = np.full((2, 1, 3), 64.0)
    assert tech.sram_energy_j_per_bit(sizes).shape == (2, 1, 3)
    np.testing.assert_array_equal(tech.mul_j(np.array([8, 16])), [tech.mul8_j, 4 * tech.mul8_j])


@pytest.mark.parametrize("size", [3.99, 513, np.nan, -1])
def test_size_outside_table(tech, size):
    with pytest.raises(InputError) as info:
        tech.sram_energy_j_per_bit(np.array([16, size]))
    message = str(info.value)
    assert "4..512 kB" in message and "\n" not in message
    if np.isfinite(size):
        assert f"{size:g} kB" in message


def test_user_file(tmp_path, builtin_text, tech):
    path = tmp_path / "tech.yaml"
    path.write_text(builtin_text)
    mine = load_technology(path)
    assert mine.source_path == str(path)
    assert mine.sha256 == tech.sha256
    assert mine == tech.__class__(**{**tech.__dict__, "source_path": str(path)})
    assert load_technology(str(path)).sram_j_per_bit == tech.sram_j_per_bit


def test_exponent_without_dot_is_a_number(tmp_path, builtin_text):
    path = tmp_path / "tech.yaml"
    path.write_text(builtin_text.replace("dram_j_per_bit: 1.9170096021947878e-11", "dram_j_per_bit: 2e-11"))
    assert load_technology(path).dram_j_per_bit == 2e-11


def _doc(builtin_text: str) -> dict:
    return yaml.safe_load(builtin_text)


def _set(key, value):
    def edit(doc):
        doc[key] = value
        return doc
    return edit


def _drop(key):
    def edit(doc):
        del doc[key]
        return doc
    return edit


@pytest.mark.parametrize("edit, expected", [
    (_set("colour", "blue"), ["unknown key", "'colour'"]),
    (_drop("pe_um2"), ["missing key", "'pe_um2'"]),
    (_set("add_j_per_bit", -1e-15), ["'add_j_per_bit'", "positive"]),
    (_set("mul8_j", 0), ["'mul8_j'", "positive"]),
    (_set("rf_j_per_bit", "cheap"), ["'rf_j_per_bit'", "number"]),
    (_set("dram_j_per_bit", True), ["'dram_j_per_bit'", "number"]),
    (_set("sram_um2_per_byte", [1, 2]), ["'sram_um2_per_byte'", "number"]),
    (_set("name", ""), ["'name'"]),
    (lambda d: {**d, "sram_sizes_kb": [4, 8, 8], "sram_j_per_bit": [1e-13, 2e-13, 3e-13]},
     ["'sram_sizes_kb'", "strictly increasing", "item [2]"]),
    (lambda d: {**d, "sram_sizes_kb": [4, 16, 8], "sram_j_per_bit": [1e-13, 2e-13, 3e-13]},
     ["'sram_sizes_kb'", "strictly increasing"]),
    (_set("sram_j_per_bit", [1e-13, 2e-13]), ["'sram_j_per_bit'", "2 values", "15 sizes"]),
    (_set("sram_sizes_kb", [4, -8]), ["'sram_sizes_kb'", "item [1]", "positive"]),
    (_set("sram_sizes_kb", 16), ["'sram_sizes_kb'", "list"]),
    (_set("sram_sizes_kb", []), ["'sram_sizes_kb'", "list"]),
    (lambda d: {**d, "sram_sizes_kb": [4], "sram_j_per_bit": [1e-13]}, ["'sram_sizes_kb'", "two sizes"]),
    (lambda d: [d], ["mapping"]),
])
def test_bad_yaml(tmp_path, builtin_text, edit, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(edit(_doc(builtin_text))))
    with pytest.raises(InputError) as info:
        load_technology(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("text, expected", [
    ("", ["empty"]),
    ("name: a\nname: b\n", ["'name' appears twice", "line 2"]),
    ("name: [unclosed\n", ["not valid YAML", "line"]),
])
def test_bad_yaml_text(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_technology(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_technology(tmp_path / "none.yaml")


def test_direct_construction_is_checked(tech):
    fields = {**tech.__dict__}
    fields["sram_j_per_bit"] = tech.sram_j_per_bit[:-1]
    with pytest.raises(InputError, match="sram_j_per_bit"):
        Technology(**fields)


def test_a_table_that_falls_is_accepted_and_interpolated_as_given(tmp_path, builtin_text):
    """CACTI's per-bit energy is not monotone in the size: a table that falls is valid and priced as written."""
    path = tmp_path / "falls.yaml"
    path.write_text(yaml.safe_dump({**_doc(builtin_text), "sram_sizes_kb": [4, 8, 9, 512],
                                    "sram_j_per_bit": [1e-13, 2e-13, 1.5e-13, 9e-13]}))
    falls = load_technology(path)
    assert float(falls.sram_energy_j_per_bit(9)) == 1.5e-13
    assert float(falls.sram_energy_j_per_bit(8.5)) == pytest.approx(1.75e-13, rel=1e-15)
