"""Export of models a user brings (not the zoo's): Keras's application families, a Functional model with
augmentation, an adapted Normalization and a custom layer, Lambda layers, ops ONNX lacks. Real TensorFlow,
tf2onnx and ONNX Runtime; the bundles are then run by the runtime's own Model."""

import json
import os
import textwrap

import numpy as np
import pytest

from tests.conftest import cli, one_line_error

from tests.export import families
from tests.export.families import SIZE
from tests.export.families import frames as _frames
from tests.export.families import inputs as _inputs
from tests.export.families import wake as _wake

FRESH = 16


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    import cv2

    folder = tmp_path_factory.mktemp("samples")
    for i, frame in enumerate(_frames(FRESH, seed=5)):
        cv2.imwrite(str(folder / ("f%02d.png" % i)), frame)
    return folder


def _export(path, out, sample_dir, **options):
    from export import load_tensorflow
    from export.onnx_bundle import Options, export

    load_tensorflow()
    report = export(str(path), str(out), Options(samples=str(sample_dir), **options))
    return report


def _check_in_runtime(bundle_path):
    """The bundle's 16 samples (fresh frames: the model never saw them), run by the runtime, against Keras's
    outputs that export stored for them: within 1e-4 of the output's range, and that range not vacuous."""
    from runtime.model import Model
    from runtime.bundle import bundle_samples

    with Model(str(bundle_path), backend="onnxruntime") as runtime_model:
        frames = bundle_samples(runtime_model.bundle)
        ours = runtime_model.predict(frames)[0]
        result = runtime_model(frames[0])
        with np.load(runtime_model.bundle.keras_outputs_path) as stored:
            theirs = stored[runtime_model.bundle.outputs[0]["name"]]
    assert len(frames) == FRESH
    spread = float(np.ptp(theirs, axis=0).max())
    assert spread > 1e-3, "the model gives (nearly) the same output for every frame: the check would be vacuous"
    error = float(np.abs(ours - theirs).max()) / float(theirs.max() - theirs.min())
    assert error <= 1e-4, error
    assert result["label"] in [str(i) for i in range(3)]
    return error


# the families tested here (tests/export/families.py has them all, benchmarks/export_routes.py runs them all):
# those a user brings most to a Jetson, DenseNet (the torch scaling, one scale per channel), and ConvNeXt, whose
# grouped convolutions and exact GELU were once refused; 10 to 45 s each on 2 cores (docs/export.md: every family)
FAMILIES = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0",
            "ResNet50", "DenseNet121", "ConvNeXtTiny")


@pytest.mark.parametrize("family", FAMILIES)
def test_keras_application_families_export_with_parity_and_run(family, tmp_path, sample_dir):
    model = families.family(family)
    path = tmp_path / "model.keras"
    model.save(path)
    report = _export(path, tmp_path / "bundle", sample_dir, task="classification", **families.FAMILIES[family])
    assert report["passed"] and not report["vacuous"] and report["route"] == "frozen"
    _check_in_runtime(tmp_path / "bundle")

    import onnx

    graph = onnx.load(str(tmp_path / "bundle" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]  # not the Normalization constants as extra inputs
    assert all(n.domain in ("", "ai.onnx") and "PartitionedCall" not in n.op_type for n in graph.node)


CUSTOM = textwrap.dedent('''
    import keras


    @keras.saving.register_keras_serializable(package="mytests")
    class ChannelGain(keras.layers.Layer):
        """A learnt gain per channel, squashed: a custom layer built from ops that convert."""

        def build(self, input_shape):
            self.gain = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gain")

        def call(self, x):
            return keras.ops.tanh(x * self.gain) + 0.1 * x
    ''')


def _functional_model(tmp_path):
    """Keras's tutorials' shape: augmentation and normalisation inside the model, then a small CNN."""
    import importlib.util

    import keras
    from keras import layers

    module_path = tmp_path / "my_layers.py"
    module_path.write_text(CUSTOM)
    spec = importlib.util.spec_from_file_location("my_layers", module_path)
    my_layers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(my_layers)

    keras.utils.set_random_seed(0)
    normalize = layers.Normalization()
    normalize.adapt(_inputs(_frames(16, seed=3)))  # raw pixels: export it with --scale 1
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.RandomFlip("horizontal")(inputs)
    x = layers.RandomRotation(0.1)(x)
    x = layers.RandomZoom(0.1)(x)
    x = layers.RandomContrast(0.2)(x)
    x = layers.GaussianNoise(0.1)(x)
    x = normalize(x)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = my_layers.ChannelGain(name="gain")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.5)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    _wake(model)
    path = tmp_path / "functional.keras"
    model.save(path)
    return model, path, module_path


def test_functional_model_with_augmentation_normalization_and_custom_layer(tmp_path, sample_dir):
    model, path, module_path = _functional_model(tmp_path)
    proc = cli("export", "onnx", path, "--out", tmp_path / "bundle", "--samples", sample_dir,
               "--custom-objects", module_path, "--scale", "1")  # its Normalization was adapted on raw pixels
    assert proc.returncode == 0, proc.stderr
    assert "frozen route" in proc.stdout
    _check_in_runtime(tmp_path / "bundle")

    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "bundle" / "model.onnx")).graph.node}
    assert not ops & {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial"}

    # without the file that defines the custom layer: one line naming the layer and what to give
    proc = cli("export", "onnx", path, "--out", tmp_path / "b2", "--samples", sample_dir)
    assert one_line_error(proc), proc.stderr
    assert "'gain'" in proc.stderr and "ChannelGain" in proc.stderr and "--custom-objects" in proc.stderr


def test_lambda_layers_need_unsafe_and_then_export(tmp_path, sample_dir):
    import keras
    from export.__main__ import _main
    from runtime.errors import UserError

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0 - 0.5, name="centre")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    args = ["onnx", str(tmp_path / "lambda.keras"), "--samples", str(sample_dir)]
    with pytest.raises(UserError, match=r"Lambda layer\(s\) 'centre'.*--unsafe"):
        _main(args + ["--out", str(tmp_path / "b1")])
    assert not os.path.exists(tmp_path / "b1")
    assert _main(args + ["--out", str(tmp_path / "b2"), "--unsafe"]) == 0
    verify = ["verify", str(tmp_path / "b2"), "--keras", str(tmp_path / "lambda.keras")]
    with pytest.raises(UserError, match="--unsafe"):
        _main(verify)
    assert _main(verify + ["--unsafe"]) == 0


def test_an_op_onnx_lacks_is_refused_naming_the_layer(tmp_path, sample_dir):
    import keras
    import tensorflow as tf
    from export import keras_onnx
    from runtime.errors import UserError

    class Hue(keras.layers.Layer):
        def call(self, x):
            return tf.image.rgb_to_hsv(x / 255.0)

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3)(Hue(name="to_hsv")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(UserError) as caught:
        keras_onnx.convert(model, log=open(os.devnull, "w"))
    message = str(caught.value)
    assert "layer 'to_hsv' (Hue)" in message and "RGBToHSV" in message and "\n" not in message
    assert "build that layer from ops ONNX has" in message  # and what to do


def test_grouped_convolutions_and_the_exact_gelu_convert_by_the_frozen_route():
    """ConvNeXt's two layers that once stopped its export: a grouped Conv2D, which Keras's TensorFlow backend runs
    in a tf.function(jit_compile=True) of its own (left a StatefulPartitionedCall by the freezing, until export
    let it inline), and GELU (approximate=False), which TensorFlow writes with Erfc (tf2onnx has no Erfc)."""
    import keras
    import onnxruntime as ort
    from export import keras_onnx, parity

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.Conv2D(8, 7, padding="same", groups=8, name="depthwise")(x)
    x = keras.layers.Conv2D(16, 3, groups=2, name="grouped")(x)
    x = keras.layers.Activation("gelu", name="gelu")(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    proto, problem = keras_onnx._convert_by("frozen", model, (SIZE, SIZE, 3), keras_onnx.DEFAULT_OPSET)
    assert problem is None, problem
    ops = [n.op_type for n in proto.graph.node]
    assert "Erf" in ops and not [op for op in ops if "Call" in op]
    assert sorted(a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group")[-2:] \
        == [2, 8]
    x = _inputs(_frames(8, seed=7), scale=1 / 127.5, offset=-1.0)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    report = parity.compare([model.predict(x, verbose=0)], session.run(None, {"input": x}))
    assert report["passed"] and not report["vacuous"], report


def test_parity_is_vacuous_when_the_outputs_barely_move_with_the_input():
    from export import parity

    rng = np.random.default_rng(0)
    moving = rng.normal(size=(16, 3)) * [1.0, 5.0, 0.1]
    report = parity.compare([moving], [moving + 1e-6])
    assert report["passed"] and not report["vacuous"]
    # an untrained network whose outputs barely move: range 1e-5, error 0.0 passes, and proves nothing
    still = 0.5 + rng.normal(size=(16, 1)) * 2.5e-6
    report = parity.compare([still], [still.copy()])
    out = report["outputs"][0]
    assert report["passed"] and report["vacuous"] and out["vacuous"] and out["max_abs_error"] == 0.0
    assert 5e-6 < out["range"] < 2e-5 and out["spread_over_tolerance"] < 0.1
    assert parity.compare([still * 1e4], [still * 1e4])["vacuous"] is False  # the same shape, 1e4 times larger
    # classes far apart (range 10) but each the same for every sample: the range is no spread
    report = parity.compare([np.tile([0.0, 4.0, 10.0], (16, 1))], [np.tile([0.0, 4.0, 10.0], (16, 1))])
    assert report["vacuous"] and report["outputs"][0]["tolerance"] == pytest.approx(1e-3)
    # at the rule's edge: a spread of 10x the tolerance (1e-4 for a range below 1) is enough, a hair less not
    edge = np.zeros((16, 1))
    edge[::2], edge[1::2] = 0.5 + 1e-3 - 1e-9, 0.5 - 1e-3 + 1e-9
    assert parity.compare([edge], [edge])["vacuous"]
    edge[::2], edge[1::2] = 0.5 + 1e-3 + 1e-9, 0.5 - 1e-3 - 1e-9
    assert not parity.compare([edge], [edge])["vacuous"]
    assert parity.compare([moving[:1]], [moving[:1]])["vacuous"]  # one sample shows no spread at all
    assert "output 0's spread" in parity.why_vacuous(report)


def test_a_dead_network_is_reported_as_vacuous_parity(tmp_path, sample_dir):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="zeros",
                            kernel_initializer=keras.initializers.Constant(-1.0))(inputs)  # relu of < 0: all zero
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "dead.keras")
    proc = cli("export", "onnx", tmp_path / "dead.keras", "--out", tmp_path / "bundle", "--samples", sample_dir)
    assert proc.returncode == 0, proc.stderr
    assert "parity: VACUOUS, not a pass" in proc.stdout
    assert "warning: parity is vacuous: output 0's spread over the samples (std 0)" in proc.stderr
    assert json.load(open(tmp_path / "bundle" / "parity.json"))["vacuous"]


SUBCLASSED = textwrap.dedent('''
    import keras


    @keras.saving.register_keras_serializable(package="mytests")
    class TinyNet(keras.Model):
        """A subclassed model: no symbolic inputs or outputs, only the shape it was built with."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(4, 3, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.head = keras.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.head(self.pool(self.conv(x)))
    ''')


def test_subclassed_model_exports_and_an_unbuilt_one_is_one_line(tmp_path, sample_dir):
    import importlib.util

    import keras
    from export.__main__ import _main
    from runtime.errors import UserError

    (tmp_path / "tiny.py").write_text(SUBCLASSED)
    spec = importlib.util.spec_from_file_location("tiny", tmp_path / "tiny.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    keras.utils.set_random_seed(0)
    model = tiny.TinyNet()
    model(np.zeros((1, SIZE, SIZE, 3), np.float32))
    model.save(tmp_path / "tiny.keras")
    assert _main(["onnx", str(tmp_path / "tiny.keras"), "--out", str(tmp_path / "b"), "--samples", str(sample_dir),
                  "--custom-objects", str(tmp_path / "tiny.py")]) == 0
    _check_in_runtime(tmp_path / "b")

    with pytest.warns(UserWarning, match="not yet been built"):
        keras.Sequential([keras.layers.Dense(2)]).save(tmp_path / "unbuilt.keras")
    with pytest.raises(UserError, match="no defined input"):
        _main(["onnx", str(tmp_path / "unbuilt.keras"), "--out", str(tmp_path / "b2")])


def test_the_default_scaling_looks_through_augmentation_to_a_rescaling_and_odd_outputs_are_one_line():
    import keras
    from export import keras_onnx
    from export.onnx_bundle import _scales_itself
    from runtime.errors import UserError

    layers = keras.layers
    augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)], name="augment")
    tutorial = keras.Sequential([keras.Input((SIZE, SIZE, 3)), augment, layers.Rescaling(1 / 255), layers.Conv2D(4, 3)])
    flat = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layers.RandomFlip(), layers.Dropout(0.1),
                             layers.Rescaling(1 / 127.5, offset=-1), layers.Conv2D(4, 3)])
    plain = keras.Sequential([keras.Input((SIZE, SIZE, 3)), layers.RandomFlip(), layers.Conv2D(4, 3)])
    assert _scales_itself(tutorial) and _scales_itself(flat) and not _scales_itself(plain)
    # a Normalization first: raw pixels when its mean is in pixel units (ConvNeXt's), not when in [0, 1]
    imagenet = [0.485, 0.456, 0.406], [0.229 ** 2, 0.224 ** 2, 0.225 ** 2]
    pixels = layers.Normalization(mean=[m * 255 for m in imagenet[0]], variance=[v * 255 ** 2 for v in imagenet[1]])
    unit = layers.Normalization(mean=imagenet[0], variance=imagenet[1])
    assert _scales_itself(keras.Sequential([keras.Input((SIZE, SIZE, 3)), pixels, layers.Conv2D(4, 3)]))
    assert not _scales_itself(keras.Sequential([keras.Input((SIZE, SIZE, 3)), unit, layers.Conv2D(4, 3)]))

    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = layers.GlobalAveragePooling2D()(inputs)
    named = keras.Model(inputs, {"steer": layers.Dense(1)(pooled), "speed": layers.Dense(1)(pooled)})
    with pytest.raises(UserError, match="outputs are a dict"):
        keras_onnx.output_shapes(named, (SIZE, SIZE, 3))
    scalar = keras.Model(inputs, layers.Reshape(())(layers.Dense(1)(pooled)))
    with pytest.raises(UserError, match="one number per batch item"):
        keras_onnx.output_shapes(scalar, (SIZE, SIZE, 3))
