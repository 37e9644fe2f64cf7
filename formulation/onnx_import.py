"""Import a workload from an ONNX model: its Conv, Gemm and MatMul-as-FC layers.

``load_network("model.onnx")`` calls :func:`import_onnx` and keeps the
network; the command line calls :func:`import_onnx` itself to print the
one-line :attr:`OnnxImport.summary` of what was skipped (the library prints
nothing).

What becomes a layer (shapes from ``onnx.shape_inference``; weights are never
read, so a model whose weights live in external data files loads without them):

* ``Conv`` over a 4-D (N, C, H, W) input: kind ``conv``, ``groups`` from the
  attribute, stride from ``strides`` (equal in both axes), padding from
  ``pads`` or ``auto_pad``. Our layers have one per-side ``pad`` for both axes,
  a multiple of 0.5: the padding of each axis must total the same, and the two
  sides of an axis may differ by at most one pixel (``2 + 3`` is ``pad 2.5``).
  Anything else (other asymmetric padding, different strides or paddings per
  axis, dilation other than 1, 1-D or 3-D convolution) is rejected with the
  node's name. Conv layers get batch 1, as the built-in networks do.
* ``Gemm`` (2-D, optionally transposed operands) and ``MatMul`` of a 2-D
  activation by a 2-D constant weight (an initializer or a ``Constant``):
  kind ``fc`` with ``channels`` = inputs and ``filters`` = outputs, and the
  network's batch (the first dimension of the graph's data input, or the
  ``batch`` argument, which overrides it; 1 when the dimension is symbolic).

Every other operator is skipped and counted in the summary; pooling carries
no MACs in this model and is noted as fusable into the layer before it.

A gzip-compressed model (``model.onnx.gz``, or any file starting with the gzip
magic bytes) is decompressed in memory, up to :data:`MAX_ONNX_BYTES`.

FC layers take the batch of the graph's input (often 1), while the built-in
networks run their FC layers at batch 16: the summary says so, since an
imported ResNet-50 and the built-in one compare only with ``--batch 16``.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from deepopt_mip.formulation.errors import GZIP_MAGIC, InputError, read_input_bytes
from deepopt_mip.formulation.graph import RESERVED_CHARACTERS, GraphError, derive_edges
from deepopt_mip.formulation.layers import Layer
from deepopt_mip.formulation.onnx_graph import InputTracer
from deepopt_mip.formulation.workload import Network

__all__ = ["OnnxImport", "import_onnx", "parse_onnx_bytes", "ONNX_MISSING", "ONNX_SUFFIXES", "MAX_ONNX_BYTES"]

ONNX_MISSING = "ONNX import needs the onnx package: pip install 'deepopt-mip[onnx]'"

ONNX_SUFFIXES = (".onnx", ".onnx.gz")
"""File names ending in these (any case) are ONNX models."""

MAX_ONNX_BYTES = 2**31 - 1
"""Largest decompressed model accepted: protobuf cannot parse a larger message,
and the cap keeps a gzip bomb from filling the memory."""

BUILTIN_FC_BATCH = 16
"""The batch of the built-in networks' FC layers (the DeepOpt reference's default)."""

POOLING_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
                         "GlobalLpPool", "MaxRoiPool", "MaxUnpool"})
"""Skipped operators noted as fusable: they have no MACs in this model."""


@dataclass(frozen=True)
class OnnxImport:
    """The imported network, the operators left out (type -> count) and a one-line summary."""

    network: Network
    batch: int
    skipped: tuple[tuple[str, int], ...]
    summary: str


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return _one_line(f"{type(exc).__name__}: {line}" if line else type(exc).__name__)[:300]


def _layer_name(node_name: str) -> str:
    """A node's name as a layer name: one line, the characters reserved by ``inputs`` replaced by ``_``."""
    name = _one_line(node_name)
    for ch in RESERVED_CHARACTERS:
        name = name.replace(ch, "_")
    return name


def _require_onnx(label: str):
    try:
        import onnx  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError:
        raise InputError(f"{label}: {ONNX_MISSING}") from None
    return onnx


def import_onnx(path: str | os.PathLike, batch: int | None = None, name: str | None = None) -> OnnxImport:
    """Read an ONNX file into a :class:`~deepopt_mip.formulation.networks.Network`.

    ``batch`` (a positive integer) overrides the batch of the FC layers; the
    network is named ``name`` or after the file's stem. Any problem raises
    :class:`InputError` with one line naming the file (and the node, where
    one is at fault).
    """
    path = Path(path)
    label = str(path)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise InputError(f"{label}: batch must be a positive integer, got {batch!r}")
    _require_onnx(label)
    data = read_input_bytes(path, "ONNX file", label)
    return parse_onnx_bytes(data, label=label, name=name or onnx_stem(path), batch=batch)


def onnx_stem(path: str | os.PathLike) -> str:
    """The network name of a model file: its name without ``.onnx`` or ``.onnx.gz``."""
    file_name = Path(path).name
    for suffix in sorted(ONNX_SUFFIXES, key=len, reverse=True):
        if file_name.lower().endswith(suffix) and len(file_name) > len(suffix):
            return file_name[: -len(suffix)]
    return Path(path).stem


def _gunzip(data: bytes, label: str) -> bytes:
    """The decompressed bytes of a gzip stream, at most :data:`MAX_ONNX_BYTES` of them."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read(MAX_ONNX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{label}: gzip-compressed but corrupt ({_first_line(exc)})") from None
    if len(out) > MAX_ONNX_BYTES:
        raise InputError(f"{label}: gzip-compressed model larger than {MAX_ONNX_BYTES} bytes when decompressed")
    return out


def parse_onnx_bytes(data: bytes, label: str, name: str, batch: int | None = None) -> OnnxImport:
    """:func:`import_onnx` on the bytes of a model (``label`` names it in messages)."""
    onnx = _require_onnx(label)
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, label)
    if not data:
        raise InputError(f"{label}: empty file, not an ONNX model")
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and others on bad bytes
        raise InputError(f"{label}: not an ONNX model ({_first_line(exc)})") from None
    graph = model.graph
    if not model.ir_version or not graph.node:
        raise InputError(f"{label}: not an ONNX model, or one with an empty graph "
                         f"(ir_version {model.ir_version}, {len(graph.node)} nodes)")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # InferenceError, ValidationError, RuntimeError on malformed graphs
        raise InputError(f"{label}: ONNX shape inference failed ({_first_line(exc)})") from None
    return _Importer(inferred.graph, label, name, batch).run()


def _s(value) -> str:
    """A protobuf string field as text (invalid UTF-8 may come back as bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


@dataclass(frozen=True)
class _Node:
    op_type: str
    name: str
    domain: str
    input: tuple[str, ...]
    output: tuple[str, ...]
    attribute: tuple  # the AttributeProtos


class _Importer:
    def __init__(self, graph, label: str, name: str, batch: int | None) -> None:
        self.label = label
        self.name = name
        self.batch_override = batch
        self.nodes = [_Node(op_type=_s(n.op_type), name=_s(n.name), domain=_s(n.domain),
                            input=tuple(_s(i) for i in n.input), output=tuple(_s(o) for o in n.output),
                            attribute=tuple(n.attribute)) for n in graph.node]
        self.initializers = {_s(t.name) for t in graph.initializer}
        self.data_inputs = [_s(i.name) for i in graph.input if _s(i.name) not in self.initializers]
        self.constants = set(self.initializers)
        self.shapes: dict[str, tuple[int | None, ...] | None] = {}
        for tensor in graph.initializer:
            self.shapes[_s(tensor.name)] = tuple(int(d) for d in tensor.dims)
        for info in (*graph.input, *graph.value_info, *graph.output):
            if _s(info.name) not in self.shapes:
                self.shapes[_s(info.name)] = _value_info_shape(info)
        for node, proto in zip(self.nodes, graph.node):
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                self.constants.update(o for o in node.output if o)
                shape = _constant_shape(proto)
                if shape is not None and node.output:
                    self.shapes.setdefault(node.output[0], shape)

    # -- helpers --------------------------------------------------------------
    def fail(self, node_label: str, message: str) -> InputError:
        return InputError(f"{self.label}: {node_label}: {_one_line(message)}")

    def shape(self, tensor: str, node_label: str, what: str, rank: int | None = None) -> tuple[int, ...]:
        shape = self.shapes.get(tensor)
        if shape is None:
            raise self.fail(node_label, f"{what} {tensor!r} has no shape from ONNX shape inference")
        if rank is not None and len(shape) != rank:
            raise self.fail(node_label, f"{what} {tensor!r} has rank {len(shape)} (shape {_fmt(shape)}), "
                                        f"expected {rank}")
        return shape

    def dims(self, shape: tuple, indices, node_label: str, what: str) -> list[int]:
        out = []
        for i in indices:
            d = shape[i]
            if d is None or d < 1:
                raise self.fail(node_label, f"{what} dimension {i} of shape {_fmt(shape)} is not a known "
                                            "positive size (symbolic or unknown after shape inference)")
            out.append(int(d))
        return out

    def data_batch(self) -> tuple[int, str]:
        """(batch, where it came from) for the FC layers."""
        if self.batch_override is not None:
            return self.batch_override, "--batch"
        if not self.data_inputs:
            return 1, "default, the graph has no data input"
        name = self.data_inputs[0]
        shape = self.shapes.get(name)
        if not shape:
            return 1, f"default, input {_one_line(name)!r} has no shape"
        first = shape[0]
        if first is None or first < 1:
            return 1, f"default, input {_one_line(name)!r} has a symbolic batch dimension"
        return int(first), f"input {_one_line(name)!r}"

    # -- the walk ---------------------------------------------------------------
    def run(self) -> OnnxImport:
        batch, batch_source = self.data_batch()
        layers: list[Layer] = []
        skipped: Counter = Counter()
        used_names: set[str] = set()
        op_count: Counter = Counter()
        layer_of: dict[str, str] = {}  # a layer node's output tensor -> the layer's name
        data_input: list[str] = []  # each layer's data input tensor
        for node in self.nodes:
            op = node.op_type
            op_count[op] += 1
            base = _layer_name(node.name) or f"{_one_line(op).lower() or 'node'}_{op_count[op]}"
            node_label = f"node {base!r} ({op})"
            if node.domain not in ("", "ai.onnx"):
                skipped[_one_line(f"{node.domain}.{op}")] += 1
                continue
            layer_kwargs = None
            if op == "Conv":
                layer_kwargs = self.conv(node, node_label)
            elif op == "Gemm":
                layer_kwargs = self.gemm(node, node_label, batch)
            elif op == "MatMul":
                layer_kwargs = self.matmul(node, node_label, batch)
                if isinstance(layer_kwargs, str):
                    skipped[f"MatMul ({layer_kwargs})"] += 1
                    continue
            else:
                skipped[_one_line(op) or "(no op_type)"] += 1
                continue
            layer_name = base
            suffix = 2
            while layer_name in used_names:
                layer_name = f"{base}_{suffix}"
                suffix += 1
            used_names.add(layer_name)
            if node.output and node.output[0]:
                layer_of[node.output[0]] = layer_name
            data_input.append(node.input[0])
            try:
                layers.append(Layer(name=layer_name, **layer_kwargs))
            except InputError as exc:
                message = str(exc)
                prefix = f"layer {layer_name!r}: "
                raise self.fail(node_label, message[len(prefix):] if message.startswith(prefix) else message) from None
        if not layers:
            ops = ", ".join(f"{op} x{n}" for op, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
            raise InputError(f"{self.label}: no Conv, Gemm or MatMul-as-FC layer in the graph "
                             f"(operators: {ops or 'none'})")
        tracer = InputTracer(self.nodes, self.shapes, self.constants, self.data_inputs, layer_of)
        inputs = [tracer.inputs(tensor) for tensor in data_input]
        network = self.network(layers, inputs)
        skipped_items = tuple(sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])))
        return OnnxImport(network=network, batch=batch, skipped=skipped_items,
                          summary=_summary(self.label, network, batch, batch_source, skipped_items))

    def network(self, layers: list[Layer], inputs: list) -> Network:
        """The network with the derived graph; a layer whose derived inputs do not fit its shape gets ``None``."""
        for _ in range(len(layers)):
            try:
                derive_edges(layers, inputs)
                break
            except GraphError as exc:
                inputs[exc.index] = None
        try:
            return Network(name=self.name, layers=tuple(layers), source=self.label, inputs=tuple(inputs))
        except InputError as exc:
            raise InputError(f"{self.label}: {_one_line(exc)}") from None

    def conv(self, node, node_label: str) -> dict:
        if len(node.input) < 2 or not node.input[0] or not node.input[1]:
            raise self.fail(node_label, "a Conv needs an input and a weight")
        attrs = _attributes(node, node_label, self)
        x = self.shape(node.input[0], node_label, "input", rank=None)
        if len(x) != 4:
            raise self.fail(node_label, f"only 2-D convolutions (4-D N,C,H,W input) are supported; "
                                        f"input {node.input[0]!r} has shape {_fmt(x)}")
        w = self.shape(node.input[1], node_label, "weight", rank=4)
        channels, height, width = self.dims(x, (1, 2, 3), node_label, "input")
        filters, group_channels, kh, kw = self.dims(w, (0, 1, 2, 3), node_label, "weight")
        groups = _int_attr(attrs, "group", 1, node_label, self)
        if groups < 1:
            raise self.fail(node_label, f"group must be >= 1, got {groups}")
        if group_channels * groups != channels:
            raise self.fail(node_label, f"weight {_fmt(w)} with group {groups} expects {group_channels * groups} "
                                        f"input channels, the input has {channels}")
        kernel = _ints_attr(attrs, "kernel_shape", None, node_label, self)
        if kernel is not None and list(kernel) != [kh, kw]:
            raise self.fail(node_label, f"kernel_shape {list(kernel)} does not match the weight's {kh}x{kw}")
        dilations = _ints_attr(attrs, "dilations", [1, 1], node_label, self)
        if list(dilations) != [1, 1]:
            raise self.fail(node_label, f"dilations {list(dilations)} are not supported (only 1)")
        strides = _ints_attr(attrs, "strides", [1, 1], node_label, self)
        if len(strides) != 2 or any(s < 1 for s in strides):
            raise self.fail(node_label, f"strides {list(strides)}: expected two positive values")
        if strides[0] != strides[1]:
            raise self.fail(node_label, f"strides {list(strides)} differ between height and width "
                                        "(our layers have one stride)")
        stride = strides[0]
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode("utf-8", "replace") if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad in ("NOTSET", ""):
            pads = _ints_attr(attrs, "pads", [0, 0, 0, 0], node_label, self)
            if len(pads) != 4 or any(p < 0 for p in pads):
                raise self.fail(node_label, f"pads {list(pads)}: expected four values >= 0 "
                                            "(top, left, bottom, right)")
            top, left, bottom, right = pads
        elif auto_pad == "VALID":
            top = left = bottom = right = 0
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            (top, bottom), (left, right) = (_same_pads(n, k, stride, auto_pad)
                                            for n, k in ((height, kh), (width, kw)))
        else:
            raise self.fail(node_label, f"auto_pad {auto_pad!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
        if top + bottom != left + right:
            raise self.fail(node_label, f"padding (top, left, bottom, right) = ({top}, {left}, {bottom}, {right}) "
                                        "differs between height and width (our layers have one pad for both)")
        if abs(top - bottom) > 1 or abs(left - right) > 1:
            raise self.fail(node_label, f"padding (top, left, bottom, right) = ({top}, {left}, {bottom}, {right}) "
                                        "is asymmetric by more than one pixel (our per-side pad may only be a "
                                        "multiple of 0.5)")
        total = top + bottom
        pad = total // 2 if total % 2 == 0 else total / 2
        ofmap_h = (height + total - kh) // stride + 1
        ofmap_w = (width + total - kw) // stride + 1
        if kh > height + total or kw > width + total:
            raise self.fail(node_label, f"filter {kh}x{kw} is larger than the padded input "
                                        f"{height + total}x{width + total}")
        y = self.shapes.get(node.output[0]) if node.output and node.output[0] else None
        if y is not None and len(y) == 4:
            expected = (filters, ofmap_h, ofmap_w)
            for got, want, what in zip(y[1:], expected, ("channels", "height", "width")):
                if got is not None and got >= 1 and got != want:
                    raise self.fail(node_label, f"output {what} {got} from shape inference does not match "
                                                f"{want} computed from the attributes")
        return dict(kind="conv", ifmap_h=height, ifmap_w=width, pad=pad, channels=channels, filter_h=kh,
                    filter_w=kw, filters=filters, ofmap_h=ofmap_h, ofmap_w=ofmap_w, stride=stride, groups=groups,
                    batch=1)

    def gemm(self, node, node_label: str, batch: int) -> dict:
        if len(node.input) < 2 or not node.input[0] or not node.input[1]:
            raise self.fail(node_label, "a Gemm needs two inputs")
        attrs = _attributes(node, node_label, self)
        a = self.shape(node.input[0], node_label, "input A", rank=2)
        b = self.shape(node.input[1], node_label, "input B", rank=2)
        trans_a = _int_attr(attrs, "transA", 0, node_label, self)
        trans_b = _int_attr(attrs, "transB", 0, node_label, self)
        b_in, b_out = (1, 0) if trans_b else (0, 1)
        inputs, outputs = self.dims(b, (b_in, b_out), node_label, "input B")
        a_k = a[0] if trans_a else a[1]
        if a_k is not None and a_k >= 1 and a_k != inputs:
            raise self.fail(node_label, f"input A {_fmt(a)}{' (transposed)' if trans_a else ''} has {a_k} "
                                        f"features, B {_fmt(b)}{' (transposed)' if trans_b else ''} expects {inputs}")
        return _fc(inputs, outputs, batch)

    def matmul(self, node, node_label: str, batch: int) -> dict | str:
        """The FC layer of a MatMul by a constant 2-D weight, or why it is not one."""
        if len(node.input) < 2 or not node.input[0] or not node.input[1]:
            raise self.fail(node_label, "a MatMul needs two inputs")
        if node.input[1] not in self.constants:
            return "not FC: no constant weight"
        a = self.shapes.get(node.input[0])
        b = self.shapes.get(node.input[1])
        if b is None or len(b) != 2:
            return "not FC: weight not 2-D"
        if a is None or len(a) != 2:
            return "not FC: input not 2-D"
        inputs, outputs = self.dims(b, (0, 1), node_label, "weight")
        if a[1] is not None and a[1] >= 1 and a[1] != inputs:
            raise self.fail(node_label, f"input {_fmt(a)} has {a[1]} features, the weight {_fmt(b)} expects {inputs}")
        return _fc(inputs, outputs, batch)


def _fc(inputs: int, outputs: int, batch: int) -> dict:
    return dict(kind="fc", ifmap_h=1, ifmap_w=1, pad=0, channels=inputs, filter_h=1, filter_w=1, filters=outputs,
                ofmap_h=1, ofmap_w=1, stride=1, groups=1, batch=batch)


def _same_pads(size: int, kernel: int, stride: int, mode: str) -> tuple[int, int]:
    """(begin, end) padding of ONNX auto_pad SAME_UPPER / SAME_LOWER along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if mode == "SAME_UPPER" else (large, small)


def _value_info_shape(info) -> tuple[int | None, ...] | None:
    t = info.type
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim)


def _constant_shape(node) -> tuple[int, ...] | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.HasField("t"):
            return tuple(int(d) for d in attr.t.dims)
    return None


def _attributes(node, node_label: str, importer: _Importer) -> dict:
    import onnx.helper

    out = {}
    for attr in node.attribute:
        key = _s(attr.name)
        try:
            out[key] = onnx.helper.get_attribute_value(attr)
        except Exception as exc:
            raise importer.fail(node_label, f"attribute {_one_line(key)!r} cannot be read ({_first_line(exc)})") from None
    return out


def _int_attr(attrs: dict, key: str, default: int, node_label: str, importer: _Importer) -> int:
    value = attrs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise importer.fail(node_label, f"attribute {key!r} must be an integer, got {_one_line(repr(value))[:60]}")
    return value


def _ints_attr(attrs: dict, key: str, default, node_label: str, importer: _Importer):
    if key not in attrs:
        return default
    value = attrs[key]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise importer.fail(node_label, f"attribute {key!r} must be a list of integers, "
                                        f"got {_one_line(repr(value))[:60]}")
    return list(value)


def _fmt(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _summary(label: str, network, batch: int, batch_source: str, skipped: tuple[tuple[str, int], ...]) -> str:
    conv = sum(layer.kind == "conv" for layer in network.layers)
    fc = len(network.layers) - conv
    head = f"{label}: imported {len(network.layers)} layers ({conv} conv, {fc} fc; fc batch {batch} from {batch_source}"
    if fc and batch != BUILTIN_FC_BATCH and batch_source != "--batch":
        head += f"; the built-in networks run FC layers at batch {BUILTIN_FC_BATCH}: add --batch {BUILTIN_FC_BATCH} to compare with them"
    head += ")"
    unknown = sum(entry is None for entry in network.inputs)
    graph = f"; graph: {len(network.edges)} edges between layers"
    if unknown:
        graph += f", inputs of {unknown} layer{'s' if unknown > 1 else ''} not derived (written ?)"
    if not skipped:
        return head + "; no operators skipped" + graph
    other = [f"{op} x{count}" for op, count in skipped if op not in POOLING_OPS]
    pooling = [f"{op} x{count}" for op, count in skipped if op in POOLING_OPS]
    text = head + f"; skipped {sum(c for _, c in skipped)} operators: " + (", ".join(other) or "none but pooling")
    if pooling:
        text += "; pooling (no MACs, fusable into the layer before): " + ", ".join(pooling)
    return text + graph
