"""The network as a graph: the inputs syntax, pooling shapes, the built-ins' graphs, bad inputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.graph import (
    NETWORK_INPUT,
    Edge,
    Group,
    Op,
    Producer,
    format_inputs,
    parse_inputs,
    parse_op,
)
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.networks import (
    BUILTIN_NETWORKS,
    NETWORK_COLUMNS,
    Network,
    load_network,
    with_fc_batch,
    write_network_csv,
)

HEADER = ",".join(NETWORK_COLUMNS)


@pytest.fixture(scope="module")
def builtins() -> dict[str, Network]:
    return {name: load_network(name) for name in BUILTIN_NETWORKS}


# ---- syntax ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("", NETWORK_INPUT),
    ("  ", NETWORK_INPUT),
    ("?", None),
    ("conv1", Producer("conv1")),
    ("conv1@maxpool3s2", Producer("conv1", (Op("maxpool", 3, 3, 2),))),
    ("a|b|c", Group("concat", (Producer("a"), Producer("b"), Producer("c")))),
    (" a + b ", Group("add", (Producer("a"), Producer("b")))),
    ("(a|b)@maxpool3s2ceil@maxpool3s1p1",
     Group("concat", (Producer("a"), Producer("b")), (Op("maxpool", 3, 3, 2, 0, True), Op("maxpool", 3, 3, 1, 1)))),
    ("a@globalavgpool|b@flatten", Group("concat", (Producer("a", (Op("globalavgpool"),)),
                                                   Producer("b", (Op("flatten"),))))),
    ("(a+b)|c", Group("concat", (Group("add", (Producer("a"), Producer("b"))), Producer("c")))),
    ("(a)@avgpool7x5s1p0.5", Producer("a", (Op("avgpool", 7, 5, 1, 0.5),))),
    ("(a+b)@trim1", Group("add", (Producer("a"), Producer("b")), (Op("trim", rows=1),))),
    ("inception_3a/1x1|fire2/expand 3x3", Group("concat", (Producer("inception_3a/1x1"),
                                                            Producer("fire2/expand 3x3")))),
])
def test_parse_and_format_round_trip(text, expected):
    parsed = parse_inputs(text)
    assert parsed == expected
    assert parse_inputs(format_inputs(parsed)) == parsed


def test_format_is_canonical():
    assert format_inputs(parse_inputs(" ( a | b ) @ MaxPool3S2 ")) == "(a|b)@maxpool3s2"
    assert format_inputs(parse_inputs("(a)")) == "a"


@pytest.mark.parametrize("text, fragment", [
    ("a+b|c", "mixes '+' and '|'"),
    ("(a|b", "not closed"),
    ("a|", "expected a layer name, found the end"),
    ("a@", "expected an operation"),
    ("a@maxpool", "unknown operation 'maxpool'"),
    ("a@relu", "unknown operation 'relu'"),
    ("a@trim0", "unknown operation"),
    ("a)b", "unexpected ')'"),
    ("a|?", "'?' stands alone"),
])
def test_parse_errors(text, fragment):
    with pytest.raises(ValueError, match=None) as info:
        parse_inputs(text)
    assert fragment in str(info.value)


# ---- pooling shapes, by hand ------------------------------------------------------------------------

@pytest.mark.parametrize("token, size, expected", [
    ("maxpool3s2", 55, 27),  # AlexNet pool1: (55 - 3) / 2 + 1
    ("maxpool3s2", 112, 55),  # floor
    ("maxpool3s2ceil", 112, 56),  # Caffe rounds up: GoogleNet and ResNet-50 pool1
    ("maxpool3s2ceil", 28, 14),
    ("maxpool3s1p1", 28, 28),  # GoogleNet's pooling before pool_proj
    ("maxpool2s2", 224, 112),
    ("avgpool7s1", 7, 1),
    ("maxpool2s2p1ceil", 5, 3),  # ceil((5+2-2)/2)+1 = 4, but the 4th window would start in the padding
    ("maxpool2s2p1", 5, 3),
    ("maxpool3s2p1ceil", 6, 4),  # ceil((6+2-3)/2)+1 = 4; (4-1)*2 = 6 < 6+1 keeps it
    ("globalavgpool", 13, 1),
])
def test_pool_shapes(token, size, expected):
    assert parse_op(token).apply((8, size, size)) == (8, expected, expected)


def test_other_ops_and_errors():
    assert parse_op("flatten").apply((512, 7, 7)) == (25088, 1, 1)
    assert parse_op("trim1").apply((256, 56, 56)) == (256, 55, 55)
    assert parse_op("maxpool3x1s1").apply((4, 5, 5)) == (4, 3, 5)
    with pytest.raises(ValueError, match="larger than the padded height"):
        parse_op("maxpool5s1").apply((1, 3, 3))


# ---- a small network, programmatically ------------------------------------------------------------

def conv(name, channels, size, filters, kernel=1, pad=0, stride=1):
    ofmap = (size + 2 * pad - kernel) // stride + 1
    return Layer(name, "conv", size, size, pad, channels, kernel, kernel, filters, ofmap, ofmap, stride)


def fc(name, inputs, outputs, batch=1):
    return Layer(name, "fc", 1, 1, 0, inputs, 1, 1, outputs, 1, 1, 1, 1, batch)


def test_edges_of_a_small_inception_with_a_residual():
    layers = (conv("stem", 3, 16, 8, 3, 1),  # 8 x 16 x 16
              conv("a", 8, 8, 4), conv("b", 8, 8, 6, 3, 1),  # both read the pooled stem
              conv("c", 10, 8, 10),  # reads a|b (4 + 6)
              conv("d", 10, 8, 10, 3, 1),  # reads a|b + c
              fc("f", 10 * 4 * 4, 5, batch=16))
    inputs = ("", "stem@maxpool2s2", "stem@maxpool2s2", "a|b", "(a|b)+c", "d@maxpool2s2@flatten")
    network = Network("n", layers, inputs=tuple(parse_inputs(t) for t in inputs))
    pool, flat, concat, add = Op("maxpool", 2, 2, 2), Op("flatten"), Op("concat"), Op("add")
    assert network.edges == (
        Edge("stem", "a", (pool,), 8, 8, 8, 0),
        Edge("stem", "b", (pool,), 8, 8, 8, 0),
        Edge("a", "c", (concat,), 4, 8, 8, 0),
        Edge("b", "c", (concat,), 6, 8, 8, 4),
        Edge("a", "d", (concat, add), 4, 8, 8, 0),
        Edge("b", "d", (concat, add), 6, 8, 8, 4),
        Edge("c", "d", (add,), 10, 8, 8, 0),
        Edge("d", "f", (pool, flat), 160, 1, 1, 0),
    )
    assert network.edges[0].elements == 512  # 8 x 8 x 8: the pooling shrinks what is handed over
    assert network.has_graph and network.inputs_text("d") == "(a|b)+c"


def test_flatten_offsets_of_a_concatenation():
    layers = (conv("a", 3, 4, 2), conv("b", 3, 4, 3), fc("f", 5 * 16, 7))
    network = Network("n", layers, inputs=(NETWORK_INPUT, NETWORK_INPUT, parse_inputs("(a|b)@flatten")))
    assert [(e.producer, e.channels, e.channel_offset) for e in network.edges] == [("a", 32, 0), ("b", 48, 32)]


def test_network_without_graph_and_unknown_inputs():
    layers = (conv("a", 3, 4, 2), conv("b", 2, 4, 2))
    plain = Network("n", layers)
    assert (plain.has_graph, plain.edges, plain.inputs) == (False, (), None)
    partial = Network("n", layers, inputs=(NETWORK_INPUT, None))
    assert partial.edges == () and partial.inputs_text("b") == "?"
    assert plain != partial  # the graph is part of a network's identity
    with pytest.raises(InputError, match=r"network 'n': layer 'b': inputs: names unknown layer 'x'"):
        Network("n", layers, inputs=(NETWORK_INPUT, Producer("x")))


@pytest.mark.parametrize("op", [Op("maxpool"), Op("maxpool", 2, 2, 0), Op("concat"), Op("trim"), Op("relu")])
def test_programmatic_network_rejects_operations_it_cannot_write(op):
    layers = (conv("a", 3, 4, 2), conv("b", 2, 4, 2))
    with pytest.raises(InputError, match="is not an operation on one tensor"):
        Network("n", layers, inputs=(NETWORK_INPUT, Producer("a", (op,))))


def test_fc_batch_keeps_the_graph(builtins):
    net = with_fc_batch(builtins["vgg-16"], 4)
    assert net.inputs == builtins["vgg-16"].inputs and net.edges == builtins["vgg-16"].edges


# ---- the built-ins ---------------------------------------------------------------------------------

EDGE_COUNTS = {
    "alexnet": 7,  # a chain
    "vgg-16": 15,  # a chain
    # conv1 -> fire2 squeeze; per fire: squeeze -> 2 expands (8 x 2); fire3..9 squeeze and conv10 read 2 each
    "squeezenet-v1.1": 1 + 16 + 8 * 2,
    # conv1 -> conv2 reduce -> conv2; per module: 4 readers of the module input + reduce -> 3x3, 5x5
    # (3a's input is one layer, the 8 others' four); the classifier reads four
    "googlenet-v1": 2 + (4 * 1 + 2) + 8 * (4 * 4 + 2) + 4,
    # per stage: first block 2 readers x terms of the input, then block k reads k terms; 2 edges per block
    "resnet-50": (2 * 1 + 2 + 3 + 6) + (2 * 4 + 2 + 3 + 4 + 8) + (2 * 5 + 2 + 3 + 4 + 5 + 6 + 12)
                 + (2 * 7 + 2 + 3 + 6) + 4,
}


@pytest.mark.parametrize("name", list(BUILTIN_NETWORKS))
def test_builtin_graph_is_consistent(builtins, name):
    """Every consumer's input is exactly covered by what its producers hand over (checked from the edges)."""
    net = builtins[name]
    assert net.has_graph and all(entry is not None for entry in net.inputs)
    assert len(net.edges) == EDGE_COUNTS[name]
    assert [layer.name for layer, entry in zip(net.layers, net.inputs) if entry == NETWORK_INPUT] == \
        [net.layers[0].name]
    producers = {e.producer for e in net.edges}
    assert [layer.name for layer in net.layers if layer.name not in producers] == [net.layers[-1].name]
    order = {layer.name: i for i, layer in enumerate(net.layers)}
    for layer in net.layers[1:]:
        edges = [e for e in net.edges if e.consumer == layer.name]
        assert all(order[e.producer] < order[layer.name] for e in edges)
        by_offset: dict[int, set] = {}
        for e in edges:
            assert (e.height, e.width) == (layer.ifmap_h, layer.ifmap_w)
            by_offset.setdefault(e.channel_offset, set()).add(e.channels)
        # the terms of an addition share their offset and their size; concatenated parts tile the channels
        assert all(len(sizes) == 1 for sizes in by_offset.values())
        start = 0
        for offset in sorted(by_offset):
            assert offset == start
            start += next(iter(by_offset[offset]))
        assert start == layer.channels, layer.name
        # what a producer hands over before pooling and trimming is its own output
        for e in edges:
            producer = net.layer(e.producer)
            if not any(op.kind in ("maxpool", "avgpool", "globalavgpool", "flatten", "trim") for op in e.ops):
                assert (e.channels, e.height, e.width) == (producer.filters, producer.ofmap_h, producer.ofmap_w)


def test_builtin_graph_details(builtins):
    google = builtins["googlenet-v1"]
    into_4a = [(e.producer, e.channel_offset, e.elements) for e in google.edges if e.consumer == "inception_4a/1x1"]
    # 3b's outputs 128 | 192 | 96 | 64 channels at 28x28, pooled 3x3/2 (rounding up) to 14x14
    assert into_4a == [("inception_3b/1x1", 0, 128 * 196), ("inception_3b/3x3", 128, 192 * 196),
                       ("inception_3b/5x5", 320, 96 * 196), ("inception_3b/pool_proj", 416, 64 * 196)]
    assert google.inputs_text("inception_4a/pool_proj") == \
        "(inception_3b/1x1|inception_3b/3x3|inception_3b/5x5|inception_3b/pool_proj)@maxpool3s2ceil@maxpool3s1p1"
    resnet = builtins["resnet-50"]
    into = [e for e in resnet.edges if e.consumer == "res3a_branch1"]
    assert [e.producer for e in into] == ["res2a_branch1", "res2a_branch2c", "res2b_branch2c", "res2c_branch2c"]
    assert {(e.ops, e.channels, e.height, e.channel_offset) for e in into} == \
        {((Op("add"), Op("trim", rows=1)), 256, 55, 0)}
    fc6 = [e for e in builtins["vgg-16"].edges if e.consumer == "fc6"]
    assert fc6 == [Edge("conv5_3", "fc6", (Op("maxpool", 2, 2, 2), Op("flatten")), 25088, 1, 1, 0)]
    squeeze = builtins["squeezenet-v1.1"]
    assert squeeze.inputs_text("fire4/squeeze1x1") == "(fire3/expand1x1|fire3/expand3x3)@maxpool3s2ceil"


@pytest.mark.parametrize("name", list(BUILTIN_NETWORKS))
def test_builtin_graph_round_trip(builtins, tmp_path, name):
    path = write_network_csv(builtins[name], tmp_path / "net.csv")
    again = load_network(path)
    assert again.inputs == builtins[name].inputs and again.edges == builtins[name].edges
    assert path.read_text().splitlines()[1].endswith(",inputs")


# ---- files -------------------------------------------------------------------------------------------

ROWS = ["s,conv,8,8,1,3,3,3,4,8,8,1,1,1", "a,conv,4,4,0,4,1,1,4,4,4,1,1,1", "b,conv,4,4,0,4,1,1,6,4,4,1,1,1",
        "f,fc,1,1,0,160,1,1,10,1,1,1,1,16"]
GOOD_INPUTS = ["", "s@maxpool2s2", "a", "(a|b)@flatten"]


def graph_file(tmp_path, inputs=GOOD_INPUTS, rows=ROWS):
    path = tmp_path / "g.csv"
    path.write_text("# a small graph\n" + HEADER + ",inputs\n"
                    + "".join(f"{row},{cell}\n" for row, cell in zip(rows, inputs)))
    return path


def test_file_with_graph_loads_and_round_trips(tmp_path):
    net = load_network(graph_file(tmp_path))
    assert [(e.producer, e.consumer, e.elements) for e in net.edges] == \
        [("s", "a", 64), ("a", "b", 64), ("a", "f", 64), ("b", "f", 96)]
    again = load_network(write_network_csv(net, tmp_path / "copy.csv"))
    assert (again.layers, again.inputs, again.edges) == (net.layers, net.inputs, net.edges)


def test_unknown_inputs_round_trip(tmp_path):
    net = load_network(graph_file(tmp_path, ["", "?", "a", "?"]))
    assert net.inputs[1] is None and [(e.producer, e.consumer) for e in net.edges] == [("a", "b")]
    again = load_network(write_network_csv(net, tmp_path / "copy.csv"))
    assert again.inputs == net.inputs


def test_old_file_without_the_column_loads_unchanged(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    net = load_network(path)
    assert not net.has_graph and net.edges == ()  # no chain is assumed
    assert [layer.name for layer in net.layers] == ["s", "a", "b", "f"]
    copy = write_network_csv(net, tmp_path / "copy.csv")
    assert copy.read_text().splitlines()[1] == HEADER  # written back without the column


@pytest.mark.parametrize("row, cell, fragments", [
    (2, "x", ["data row 2 (line 4, layer 'a')", "field 'inputs'", "unknown layer 'x'"]),
    (2, "b", ["data row 2", "field 'inputs'", "a cycle: 'a' -> 'b' -> 'a'"]),  # b reads a
    (2, "a", ["data row 2", "field 'inputs'", "a cycle: layer 'a' reads its own output"]),
    (2, "s@maxpool3s2", ["data row 2", "field 'inputs'", "gives 4x3x3, the layer's input is 4x4x4"]),
    (2, "s", ["data row 2", "field 'inputs'", "gives 4x8x8"]),
    (4, "a|b", ["data row 4", "field 'inputs'", "gives 10x4x4", "160x1x1 (channels x 1 x 1 (fc))"]),  # no flatten
    (4, "(a+b)@flatten", ["data row 4", "adds tensors of different shapes: 4x4x4, 6x4x4"]),
    (4, "(a|s)@flatten", ["data row 4", "concatenates tensors of different height x width"]),
    (4, "(a|a)@flatten", ["data row 4", "names layer 'a' twice"]),
    (2, "s@maxpool2s2@trim1", ["data row 2", "gives 4x3x3"]),
    (4, "(a@trim1|b)@flatten", ["data row 4", "trim1 may only be the last operation"]),
    (2, "s@maxpool2s2|", ["data row 2", "field 'inputs'", "expected a layer name"]),
    (3, "a@relu", ["data row 3", "field 'inputs'", "unknown operation 'relu'"]),
])
def test_bad_inputs_name_file_row_and_field(tmp_path, row, cell, fragments):
    inputs = list(GOOD_INPUTS)
    inputs[row - 1] = cell
    path = graph_file(tmp_path, inputs)
    with pytest.raises(InputError) as info:
        load_network(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_cycle_through_later_layers_is_named(tmp_path):
    rows = ["a,conv,4,4,0,4,1,1,4,4,4,1,1,1", "b,conv,4,4,0,4,1,1,4,4,4,1,1,1", "c,conv,4,4,0,4,1,1,4,4,4,1,1,1"]
    path = graph_file(tmp_path, ["c", "a", "b"], rows)
    with pytest.raises(InputError, match=r"data row 1 \(line 3, layer 'a'\): field 'inputs': "
                                         r"a cycle: 'a' -> 'c' -> 'b' -> 'a' \(each reads the next\)"):
        load_network(path)


def test_later_layer_is_named(tmp_path):
    rows = ["a,conv,4,4,0,4,1,1,4,4,4,1,1,1", "b,conv,4,4,0,4,1,1,4,4,4,1,1,1"]
    with pytest.raises(InputError, match=r"g.csv data row 1 \(line 3, layer 'a'\): field 'inputs': names layer 'b', "
                                         r"which comes later \(layers are listed in execution order\)"):
        load_network(graph_file(tmp_path, ["b", ""], rows))


def test_trim_only_where_the_filter_never_reads_the_trimmed_rows(tmp_path):
    # a 3x3 stride-1 filter reads every row: listing 3x3 instead of 4x4 would change the ofmap
    rows = ["a,conv,4,4,0,4,1,1,4,4,4,1,1,1", "b,conv,3,3,1,4,3,3,4,3,3,1,1,1"]
    with pytest.raises(InputError, match="trim1: the layer would read the trimmed rows"):
        load_network(graph_file(tmp_path, ["", "a@trim1"], rows))
    # a 1x1 stride-2 filter never reads the last row of an even-sized input (ResNet-50's res3a)
    rows = ["a,conv,4,4,0,4,1,1,4,4,4,1,1,1", "b,conv,3,3,0,4,1,1,4,2,2,2,1,1"]
    assert len(load_network(graph_file(tmp_path, ["", "a@trim1"], rows)).edges) == 1


def test_reserved_characters_in_names(tmp_path):
    rows = ["s+1,conv,8,8,1,3,3,3,4,8,8,1,1,1", *ROWS[1:]]
    with pytest.raises(InputError, match=r"data row 1 .*field 'name': \+ may not appear in a layer name"):
        load_network(graph_file(tmp_path, GOOD_INPUTS, rows))
    path = tmp_path / "plain.csv"  # without the inputs column such a name is fine
    path.write_text(HEADER + "\n" + rows[0] + "\n")
    assert load_network(path).layers[0].name == "s+1"


def test_programmatic_network_rejects_reserved_names():
    layer = Layer("a|b", "conv", 4, 4, 0, 4, 1, 1, 4, 4, 4)
    with pytest.raises(InputError, match="reserved for inputs"):
        Network("n", (layer,), inputs=(NETWORK_INPUT,))
    assert Network("n", (layer,)).layers == (layer,)


def test_replace_rederives_edges(builtins):
    net = builtins["alexnet"]
    assert replace(net, name="other").edges == net.edges


def test_readme_example(tmp_path):
    """The example of data/networks/README.md loads and hands over what the text says."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "data" / "networks" / "README.md").read_text(encoding="utf-8")
    block = readme.split("Example (a stem, a two-branch module and a classifier):")[1].split("```")[1]
    path = tmp_path / "example.csv"
    path.write_text(block.strip() + "\n")
    net = load_network(path)
    edges = {(e.producer, e.consumer): e for e in net.edges}
    assert (edges["stem", "a"].channels, edges["stem", "a"].height) == (8, 8)  # pooled, not 16 x 16
    assert edges["b", "c"].channel_offset == 4
    assert edges["c", "fc"].elements == 640
