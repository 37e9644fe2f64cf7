"""The graph of an imported ONNX model: which layers each Conv/Gemm/MatMul layer reads.

Walks back from a layer's data input through the operators that sit between
two layers and writes what it finds as a layer's ``inputs`` expression
(:mod:`~deepopt_mip.formulation.graph`):

* element-wise and normalisation operators (``Relu``, ``LeakyRelu``, ``Clip``,
  ``Sigmoid``, ``Tanh``, ``BatchNormalization``, ``LRN``, ``Dropout``,
  ``Identity``, ...) and ``Add``/``Sub``/``Mul``/``Div`` by a constant change no
  shape and are passed through unwritten;
* ``MaxPool``/``AveragePool`` (equal strides, at most one pixel of asymmetric
  padding, no dilation) become ``maxpool``/``avgpool`` operations, checked
  against ONNX shape inference; ``GlobalAveragePool``/``GlobalMaxPool`` become
  ``globalavgpool``/``globalmaxpool``;
* ``Flatten``, ``Reshape`` and ``Squeeze`` of an (N, C, H, W) tensor to
  (N, C*H*W) become ``flatten``;
* ``Concat`` along the channels becomes a concatenation, ``Add``/``Sum`` of
  equal-shaped tensors an addition (nested ones of the same kind are merged:
  ResNet's chain of residual additions becomes one sum).

Anything else on the way (or the network input inside a concatenation, an
addition or after a pooling) leaves the layer's inputs unknown (``None``,
written ``?``): a chain is never assumed.
"""

from __future__ import annotations

import math
from dataclasses import replace

from deepopt_mip.formulation.graph import NETWORK_INPUT, Group, Inputs, NetworkInput, Op, Producer, with_ops

__all__ = ["InputTracer"]

PASS_THROUGH_OPS = frozenset({
    "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh", "Elu", "Selu", "HardSigmoid", "HardSwish",
    "Softplus", "BatchNormalization", "LRN", "Dropout", "Identity",
})
"""Operators that change no shape; passed through and not written."""

CONSTANT_OPERAND_OPS = frozenset({"Add", "Sub", "Mul", "Div"})
"""Passed through when all but one operand are constants (a bias or a scale)."""

MAX_DEPTH = 500
"""Operators walked back from one layer before its inputs are called unknown."""


def _attrs(node) -> dict:
    import onnx.helper

    out = {}
    for attr in node.attribute:
        try:
            out[attr.name] = onnx.helper.get_attribute_value(attr)
        except Exception:  # an unreadable attribute: the caller treats the operator as unknown
            out[attr.name] = None
    return out


class InputTracer:
    """Derive each layer's inputs from the graph around it.

    ``nodes`` have ``op_type``, ``domain``, ``input``, ``output`` and
    ``attribute``; ``shapes`` maps tensor names to inferred shapes (``None``
    for unknown dimensions); ``layer_of`` maps each layer node's output tensor
    to the layer's name.
    """

    def __init__(self, nodes, shapes: dict, constants: set[str], data_inputs: list[str],
                 layer_of: dict[str, str]) -> None:
        self.producer_of = {out: node for node in nodes for out in node.output if out}
        self.shapes = shapes
        self.constants = constants
        self.data_inputs = set(data_inputs)
        self.layer_of = layer_of
        self.memo: dict[str, Inputs] = {}

    def inputs(self, tensor: str) -> Inputs:
        """What the layer whose data input is ``tensor`` reads (``None`` if not derivable)."""
        return self._trace(tensor, 0)

    # -- the walk -----------------------------------------------------------------------------------
    def _trace(self, tensor: str, depth: int) -> Inputs:
        if tensor in self.memo:
            return self.memo[tensor]
        result = self._trace_uncached(tensor, depth) if depth <= MAX_DEPTH else None
        self.memo[tensor] = result
        return result

    def _trace_uncached(self, tensor: str, depth: int) -> Inputs:
        if tensor in self.layer_of:
            return Producer(self.layer_of[tensor])
        if tensor in self.data_inputs:
            return NETWORK_INPUT
        node = self.producer_of.get(tensor)
        if node is None or node.domain not in ("", "ai.onnx"):
            return None
        op = node.op_type
        data = [i for i in node.input if i and i not in self.constants]
        if op in PASS_THROUGH_OPS:
            return self._trace(node.input[0], depth + 1) if node.input and node.input[0] else None
        if op in CONSTANT_OPERAND_OPS and len(data) == 1:
            return self._trace(data[0], depth + 1)
        if op in ("MaxPool", "AveragePool"):
            return self._then(node, self._pool(node), depth)
        if op in ("GlobalAveragePool", "GlobalMaxPool"):
            return self._then(node, Op(op.lower().replace("average", "avg")), depth)
        if op in ("Flatten", "Reshape", "Squeeze"):
            return self._reshape(node, depth)
        if op == "Concat":
            return self._combine(node, "concat", data, depth) if self._concat_on_channels(node) else None
        if op in ("Add", "Sum"):
            return self._combine(node, "add", data, depth) if self._equal_shapes(data) else None
        return None

    def _then(self, node, op: Op | None, depth: int) -> Inputs:
        """The node's first input traced, then ``op``; unknown if either is."""
        if op is None or not node.input or not node.input[0]:
            return None
        before = self._trace(node.input[0], depth + 1)
        if before is None or isinstance(before, NetworkInput):
            return None
        return with_ops(before, (op,))

    def _combine(self, node, combine: str, data: list[str], depth: int) -> Inputs:
        if len(data) < 2 or len(data) != len([i for i in node.input if i]):
            return None
        parts: list[Producer | Group] = []
        for tensor in data:
            part = self._trace(tensor, depth + 1)
            if part is None or isinstance(part, NetworkInput):
                return None
            if isinstance(part, Group) and part.combine == combine and not part.ops:
                parts.extend(part.parts)
            else:
                parts.append(part)
        names = [p.name for p in parts if isinstance(p, Producer)]
        if len(set(names)) != len(names):
            return None
        return Group(combine, tuple(parts))

    # -- operator details -----------------------------------------------------------------------------
    def _shape(self, tensor: str) -> tuple[int, ...] | None:
        shape = self.shapes.get(tensor)
        if shape is None or any(d is None or d < 1 for d in shape[1:]):
            return None
        return shape

    def _equal_shapes(self, tensors: list[str]) -> bool:
        shapes = [self._shape(t) for t in tensors]
        return all(s is not None for s in shapes) and len({s[1:] for s in shapes}) == 1

    def _concat_on_channels(self, node) -> bool:
        shape = self._shape(node.output[0]) if node.output else None
        axis = _attrs(node).get("axis")
        return shape is not None and isinstance(axis, int) and axis % len(shape) == 1

    def _reshape(self, node, depth: int) -> Inputs:
        before = self._shape(node.input[0]) if node.input and node.input[0] else None
        after = self._shape(node.output[0]) if node.output else None
        if before is None or after is None:
            return None
        if before[1:] == after[1:]:
            return self._trace(node.input[0], depth + 1)
        if len(before) == 4 and len(after) == 2 and after[1] == math.prod(before[1:]):
            return self._then(node, Op("flatten"), depth)
        return None

    def _pool(self, node) -> Op | None:
        """The pooling as an :class:`Op`, if it is one we can write and it matches shape inference."""
        attrs = _attrs(node)
        x = self._shape(node.input[0]) if node.input and node.input[0] else None
        y = self._shape(node.output[0]) if node.output else None
        kernel = attrs.get("kernel_shape")
        if x is None or len(x) != 4 or not isinstance(kernel, list) or len(kernel) != 2:
            return None
        strides = attrs.get("strides", [1, 1])
        dilations = attrs.get("dilations", [1, 1])
        if strides is None or len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1 \
                or dilations != [1, 1] or min(kernel) < 1:
            return None
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad in ("NOTSET", ""):
            pads = attrs.get("pads", [0, 0, 0, 0])
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        else:
            return None  # SAME_*: the output is ceil(size / stride); not written as an explicit pad here
        if pads is None or len(pads) != 4 or min(pads) < 0:
            return None
        top, left, bottom, right = pads
        if top + bottom != left + right or abs(top - bottom) > 1 or abs(left - right) > 1:
            return None
        total = top + bottom
        pad = total // 2 if total % 2 == 0 else total / 2
        kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
        op = Op(kind, int(kernel[0]), int(kernel[1]), int(strides[0]), pad, bool(attrs.get("ceil_mode", 0)))
        try:
            out = op.apply((x[1], x[2], x[3]))
            if op.ceil and replace(op, ceil=False).apply((x[1], x[2], x[3])) == out:
                op = replace(op, ceil=False)  # written only where rounding up changes the size
        except ValueError:
            return None
        if y is None or len(y) != 4 or tuple(y[1:]) != out:
            return None
        return op
