"""Small ONNX models built with onnx.helper for the tests (no downloads).

Weights are initializers whose data are said to live in an external file
that does not exist: the importer reads shapes only, so models as large as
AlexNet stay a few hundred bytes.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

OPSET = 17


def weight(name: str, dims) -> TensorProto:
    """A float initializer of shape ``dims`` whose data are external (never read)."""
    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = TensorProto.FLOAT
    tensor.dims.extend(int(d) for d in dims)
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    return tensor


class GraphBuilder:
    """Append nodes one after the other; each node reads the previous output."""

    def __init__(self, input_shape, input_name: str = "data") -> None:
        self.inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))]
        self.nodes: list = []
        self.initializers: list = []
        self.last = input_name
        self.count = 0

    def _out(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def conv(self, weight_shape, name: str | None = "", **attrs) -> "GraphBuilder":
        w = f"w{self.count + 1}"
        self.initializers.append(weight(w, weight_shape))
        out = self._out()
        self.nodes.append(helper.make_node("Conv", [self.last, w], [out], name=name or "", **attrs))
        self.last = out
        return self

    def gemm(self, weight_shape, name: str | None = "", **attrs) -> "GraphBuilder":
        w = f"w{self.count + 1}"
        self.initializers.append(weight(w, weight_shape))
        out = self._out()
        self.nodes.append(helper.make_node("Gemm", [self.last, w], [out], name=name or "", **attrs))
        self.last = out
        return self

    def matmul(self, weight_shape, name: str | None = "") -> "GraphBuilder":
        w = f"w{self.count + 1}"
        self.initializers.append(weight(w, weight_shape))
        out = self._out()
        self.nodes.append(helper.make_node("MatMul", [self.last, w], [out], name=name or ""))
        self.last = out
        return self

    def op(self, op_type: str, name: str = "", extra_inputs=(), **attrs) -> "GraphBuilder":
        out = self._out()
        self.nodes.append(helper.make_node(op_type, [self.last, *extra_inputs], [out], name=name, **attrs))
        self.last = out
        return self

    # -- graphs that branch: explicit tensor names ---------------------------------------------------
    def node(self, op_type: str, inputs, name: str = "", **attrs) -> str:
        """Append one node reading the tensors ``inputs``; return its output (also the new ``last``)."""
        out = self._out()
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        self.last = out
        return out

    def conv_on(self, x: str, layer) -> str:
        """A Conv node with the shape of ``layer`` (a formulation Layer) reading tensor ``x``; its output."""
        w = f"w{self.count + 1}"
        self.initializers.append(weight(w, [layer.filters, layer.channels // layer.groups,
                                            layer.filter_h, layer.filter_w]))
        low, high = int(layer.pad), int(layer.pad + 0.5)  # pad 2.5: 2 before, 3 after
        return self.node("Conv", [x, w], name=layer.name, strides=[layer.stride] * 2, pads=[low, low, high, high],
                         group=layer.groups)

    def gemm_on(self, x: str, layer) -> str:
        w = f"w{self.count + 1}"
        self.initializers.append(weight(w, [layer.filters, layer.channels]))
        return self.node("Gemm", [x, w], name=layer.name, transB=1)

    def model(self) -> onnx.ModelProto:
        output = helper.make_tensor_value_info(self.last, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, "test", self.inputs, [output], initializer=self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])

    def bytes(self) -> bytes:
        return self.model().SerializeToString()


def alexnet_like(batch: int = 16) -> GraphBuilder:
    """AlexNet (Caffe BVLC shapes, as data/networks/alexnet.csv): conv2/4/5 with group 2, batch ``batch``."""
    g = GraphBuilder([batch, 3, 227, 227])
    g.conv([96, 3, 11, 11], name="conv1", strides=[4, 4]).op("Relu")
    g.op("LRN", size=5).op("MaxPool", kernel_shape=[3, 3], strides=[2, 2])
    g.conv([256, 48, 5, 5], name="conv2", pads=[2, 2, 2, 2], group=2).op("Relu")
    g.op("LRN", size=5).op("MaxPool", kernel_shape=[3, 3], strides=[2, 2])
    g.conv([384, 256, 3, 3], name="conv3", pads=[1, 1, 1, 1]).op("Relu")
    g.conv([384, 192, 3, 3], name="conv4", pads=[1, 1, 1, 1], group=2).op("Relu")
    g.conv([256, 192, 3, 3], name="conv5", pads=[1, 1, 1, 1], group=2).op("Relu")
    g.op("MaxPool", kernel_shape=[3, 3], strides=[2, 2]).op("Flatten")
    g.gemm([4096, 9216], name="fc6", transB=1).op("Relu").op("Dropout")
    g.gemm([4096, 4096], name="fc7", transB=1).op("Relu").op("Dropout")
    g.gemm([4096, 1000], name="fc8").op("Softmax")
    return g


def squeezenet_like(network) -> GraphBuilder:
    """SqueezeNet v1.1 as published (Caffe deploy.prototxt), with the layer shapes of ``network``
    (the built-in): fire modules squeeze -> expand1x1, expand3x3 -> Concat; max pooling 3x3/2 with
    ceil_mode after conv1, fire3 and fire5; global average pooling after conv10."""
    g = GraphBuilder([1, 3, 227, 227])
    layer = network.layer
    x = g.node("Relu", [g.conv_on("data", layer("conv1"))])
    x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    for f in range(2, 10):
        s = g.node("Relu", [g.conv_on(x, layer(f"fire{f}/squeeze1x1"))])
        e1 = g.node("Relu", [g.conv_on(s, layer(f"fire{f}/expand1x1"))])
        e3 = g.node("Relu", [g.conv_on(s, layer(f"fire{f}/expand3x3"))])
        x = g.node("Concat", [e1, e3], axis=1)
        if f in (3, 5):
            x = g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = g.node("Dropout", [x])
    x = g.node("Relu", [g.conv_on(x, layer("conv10"))])
    g.node("GlobalAveragePool", [x])
    return g


def googlenet_like(network, batch: int = 16) -> GraphBuilder:
    """GoogLeNet v1 as published (Caffe bvlc_googlenet), with the layer shapes of ``network`` (the
    built-in), inception branches in the built-in's order (3x3_reduce, 5x5_reduce, 1x1, 3x3, 5x5,
    pool_proj) and concatenated 1x1|3x3|5x5|pool_proj; max pooling 3x3/2 with ceil_mode."""
    g = GraphBuilder([batch, 3, 224, 224])
    layer = network.layer

    def pool(x, stride=2):
        pads = [1, 1, 1, 1] if stride == 1 else [0, 0, 0, 0]
        return g.node("MaxPool", [x], kernel_shape=[3, 3], strides=[stride] * 2, pads=pads, ceil_mode=int(stride == 2))

    x = g.node("Relu", [g.conv_on("data", layer("conv1/7x7_s2"))])
    x = g.node("LRN", [pool(x)], size=5)
    x = g.node("Relu", [g.conv_on(x, layer("conv2/3x3_reduce"))])
    x = g.node("Relu", [g.conv_on(x, layer("conv2/3x3"))])
    x = pool(g.node("LRN", [x], size=5))
    for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        out = {}
        for branch in ("3x3_reduce", "5x5_reduce", "1x1"):
            out[branch] = g.node("Relu", [g.conv_on(x, layer(f"inception_{m}/{branch}"))])
        out["3x3"] = g.node("Relu", [g.conv_on(out["3x3_reduce"], layer(f"inception_{m}/3x3"))])
        out["5x5"] = g.node("Relu", [g.conv_on(out["5x5_reduce"], layer(f"inception_{m}/5x5"))])
        out["pool_proj"] = g.node("Relu", [g.conv_on(pool(x, stride=1), layer(f"inception_{m}/pool_proj"))])
        x = g.node("Concat", [out["1x1"], out["3x3"], out["5x5"], out["pool_proj"]], axis=1)
        if m in ("3b", "4e"):
            x = pool(x)
    x = g.node("AveragePool", [x], kernel_shape=[7, 7], strides=[1, 1])
    x = g.node("Flatten", [g.node("Dropout", [x])])
    g.gemm_on(x, layer("loss3/classifier"))
    return g


def resnet_block_like() -> GraphBuilder:
    """A conv, then a bottleneck with BatchNorm and an identity shortcut, twice, then a classifier:
    the second block's input is the first block's sum, its output the sum of three layers' outputs."""
    g = GraphBuilder([1, 3, 16, 16])
    from deepopt_mip.formulation.layers import Layer

    def batch_norm(x, channels):
        params = [f"bn{len(g.initializers)}_{p}" for p in ("s", "b", "m", "v")]
        g.initializers.extend(weight(n, [channels]) for n in params)
        return g.node("BatchNormalization", [x, *params])

    def conv(x, name, c, f, k=1, pad=0):
        out = g.conv_on(x, Layer(name, "conv", 8, 8, pad, c, k, k, f, 8 + 2 * pad - k + 1, 8 + 2 * pad - k + 1))
        return g.node("Relu", [batch_norm(out, f)])

    stem = g.conv_on("data", Layer("stem", "conv", 16, 16, 1, 3, 3, 3, 8, 16, 16))
    x = g.node("MaxPool", [g.node("Relu", [stem])], kernel_shape=[2, 2], strides=[2, 2])
    for block in ("b1", "b2"):
        y = conv(x, f"{block}_a", 8, 4)
        y = conv(y, f"{block}_b", 4, 4, 3, 1)
        out = g.conv_on(y, Layer(f"{block}_c", "conv", 8, 8, 0, 4, 1, 1, 8, 8, 8))
        x = g.node("Relu", [g.node("Add", [batch_norm(out, 8), x])])
    x = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    g.gemm_on(x, Layer("fc", "fc", 1, 1, 0, 8, 1, 1, 10, 1, 1))
    return g
