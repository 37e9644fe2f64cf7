"""The graph of an imported ONNX model: edges derived through the operators between layers."""

from __future__ import annotations

import pytest

pytest.importorskip("onnx")

from onnx_models import GraphBuilder, alexnet_like, googlenet_like, resnet_block_like, squeezenet_like  # noqa: E402

from deepopt_mip.formulation.graph import NETWORK_INPUT, Edge, Op  # noqa: E402
from deepopt_mip.formulation.layers import Layer  # noqa: E402
from deepopt_mip.formulation.networks import load_network, write_network_csv  # noqa: E402
from deepopt_mip.formulation.onnx_import import parse_onnx_bytes  # noqa: E402


def imported(builder: GraphBuilder, batch=None):
    return parse_onnx_bytes(builder.bytes(), label="model.onnx", name="model", batch=batch)


def inputs_of(network) -> dict[str, str]:
    return {layer.name: network.inputs_text(layer.name) for layer in network.layers}


def conv_layer(name, channels, size, filters, kernel=1, pad=0, stride=1):
    ofmap = (size + 2 * pad - kernel) // stride + 1
    return Layer(name, "conv", size, size, pad, channels, kernel, kernel, filters, ofmap, ofmap, stride)


def test_chain_with_a_max_pool():
    g = GraphBuilder([1, 3, 8, 8])
    x = g.node("Relu", [g.conv_on("data", conv_layer("c1", 3, 8, 4, 3, 1))])
    x = g.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    g.conv_on(x, conv_layer("c2", 4, 4, 6))
    network = imported(g).network
    assert inputs_of(network) == {"c1": "", "c2": "c1@maxpool2s2"}
    # the pooling halves height and width: 4 x 4 x 4 handed over instead of the 4 x 8 x 8 produced
    assert network.edges == (Edge("c1", "c2", (Op("maxpool", 2, 2, 2),), 4, 4, 4, 0),)
    assert network.edges[0].elements == 64


def test_concat_of_two_convs():
    g = GraphBuilder([1, 3, 8, 8])
    a = g.conv_on("data", conv_layer("a", 3, 8, 4))
    b = g.node("Relu", [g.conv_on("data", conv_layer("b", 3, 8, 6, 3, 1))])
    g.conv_on(g.node("Concat", [a, b], axis=1), conv_layer("c", 10, 8, 2))
    network = imported(g).network
    assert inputs_of(network) == {"a": "", "b": "", "c": "a|b"}
    assert [(e.producer, e.channels, e.channel_offset, e.ops) for e in network.edges] == \
        [("a", 4, 0, (Op("concat"),)), ("b", 6, 4, (Op("concat"),))]


def test_residual_add_through_batch_norm():
    result = imported(resnet_block_like())
    assert inputs_of(result.network) == {
        "stem": "", "b1_a": "stem@maxpool2s2", "b1_b": "b1_a", "b1_c": "b1_b",
        # the identity shortcut carries the pooled stem; the second one carries the first block's sum
        "b2_a": "b1_c+stem@maxpool2s2", "b2_b": "b2_a", "b2_c": "b2_b",
        "fc": "(b2_c+b1_c+stem@maxpool2s2)@globalavgpool@flatten",
    }
    assert "graph: 10 edges between layers" in result.summary and "not derived" not in result.summary


def test_alexnet_graph_equals_the_builtin():
    imported_net = imported(alexnet_like()).network
    builtin = load_network("alexnet")
    assert imported_net.layers == builtin.layers
    assert imported_net.inputs == builtin.inputs and imported_net.edges == builtin.edges


@pytest.mark.parametrize("name, build", [("squeezenet-v1.1", squeezenet_like), ("googlenet-v1", googlenet_like)])
def test_published_topology_imports_to_the_builtin_graph(name, build):
    """The published networks built as ONNX graphs (Concat, ceil-mode pooling, LRN) import to the
    built-in files' layers and graph: ONNX shape inference checks the poolings we wrote."""
    builtin = load_network(name)
    result = imported(build(builtin))
    assert result.network.layers == builtin.layers
    assert result.network.inputs == builtin.inputs
    assert result.network.edges == builtin.edges


def test_unsupported_operator_between_layers_leaves_inputs_unknown():
    g = GraphBuilder([1, 3, 8, 8])
    x = g.conv_on("data", conv_layer("a", 3, 8, 4))
    x = g.node("Transpose", [x], perm=[0, 1, 3, 2])
    g.conv_on(x, conv_layer("b", 4, 8, 4))
    result = imported(g)
    assert result.network.inputs == (NETWORK_INPUT, None) and result.network.edges == ()
    assert "inputs of 1 layer not derived (written ?)" in result.summary


def test_network_input_inside_a_concat_is_unknown():
    g = GraphBuilder([1, 3, 8, 8])
    a = g.conv_on("data", conv_layer("a", 3, 8, 3))
    g.conv_on(g.node("Concat", ["data", a], axis=1), conv_layer("b", 6, 8, 4))
    assert imported(g).network.inputs[1] is None


def test_pool_attributes():
    g = GraphBuilder([1, 3, 9, 9])
    x = g.conv_on("data", conv_layer("a", 3, 9, 4))
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    g.conv_on(x, conv_layer("b", 4, 5, 4))
    # ceil((9 + 2 - 3) / 2) + 1 = 5 = floor: rounding up changes nothing and is not written
    assert imported(g).network.inputs_text("b") == "a@maxpool3s2p1"
    g = GraphBuilder([1, 3, 8, 8])
    x = g.conv_on("data", conv_layer("a", 3, 8, 4))
    x = g.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    g.conv_on(x, conv_layer("b", 4, 4, 4))
    assert imported(g).network.inputs_text("b") == "a@avgpool3s2ceil"  # (8 - 3) / 2 rounds up to 4


def test_reserved_characters_in_node_names_are_replaced(tmp_path):
    g = GraphBuilder([1, 3, 8, 8])
    x = g.conv_on("data", conv_layer("block(1)+a", 3, 8, 4))
    g.conv_on(x, conv_layer("b|c", 4, 8, 4))
    network = imported(g).network
    assert inputs_of(network) == {"block_1__a": "", "b_c": "block_1__a"}
    again = load_network(write_network_csv(network, tmp_path / "m.csv"))
    assert again.inputs == network.inputs


def test_constant_operands_reshape_and_matmul():
    from onnx import TensorProto, helper

    g = GraphBuilder([1, 3, 4, 4])
    mean = helper.make_tensor("mean", TensorProto.FLOAT, [1, 3, 1, 1], [0.5, 0.5, 0.5])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 64])
    g.initializers += [mean, shape]
    x = g.node("Sub", ["data", "mean"])  # input normalisation: the first layer still reads the network input
    x = g.node("Relu", [g.conv_on(x, conv_layer("a", 3, 4, 4))])
    x = g.node("Reshape", [x, "shape"])  # (1, 4, 4, 4) -> (1, 64)
    g.matmul([64, 10], name="fc")
    network = imported(g).network
    assert inputs_of(network) == {"a": "", "fc": "a@flatten"}
    assert network.edges == (Edge("a", "fc", (Op("flatten"),), 64, 1, 1, 0),)


def test_convert_writes_the_derived_graph(tmp_path):
    from deepopt_mip.scripts.cli import main

    model = tmp_path / "squeeze.onnx.gz"
    import gzip

    builtin = load_network("squeezenet-v1.1")
    model.write_bytes(gzip.compress(squeezenet_like(builtin).bytes()))
    out = tmp_path / "squeeze.csv"
    assert main(["networks", "--convert", str(model), "--to", str(out)]) == 0
    converted = load_network(out)
    assert converted.layers == builtin.layers and converted.inputs == builtin.inputs


def test_missing_gz_model_is_named_as_onnx(tmp_path):
    from deepopt_mip.formulation.errors import InputError

    with pytest.raises(InputError, match="ONNX file not found"):
        load_network("missing.onnx.gz")
