"""Detection on the FAKE TensorRT of each generation (8.5, 10, 11): what each one's ONNX parser takes
(tests/fakes/site/tensorrt/_fake_onnx_ops.py, from onnx-tensorrt's docs/operators.md), `runtime engine`,
`runtime run --backend tensorrt` and `runtime bench` on a detection bundle, the same detections as ONNX Runtime
(export/parity.compare_detections), and the DLA's fallback of TopK and NMS to the GPU said in one line.

The bundle is made here: a strided convolution for RAW, then a decoding with train/detector.py's ops and
dtypes (Sigmoid, MaxPool 3x3 stride 1, GreaterOrEqual, Cast, TopK k=1 over classes then k=K over cells with
INT64 K, Gather, Concat, Reshape, integer cell arithmetic), no TensorFlow.
"""

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import cli, read_jsonl

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

LABELS, K, STRIDE, H, W = ["cone", "car", "person"], 10, 4, 32, 64
C, HO, WO = len(LABELS), H // STRIDE, W // STRIDE
VERSIONS = ["8.5.2", "10.3.0", "11.4.1"]


def _init(name, value, dtype):
    return numpy_helper.from_array(np.asarray(value, dtype), name)


def _decoding_nodes():
    n = helper.make_node
    return [
        n("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]), n("Conv", ["nchw", "w", "b"], ["conv"],
                                                                     kernel_shape=[4, 4], strides=[4, 4]),
        n("Transpose", ["conv"], ["raw"], perm=[0, 2, 3, 1]),
        n("Slice", ["raw", "c0", "cC", "c3"], ["logits"]), n("Slice", ["raw", "cC", "cC4", "c3"], ["regs"]),
        n("Sigmoid", ["logits"], ["heat"]), n("Transpose", ["heat"], ["heat_nchw"], perm=[0, 3, 1, 2]),
        n("MaxPool", ["heat_nchw"], ["pool_nchw"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        n("Transpose", ["pool_nchw"], ["pool"], perm=[0, 2, 3, 1]),
        n("GreaterOrEqual", ["heat", "pool"], ["is_peak"]), n("Cast", ["is_peak"], ["peak"], to=TensorProto.FLOAT),
        n("Mul", ["heat", "peak"], ["peaks"]),
        n("TopK", ["peaks", "k1"], ["best", "best_class"], axis=-1),
        n("Reshape", ["best", "cells"], ["flat"]), n("TopK", ["flat", "kK"], ["score", "cell"], axis=-1),
        n("Reshape", ["best_class", "cells"], ["classes"]),
        n("Gather", ["classes", "cell"], ["cls_nk"], axis=1), n("Reshape", ["cls_nk", "nk1"], ["cls64"]),
        n("Cast", ["cls64"], ["cls"], to=TensorProto.FLOAT),
        n("Cast", ["cell"], ["cell32"], to=TensorProto.INT32), n("Div", ["cell32", "wo"], ["row32"]),
        n("Mul", ["row32", "wo"], ["row_start"]), n("Sub", ["cell32", "row_start"], ["col32"]),
        n("Cast", ["row32"], ["row"], to=TensorProto.FLOAT), n("Cast", ["col32"], ["col"], to=TensorProto.FLOAT),
        n("Add", ["col", "half"], ["cx0"]), n("Mul", ["cx0", "stride"], ["cx"]),
        n("Add", ["row", "half"], ["cy0"]), n("Mul", ["cy0", "stride"], ["cy"]),
        n("Relu", ["regs"], ["dist0"]), n("Reshape", ["dist0", "cells4"], ["dist_flat"]),
        n("Gather", ["dist_flat", "cell32"], ["dist_nk"], axis=1), n("Reshape", ["dist_nk", "nk4"], ["dist1"]),
        n("Mul", ["dist1", "stride"], ["dist"]),
        n("Split", ["dist", "four"], ["l", "t", "r", "b_"], axis=2),
        n("Unsqueeze", ["cx", "a2"], ["cx1"]), n("Unsqueeze", ["cy", "a2"], ["cy1"]),
        n("Unsqueeze", ["score", "a2"], ["score1"]), n("Unsqueeze", ["cls", "a2"], ["cls1"]),
        n("Sub", ["cx1", "l"], ["x0"]), n("Sub", ["cy1", "t"], ["y0"]), n("Add", ["cx1", "r"], ["x1"]),
        n("Add", ["cy1", "b_"], ["y1"]),
        n("Concat", ["x0", "y0", "x1", "y1", "score1", "cls1"], ["detections"], axis=-1)]


def _detector_onnx():
    rng = np.random.RandomState(3)
    i64, f32 = np.int64, np.float32
    inits = [_init("w", rng.normal(0, 0.5, (C + 4, 3, 4, 4)), f32), _init("b", rng.normal(0, 1, C + 4), f32),
             _init("c0", [0], i64), _init("cC", [C], i64), _init("cC4", [C + 4], i64), _init("c3", [3], i64),
             _init("k1", [1], i64), _init("kK", [K], i64), _init("cells", [-1, HO * WO], i64),
             _init("cells4", [-1, HO * WO, 4], i64), _init("nk1", [-1, K], i64), _init("nk4", [-1, K, 4], i64),
             _init("wo", WO, np.int32), _init("half", 0.5, f32), _init("stride", float(STRIDE), f32),
             _init("four", [1, 1, 1, 1], i64), _init("a2", [2], i64)]
    graph = helper.make_graph(
        _decoding_nodes(), "detector", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, H, W, 3])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, [1, HO, WO, C + 4]),
         helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, K, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return model


def _bundle(folder):
    folder.mkdir()
    onnx.save(_detector_onnx(), str(folder / "model.onnx"))
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    manifest = {
        "format": "edge-bundle", "format_version": 1, "name": "tiny_detector", "task": "detection",
        "labels": list(LABELS), "model": {"file": "model.onnx", "sha256": sha, "opset": 15},
        "input": {"name": "input", "shape": [1, H, W, 3], "layout": "NHWC", "dtype": "float32"},
        "preprocess": {"crop": None, "resize": {"width": W, "height": H, "interpolation": "area"}, "color": "rgb",
                       "scale": 1 / 255.0, "offset": 0.0},
        "outputs": [{"name": "raw", "shape": [1, HO, WO, C + 4], "activation": "linear"},
                    {"name": "detections", "shape": [1, K, 6], "activation": "linear"}],
        "detection": {"k": K, "threshold": 0.3, "box_format": "xyxy", "box_units": "input pixels",
                      "columns": ["x0", "y0", "x1", "y1", "score", "class"], "output": "detections",
                      "raw_output": "raw", "stride": STRIDE, "detections_output": 1}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return _bundle(tmp_path_factory.mktemp("trt_det") / "detector")


def _rows(jsonl):
    """Each frame's detections as compare_detections reads them: (n, 6) rows x0 y0 x1 y1 score class."""
    return [np.array([d["box"] + [d["score"], LABELS.index(d["label"])] for d in line["result"]["detections"]],
                     np.float64).reshape(-1, 6) for line in read_jsonl(jsonl)]


def _fake_parser(version):
    from tests.realtrt.probe import load_fake

    trt = load_fake(version)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network(0 if flag is None else 1 << int(flag))
    return trt, network, trt.OnnxParser(network, trt.Logger(trt.Logger.ERROR))


def _one_node(op, in_type, out_type=None, extra=(), **attrs):
    """A model of one node: op on a (1, 8) input of in_type (extra inputs: initializers)."""
    names = ["x"] + [t.name for t in extra]
    out = [helper.make_tensor_value_info("y", out_type or in_type, None)]
    node = helper.make_node(op, names, ["y"] + (["i"] if op == "TopK" else []), **attrs)
    if op == "TopK":
        out.append(helper.make_tensor_value_info("i", TensorProto.INT64, None))
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", in_type, [1, 8])], out,
                              list(extra))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]).SerializeToString()


@pytest.mark.parametrize("version", VERSIONS)
def test_each_parser_takes_the_detector_and_refuses_what_operators_md_does_not_list(version, detector):
    trt, network, parser = _fake_parser(version)
    assert parser.parse((detector / "model.onnx").read_bytes()), [parser.get_error(i).desc()
                                                                   for i in range(parser.num_errors)]
    kinds = {network.get_layer(i).type.name for i in range(network.num_layers)}
    assert {"TOPK", "GATHER", "POOLING", "CONCATENATION"} <= kinds
    k = _init("k", [2], np.int64)
    gen8 = version.startswith("8.")
    cases = [(_one_node("TopK", TensorProto.INT64, extra=[k], axis=-1), gen8),  # 8.5: INT64 is INT32; FP only
             (_one_node("ArgMax", TensorProto.INT32, TensorProto.INT64, axis=1), gen8),
             (_one_node("Cast", TensorProto.FLOAT, TensorProto.INT64, to=TensorProto.INT64), False),  # 8.5: INT32
             (_one_node("TopK", TensorProto.FLOAT, extra=[k], axis=-1), False),
             (_one_node("Unique", TensorProto.FLOAT), True)]  # N in every table
    for model, refused in cases:
        _, _, parser = _fake_parser(version)
        assert parser.parse(model) is not refused
        if refused:
            assert parser.num_errors == 1 and parser.get_error(0).code() == 8


def test_nms_is_taken_and_the_dla_gives_topk_and_nms_to_the_gpu():
    trt, network, parser = _fake_parser("10.3.0")
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, 8, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, 8])
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "m"], ["sel"]),
             helper.make_node("TopK", ["scores", "k"], ["v", "i"], axis=-1)]
    graph = helper.make_graph(nodes, "nms", [boxes, scores], [
        helper.make_tensor_value_info(n, t, None) for n, t in (("sel", TensorProto.INT64), ("v", TensorProto.FLOAT),
                                                                ("i", TensorProto.INT64))],
        [_init("m", [4], np.int64), _init("k", [2], np.int64)])
    assert parser.parse(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]).SerializeToString())
    from runtime.backends.tensorrt import build as trt_build

    config = trt.Builder(trt.Logger()).create_builder_config()
    assert trt_build.gpu_fallback(network, config) == {"NMS": 1, "TOPK": 1}


@pytest.mark.parametrize("version", VERSIONS)
def test_run_and_bench_on_tensorrt_give_onnx_runtimes_detections(version, detector, tmp_path):
    from export.parity import compare_detections

    record = tmp_path / "touched.txt"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_TRT_RECORD": str(record)}
    frames = ["--source", "synthetic://road", "--max-frames", 2, "--no-display", "--quiet", "--threshold", 0.3]
    want, got = tmp_path / "ort.jsonl", tmp_path / "trt.jsonl"
    proc = cli("runtime", "run", detector, "--backend", "onnxruntime", "--jsonl", want, *frames)
    assert proc.returncode == 0, proc.stderr
    precision = [] if version.startswith("11.") else ["--precision", "fp32"]  # 11: the ONNX's own precision
    proc = cli("runtime", "run", detector, "--backend", "tensorrt", *precision, "--jsonl", got, *frames,
               fake_gpu=version, env=env)
    assert proc.returncode == 0, proc.stderr
    report = compare_detections(_rows(want), _rows(got), 0.3)
    assert report["unmatched"] == 0 and report["compared"] > 0, report
    if version.startswith("10."):
        # --source: bench's default (the bundle's samples) spins forever on a bundle without samples/
        proc = cli("runtime", "bench", detector, "--backend", "tensorrt", "--frames", 5, "--warmup", 1,
                   "--source", "synthetic://road", fake_gpu=version, env=env, timeout=60)
        assert proc.returncode == 0 and "tensorrt (TensorRT 10.3.0" in proc.stdout + proc.stderr, proc.stderr
    assert {"OnnxParser", "IExecutionContext.execute_async_v3"} <= _real_names(record, version)


def _real_names(record, fake_version):
    """The TensorRT names the project's code touched in the fake (record), each checked against NVIDIA's real
    module of that generation (tests/realtrt; skipped where it is not unpacked, failed under CI)."""
    from tests.runtime.backends.tensorrt.test_real_tensorrt import FAKE_OF, probe

    report = probe({fake: real for real, fake in FAKE_OF.items()}[fake_version], "-", str(record))
    assert report["recorded_missing"] == []
    return set(report["recorded"])


def test_engine_on_the_dla_says_in_one_line_what_falls_back_to_the_gpu(detector, tmp_path):
    record = tmp_path / "touched.txt"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_DLA_CORES": "1", "FAKE_TRT_RECORD": str(record)}
    proc = cli("runtime", "engine", detector, "--dla-core", "0", fake_gpu="8.5.2", env=env)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if "DLA" in ln and "GPU" in ln]
    assert len(said) == 1 and said[0].startswith("DLA core 0: ") and "TOPK x2" in said[0], proc.stderr
    assert "GATHER" in said[0] and "Unsupported on DLA" not in proc.stderr and "falling back" not in proc.stderr
    touched = _real_names(record, "8.5.2")  # the real 8.6.1 for JetPack 5's 8.5.2
    assert {"IBuilderConfig.can_run_on_DLA", "INetworkDefinition.get_layer", "ILayer.type",
            "BuilderFlag.GPU_FALLBACK", "DeviceType.DLA"} <= touched
