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
