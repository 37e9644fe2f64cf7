"""ONNX import: every parsed field, the rejected cases, the summary line, and AlexNet round trip."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("onnx")

from onnx_models import GraphBuilder, alexnet_like  # noqa: E402

from deepopt_mip.formulation.costmodel.network_cost import cost_tables  # noqa: E402
from deepopt_mip.formulation.errors import InputError  # noqa: E402
from deepopt_mip.formulation.hardware import HardwarePoint  # noqa: E402
from deepopt_mip.formulation.layers import Layer  # noqa: E402
from deepopt_mip.formulation.networks import load_network  # noqa: E402
from deepopt_mip.formulation.onnx_import import ONNX_MISSING, import_onnx, parse_onnx_bytes  # noqa: E402
from deepopt_mip.formulation.technology import load_technology  # noqa: E402
from deepopt_mip.scripts.cli import main  # noqa: E402


def parse(builder: GraphBuilder, batch=None):
    return parse_onnx_bytes(builder.bytes(), label="model.onnx", name="model", batch=batch)


def only_layer(builder: GraphBuilder, batch=None) -> Layer:
    result = parse(builder, batch)
    assert len(result.network.layers) == 1
    return result.network.layers[0]


def fields(layer: Layer) -> dict:
    return {k: getattr(layer, k) for k in ("name", "kind", "ifmap_h", "ifmap_w", "pad", "channels", "filter_h",
                                           "filter_w", "filters", "ofmap_h", "ofmap_w", "stride", "groups", "batch")}


def test_conv_every_field_grouped_strided_padded():
    g = GraphBuilder([8, 32, 28, 30]).conv([64, 8, 3, 5], name="c", strides=[2, 2], pads=[1, 1, 1, 1], group=4)
    assert fields(only_layer(g)) == dict(
        name="c", kind="conv", ifmap_h=28, ifmap_w=30, pad=1, channels=32, filter_h=3, filter_w=5, filters=64,
        ofmap_h=14, ofmap_w=14, stride=2, groups=4, batch=1)


def test_conv_asymmetric_padding_by_one_becomes_half_pad():
    # top/left 2, bottom/right 3: GoogleNet-v1's conv1 as the reference writes it (224, pad 2.5 -> 112)
    layer = only_layer(GraphBuilder([1, 3, 224, 224]).conv([64, 3, 7, 7], name="conv1", strides=[2, 2],
                                                            pads=[2, 2, 3, 3]))
    assert (layer.pad, layer.ofmap_h, layer.ofmap_w, layer.stride) == (2.5, 112, 112, 2)
    reference = load_network("googlenet-v1").layers[0]
    assert fields(layer) | {"name": reference.name} == fields(reference)


@pytest.mark.parametrize("mode, pad, ofmap", [("SAME_UPPER", 2.5, 112), ("SAME_LOWER", 2.5, 112), ("VALID", 0, 109)])
def test_conv_auto_pad(mode, pad, ofmap):
    layer = only_layer(GraphBuilder([1, 3, 224, 224]).conv([64, 3, 7, 7], strides=[2, 2], auto_pad=mode))
    assert (layer.pad, layer.ofmap_h, layer.ofmap_w) == (pad, ofmap, ofmap)


@pytest.mark.parametrize("attrs, phrase", [
    (dict(pads=[0, 0, 2, 2]), "asymmetric by more than one pixel"),
    (dict(pads=[1, 0, 1, 0]), "differs between height and width"),
    (dict(pads=[2, 1, 2, 1]), "differs between height and width"),
    (dict(dilations=[2, 2]), "dilations [2, 2] are not supported"),
    (dict(strides=[1, 2]), "strides [1, 2] differ"),
    (dict(kernel_shape=[5, 5]), "kernel_shape [5, 5] does not match"),
])
def test_conv_unsupported_cases_name_the_node(attrs, phrase):
    with pytest.raises(InputError) as info:
        parse(GraphBuilder([1, 16, 32, 32]).conv([16, 16, 3, 3], name="bad_conv", **attrs))
    message = str(info.value)
    assert phrase in message and "node 'bad_conv' (Conv)" in message and message.startswith("model.onnx: ")
    assert "\n" not in message


def test_conv1d_and_symbolic_spatial_dims_are_rejected():
    with pytest.raises(InputError, match="only 2-D convolutions"):
        parse(GraphBuilder([1, 4, 100]).conv([8, 4, 3], name="c1d"))
    with pytest.raises(InputError, match="not a known positive size"):
        parse(GraphBuilder([1, 4, "H", "W"]).conv([8, 4, 3, 3], name="c"))


def test_gemm_every_field_and_batch_from_input():
    g = GraphBuilder([8, 512]).gemm([1000, 512], name="fc", transB=1)
    assert fields(only_layer(g)) == dict(
        name="fc", kind="fc", ifmap_h=1, ifmap_w=1, pad=0, channels=512, filter_h=1, filter_w=1, filters=1000,
        ofmap_h=1, ofmap_w=1, stride=1, groups=1, batch=8)
    assert only_layer(GraphBuilder([8, 512]).gemm([512, 10])).filters == 10  # untransposed B
    assert only_layer(g, batch=3).batch == 3  # --batch overrides the input's first dimension
    assert only_layer(GraphBuilder(["N", 512]).gemm([10, 512], transB=1)).batch == 1  # symbolic: 1


def test_gemm_shape_mismatch_is_rejected():
    with pytest.raises(InputError, match="node 'fc' \\(Gemm\\)"):
        parse(GraphBuilder([8, 500]).gemm([1000, 512], name="fc", transB=1))


def test_matmul_by_constant_is_fc_and_matmul_of_activations_is_skipped():
    g = GraphBuilder([4, 256]).matmul([256, 128], name="proj")
    assert fields(only_layer(g)) == dict(
        name="proj", kind="fc", ifmap_h=1, ifmap_w=1, pad=0, channels=256, filter_h=1, filter_w=1, filters=128,
        ofmap_h=1, ofmap_w=1, stride=1, groups=1, batch=4)
    g = GraphBuilder([4, 256]).matmul([256, 128], name="proj").op("MatMul", extra_inputs=["data"], name="gram")
    # t1 (4x128) x data (4x256) does not multiply; the second MatMul has no constant weight either way
    result = parse(g)
    assert [layer.name for layer in result.network.layers] == ["proj"]
    assert "MatMul (not FC: no constant weight) x1" in result.summary
    tokens = GraphBuilder([4, 10, 256]).matmul([256, 128], name="per_token")  # a 3-D input: not modelled
    with pytest.raises(InputError, match="MatMul \\(not FC: input not 2-D\\) x1"):
        parse(tokens)


def test_summary_is_one_line_and_notes_pooling():
    result = parse(alexnet_like())
    assert "\n" not in result.summary
    assert result.summary.startswith("model.onnx: imported 8 layers (5 conv, 3 fc; fc batch 16 from input 'data')")
    assert "skipped 16 operators: Relu x7, Dropout x2, LRN x2, Flatten x1, Softmax x1" in result.summary
    assert "pooling (no MACs, fusable into the layer before): MaxPool x3" in result.summary
    assert dict(result.skipped)["MaxPool"] == 3


def test_unnamed_and_duplicate_node_names():
    g = GraphBuilder([1, 3, 8, 8]).conv([4, 3, 3, 3]).conv([4, 4, 3, 3], name="x").conv([4, 4, 3, 3], name="x")
    names = [layer.name for layer in parse(g).network.layers]
    assert names == ["conv_1", "x", "x_2"]


def test_graph_without_layers_is_rejected():
    with pytest.raises(InputError, match="no Conv, Gemm or MatMul-as-FC layer.*Relu"):
        parse(GraphBuilder([1, 4]).op("Relu"))


def test_alexnet_graph_equals_the_builtin_and_gives_identical_cost_tables(tmp_path):
    path = tmp_path / "alexnet.onnx"
    path.write_bytes(alexnet_like(batch=16).bytes())
    imported = load_network(str(path))
    builtin = load_network("alexnet")
    assert imported.layers == builtin.layers
    hw = HardwarePoint(J=32, K=64, fsram_kb=16, isram_kb=32, psram_kb=8)
    tech = load_technology()
    ours, theirs = cost_tables(imported.layers, hw.arrays(), tech), cost_tables(builtin.layers, hw.arrays(), tech)
    np.testing.assert_array_equal(ours.energy_j, theirs.energy_j)
    np.testing.assert_array_equal(ours.delay_cycles, theirs.delay_cycles)
    assert np.isfinite(ours.energy_j).any()


def test_load_network_dispatches_on_suffix_and_batch(tmp_path):
    path = tmp_path / "net.ONNX"
    path.write_bytes(alexnet_like(batch=2).bytes())
    network = load_network(path, batch=5)
    assert network.name == "net" and {l.batch for l in network.layers if l.kind == "fc"} == {5}
    assert {l.batch for l in network.layers if l.kind == "conv"} == {1}
    assert {l.batch for l in import_onnx(path).network.layers if l.kind == "fc"} == {2}


def test_missing_onnx_package_gives_the_install_hint(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"anything")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(InputError) as info:
        load_network(str(path))
    assert ONNX_MISSING in str(info.value) and "m.onnx" in str(info.value)


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(InputError, match="ONNX file not found"):
        load_network(str(tmp_path / "none.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 not a protobuf \xff" * 3)
    with pytest.raises(InputError, match="bad.onnx: not an ONNX model"):
        load_network(str(bad))


# ---- the command line -----------------------------------------------------------------------------

def test_cli_evaluate_allocate_convert_with_onnx(tmp_path, capsys):
    model = tmp_path / "alex.onnx"
    model.write_bytes(alexnet_like(batch=16).bytes())
    out_json = tmp_path / "e.json"
    assert main(["evaluate", "--network", str(model), "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1 and "imported 8 layers" in err_lines[0] and "MaxPool x3" in err_lines[0]
    assert "conv1" in captured.out

    space = tmp_path / "small.yaml"
    space.write_text("name: small\nrows: {min: 16, max: 32, step: 16}\ncols: {min: 16, max: 64, step: 16}\n"
                     "aspect_min_ratio: 0\nsram_kb: {filter: [16, 32], ifmap: [32], psum: [8, 16]}\n"
                     "bits: {filter: 8, ifmap: 8, psum: 32}\ndram: {bandwidth_bits_per_cycle: 128, block_bits: 128}\n"
                     "area: {budget_mm2: 16}\n")
    alloc_json = tmp_path / "a.json"
    assert main(["allocate", "--network", str(model), "--space", str(space), "--metric", "energy", "--quiet",
                 "--batch", "4", "--json", str(alloc_json)]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no summary line either

    csv_path = tmp_path / "alex.csv"
    assert main(["networks", "--convert", str(model), "--to", str(csv_path)]) == 0
    assert load_network(str(csv_path)).layers == load_network("alexnet").layers
    assert "alex.onnx" in csv_path.read_text().splitlines()[0]


@pytest.mark.parametrize("args, phrase", [
    (["networks", "--convert", "x.onnx"], "--convert NETWORK and --to FILE go together"),
    (["evaluate", "--network", "alexnet", "--batch", "0"], "--batch must be a positive integer"),
    (["evaluate", "--network", "no-such.onnx"], "no-such.onnx: ONNX file not found"),
])
def test_cli_onnx_errors_are_one_line(args, phrase, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and phrase in err


def test_cli_rejected_conv_names_file_and_node(tmp_path, capsys):
    model = tmp_path / "dil.onnx"
    model.write_bytes(GraphBuilder([1, 8, 16, 16]).conv([8, 8, 3, 3], name="dilated", dilations=[2, 2]).bytes())
    assert main(["evaluate", "--network", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dil.onnx" in err and "'dilated'" in err and "dilations" in err


def test_batch_also_sets_the_fc_batch_of_csv_and_builtin_networks():
    network = load_network("alexnet", batch=1)
    builtin = load_network("alexnet")
    assert [l.batch for l in network.layers] == [1] * 8
    assert [l for l in network.layers if l.kind == "conv"] == [l for l in builtin.layers if l.kind == "conv"]
    with pytest.raises(InputError, match="batch must be a positive integer"):
        load_network("alexnet", batch=0)


# ---- gzip-compressed models and the batch note of the summary ---------------------------------------

def test_gzip_compressed_model_loads_like_the_plain_one(tmp_path, capsys):
    import gzip

    plain = tmp_path / "alexnet.onnx"
    plain.write_bytes(alexnet_like(batch=16).bytes())
    packed = tmp_path / "alexnet.onnx.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    network = load_network(str(packed))
    assert network.name == "alexnet"  # without .onnx.gz
    assert network.layers == load_network(plain).layers
    assert import_onnx(packed).network == network
    # the command line routes .onnx.gz to the importer too: one summary line on stderr
    assert main(["networks", "--show", str(packed)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alexnet.onnx.gz: imported 8 layers" in err[0]


def test_gzip_corrupt_and_too_large(tmp_path, monkeypatch):
    import gzip

    import deepopt_mip.formulation.onnx_import as onnx_import

    broken = tmp_path / "broken.onnx.gz"
    broken.write_bytes(gzip.compress(alexnet_like().bytes())[:40])  # truncated stream
    with pytest.raises(InputError, match=r"broken.onnx.gz: gzip-compressed but corrupt"):
        load_network(str(broken))
    big = tmp_path / "big.onnx.gz"
    data = alexnet_like().bytes()
    big.write_bytes(gzip.compress(data))
    monkeypatch.setattr(onnx_import, "MAX_ONNX_BYTES", len(data) - 1)
    with pytest.raises(InputError, match=rf"big.onnx.gz: gzip-compressed model larger than {len(data) - 1} bytes"):
        load_network(str(big))
    monkeypatch.setattr(onnx_import, "MAX_ONNX_BYTES", len(data))  # exactly at the cap: accepted
    assert len(load_network(str(big))) == 8


def test_summary_says_when_fc_batch_differs_from_the_builtins():
    note = "the built-in networks run FC layers at batch 16: add --batch 16 to compare with them"
    assert note in parse(alexnet_like(batch=1)).summary
    assert note not in parse(alexnet_like(batch=16)).summary  # same batch as the built-ins
    assert note not in parse(alexnet_like(batch=1), batch=4).summary  # the user chose the batch
    conv_only = GraphBuilder([1, 3, 8, 8]).conv([4, 3, 3, 3], name="c")
    assert note not in parse(conv_only).summary  # no FC layer, nothing to compare
