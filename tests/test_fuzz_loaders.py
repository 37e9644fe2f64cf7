"""Inputs that cannot break it: malformed and random files fed to every loader.

Property, for the network CSV, technology YAML, space YAML, ONNX and the
validate command's branches.csv: the loader returns a valid object or raises
:class:`InputError` whose message is one line and names the file. Any other
exception fails the test.

Examples are bounded and derandomised so the suite stays fast and repeatable;
set DEEPOPT_FUZZ_EXAMPLES=N to run N random examples per test instead.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.networks import NETWORK_COLUMNS, Network, load_network, write_network_csv
from deepopt_mip.formulation.spaces import HardwareSpace, load_space, parse_space
from deepopt_mip.formulation.technology import Technology, load_technology
from deepopt_mip.scripts.validate_cmd import REQUIRED_COLUMNS, compare, read_reference

_DEEP = int(os.environ.get("DEEPOPT_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int):
    """Bounded, derandomised settings (or DEEPOPT_FUZZ_EXAMPLES random examples)."""
    return settings(max_examples=_DEEP or examples, deadline=None, derandomize=not _DEEP,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def check(load, label: str):
    """Run ``load()``: a result, or an InputError of one line naming ``label``; anything else propagates."""
    try:
        return load()
    except InputError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1, f"message is not one line: {message!r}"
        assert label in message, f"message does not name {label!r}: {message!r}"
        return None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def data_text(package_path: str) -> str:
    folder, name = package_path.split("/")
    return resources.files("deepopt_mip.data").joinpath(folder).joinpath(name).read_text(encoding="utf-8")


# ---- generic text mutations -----------------------------------------------------------------------

ODD_TEXT = st.sampled_from([
    "", " ", ",", ",,", '"', '""', "#", "\n", "\r\n", "\r", "\t", "\x00", "\x85", "\u2028", "\ufeff", "-", "0", "-1",
    "1e400", "nan", "inf", "-inf", "1e-400", "99999999999999999999999999999999", "0.5", "2.5", "1_0", "0x1f",
    "é", "漢", "conv", "fc", "null", "~", "[", "]", "{", "}", ":", "- ", "&a", "*a", "!!python/object:os.system",
    "!!binary", "? ", "---", "...", "%YAML 1.1", "<<: *a", "yes", "no", ".inf", ".nan",
])


@st.composite
def mutated(draw, text: str) -> str:
    """``text`` with a few random edits: deletions, insertions, replacements, duplicated or dropped lines."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line", "truncate"]))
        n = len(text)
        if kind == "truncate":
            text = text[: draw(st.integers(0, n))]
            continue
        if kind in ("dup_line", "drop_line"):
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines = lines[:i] + ([lines[i], lines[i]] if kind == "dup_line" else []) + lines[i + 1:]
                text = "".join(lines)
            continue
        at = draw(st.integers(0, n))
        end = min(n, at + draw(st.integers(0, 12)))
        piece = draw(st.one_of(ODD_TEXT, st.text(max_size=6)))
        if kind == "delete":
            text = text[:at] + text[end:]
        elif kind == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[end:]
    return text


# ---- network CSV --------------------------------------------------------------------------------

CELL = st.one_of(st.integers(-3, 300).map(str), ODD_TEXT, st.text(max_size=6),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def layer_row(draw, corrupt: bool) -> dict:
    """A consistent layer as the 14 cells of a row; with ``corrupt``, up to two cells replaced by odd text."""
    kind = draw(st.sampled_from(["conv", "conv", "fc"]))
    groups = draw(st.sampled_from([1, 1, 2, 4]))
    channels = groups * draw(st.integers(1, 64))
    filters = groups * draw(st.integers(1, 64))
    if kind == "fc":
        h = w = r = s = 1
        pad, stride = 0, 1
    else:
        h, w = draw(st.integers(1, 64)), draw(st.integers(1, 64))
        pad = draw(st.sampled_from([0, 0.5, 1, 1.5, 2, 3]))
        r = draw(st.integers(1, max(1, min(11, int(h + 2 * pad)))))
        s = draw(st.integers(1, max(1, min(11, int(w + 2 * pad)))))
        stride = draw(st.integers(1, 4))
    e = math.floor((h + 2 * pad - r) / stride) + 1
    g = math.floor((w + 2 * pad - s) / stride) + 1
    name = draw(st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(["#x", " #y", '"q"', "a,b", "é 漢"])))
    row = dict(name=name, kind=kind, ifmap_h=h, ifmap_w=w, pad=pad,
               channels=channels, filter_h=r, filter_w=s, filters=filters, ofmap_h=e, ofmap_w=g, stride=stride,
               groups=groups, batch=draw(st.integers(1, 32)))
    cells = {k: str(v) for k, v in row.items()}
    if corrupt:
        for column in draw(st.lists(st.sampled_from(NETWORK_COLUMNS), min_size=1, max_size=2)):
            cells[column] = draw(CELL)
    return cells


def csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


@st.composite
def network_csv(draw) -> str:
    """A network file: clean (valid unless a name is odd), or with its header, a row's cells or length broken."""
    mode = draw(st.sampled_from(["clean", "clean", "header", "cells", "length"]))
    header = list(NETWORK_COLUMNS)
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    if mode == "header":
        edit = draw(st.sampled_from(["drop", "dup", "rename", "extra"]))
        if edit == "drop":
            header.pop(draw(st.integers(0, len(header) - 1)))
        elif edit == "dup":
            header.append(header[draw(st.integers(0, len(header) - 1))])
        elif edit == "rename":
            header[draw(st.integers(0, len(header) - 1))] = draw(CELL)
        else:
            header.append(draw(CELL))
    lines = [draw(st.sampled_from(["", "# comment\n", "#\n\n"])) + ",".join(csv_cell(h) for h in header)]
    rows = draw(st.lists(layer_row(corrupt=False), min_size=0 if mode != "clean" else 1, max_size=4))
    bad = draw(st.integers(0, max(0, len(rows) - 1)))
    for i, row in enumerate(rows):
        if mode == "cells" and i == bad:
            row = draw(layer_row(corrupt=True))
        if mode == "clean":
            row["name"] = f"{row['name']}{i}"  # unique
        cells = [row.get(h, draw(CELL)) for h in header]
        if mode == "length" and i == bad:
            cells = cells[: draw(st.integers(0, len(cells) - 1))] if draw(st.booleans()) else cells + [draw(CELL)]
        lines.append(",".join(csv_cell(c) for c in cells))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


def load_network_file(workdir: Path, content: bytes | str) -> Network | None:
    path = workdir / "net.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    result = check(lambda: load_network(str(path)), str(path))
    if result is not None:
        assert isinstance(result, Network) and len(result.layers) >= 1
        copy = write_network_csv(result, workdir / "copy.csv")  # what we write, we read back the same
        assert load_network(str(copy)).layers == result.layers
    return result


@fuzz(100)
@given(text=network_csv())
def test_network_csv_structured(workdir, text):
    load_network_file(workdir, text)


@fuzz(60)
@given(text=mutated(data_text("networks/alexnet.csv")))
def test_network_csv_mutated_builtin(workdir, text):
    load_network_file(workdir, text)


@fuzz(40)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_network_csv_random_bytes(workdir, content):
    load_network_file(workdir, content)


def test_network_csv_huge_numbers_are_rejected_not_crashing(workdir):
    header = ",".join(NETWORK_COLUMNS)
    huge = "9" * 400
    for row in (f"c,conv,{huge},8,0,3,3,3,8,6,6,1,1,1", f"c,conv,8,8,0.5,3,3,3,8,{huge},7,1,1,1",
                f"c,conv,8,8,{huge}.5,3,3,3,8,7,7,1,1,1", f"c,fc,1,1,0,{huge},1,1,8,1,1,1,1,1"):
        assert load_network_file(workdir, f"{header}\n{row}\n") is None


def test_network_names_that_look_like_comments_round_trip(workdir):
    header = "kind,name," + ",".join(c for c in NETWORK_COLUMNS if c not in ("kind", "name"))
    network = load_network_file(workdir, f'{header}\nfc,#x,1,1,0,4,1,1,4,1,1,1,1,1\nfc," # y",1,1,0,4,1,1,4,1,1,1,1,1\n')
    assert [layer.name for layer in network.layers] == ["#x", "# y"]  # and load_network_file read its copy back


# ---- technology YAML ----------------------------------------------------------------------------

YAML_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), ODD_TEXT)
YAML_VALUE = st.recursive(YAML_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3)),
    max_leaves=8)


@st.composite
def edited_mapping(draw, doc: dict) -> dict:
    """``doc`` (nested mappings) with keys dropped, added or given random values, at any depth."""
    doc = yaml.safe_load(yaml.safe_dump(doc))  # a deep copy

    def paths(node, prefix=()):
        out = [prefix]
        if isinstance(node, dict):
            for k, v in node.items():
                out += paths(v, prefix + (k,))
        return out

    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(doc)))
        if not path:
            doc[draw(st.text(max_size=6))] = draw(YAML_VALUE)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["drop", "value", "value", "list_item", "scale", "scale"]))
        value = parent[path[-1]]
        if action == "scale":  # a plausible edit: numbers scaled, lists shortened, text changed
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                factor = draw(st.sampled_from([0.5, 2, 4, 0.25, 1.5, -1, 0]))
                parent[path[-1]] = type(value)(value * factor) if isinstance(value, int) and factor == int(factor) \
                    else value * factor
            elif isinstance(value, list) and value:
                parent[path[-1]] = value[: draw(st.integers(0, len(value)))]
            elif isinstance(value, str):
                parent[path[-1]] = draw(st.text(max_size=10))
        elif action == "drop":
            del parent[path[-1]]
        elif action == "list_item" and isinstance(parent[path[-1]], list) and parent[path[-1]]:
            items = parent[path[-1]]
            items[draw(st.integers(0, len(items) - 1))] = draw(YAML_SCALAR)
        else:
            parent[path[-1]] = draw(YAML_VALUE)
    return doc


BUILTIN_TECH = yaml.safe_load(data_text("technology/deepopt-65nm.yaml"))
BUILTIN_SPACE = yaml.safe_load(data_text("spaces/deepopt-16mm2.yaml"))


def load_tech_file(workdir: Path, content: bytes | str) -> Technology | None:
    path = workdir / "tech.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    result = check(lambda: load_technology(str(path)), str(path))
    if result is not None:
        assert isinstance(result, Technology)
        result.sram_energy_j_per_bit(result.sram_sizes_kb[0])
    return result


@fuzz(60)
@given(doc=edited_mapping(BUILTIN_TECH))
def test_technology_structured(workdir, doc):
    load_tech_file(workdir, yaml.safe_dump(doc, allow_unicode=True))


@fuzz(50)
@given(text=mutated(data_text("technology/deepopt-65nm.yaml")))
def test_technology_mutated_builtin(workdir, text):
    load_tech_file(workdir, text)


@fuzz(40)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_technology_random_bytes(workdir, content):
    load_tech_file(workdir, content)


def _alias_bomb(levels: int = 9) -> str:
    """A 'billion laughs' value: 9**levels items by reference, a few hundred bytes of YAML."""
    parts = ["&l0 [" + ", ".join(["lol"] * 9) + "]"]
    parts += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


_TECH_TEXT = data_text("technology/deepopt-65nm.yaml")
HOSTILE_YAML = [
    # every key present, the description a bomb: its repr must not be expanded into the message
    _TECH_TEXT.replace(_TECH_TEXT[_TECH_TEXT.index("description:"):].splitlines()[0],
                       "description: " + _alias_bomb()),
    data_text("spaces/deepopt-16mm2.yaml").replace("name: deepopt-16mm2", "name: " + _alias_bomb()),
    "[" * 600 + "]" * 600,
    "{a: " * 600 + "1" + "}" * 600,
    "? [1, 2]\n: 3\n",
    "? {a: 1}\n: 3\nname: x\n",
    "!!python/object/apply:os.system ['true']\n",
    "a: !!binary aGVsbG8=\n",
    "a: 2001-12-14t21:59:43.10-05:00\n",
    "\ufeffname: x\n",
]


@pytest.mark.parametrize("text", HOSTILE_YAML, ids=range(len(HOSTILE_YAML)))
def test_technology_and_space_hostile_yaml(workdir, text):
    load_tech_file(workdir, text)
    load_space_file(workdir, text)


# ---- space YAML ---------------------------------------------------------------------------------

TECH = load_technology()


def load_space_file(workdir: Path, content: bytes | str) -> HardwareSpace | None:
    path = workdir / "space.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    result = check(lambda: load_space(str(path), TECH), str(path))
    if result is not None:
        assert isinstance(result, HardwareSpace)
    if isinstance(content, str):  # parse_space names the file by what it is given
        again = check(lambda: parse_space(content, "space-file-label", TECH), "space-file-label")
        assert (again is None) == (result is None)
    return result


@fuzz(60)
@given(doc=edited_mapping(BUILTIN_SPACE))
def test_space_structured(workdir, doc):
    load_space_file(workdir, yaml.safe_dump(doc, allow_unicode=True))


@fuzz(50)
@given(text=mutated(data_text("spaces/deepopt-16mm2.yaml")))
def test_space_mutated_builtin(workdir, text):
    load_space_file(workdir, text)


@fuzz(40)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_space_random_bytes(workdir, content):
    load_space_file(workdir, content)


def test_space_sizes_grid_is_bounded(workdir):
    text = data_text("spaces/deepopt-16mm2.yaml").replace(
        "ifmap: [4, 8, 16, 32, 64, 128, 256, 512]", "ifmap: {min: 4, max: 512, step: 1.0e-9}")
    assert load_space_file(workdir, text) is None
    for bad in ("budget_mm2: .inf", "budget_mm2: 1.0e+400", "budget_mm2: .nan", "budget_mm2: 500",
                "budget_mm2: 100000"):
        assert load_space_file(workdir, data_text("spaces/deepopt-16mm2.yaml").replace("budget_mm2: 16", bad)) is None


# ---- the validate command's branches.csv ----------------------------------------------------------

REF_VALID = {
    "network": st.sampled_from(["1", "1", "1", "3"]), "config_id": st.sampled_from(["c1", "c2"]),
    "J": st.sampled_from(["8", "16", "32"]), "K": st.sampled_from(["8", "16", "64"]),
    "fsram_kb": st.sampled_from(["4", "16", "512"]), "isram_kb": st.sampled_from(["8", "32"]),
    "psram_kb": st.sampled_from(["8", "64"]), "bw_filter": st.just("8"), "bw_ifmap": st.just("8"),
    "bw_psum": st.just("32"), "layer_index": st.integers(1, 60).map(str),
    "branch": st.sampled_from(["xyzF", "xzyF", "xyFz", "xFyz", "zxyF", "zF", "Fz", "NzF-1N"]),
    "energy_joule": st.floats(0, 1).map(repr), "delay_cycles": st.floats(0, 1e9).map(repr),
}
REF_ODD = st.one_of(CELL, st.integers(-2, 10**6).map(str), st.integers(0, 10**30).map(str))


@st.composite
def reference_csv(draw) -> str:
    columns = list(REQUIRED_COLUMNS)
    if draw(st.integers(0, 5)) == 0:
        columns.pop(draw(st.integers(0, len(columns) - 1)))
    if draw(st.integers(0, 5)) == 0:
        columns.append(draw(st.sampled_from(REQUIRED_COLUMNS + ["extra"])))
    lines = [",".join(columns)]
    for _ in range(draw(st.integers(0, 4))):
        odd = draw(st.integers(0, 3))  # how many cells of the row are odd (0: a valid row)
        odd_columns = set(draw(st.lists(st.sampled_from(columns), min_size=odd, max_size=odd)))
        cells = [draw(REF_ODD) if c in odd_columns or c not in REF_VALID else draw(REF_VALID[c]) for c in columns]
        lines.append(",".join(csv_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def load_reference(workdir: Path, content: bytes | str):
    folder = workdir / "ref"
    folder.mkdir(exist_ok=True)
    path = folder / "branches.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    frame = check(lambda: read_reference(folder), str(path))
    if frame is not None:  # a frame read_reference accepts is one validate can evaluate
        check(lambda: compare(frame), str(path))
    return frame


@fuzz(40)
@given(text=reference_csv())
def test_reference_csv_structured(workdir, text):
    load_reference(workdir, text)


@fuzz(40)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_reference_csv_random_bytes(workdir, content):
    load_reference(workdir, content)


def test_reference_sample_still_loads(workdir):
    from reference_cases import load_sample

    sample = load_sample()
    text = sample[sample.network == 3].head(20).to_csv(index=False)
    frame = load_reference(workdir, text)
    assert frame is not None and len(frame) == 20


INPUTS_TEXT = st.lists(st.sampled_from(["", "?", "c0", "c1", "c2", "x", "+", "|", "@", "(", ")", "maxpool2s2",
                                        "flatten", "trim1", "maxpool3s2ceil", " ", "@globalavgpool", "c0|c1"]),
                       max_size=7).map("".join)


@fuzz(80)
@given(cells=st.lists(INPUTS_TEXT, min_size=3, max_size=3))
def test_network_csv_random_inputs_column(workdir, cells):
    """Random inputs cells over a valid three-layer file: a network whose graph round-trips, or one line."""
    header = ",".join(NETWORK_COLUMNS) + ",inputs"
    rows = ["c0,conv,8,8,0,4,1,1,4,8,8,1,1,1", "c1,conv,8,8,0,4,1,1,4,8,8,1,1,1", "c2,conv,4,4,0,8,1,1,4,4,4,1,1,1"]
    text = header + "\n" + "".join(f'{row},"{cell}"\n' for row, cell in zip(rows, cells))
    result = load_network_file(workdir, text)
    if result is not None:
        again = load_network(str(write_network_csv(result, workdir / "copy.csv")))
        assert again.inputs == result.inputs and again.edges == result.edges
