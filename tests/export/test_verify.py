"""export verify and export variants: each precision judged by its own tolerance, every backend covered
(the TensorRT rows through the FAKE TensorRT of tests/fakes)."""

import json

import numpy as np

from tests.conftest import cli, copy_bundle, one_line_error, read_jsonl



def test_verify_judges_each_precision_by_its_own_tolerance():
    from export.verify import judge

    ref = [np.array([[0.9, 0.1], [0.2, 0.8]] * 16)]
    assert judge("classification", "fp32", ref, [ref[0] + 5e-5])["passed"]
    assert not judge("classification", "fp32", ref, [ref[0] + 2e-4])["passed"]
    assert judge("classification", "fp16", ref, [ref[0] + 5e-3])["passed"]
    assert judge("classification", "int8", ref, [ref[0] * 0.8])["outputs"][0]["passed"] is None  # 32: too few
    many = [np.concatenate([ref[0]] * 4)]  # 128 frames
    flipped = many[0].copy()
    flipped[[0, 2]] = [0.1, 0.9]  # two answers change: 126 of 128 agree, 98.4% < 99%
    assert not judge("classification", "int8", many, [flipped])["passed"]
    assert judge("classification", "int8", many, [many[0] * 0.8])["passed"]  # far off, same answers
    steer = [np.linspace(-0.8, 0.8, 32)[:, None]]
    assert judge("steering", "int8", steer, [steer[0] + 0.09])["passed"]
    assert not judge("steering", "int8", steer, [steer[0] + 0.11])["passed"]


def test_variants_run_in_onnxruntime_and_verify_covers_every_backend(digits_bundle, tmp_path):
    bundle = copy_bundle(digits_bundle, tmp_path)
    proc = cli("export", "variants", bundle, "--calib-data", "digits", "--calib-frames", "200")
    assert proc.returncode == 0, proc.stderr
    manifest = json.load(open(bundle / "manifest.json"))
    assert set(manifest["variants"]) == {"fp16", "int8"}
    assert manifest["variants"]["int8"]["calibration"]["data"] == "digits (200 frames)"
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("onnxruntime")]
    assert len(rows) == 3 and all(ln.endswith(" ok") for ln in rows), proc.stdout

    import onnx

    int8 = onnx.load(str(bundle / "model.int8.onnx"))
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    fp16 = onnx.load(str(bundle / "model.fp16.onnx"))
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in fp16.graph.initializer)

    proc = cli("runtime", "run", bundle, "--source", bundle / "samples", "--no-display", "--backend", "onnxruntime",
               "--precision", "int8", "--jsonl", tmp_path / "i.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert len(read_jsonl(tmp_path / "i.jsonl")) == 32

    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert cli("export", "engine", bundle, fake_gpu="10.3.0", env=env).returncode == 0
    proc = cli("export", "verify", bundle, "--json", tmp_path / "v.json", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.load(open(tmp_path / "v.json"))["rows"][2]["outputs"][0]["passed"] is None  # 32 samples: unjudged
    assert "INT8 agreement needs >= 100 frames" in proc.stdout
    proc = cli("export", "verify", bundle, "--data", "digits", "--frames", "300", "--json", tmp_path / "v.json",
               fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.load(open(tmp_path / "v.json"))
    assert report["samples"] == 332 and report["rows"][2]["outputs"][0]["passed"] is True
    assert [r["precision"] for r in report["rows"]] == ["fp32", "fp16", "int8", "fp16"]
    assert report["rows"][-1]["backend"].startswith("tensorrt fp16-b1-gpu-trt10.3.0-") and report["passed"]

    proc = cli("export", "verify", bundle)  # no TensorRT here: the engine is named, not checked
    assert proc.returncode == 0 and "1 engine(s) not checked: TensorRT is not installed" in proc.stdout

    manifest["variants"]["fp16"]["sha256"] = "0" * 64  # a variant that does not match: one line, exit 2
    json.dump(manifest, open(bundle / "manifest.json", "w"))
    proc = cli("export", "verify", bundle)
    assert one_line_error(proc) and "does not match its sha256" in proc.stderr


def test_a_detectors_variants_keep_its_map_on_labelled_road_obstacles(tmp_path):
    """Issue 31's variant targets, on the checked-in detector: ONNX Runtime's FP16 within 1 point of model.onnx's
    mAP@0.5 and INT8 (calibrated on road-obstacle frames) within 2, on frames that come labelled. Measured:
    0.817 / 0.817 / 0.812 on 300 frames; 0.2% of FP16's boxes and about 3% of INT8's have no counterpart in
    model.onnx's within their tolerance (1% and 5% allowed)."""
    from tests.runtime.test_detection_runtime import REAL

    bundle = copy_bundle(REAL, tmp_path)
    proc = cli("export", "variants", bundle, "--calib-data", "road-obstacles", "--calib-frames", "100", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli("export", "verify", bundle, "--data", "road-obstacles", "--frames", "300", "--json",
               tmp_path / "v.json", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {row["precision"]: row for row in json.load(open(tmp_path / "v.json"))["rows"]}
    assert rows["fp32"]["map50"] > 0.75, rows["fp32"]["map50"]
    assert rows["fp16"]["map50_drop"] <= 0.01 and rows["int8"]["map50_drop"] <= 0.02, rows
    assert rows["int8"]["outputs"][0].get("not_judged") and rows["int8"]["outputs"][1]["passed"]
    assert "mAP@0.5 on 300 labelled road-obstacles frames" in proc.stdout
