"""Export: a checked ONNX bundle from any Keras 3 model, and nothing that looks good when it is not."""

import json

import numpy as np
import pytest

from runtime import bundle as bundle_format
from tests.conftest import cli, one_line_error


def test_bundle_holds_model_manifest_parity_and_samples(pilot_bundle):
    b = bundle_format.load(str(pilot_bundle))
    m = b.manifest
    assert m["task"] == "steering" and m["model"]["opset"] == 15
    assert m["input"] == {"name": "input", "shape": [None, 66, 200, 3], "layout": "NHWC", "dtype": "float32"}
    assert m["preprocess"]["color"] == "yuv" and m["preprocess"]["crop"]["top"] == 0.4
    assert m["steering"]["inverse_radius_per_unit"] == 0.1
    assert {"tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"} <= set(m["tools"])
    assert len(b.sample_paths) >= 24 and all(__import__("os").path.isfile(p) for p in b.sample_paths)
    parity = json.loads((pilot_bundle / "parity.json").read_text())
    assert parity["passed"] and parity["outputs"][0]["max_abs_error"] <= 1e-4


def test_onnx_has_a_dynamic_batch_and_a_tensorrt_opset(pilot_bundle):
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(pilot_bundle / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) <= 17
    session = ort.InferenceSession(str(pilot_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": np.zeros((5, 66, 200, 3), np.float32)})[0]
    assert out.shape == (5, 1)


def test_any_functional_keras_model_with_batchnorm_and_dropout_exports_with_parity(tmp_path):
    import keras

    inputs = keras.Input((48, 64, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    skip = keras.layers.Conv2D(8, 1)(inputs)
    x = keras.layers.Add()([x, skip])
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "categorical_crossentropy")
    rng = np.random.RandomState(0)
    model.fit(rng.rand(64, 48, 64, 3), keras.utils.to_categorical(rng.randint(0, 4, 64), 4), epochs=2, verbose=0)
    model.save(tmp_path / "mine.keras")
    proc = cli("export", "onnx", tmp_path / "mine.keras", "--out", tmp_path / "bundle", "--labels", "a,b,c,d")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = bundle_format.load(str(tmp_path / "bundle")).manifest
    assert m["task"] == "classification" and m["labels"] == ["a", "b", "c", "d"]
    assert m["preprocess"]["resize"] == {"width": 64, "height": 48, "interpolation": "linear"}
    parity = json.loads((tmp_path / "bundle" / "parity.json").read_text())
    assert parity["passed"] and parity["outputs"][0]["max_abs_error"] <= 1e-4


def test_failed_parity_exits_1_and_publishes_nothing(digits_run, tmp_path):
    proc = cli("export", "onnx", digits_run, "--out", tmp_path / "b", "--atol", "1e-15")
    assert proc.returncode == 1, proc.stderr
    assert "parity FAILED" in proc.stderr
    assert not (tmp_path / "b").exists()
    failed = tmp_path / "b.failed"
    assert (failed / "parity.json").is_file() and not (failed / "manifest.json").exists()
    assert not json.loads((failed / "parity.json").read_text())["passed"]


def test_corrupt_model_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"PK\x03\x04 this is not a zip")
    proc = cli("export", "onnx", tmp_path / "broken.keras", "--out", tmp_path / "b")
    assert one_line_error(proc), proc.stderr
    assert not (tmp_path / "b").exists()


def test_refuses_to_overwrite_a_folder_that_is_not_a_bundle(digits_run, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    proc = cli("export", "onnx", digits_run, "--out", tmp_path / "precious")
    assert one_line_error(proc), proc.stderr
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"


def test_missing_run_directory_is_one_line_exit_2(tmp_path):
    proc = cli("export", "onnx", tmp_path / "nothing", "--out", tmp_path / "b")
    assert one_line_error(proc), proc.stderr


@pytest.mark.parametrize("field, value, message", [
    ("preprocess", {"resize": {"width": 28, "height": 28}, "color": "hsv", "scale": 1, "offset": 0},
     "preprocess color 'hsv'"),
    ("samples", {"dir": "samples", "files": ["../../../etc/passwd"]}, "samples needs dir and files as names inside"),
    ("task", None, "task None is not one of"),
])
def test_a_damaged_run_metadata_is_one_line_exit_2(digits_run, tmp_path, field, value, message):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    meta = json.loads((run / "meta.json").read_text())
    meta[field] = value
    (run / "meta.json").write_text(json.dumps(meta))
    proc = cli("export", "onnx", run, "--out", tmp_path / "bundle")
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr and not (tmp_path / "bundle").exists()
