"""Inputs that cannot break it: malformed and random ONNX files (see test_fuzz_loaders.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")

from onnx_models import GraphBuilder, alexnet_like, weight  # noqa: E402
from test_fuzz_loaders import check, fuzz, workdir  # noqa: E402,F401

from deepopt_mip.formulation.networks import load_network  # noqa: E402
from deepopt_mip.formulation.onnx_import import parse_onnx_bytes  # noqa: E402

SMALL_MODEL = (GraphBuilder([2, 8, 16, 16]).conv([16, 8, 3, 3], name="c", pads=[1, 1, 1, 1]).op("Relu")
               .op("MaxPool", kernel_shape=[2, 2], strides=[2, 2]).op("Flatten").gemm([10, 1024], name="fc", transB=1)
               .bytes())
ALEXNET_MODEL = alexnet_like().bytes()


def load_onnx(data: bytes, batch=None):
    result = check(lambda: parse_onnx_bytes(data, label="fuzz.onnx", name="fuzz", batch=batch), "fuzz.onnx")
    if result is not None:
        assert len(result.network.layers) >= 1 and len(result.summary.splitlines()) == 1
    return result


@fuzz(40)
@given(data=st.binary(max_size=400))
def test_onnx_random_bytes(data):
    load_onnx(data)


@fuzz(80)
@given(st.data())
def test_onnx_mutated_model_bytes(data):
    model = bytearray(data.draw(st.sampled_from([SMALL_MODEL, ALEXNET_MODEL])))
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(0, len(model) - 1)))
        if kind == "flip" and model:
            model[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and model:
            model[at] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del model[at:]
        elif kind == "insert":
            model[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif model:
            del model[at:at + data.draw(st.integers(1, 8))]
    load_onnx(bytes(model))


DIM = st.one_of(st.integers(-2, 40), st.sampled_from(["N", "H", ""]))
INTS = st.lists(st.integers(-3, 6), min_size=1, max_size=5)


@st.composite
def random_graph(draw) -> bytes:
    rank = draw(st.sampled_from([2, 4, 4, 4, 3, 5]))
    x_shape = [draw(DIM) for _ in range(rank)]
    if draw(st.booleans()):  # a plausible start: a consistent convolution
        channels, groups = draw(st.integers(1, 4)), draw(st.sampled_from([1, 1, 2]))
        x_shape = [draw(st.integers(1, 4)), channels * groups, draw(st.integers(1, 20)), draw(st.integers(1, 20))]
        kernel = draw(st.integers(1, 3))
        g = GraphBuilder(x_shape).conv(
            [groups * draw(st.integers(1, 4)), channels, kernel, kernel], name=draw(st.text(max_size=5)),
            group=groups, strides=[draw(st.integers(1, 2))] * 2,
            pads=draw(st.sampled_from([[0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 2, 2], [0, 0, 1, 1], [2, 0, 0, 2]])))
        if draw(st.booleans()):
            g.op("Relu").op("GlobalAveragePool").op("Flatten")
    else:
        g = GraphBuilder(x_shape)
    for _ in range(draw(st.integers(0 if g.nodes else 1, 4))):
        op = draw(st.sampled_from(["Conv", "Conv", "Gemm", "MatMul", "Relu", "MaxPool", "Flatten", "Add", "Other"]))
        if op == "Conv":
            attrs = {}
            for key in ("strides", "pads", "dilations", "kernel_shape"):
                if draw(st.booleans()):
                    attrs[key] = draw(INTS)
            if draw(st.booleans()):
                attrs["group"] = draw(st.integers(-1, 5))
            if draw(st.integers(0, 4)) == 0:
                attrs["auto_pad"] = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "bogus"]))
            g.conv([draw(st.integers(0, 20)) for _ in range(draw(st.sampled_from([4, 4, 3])))],
                   name=draw(st.text(max_size=5)), **attrs)
        elif op == "Gemm":
            g.gemm([draw(st.integers(0, 40)) for _ in range(draw(st.sampled_from([2, 2, 1, 3])))],
                   transB=draw(st.integers(0, 1)))
        elif op == "MatMul":
            g.matmul([draw(st.integers(0, 40)) for _ in range(draw(st.sampled_from([2, 2, 1])))])
        elif op == "MaxPool":
            g.op("MaxPool", kernel_shape=draw(INTS))
        elif op == "Add":
            g.op("Add", extra_inputs=[g.last])
        elif op == "Other":
            g.op(draw(st.sampled_from(["Foo", "Conv2", "conv", "BatchNormalization"])))
        else:
            g.op(op)
    model = g.model()
    if draw(st.integers(0, 5)) == 0:
        model.graph.initializer.append(weight("orphan", [draw(st.integers(-1, 3))]))
    if draw(st.integers(0, 5)) == 0:
        model.opset_import[0].version = draw(st.integers(-1, 30))
    return model.SerializeToString()


@fuzz(120)
@given(data=random_graph(), batch=st.one_of(st.none(), st.integers(1, 64)))
def test_onnx_random_graphs(data, batch):
    load_onnx(data, batch)


def test_onnx_file_errors_name_the_file(workdir):
    path = workdir / "model.onnx"
    path.write_bytes(b"")
    assert check(lambda: load_network(str(path)), str(path)) is None
    path.write_bytes(SMALL_MODEL)
    assert check(lambda: load_network(str(path), batch=0), str(path)) is None
    assert check(lambda: load_network(str(path)), str(path)) is not None
