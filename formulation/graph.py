"""The network as a graph: which layers' outputs each layer reads, and what lies between.

Each layer of a network may say where its input comes from (the optional
``inputs`` column of a network file, format in ``data/networks/README.md``)::

    ""                                       the network's input
    "?"                                      not known (a chain is never assumed)
    "conv1@maxpool3s2"                       conv1's output after a 3x3 stride-2 max pooling
    "a|b|c"                                  a, b and c concatenated along the channels, in this order
    "a+b"                                    a and b added element-wise (equal shapes)
    "(a|b)@maxpool3s2ceil@maxpool3s1p1"      operations after a concatenation
    "(a+b+c)@trim1"                          the consumer does not read the last row and column

Grammar (spaces around the symbols are ignored)::

    inputs := "" | "?" | expr
    expr   := term ("|" term)* | term ("+" term)*      (one combinator per level)
    term   := (NAME | "(" expr ")") ("@" OP)*

Operations (``OP``, see :class:`Op`): ``maxpool`` / ``avgpool`` with kernel,
stride, optional pad and ``ceil`` (``maxpool3s2``, ``maxpool3x2s1p1``,
``avgpool7s1``, ``maxpool3s2ceil``), ``globalmaxpool``, ``globalavgpool``,
``flatten`` (C x H x W to C*H*W features, before an FC layer) and ``trimN``
(the last N rows and columns of the tensor are not part of the consumer's
listed ifmap; allowed only as the last operation, and only where the
consumer's filter never reads them). Element-wise and normalisation
operators (ReLU, BatchNorm, LRN, Dropout) change no shape and are not written.

Only names of earlier layers may appear (layers are listed in execution
order). :func:`derive_edges` checks every layer's inputs against the shapes:
the result of the expression, from the producers' output shapes, must be the
consumer's unpadded ifmap (``channels`` x ``ifmap_h`` x ``ifmap_w``; an FC
layer's is ``channels`` x 1 x 1). Shapes are per image: a consumer with a
larger ``batch`` (the built-ins' FC layers) reads the outputs of that many
runs of its producers.

This module is part of the workload: it does not import the cost model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

__all__ = [
    "Edge",
    "GraphError",
    "Group",
    "NETWORK_INPUT",
    "NetworkInput",
    "Op",
    "Producer",
    "RESERVED_CHARACTERS",
    "derive_edges",
    "format_inputs",
    "parse_inputs",
    "parse_op",
    "producer_names",
    "with_ops",
]

RESERVED_CHARACTERS = "+|@()?"
"""Characters a layer name may not contain in a network with a graph (they are the syntax of ``inputs``)."""

UNKNOWN_TEXT = "?"

POOL_KINDS = ("maxpool", "avgpool")
GLOBAL_KINDS = ("globalmaxpool", "globalavgpool")
COMBINE_KINDS = {"|": "concat", "+": "add"}

Shape = tuple[int, int, int]
"""(channels, height, width) of one image's tensor."""


class GraphError(ValueError):
    """A problem with the inputs of layer number ``index`` (0-based); the message names no file."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class Op:
    """One operation between a producer and its consumer.

    ``kind`` is ``maxpool``/``avgpool`` (``kernel_h`` x ``kernel_w``, ``stride``,
    per-side ``pad``, ``ceil``), ``globalmaxpool``/``globalavgpool``,
    ``flatten``, ``trim`` (``rows`` last rows and columns dropped), or, in an
    :class:`Edge`'s ``ops``, the combinators ``concat`` and ``add``.
    """

    kind: str
    kernel_h: int = 0
    kernel_w: int = 0
    stride: int = 0
    pad: float = 0
    ceil: bool = False
    rows: int = 0

    def __str__(self) -> str:
        if self.kind in POOL_KINDS:
            kernel = f"{self.kernel_h}" if self.kernel_h == self.kernel_w else f"{self.kernel_h}x{self.kernel_w}"
            pad = f"p{self.pad:g}" if self.pad else ""
            return f"{self.kind}{kernel}s{self.stride}{pad}{'ceil' if self.ceil else ''}"
        if self.kind == "trim":
            return f"trim{self.rows}"
        return self.kind

    def apply(self, shape: Shape) -> Shape:
        """The shape after this operation (ValueError if it cannot apply).

        Pooling: ``out = floor((H + 2*pad - kernel) / stride) + 1``; with
        ``ceil``, ``ceil(...)`` instead, less one if the last window would
        start in the padding (Caffe's and PyTorch's rule).
        """
        channels, height, width = shape
        if self.kind in POOL_KINDS:
            return channels, self._pooled(height, self.kernel_h, "height"), self._pooled(width, self.kernel_w, "width")
        if self.kind in GLOBAL_KINDS:
            return channels, 1, 1
        if self.kind == "flatten":
            return channels * height * width, 1, 1
        if self.kind == "trim":
            if self.rows >= min(height, width):
                raise ValueError(f"{self} leaves nothing of a {height}x{width} tensor")
            return channels, height - self.rows, width - self.rows
        raise ValueError(f"{self.kind!r} is not an operation on one tensor")

    def _pooled(self, size: int, kernel: int, axis: str) -> int:
        span = size + 2 * self.pad - kernel
        if span < 0:
            raise ValueError(f"{self}: kernel {kernel} is larger than the padded {axis} {size + 2 * self.pad:g}")
        if not self.ceil:
            return int(span // self.stride) + 1
        out = math.ceil(span / self.stride) + 1
        if self.pad and (out - 1) * self.stride >= size + self.pad:
            out -= 1
        return out


_POOL = re.compile(r"(maxpool|avgpool)(\d+)(?:x(\d+))?s(\d+)(?:p(\d+(?:\.5)?))?(ceil)?")
_TRIM = re.compile(r"trim(\d+)")


def parse_op(text: str) -> Op:
    """An :class:`Op` from its token (ValueError naming the accepted forms if it is none)."""
    token = text.strip().lower()
    match = _POOL.fullmatch(token)
    if match:
        kind, kh, kw, stride, pad, ceil = match.groups()
        kernel_h, kernel_w, stride_, pad_ = int(kh), int(kw or kh), int(stride), float(pad or 0)
        if min(kernel_h, kernel_w, stride_) < 1:
            raise ValueError(f"operation {text.strip()!r}: kernel and stride must be positive")
        return Op(kind, kernel_h, kernel_w, stride_, int(pad_) if pad_.is_integer() else pad_, bool(ceil))
    match = _TRIM.fullmatch(token)
    if match and int(match.group(1)) >= 1:
        return Op("trim", rows=int(match.group(1)))
    if token in (*GLOBAL_KINDS, "flatten"):
        return Op(token)
    raise ValueError(f"unknown operation {text.strip()!r} (expected maxpool<k>s<s>[p<pad>][ceil], "
                     "avgpool..., globalmaxpool, globalavgpool, flatten or trim<n>)")


@dataclass(frozen=True)
class Producer:
    """The output of the layer called ``name``, then ``ops``."""

    name: str
    ops: tuple[Op, ...] = ()


@dataclass(frozen=True)
class Group:
    """``parts`` combined (``combine`` is ``concat`` or ``add``), then ``ops``."""

    combine: str
    parts: tuple[Union["Producer", "Group"], ...]
    ops: tuple[Op, ...] = ()


@dataclass(frozen=True)
class NetworkInput:
    """The network's own input (an empty ``inputs`` cell)."""


NETWORK_INPUT = NetworkInput()

Inputs = Union[Producer, Group, NetworkInput, None]
"""What a layer reads: a producer expression, the network input, or ``None`` (not known)."""


@dataclass(frozen=True)
class Edge:
    """One producer -> consumer edge and the tensor handed over, per image.

    ``ops`` is what lies between, in the order applied (pooling, ``concat``,
    ``add``, ``flatten``, ``trim``). ``channels`` x ``height`` x ``width`` is
    the producer's part of the consumer's input as the consumer reads it
    (after any pooling); it fills the consumer's input channels from
    ``channel_offset`` on (an addition's terms all start at the same offset).
    """

    producer: str
    consumer: str
    ops: tuple[Op, ...]
    channels: int
    height: int
    width: int
    channel_offset: int

    @property
    def elements(self) -> int:
        """Elements handed over per image: channels * height * width."""
        return self.channels * self.height * self.width


# -- text <-> expression ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*([()+|@]|[^()+|@]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group(1).strip()
        if token:
            out.append(token)
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.at += 1
        return token

    def word(self, after: str) -> str:
        token = self.take()
        if token is None or token in "()+|@":
            found = "the end" if token is None else repr(token)
            raise ValueError(f"expected {after}, found {found}")
        return token

    def expr(self) -> Producer | Group:
        parts = [self.term()]
        symbol = None
        while self.peek() in ("+", "|"):
            token = self.take()
            if symbol is not None and token != symbol:
                raise ValueError("mixes '+' and '|' at one level: group with parentheses, e.g. '(a+b)|c'")
            symbol = token
            parts.append(self.term())
        if symbol is None:
            return parts[0]
        return Group(COMBINE_KINDS[symbol], tuple(parts))

    def term(self) -> Producer | Group:
        if self.peek() == "(":
            self.take()
            node = self.expr()
            if self.take() != ")":
                raise ValueError("a '(' is not closed")
        else:
            node = Producer(self.word("a layer name"))
        ops = []
        while self.peek() == "@":
            self.take()
            ops.append(parse_op(self.word("an operation after '@'")))
        return with_ops(node, tuple(ops))


def with_ops(node: Producer | Group, ops: tuple[Op, ...]) -> Producer | Group:
    """``node`` followed by ``ops``."""
    if isinstance(node, Producer):
        return Producer(node.name, node.ops + ops)
    return Group(node.combine, node.parts, node.ops + ops)


def parse_inputs(text: str) -> Inputs:
    """A layer's inputs from its ``inputs`` cell (ValueError with a short reason if malformed)."""
    text = text.strip()
    if text == "":
        return NETWORK_INPUT
    if text == UNKNOWN_TEXT:
        return None
    if "?" in text:
        raise ValueError("'?' stands alone (inputs not known)")
    parser = _Parser(text)
    node = parser.expr()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()!r} after a complete expression")
    return node


def format_inputs(inputs: Inputs) -> str:
    """The ``inputs`` cell of ``inputs`` (:func:`parse_inputs` reads it back equal)."""
    if inputs is None:
        return UNKNOWN_TEXT
    if isinstance(inputs, NetworkInput):
        return ""
    if isinstance(inputs, Group) and not inputs.ops:
        return _format_group_body(inputs)
    return _format_term(inputs)


def _format_group_body(group: Group) -> str:
    symbol = "|" if group.combine == "concat" else "+"
    return symbol.join(_format_term(part) for part in group.parts)


def _format_term(node: Producer | Group) -> str:
    head = node.name if isinstance(node, Producer) else f"({_format_group_body(node)})"
    return head + "".join(f"@{op}" for op in node.ops)


def producer_names(inputs: Inputs) -> list[str]:
    """The layer names ``inputs`` reads, in the order written."""
    if inputs is None or isinstance(inputs, NetworkInput):
        return []
    if isinstance(inputs, Producer):
        return [inputs.name]
    return [name for part in inputs.parts for name in producer_names(part)]


def _check_node(node: Producer | Group) -> None:
    """Structural rules the grammar alone does not enforce."""
    if isinstance(node, Group):
        if node.combine not in COMBINE_KINDS.values():
            raise ValueError(f"combinator {node.combine!r} is not concat or add")
        if len(node.parts) < 2:
            raise ValueError(f"a {node.combine} needs two or more parts")
        for part in node.parts:
            _check_node(part)
    elif not isinstance(node, Producer) or not node.name:
        raise ValueError(f"{node!r} is not a producer or a group")
    for op in node.ops:
        try:
            valid = isinstance(op, Op) and parse_op(str(op)) == op  # what can be written and read back
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"{op!r} is not an operation on one tensor that an inputs cell can write")


# -- shapes and edges ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Part:
    producer: str
    ops: tuple[Op, ...]
    shape: Shape
    offset: int


def _apply(op: Op, shape: Shape, parts: list[_Part]) -> tuple[Shape, list[_Part]]:
    new_shape = op.apply(shape)
    out = []
    for part in parts:
        channels, height, width = part.shape
        if op.kind == "flatten":
            out.append(_Part(part.producer, part.ops + (op,), (channels * height * width, 1, 1),
                             part.offset * height * width))
        else:
            out.append(_Part(part.producer, part.ops + (op,), (channels, new_shape[1], new_shape[2]), part.offset))
    return new_shape, out


def _evaluate(node: Producer | Group, outputs: dict[str, Shape]) -> tuple[Shape, list[_Part]]:
    if isinstance(node, Producer):
        shape = outputs[node.name]
        parts = [_Part(node.name, (), shape, 0)]
    else:
        results = [_evaluate(part, outputs) for part in node.parts]
        shapes = [shape for shape, _ in results]
        combinator = Op(node.combine)
        parts = []
        if node.combine == "concat":
            if len({s[1:] for s in shapes}) != 1:
                raise ValueError("concatenates tensors of different height x width: "
                                 + ", ".join(_fmt(s) for s in shapes))
            offset = 0
            for shape, sub in results:
                parts += [_Part(p.producer, p.ops + (combinator,), p.shape, p.offset + offset) for p in sub]
                offset += shape[0]
            shape = (offset, *shapes[0][1:])
        else:
            if len(set(shapes)) != 1:
                raise ValueError("adds tensors of different shapes: " + ", ".join(_fmt(s) for s in shapes))
            for _, sub in results:
                parts += [_Part(p.producer, p.ops + (combinator,), p.shape, p.offset) for p in sub]
            shape = shapes[0]
    for op in node.ops:
        shape, parts = _apply(op, shape, parts)
    return shape, parts


def _fmt(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _output_shape(layer) -> Shape:
    return layer.filters, layer.ofmap_h, layer.ofmap_w


def _input_shape(layer) -> Shape:
    return layer.channels, layer.ifmap_h, layer.ifmap_w


def _cycle(start: int, target: int, reads: list[list[int]]) -> list[int] | None:
    """A path of layer indices from ``start`` back to ``target`` through what each layer reads, if any."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        index, path = stack.pop()
        if index == target:
            return path
        if index in seen:
            continue
        seen.add(index)
        stack.extend((j, path + [j]) for j in reads[index])
    return None


def derive_edges(layers, inputs) -> tuple[Edge, ...]:
    """Every producer -> consumer edge of ``layers`` (in order) whose ``inputs`` are as given.

    Raises :class:`GraphError` for the first layer (in order) whose inputs
    name a missing, later or same layer (a cycle), name a layer twice, or do
    not produce the layer's input shape.
    """
    layers = tuple(layers)
    inputs = tuple(inputs)
    if len(inputs) != len(layers):
        raise GraphError(0, f"{len(inputs)} inputs entries for {len(layers)} layers")
    index_of = {layer.name: i for i, layer in enumerate(layers)}
    for i, layer in enumerate(layers):
        bad = [ch for ch in RESERVED_CHARACTERS if ch in layer.name]
        if bad:
            raise GraphError(i, f"layer name {layer.name!r} contains {' '.join(bad)}, reserved for inputs")
    reads = [[index_of[n] for n in producer_names(x) if n in index_of] for x in inputs]
    outputs = {layer.name: _output_shape(layer) for layer in layers}
    edges: list[Edge] = []
    for i, (layer, node) in enumerate(zip(layers, inputs)):
        if node is None or isinstance(node, NetworkInput):
            continue
        if not isinstance(node, (Producer, Group)):
            raise GraphError(i, f"{node!r} is not an inputs expression")
        try:
            _check_node(node)
        except ValueError as exc:
            raise GraphError(i, str(exc)) from None
        names = producer_names(node)
        for name in names:
            if name not in index_of:
                raise GraphError(i, f"names unknown layer {name!r}")
            j = index_of[name]
            if j == i:
                raise GraphError(i, f"a cycle: layer {name!r} reads its own output")
            if j > i:
                path = _cycle(j, i, reads)
                if path is not None:
                    loop = " -> ".join(repr(layers[k].name) for k in [i, *path])
                    raise GraphError(i, f"a cycle: {loop} (each reads the next)")
                raise GraphError(i, f"names layer {name!r}, which comes later (layers are listed in "
                                    "execution order)")
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise GraphError(i, f"names layer {twice!r} twice")
        written = _all_ops(node)  # the outermost node's own operations come last
        trims = [k for k, op in enumerate(written) if op.kind == "trim"]
        if trims and (trims != [len(written) - 1] or not node.ops):
            raise GraphError(i, f"{written[trims[0]]} may only be the last operation of the whole inputs")
        try:
            shape, parts = _evaluate(node, outputs)
        except ValueError as exc:
            raise GraphError(i, str(exc)) from None
        expected = _input_shape(layer)
        if shape != expected:
            what = "channels x ifmap_h x ifmap_w" if layer.kind == "conv" else "channels x 1 x 1 (fc)"
            raise GraphError(i, f"{format_inputs(node)} gives {_fmt(shape)}, the layer's input is {_fmt(expected)} "
                                f"({what})")
        if node.ops and node.ops[-1].kind == "trim":
            _check_trim(layer, node.ops[-1], i)
        edges += [Edge(p.producer, layer.name, p.ops, *p.shape, p.offset) for p in parts]
    return tuple(edges)


def _all_ops(node: Producer | Group) -> list[Op]:
    """Every operation written in ``node``, innermost first (the outer node's own last)."""
    inner = [] if isinstance(node, Producer) else [op for part in node.parts for op in _all_ops(part)]
    return inner + list(node.ops)


def _check_trim(layer, op: Op, index: int) -> None:
    """A trimmed row or column must be one the layer's filter never reads at its stride."""
    if layer.kind != "conv":
        raise GraphError(index, f"{op}: only a conv layer's ifmap may omit rows")
    for axis, ifmap, filt, ofmap in (("h", layer.ifmap_h, layer.filter_h, layer.ofmap_h),
                                     ("w", layer.ifmap_w, layer.filter_w, layer.ofmap_w)):
        untrimmed = ifmap + op.rows + 2 * layer.pad
        if math.floor((untrimmed - filt) / layer.stride) + 1 != ofmap:
            raise GraphError(index, f"{op}: the layer would read the trimmed rows (with ifmap_{axis} "
                                    f"{ifmap + op.rows} its ofmap_{axis} would not be {ofmap})")
