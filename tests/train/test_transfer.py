"""Transfer learning on keras.applications' edge backbones (train/backbones.py): the model and head, the input
contract per backbone, --weights, --fine-tune's two phases, and one-line errors. Small inputs (32x32), a few
dozen images, one epoch per phase: behaviour, not accuracy (benchmarks/transfer.py measures that)."""

import json

import numpy as np
import pytest


SIZE = 32


@pytest.fixture(scope="module")
def keras():
    from train import load_tensorflow

    load_tensorflow()
    import keras

    return keras


def _spec(name, **kwargs):
    from train import models

    return models.get(name).configure(image_size=SIZE, **kwargs)


def _legacy_h5(keras, model, path):
    """Weights as Keras's storage holds them (mobilenet_v2_..._no_top.h5): the legacy layer-by-layer HDF5."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return str(path)


@pytest.mark.parametrize("name", ["mobilenetv2", "mobilenetv3small", "efficientnetb0"])
def test_backbone_gets_a_new_softmax_head_and_trains_whole_from_random_weights(keras, name):
    from train import backbones

    keras.utils.set_random_seed(0)
    model = _spec(name).build(3)
    base = backbones.backbone_of(model)
    assert tuple(model.input_shape) == (None, SIZE, SIZE, 3) and tuple(model.output_shape) == (None, 3)
    head = model.layers[-1]
    assert head.name == "head" and head.activation.__name__ == "softmax"
    assert len(base.layers) - 1 == backbones.BACKBONES[name].layers  # what --fine-tune N is checked against
    assert len(base.output.shape) == 2  # include_top=False with global average pooling
    assert all(layer.trainable for layer in base.layers), "random weights: nothing frozen"
    bns = [la for la in base.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert bns and {bn.momentum for bn in bns} == {backbones.SCRATCH_BN_MOMENTUM}


def test_preprocessing_is_each_backbones_own(keras):
    from keras.applications import mobilenet_v2

    from train import backbones

    x = np.arange(0, 256, dtype=np.float32).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    v2 = _spec("mobilenetv2").preprocess()
    assert v2["color"] == "rgb" and v2["resize"]["width"] == v2["resize"]["height"] == SIZE
    np.testing.assert_allclose(x * v2["scale"] + v2["offset"], mobilenet_v2.preprocess_input(x.copy()), atol=1e-6)
    for name in ("mobilenetv3small", "efficientnetb0"):  # Rescaling (and Normalization) inside: RGB 0..255 in
        pre = _spec(name).preprocess()
        assert (pre["scale"], pre["offset"], pre["color"]) == (1.0, 0.0, "rgb")
        base = backbones.BackboneSpec(backbones.BACKBONES[name], SIZE).build_base()
        assert base.layers[1].__class__.__name__ == "Rescaling"
    defaults = {name: spec.size for name, spec in ((n, _spec_default(n)) for n in backbones.BACKBONES)}
    assert defaults == {"mobilenetv2": (96, 96), "mobilenetv3small": (128, 128), "efficientnetb0": (128, 128)}


def _spec_default(name):
    from train import models

    return models.get(name).configure()


@pytest.fixture(scope="module")
def weights_file(keras, tmp_path_factory):
    """A MobileNetV2 32x32 weights file in the layout of Keras's downloads, from a model built here."""
    keras.utils.set_random_seed(123)
    base = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), include_top=False, weights=None,
                                          pooling="avg")
    for layer in base.layers:  # moving statistics that are not the initial 0 and 1, to see they stay
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.25, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, np.float32))
    path = _legacy_h5(keras, base, tmp_path_factory.mktemp("weights") / "mobilenet_v2_no_top.h5")
    return path, [np.asarray(w) for w in base.weights]


@pytest.mark.parametrize("fmt", ["h5", "keras"])
def test_weights_load_into_the_backbone_which_is_then_frozen(keras, weights_file, tmp_path, fmt):
    from train import backbones

    path, expected = weights_file
    if fmt == "keras":  # a whole model saved as .keras works too
        keras.utils.set_random_seed(1)
        model = _spec("mobilenetv2", weights=path).build(5)
        path = str(tmp_path / "backbone.keras")
        backbones.backbone_of(model).save(path)
    keras.utils.set_random_seed(7)
    model = _spec("mobilenetv2", weights=path).build(5)
    base = backbones.backbone_of(model)
    assert len(base.weights) == len(expected)
    for got, want in zip(base.weights, expected):
        np.testing.assert_array_equal(np.asarray(got), want)
    assert not base.trainable and [w.name for w in model.trainable_weights] == ["kernel", "bias"]  # the head


def test_fine_tune_trains_the_head_then_the_last_layers_with_bn_in_inference_mode(keras, weights_file, tmp_path):
    from train import backbones, datasets, run_dir, trainer

    path, expected = weights_file
    spec = _spec("mobilenetv2", weights=path, fine_tune=12, fine_tune_epochs=1)
    data = datasets.load("digits", spec, limit=48, seed=0)
    trained = trainer.train(spec, data, str(tmp_path / "run"), 1, 16, seed=0, verbose=0)
    assert not any((tmp_path / "run" / n).exists() for n in ("model.keras", "history.json", "meta.json")), \
        "train trains; run_dir writes the run"
    run_dir.write(str(tmp_path / "run"), spec, data, trained)
    model = trained.model
    base = backbones.backbone_of(model)
    layers = base.layers[1:]
    unfrozen = [la.name for la in layers if la.trainable]
    assert unfrozen == [la.name for la in layers[-12:] if not isinstance(la, keras.layers.BatchNormalization)]
    assert float(model.optimizer.learning_rate) == pytest.approx(backbones.FINE_TUNE_LR)
    changed = {v.path.split("/")[-2] for v, want in zip(base.weights, expected)
               if not np.array_equal(np.asarray(v), want)}
    assert changed and changed <= set(unfrozen), "only the unfrozen layers moved"
    for layer in base.layers:  # BatchNormalization ran in inference mode: ImageNet's statistics kept
        if isinstance(layer, keras.layers.BatchNormalization):
            assert np.all(np.asarray(layer.moving_mean) == 0.25) and np.all(np.asarray(layer.moving_variance) == 2)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [p["epochs"] for p in history["phases"]] == [1, 1] and len(history["history"]["loss"]) == 2
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["backbone"] == {"name": "mobilenetv2", "weights": "mobilenet_v2_no_top.h5", "fine_tune_layers": 12}
    pre = meta["preprocess"]
    assert (pre["scale"], pre["offset"], pre["color"]) == (pytest.approx(1 / 127.5), -1.0, "rgb")
    assert meta["input"]["shape"] == [None, SIZE, SIZE, 3] and meta["labels"] == [str(i) for i in range(10)]
    reloaded = keras.models.load_model(str(tmp_path / "run" / "model.keras"))
    x = data.inputs(data.val, spec)[:4]
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_efficientnet_imagenet_file_normalises_as_keras_applications_does(keras, tmp_path):
    """keras.applications adds Rescaling(1/sqrt(stddev)) only for weights="imagenet"; from a file, the same."""
    from train import backbones

    keras.utils.set_random_seed(0)
    base = keras.applications.EfficientNetB0(input_shape=(SIZE, SIZE, 3), include_top=False, weights=None)
    norm = next(la for la in base.layers if isinstance(la, keras.layers.Normalization))
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array(backbones.IMAGENET_STDDEV_RGB, np.float32)
    norm.adapt_mean.assign(mean)
    norm.adapt_variance.assign(std)  # as in Keras's efficientnetb0_notop.h5: the "variance" is the stddev
    path = _legacy_h5(keras, base, tmp_path / "efficientnetb0_notop.h5")
    loaded = _spec("efficientnetb0", weights=path).build_base()
    norm = next(la for la in loaded.layers if isinstance(la, keras.layers.Normalization))
    x = np.full((1, 4, 4, 3), 200.0, np.float32)
    np.testing.assert_allclose(np.asarray(norm(x / 255.0))[0, 0, 0], (200 / 255 - mean) / std, rtol=1e-5)


def test_mismatched_weights_file_is_one_line_exit_2(keras, weights_file, tmp_path, capsys):
    from runtime.cli import main
    from train.__main__ import _main

    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    for model, path in (("mobilenetv3small", weights_file[0]), ("mobilenetv2", str(junk))):
        assert main("python -m train", _main, ["--model", model, "--image-size", str(SIZE), "--weights", path,
                                               "--summary"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "does not fit %s" % model in err[0] and "Traceback" not in err[0], err


def test_summary_prints_the_backbone_and_says_its_weights_are_random(keras, capsys):
    from runtime.cli import main
    from train.__main__ import _main

    assert main("python -m train", _main, ["--model", "mobilenetv3small", "--image-size", str(SIZE),
                                           "--summary"]) == 0
    out, err = capsys.readouterr()
    assert "Total params: 944,890" in out and "MobileNetV3Small" in out
    assert "RANDOM weights" in err and "nothing is frozen" in err


def test_the_detectors_backbone_options_are_checked_in_one_line(keras, weights_file, tmp_path, capsys):
    from runtime.cli import main
    from train.__main__ import _main

    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    for args, said in ((["--model", "mnist_cnn", "--backbone", "mobilenetv2"], "--backbone is for --model detector"),
                       (["--model", "detector", "--weights", weights_file[0]], "give the detector one with --backbone"),
                       (["--model", "detector", "--backbone", "mobilenetv2", "--image-size", "96"],
                        "the detector's input is 256x144"),
                       (["--model", "detector", "--backbone", "mobilenetv2", "--fine-tune", "3"], "needs --weights"),
                       (["--model", "detector", "--backbone", "mobilenetv2", "--weights", str(junk)],
                        "does not fit mobilenetv2")):
        assert main("python -m train", _main, args + ["--summary"]) == 2, args
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and said in err[0] and "Traceback" not in err[0], (args, err)
    assert main("python -m train", _main, ["--model", "detector", "--backbone", "mobilenetv2", "--summary"]) == 0
    out, err = capsys.readouterr()
    assert "mobilenetv2" in out and "RANDOM weights" in err
