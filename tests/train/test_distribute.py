"""tf.distribute through --strategy: mirrored over CPU replicas trains and exports like one device; what cannot
run here refuses in one line; mixed precision trains with a float32 output and saves a float32 model."""

import json

import numpy as np
import pytest

from tests.conftest import cli, one_line_error

MARGIN = 0.03  # held-out accuracy, mirrored against one device (measured: 0.961 against 0.967 on the digits)


def test_mirrored_over_two_cpu_replicas_matches_one_device_and_exports(digits_run, tmp_path):
    proc = cli("train", "--model", "mnist_cnn", "--data", "digits", "--epochs", "6", "--strategy", "mirrored",
               "--cpu-replicas", "2", "--mixed-precision", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "strategy: mirrored, 2 replicas (CPU:0, CPU:1)" in proc.stderr
    assert "--mixed-precision has no benefit on a CPU" in proc.stderr
    one = json.loads((digits_run / "history.json").read_text())["held_out"]["val_accuracy"]
    two = json.loads((tmp_path / "run" / "history.json").read_text())["held_out"]["val_accuracy"]
    assert abs(two - one) <= MARGIN, (one, two)
    exported = cli("export", "onnx", tmp_path / "run", "--out", tmp_path / "bundle")
    assert exported.returncode == 0, exported.stderr[-2000:]


@pytest.mark.parametrize("args, env, message", [
    (["--strategy", "mirrored"], {}, "needs GPUs, and this machine has none: give --cpu-replicas N"),
    (["--cpu-replicas", "2"], {}, "--cpu-replicas is for --strategy mirrored"),
    (["--strategy", "mirrored", "--cpu-replicas", "3", "--batch-size", "32"], {}, "does not split over 3 replicas"),
    (["--strategy", "multiworker"], {}, "needs TF_CONFIG"),
    (["--strategy", "multiworker"], {"TF_CONFIG": "{\"cluster\": 1}"}, "TF_CONFIG is not a cluster"),
    (["--strategy", "multiworker"],
     {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                               "task": {"type": "worker", "index": 0}})}, "keras-team/keras#20585"),
])
def test_strategies_that_cannot_run_refuse_in_one_line(tmp_path, args, env, message):
    proc = cli("train", "--model", "mnist_cnn", "--data", "digits", "--epochs", "1", "--out", tmp_path / "r", *args,
               env=env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("loading ", "strategy: "))]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def test_mixed_precision_keeps_a_float32_output_and_saves_a_float32_model():
    from train import load_tensorflow, models, trainer

    load_tensorflow()
    import keras

    spec = models.get("mnist_dense")
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = trainer._float32_output(keras, spec.build(10))
        assert model.layers[-2].compute_dtype == "float16" and model.outputs[0].dtype == "float32"
        x = np.random.RandomState(0).rand(32, *spec.input_shape).astype("float32")
        model.fit(x, keras.utils.to_categorical(np.arange(32) % 10, 10), epochs=1, verbose=0)
        plain = trainer._float32_copy(keras, spec, model, 10)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert all(w.dtype == "float32" for w in plain.weights) and plain.layers[-1].compute_dtype == "float32"
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), atol=5e-3)
