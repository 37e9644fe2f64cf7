"""Built-in workloads and the network-file loader/writer."""

from __future__ import annotations

import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.networks import (
    BUILTIN_NETWORKS,
    NETWORK_COLUMNS,
    Network,
    load_network,
    write_network_csv,
)

LAYER_COUNTS = {
    "alexnet": 8,
    "vgg-16": 16,
    "squeezenet-v1.1": 26,
    "googlenet-v1": 58,  # 57 conv + 1 FC
    "resnet-50": 54,  # 53 conv + 1 FC
}

# Source: shared reference deepopt-golden/layers.csv, per network the sum over
# its layers of n_mac_per_LOS_formula * alexnet_factor. The reference counts an
# FC layer's MACs for its whole batch of 16 images, so these equal
# sum(layer.macs * layer.batch), not the per-image Network.macs.
REFERENCE_BATCH_MACS = {
    "alexnet": 1_603_736_096,
    "vgg-16": 17_324_769_280,
    "squeezenet-v1.1": 387_747_520,
    "googlenet-v1": 1_598_031_872,
    "resnet-50": 3_888_693_248,
}

# Per image (FC layers counted once): the figures above with the FC layers'
# batch of 16 divided out; AlexNet's 724 M and VGG-16's 15.5 G are the
# published per-image figures.
PER_IMAGE_MACS = {
    "alexnet": 724_406_816,
    "vgg-16": 15_470_264_320,
    "squeezenet-v1.1": 387_747_520,
    "googlenet-v1": 1_582_671_872,
    "resnet-50": 3_857_973_248,
}

HEADER = ",".join(NETWORK_COLUMNS)


@pytest.fixture(scope="module")
def builtins() -> dict[str, Network]:
    return {name: load_network(name) for name in BUILTIN_NETWORKS}


def test_builtin_names_in_reference_order():
    assert list(BUILTIN_NETWORKS) == list(LAYER_COUNTS)


@pytest.mark.parametrize("name", list(BUILTIN_NETWORKS))
def test_builtin_loads(builtins, name):
    net = builtins[name]
    assert net.name == name
    assert len(net) == LAYER_COUNTS[name]
    assert all(isinstance(layer, Layer) for layer in net.layers)
    assert net.source == f"deepopt_mip.data:networks/{BUILTIN_NETWORKS[name]}"
    assert net.macs == PER_IMAGE_MACS[name]
    assert sum(layer.macs * layer.batch for layer in net.layers) == REFERENCE_BATCH_MACS[name]
    # conv layers run one image at a time, FC layers a batch of 16 (reference defaults)
    for layer in net.layers:
        assert layer.batch == (16 if layer.kind == "fc" else 1)


def test_builtin_loads_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(load_network("alexnet")) == 8


@pytest.mark.parametrize("alias, name", [
    ("vgg16", "vgg-16"), ("squeezenet", "squeezenet-v1.1"), ("googlenet", "googlenet-v1"),
    ("resnet50", "resnet-50"), ("AlexNet", "alexnet"),
    ("1", "alexnet"), ("2", "vgg-16"), ("3", "squeezenet-v1.1"), ("4", "googlenet-v1"), ("5", "resnet-50"),
])
def test_aliases(builtins, alias, name):
    assert load_network(alias) == builtins[name]
    assert load_network(alias).name == name


def test_alexnet_grouped_layers(builtins):
    net = builtins["alexnet"]
    assert [layer.groups for layer in net.layers] == [1, 2, 1, 2, 2, 1, 1, 1]
    conv2 = net.layer("conv2")
    assert (conv2.channels, conv2.filters, conv2.groups) == (96, 256, 2)
    shape = conv2.group_shape()
    # the reference lists one group, C=48, F=128, and doubles its cost
    assert (shape.channels, shape.filters, shape.ifmap_h) == (48, 128, 31)
    assert conv2.macs == 2 * 111_974_400  # layers.csv n_mac_per_LOS_formula * alexnet_factor


def test_fc_layers(builtins):
    fc6 = builtins["alexnet"].layer("fc6")
    assert (fc6.kind, fc6.channels, fc6.filters, fc6.batch) == ("fc", 9216, 4096, 16)
    assert (fc6.ifmap_h, fc6.filter_h, fc6.ofmap_h, fc6.pad) == (1, 1, 1, 0)
    assert builtins["vgg-16"].layer("fc6").channels == 25088
    assert builtins["squeezenet-v1.1"].layers[-1].kind == "conv"  # conv10, no FC layer
    assert [layer.kind for layer in builtins["googlenet-v1"].layers].count("fc") == 1


def test_reference_shape_conventions(builtins):
    conv1 = builtins["googlenet-v1"].layers[0]
    assert (conv1.name, conv1.ifmap_h, conv1.pad, conv1.padded_h, conv1.ofmap_h) == \
        ("conv1/7x7_s2", 224, 2.5, 229, 112)
    res = builtins["resnet-50"]
    # stride-2 1x1 convolutions: the reference reads ifmap 55 (last row/column unused)
    for name, ifmap in (("res3a_branch2a", 55), ("res3a_branch1", 55),
                        ("res4a_branch2a", 27), ("res5a_branch1", 13)):
        layer = res.layer(name)
        assert (layer.ifmap_h, layer.stride, layer.filter_h) == (ifmap, 2, 1)
    assert builtins["squeezenet-v1.1"].layer("fire2/expand3x3").padded_h == 58
    inception = [layer.name for layer in builtins["googlenet-v1"].layers[3:9]]
    assert inception == ["inception_3a/3x3_reduce", "inception_3a/5x5_reduce", "inception_3a/1x1",
                         "inception_3a/3x3", "inception_3a/5x5", "inception_3a/pool_proj"]


@pytest.mark.parametrize("name", list(BUILTIN_NETWORKS))
def test_round_trip(builtins, tmp_path, name):
    path = tmp_path / f"{name}.csv"
    assert write_network_csv(builtins[name], path) == path
    again = load_network(path)
    assert again == builtins[name]
    assert again.source == str(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left


def test_write_replaces_existing_file(builtins, tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("old contents\n")
    write_network_csv(builtins["alexnet"], path, comments=["my comment"])
    text = path.read_text()
    assert text.startswith("# my comment\n" + HEADER + ",inputs\n")  # the built-ins have a graph
    assert load_network(str(path)).layers == builtins["alexnet"].layers
    assert load_network(path).name == "net"


def test_user_file_with_comments_and_any_column_order(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text(
        "# a tiny network\n\n"
        "kind,name,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch\n"
        "conv,c1,8,8,1,4,3,3,8,8,8,1,1,1\n"
        "fc,f1,1,1,0,512,1,1,10,1,1,1,1,1\n")
    net = load_network(path)
    assert net.name == "tiny" and len(net) == 2
    assert net.macs == 9 * 4 * 64 * 8 + 512 * 10


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    # Excel's "CSV UTF-8" starts the file with EF BB BF and ends lines with CRLF
    text = "# saved by Excel\r\n" + HEADER + "\r\nc1,conv,8,8,1,4,3,3,8,8,8,1,1,1\r\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    bare = tmp_path / "bare.csv"
    bare.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\nc1,conv,8,8,1,4,3,3,8,8,8,1,1,1\n").encode("utf-8"))
    expected = Layer("c1", "conv", 8, 8, 1, 4, 3, 3, 8, 8, 8, 1, 1, 1)
    assert load_network(path).layers == (expected,)
    assert load_network(bare).layers == (expected,)  # the mark right before the header's first column


def test_gzip_compressed_csv_is_named(tmp_path):
    import gzip

    path = tmp_path / "net.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "\n").encode()))
    with pytest.raises(InputError, match="net.csv.gz: gzip-compressed, not a text file: decompress it first"):
        load_network(path)


GOOD_ROW = "c1,conv,8,8,1,4,3,3,8,8,8,1,1,1"
SECOND_ROW = "c2,conv,8,8,0,8,1,1,8,8,8,1,1,1"


@pytest.mark.parametrize("text, expected", [
    ("", ["empty"]),
    ("# only a comment\n\n", ["empty"]),
    (HEADER + "\n", ["no layers"]),
    (HEADER.replace(",groups", "") + "\n" + GOOD_ROW + "\n", ["missing column", "groups"]),
    (HEADER + ",extra\n" + GOOD_ROW + ",1\n", ["unknown column", "extra"]),
    (HEADER + ",stride\n" + GOOD_ROW + ",1\n", ["'stride' appears twice"]),
    (HEADER + "\n" + GOOD_ROW + "\n" + SECOND_ROW.replace(",8,1,1,8,", ",8.5,1,1,8,", 1) + "\n",
     ["data row 2", "'c2'", "'channels'", "not an integer"]),
    (HEADER + "\n" + GOOD_ROW.replace(",1,1,1", ",-1,1,1") + "\n",
     ["data row 1", "'c1'", "'stride'", "positive"]),
    (HEADER + "\n" + GOOD_ROW.replace(",3,3,8,", ",3,3,0,") + "\n", ["data row 1", "'filters'", "positive"]),
    (HEADER + "\n" + GOOD_ROW.replace("conv", "pool") + "\n", ["data row 1", "'kind'", "pool"]),
    (HEADER + "\n" + GOOD_ROW.replace(",8,8,1,1,1", ",7,8,1,1,1") + "\n", ["data row 1", "'c1'", "ofmap_h"]),
    (HEADER + "\n" + GOOD_ROW + "\n" + GOOD_ROW + "\n", ["data row 2", "'name'", "already used by data row 1"]),
    (HEADER + "\n" + GOOD_ROW + "\n" + "c2,conv,8,8\n", ["data row 2", "4 fields", "14"]),
    (HEADER + "\n" + GOOD_ROW.replace(",8,8,1,4,", ",8,8,0.3,4,") + "\n", ["data row 1", "'pad'", "0.5"]),
    (HEADER + "\n" + GOOD_ROW.replace(",8,8,1,4,", ",8,8,-1,4,") + "\n", ["data row 1", "'pad'", "negative"]),
    (HEADER + "\n" + GOOD_ROW.replace(",4,3,3,", ",,3,3,") + "\n", ["data row 1", "'channels'", "empty"]),
    (HEADER + "\n" + GOOD_ROW.replace(",4,3,3,", ",four,3,3,") + "\n", ["'channels'", "not a number"]),
    (HEADER + "\n" + GOOD_ROW.replace("c1,", ",", 1) + "\n", ["data row 1", "'name' is empty"]),
    (HEADER + "\n" + "f,fc,1,1,0,8,3,3,8,1,1,1,1,1\n", ["data row 1", "'f'", "fc layer"]),
    (HEADER + "\n" + GOOD_ROW.replace(",4,3,3,8,8,8,1,1,", ",4,3,3,8,8,8,1,3,") + "\n",
     ["data row 1", "groups"]),
])
def test_bad_file(tmp_path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_network(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_bad_row_reports_line_number(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("# c\n# c\n" + HEADER + "\n" + GOOD_ROW + "\n" + GOOD_ROW.replace("c1", "c3").replace("conv", "x") + "\n")
    with pytest.raises(InputError, match=r"data row 2 \(line 5, layer 'c3'\)"):
        load_network(path)


def test_unknown_name_lists_builtins():
    with pytest.raises(InputError) as info:
        load_network("lenet")
    message = str(info.value)
    assert "'lenet'" in message and "\n" not in message
    for name in BUILTIN_NETWORKS:
        assert name in message


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_network(tmp_path / "nothing.csv")
    with pytest.raises(InputError, match="not found"):
        load_network(str(tmp_path / "nothing.csv"))


def test_network_checks():
    layer = load_network("alexnet").layers[0]
    with pytest.raises(InputError, match="twice"):
        Network("n", (layer, layer))
    with pytest.raises(InputError, match="no layers"):
        Network("n", ())
    assert Network("n", [layer], source="x") == Network("n", (layer,), source="y")
