"""data/spaces/README.md: its worked example parses, and the grid its rules describe is the loader's grid."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from deepopt_mip.formulation.spaces import grid_chunks, grid_shape, load_space, parse_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main

README = Path(__file__).parent.parent / "data" / "spaces" / "README.md"


def example_yaml() -> str:
    """The ```yaml block of the README's section 'Example: a custom space'."""
    section = README.read_text().split("## Example: a custom space", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "no yaml block in the example section"
    return match.group(1)


@pytest.fixture(scope="module")
def tech():
    return load_technology()


@pytest.fixture(scope="module")
def space(tech):
    return parse_space(example_yaml(), "data/spaces/README.md example", tech)


def test_the_example_parses(space):
    assert space.name == "edge-4mm2"
    assert space.isram_kb == (8, 16, 24, 32, 40, 48, 56, 64)
    assert space.budget_mm2 == 4 and space.tolerance == 0.05
    assert space.dram_bw_bits_per_cycle == 64


def test_the_readme_rules_brute_forced_give_the_loaders_grid_and_the_readmes_counts(space, tech):
    """Every point the README's four rules admit, by plain loops, against the vectorised grid."""
    limit_um2 = 4e6 * 1.05
    smallest_srams_um2 = (4 + 8 + 4) * 1024 * tech.sram_um2_per_byte
    most_pes = int((limit_um2 - smallest_srams_um2) // tech.pe_um2)
    cols_max = most_pes // 8
    assert (most_pes, cols_max) == (495, 61)  # the README's figures
    admitted = 0
    pairs = set()
    for j, k in itertools.product(range(8, 33, 4), range(8, cols_max + 1, 4)):
        if min(j, k) < 0.5 * max(j, k):
            continue
        for f, i, p in itertools.product(space.fsram_kb, space.isram_kb, space.psram_kb):
            area_um2 = j * k * tech.pe_um2 + (f + i + p) * 1024 * tech.sram_um2_per_byte
            if area_um2 > limit_um2:
                continue
            pairs.add((j, k))
            if f * 8192 >= j * k * 8 and i * 8192 >= j * 8 and p * 8192 >= k * 32:
                admitted += 1
    assert admitted == 1167 and len(pairs) == 22
    assert grid_shape(space) == (22, 4, 8, 3)
    assert sum(int(chunk.valid.sum()) for chunk in grid_chunks(space)) == admitted


def test_the_readmes_allocate_command_gives_the_stated_optimum(tmp_path, tech):
    path = tmp_path / "edge-4mm2.yaml"
    path.write_text(example_yaml())
    assert load_space(path, tech).name == "edge-4mm2"
    out = tmp_path / "solution.json"
    assert main(["allocate", "--space", str(path), "--network", "alexnet", "--json", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    hw = result["hardware"]
    assert (hw["J"], hw["K"], hw["fsram_kb"], hw["isram_kb"], hw["psram_kb"]) == (24, 16, 8, 16, 16)
    assert result["points"] == 1167
    assert 4.0 < result["area_mm2"] <= 4.2 and f"{result['area_mm2']:.3f}" == "4.177"
