"""INT8 variants (export/variants.py): Q/DQ only on the inputs of the weighted layers, so outputs (softmax
probabilities, a steering value) come out of float ops; the manifest and verify's report say how many weighted
layers run in INT8; verify catches an INT8 model that is off."""

import io
import json
import shutil

import numpy as np

from tests.conftest import cli

WEIGHTED = {"Conv", "MatMul", "Gemm"}


def _int8(src, tmp_path, data, frames=100):
    from export import variants

    dest = tmp_path / "bundle"
    shutil.copytree(str(src), str(dest), ignore=shutil.ignore_patterns("engines"))
    variants.make(str(dest), "int8", calib_data=data, calib_frames=frames, log=io.StringIO())
    return dest


def _check_qdq_only_around_weighted_layers(path):
    import onnx

    graph = onnx.load(str(path)).graph
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if node.op_type == "QuantizeLinear":
            assert {c.op_type for c in consumers[node.output[0]]} == {"DequantizeLinear"}, node.name
        if node.op_type == "DequantizeLinear":
            assert node.output[0] not in {o.name for o in graph.output}, node.name
            assert {c.op_type for c in consumers[node.output[0]]} <= WEIGHTED, (
                node.name, [c.op_type for c in consumers[node.output[0]]])
        if node.op_type in ("Softmax", "Sigmoid", "Add", "Concat", "Relu"):
            assert all(producer[i].op_type != "DequantizeLinear" for i in node.input if i in producer), node.name
    for out in graph.output:  # float, from a float op
        assert out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert producer[out.name].op_type not in ("DequantizeLinear", "QuantizeLinear")
    weighted = [n for n in graph.node if n.op_type in WEIGHTED]
    return [n.name for n in weighted], [n.name for n in weighted if _int8_layer(n, producer)]


def _int8_layer(node, producer):
    """Data and weights both dequantized from INT8."""
    return all(i in producer and producer[i].op_type == "DequantizeLinear" for i in node.input[:2])


def test_digits_int8_quantizes_only_the_inputs_of_its_weighted_layers(digits_bundle, tmp_path):
    bundle = _int8(digits_bundle, tmp_path, "digits")
    weighted, int8 = _check_qdq_only_around_weighted_layers(bundle / "model.int8.onnx")
    assert len(weighted) >= 3 and int8 == weighted[1:-1]  # the first and last weighted layers stay float
    layers = json.load(open(bundle / "manifest.json"))["variants"]["int8"]["layers"]
    assert layers["weighted"] == len(weighted) and layers["int8"] == len(weighted) - 2
    assert layers["float"] == [weighted[0], weighted[-1]]


def test_pilotnet_int8_holds_and_verify_says_how_much_of_it_is_int8(pilot_bundle, tmp_path):
    from export import verify
    from runtime import bundle as bundle_format

    bundle = _int8(pilot_bundle, tmp_path, "road")
    weighted, int8 = _check_qdq_only_around_weighted_layers(bundle / "model.int8.onnx")
    assert len(weighted) == 9 and len(int8) == 7  # PilotNet: 5 convolutions, 4 dense layers

    proc = cli("export", "verify", bundle, "--data", "road", "--frames", "100", "--json", tmp_path / "v.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: model.int8.onnx: int8: 7 of 9 weighted layers (float: %s, %s)" % (weighted[0], weighted[-1]) \
        in proc.stdout
    report = json.load(open(tmp_path / "v.json"))
    assert report["int8_layers"]["int8"] == 7 and report["int8_layers"]["weighted"] == 9
    row = [r for r in report["rows"] if r["precision"] == "int8"][0]
    assert row["passed"] and row["outputs"][0]["max_abs_error"] <= 0.1

    # a variant made before the manifest counted its layers: verify counts them in the graph
    manifest = json.load(open(bundle / "manifest.json"))
    del manifest["variants"]["int8"]["layers"]
    bundle_format.write_manifest(str(bundle), manifest)
    assert verify.int8_layers(bundle_format.load(str(bundle)))["int8"] == 7


def test_verify_fails_an_int8_variant_that_is_off(pilot_bundle, tmp_path):
    import onnx
    from onnx import numpy_helper

    from runtime import bundle as bundle_format

    bundle = _int8(pilot_bundle, tmp_path, "road", frames=32)
    model = onnx.load(str(bundle / "model.int8.onnx"))
    producer = {o: n for n in model.graph.node for o in n.output}
    last_int8 = [n for n in model.graph.node if n.op_type in WEIGHTED and _int8_layer(n, producer)][-1]
    scale = producer[last_int8.input[1]].input[1]  # the weights' dequantization scale: the layer's weights x 4
    init = next(i for i in model.graph.initializer if i.name == scale)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(4), scale))
    data = model.SerializeToString()
    bundle_format.write_atomic(str(bundle / "model.int8.onnx"), data)
    manifest = json.load(open(bundle / "manifest.json"))
    manifest["variants"]["int8"]["sha256"] = bundle_format.sha256_file(str(bundle / "model.int8.onnx"))
    bundle_format.write_manifest(str(bundle), manifest)

    proc = cli("export", "verify", bundle, "--data", "road", "--frames", "100", "--json", tmp_path / "v.json")
    assert proc.returncode == 1 and "FAILED" in proc.stderr
    rows = json.load(open(tmp_path / "v.json"))["rows"]
    assert [r["passed"] for r in rows] == [True, False]  # fp32 ok, int8 outside abs <= 0.1
    assert [ln.split()[-1] for ln in proc.stdout.splitlines() if ln.startswith("onnxruntime")] == ["ok", "FAIL"]


def _residual_onnx(path):
    """Conv -> Relu -> t; t feeds a Conv and, beside it, an Add (a residual block); t is a graph output too."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(0)
    weights = [numpy_helper.from_array((0.3 * rng.randn(*s)).astype(np.float32), "w%d" % i)
               for i, s in enumerate([(4, 3, 3, 3), (4, 4, 3, 3), (4, 4, 3, 3), (4, 4, 3, 3)], 1)]
    conv = dict(pads=[1, 1, 1, 1])
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", **conv),
             helper.make_node("Relu", ["c1"], ["t"], name="relu1"),
             helper.make_node("Conv", ["t", "w2"], ["c2"], name="conv2", **conv),
             helper.make_node("Add", ["t", "c2"], ["s"], name="add"),
             helper.make_node("Conv", ["s", "w3"], ["c3"], name="conv3", **conv),
             helper.make_node("Conv", ["c3", "w4"], ["output"], name="conv4", **conv)]
    shape = ["batch", 4, 8, 8]
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape),
                               helper.make_tensor_value_info("t", TensorProto.FLOAT, shape)], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(path))


def test_a_residual_add_and_a_graph_output_beside_a_quantized_conv_stay_float(tmp_path):
    """ONNX Runtime's quantizer gives every consumer of a quantized tensor the dequantized value: the Add of a
    residual block and a graph output would read INT8-rounded data; float_beside_int8 gives them the float."""
    import onnx
    import onnxruntime as ort
    from export import variants

    _residual_onnx(tmp_path / "float.onnx")
    batches = [{"input": np.random.RandomState(i).rand(1, 3, 8, 8).astype(np.float32)} for i in range(8)]

    class Reader:
        def get_next(self):
            return batches.pop() if batches else None

    variants.quantize(str(tmp_path / "float.onnx"), str(tmp_path / "int8.onnx"), Reader(), ["conv1", "conv4"])
    proto = variants.float_beside_int8(onnx.load(str(tmp_path / "int8.onnx")))
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp_path / "fixed.onnx"))
    _, int8_layers = _check_qdq_only_around_weighted_layers(tmp_path / "fixed.onnx")
    assert int8_layers == ["conv2", "conv3"]
    x = np.random.RandomState(99).rand(2, 3, 8, 8).astype(np.float32)
    cpu = ["CPUExecutionProvider"]
    want = ort.InferenceSession(str(tmp_path / "float.onnx"), providers=cpu).run(None, {"input": x})
    got = ort.InferenceSession(proto.SerializeToString(), providers=cpu).run(None, {"input": x})
    assert np.array_equal(got[1], want[1])  # t: float all the way
    assert 0 < np.abs(got[0] - want[0]).max() < 0.1 * np.abs(want[0]).max()  # through INT8, and close
