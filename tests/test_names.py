"""Shortened layer names for tables and plots (scripts/names.py), and the tables that use them."""

from __future__ import annotations

import json
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepopt_mip.scripts.cli import main
from deepopt_mip.scripts.names import NAME_WIDTH, compact_path, short_names

MOBILENET_LIKE = [f"/features/features.{i}/conv/conv.{j}/conv.{j}.0/Conv" for i in range(18) for j in range(3)]
HEADER = "name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch\n"


def test_short_names_are_unchanged():
    names = ["conv1", "inception_3a/3x3_reduce", "x" * NAME_WIDTH]
    assert short_names(names) == names


def test_path_components_repeated_by_the_next_are_dropped():
    assert compact_path("/features/features.1/conv/conv.0/conv.0.0/Conv") == "features.1/conv.0.0/Conv"
    assert compact_path("/classifier/classifier.1/Gemm") == "classifier.1/Gemm"
    assert compact_path("conv1") == "conv1"
    assert short_names(["/features/features.1/conv/conv.0/conv.0.0/Conv"]) == ["features.1/conv.0.0/Conv"]


def test_onnx_style_names_stay_unique_and_keep_their_distinctive_parts():
    short = short_names(MOBILENET_LIKE)
    assert len(set(short)) == len(short)
    assert all(len(s) <= NAME_WIDTH for s in short)
    assert short[3 * 17 + 2] == "features.17/conv.2.0/Conv"


def test_names_differing_only_in_the_middle_are_cut_where_they_differ():
    a, b = "a" * 20 + "X" + "b" * 20, "a" * 20 + "Y" + "b" * 20
    short = short_names([a, b], 28)
    assert len(set(short)) == 2 and all(len(s) == 28 for s in short)
    assert "X" in short[0] and "Y" in short[1]


def test_names_differing_beyond_any_cut_are_numbered():
    a, b = "q" * 40 + "1" + "z" * 40, "q" * 40 + "2" + "z" * 40
    short = short_names([a, b], 20)
    assert len(set(short)) == 2 and all(len(s) <= 20 for s in short)
    assert "~1" in short[0] and "~2" in short[1]


def test_a_long_name_does_not_take_a_short_names_form():
    names = ["features.1/conv.0.0/Conv", "/features/features.1/conv/conv.0/conv.0.0/Conv"]
    short = short_names(names)
    assert short[0] == names[0] and short[1] != names[0] and len(short[1]) <= NAME_WIDTH


def test_too_narrow_a_width_is_refused():
    with pytest.raises(ValueError):
        short_names(["abc"], 3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab/._0123456789Conv", min_size=1, max_size=70), min_size=1, max_size=40,
                unique=True),
       st.integers(min_value=8, max_value=40))
def test_bound_uniqueness_and_short_names_unchanged(names, width):
    short = short_names(names, width)
    assert len(short) == len(names)
    assert all(len(s) <= width for s in short)
    assert len(set(short)) == len(short)
    assert all(s == n for s, n in zip(short, names) if len(n) <= width)


def long_named_network(path):
    """A CSV network whose layers carry ONNX-style module-path names (one FC layer)."""
    rows = [f"{name},conv,14,14,1,16,3,3,16,14,14,1,1,1\n" for name in MOBILENET_LIKE[:6]]
    rows.append("/classifier/classifier.1/Gemm,fc,1,1,0,3136,1,1,10,1,1,1,1,4\n")
    path.write_text(HEADER + "".join(rows))
    return path


def layer_rows(text: str, header_start: str, count: int) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    return lines[start:start + 1 + count]


def test_evaluate_table_stays_aligned_and_json_keeps_full_names(tmp_path, capsys):
    network = long_named_network(tmp_path / "long.csv")
    out_json = tmp_path / "r.json"
    assert main(["evaluate", "--network", str(network), "--array", "8x8", "--sram", "4,4,4",
                 "--json", str(out_json)]) == 0
    rows = layer_rows(capsys.readouterr().out, "layer ", 7)
    assert rows[6].startswith("features.1/conv.2.0/Conv ") and rows[7].startswith("classifier.1/Gemm ")
    # the branch column starts in one place and the right-aligned numbers end in one column
    assert len({len(row) for row in rows}) == 1
    assert all(row[NAME_WIDTH] == " " and row[NAME_WIDTH + 1] != " " for row in rows)
    names = [layer["name"] for layer in json.loads(out_json.read_text())["layers"]]
    assert names[0] == MOBILENET_LIKE[0] and names[-1] == "/classifier/classifier.1/Gemm"


SMALL_SPACE = ("name: small\nrows: {min: 8, max: 16, step: 8}\ncols: {min: 8, max: 16, step: 8}\n"
               "aspect_min_ratio: 0\nsram_kb: {filter: [4, 8], ifmap: [4, 8], psum: [4]}\n"
               "bits: {filter: 8, ifmap: 8, psum: 32}\ndram: {bandwidth_bits_per_cycle: 128, block_bits: 128}\n"
               "area: {budget_mm2: 16}\n")


def test_allocate_table_stays_aligned(tmp_path, capsys):
    network = long_named_network(tmp_path / "long.csv")
    space = tmp_path / "small.yaml"
    space.write_text(SMALL_SPACE)
    out_json = tmp_path / "a.json"
    assert main(["allocate", "--network", str(network), "--space", str(space), "--metric", "energy",
                 "--json", str(out_json)]) == 0
    rows = layer_rows(capsys.readouterr().out, "layer ", 7)
    assert rows[-1].startswith("classifier.1/Gemm ")
    assert len({len(row) for row in rows}) == 1  # right-aligned numbers end in one column
    assert all(row[NAME_WIDTH] == " " for row in rows)
    assert json.loads(out_json.read_text())["layers"][0]["name"] == MOBILENET_LIKE[0]


def test_networks_show_shortens_long_names(tmp_path, capsys):
    network = long_named_network(tmp_path / "long.csv")
    assert main(["networks", "--show", str(network)]) == 0
    rows = layer_rows(capsys.readouterr().out, "layer ", 7)
    assert rows[6].startswith("features.1/conv.2.0/Conv ") and rows[7].startswith("classifier.1/Gemm ")
    assert len({len(row) for row in rows}) == 1
