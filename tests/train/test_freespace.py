"""Free-space segmentation (issue 32) end to end: `--model freespace` trained on the procedural road's labelled
pixels, exported with its class map in the graph (parity by the pixels that agree), and run by the runtime on road
frames: JSON lines with each class's share and the free space's boundary per column, the mask blended in the
overlay. The runtime's pieces alone are tested in tests/runtime/test_segmentation_runtime.py."""

import json

import numpy as np
import pytest

from export import parity
from tests.conftest import _export, _train, cli, read_jsonl


def test_class_maps_agree_by_their_pixels_and_one_class_everywhere_proves_nothing():
    a = np.zeros((2, 4, 5), np.int32)
    a[:, 2:] = 3
    assert parity.compare_classes(a, a.copy())["passed"]
    flipped = a.copy()
    flipped[0, 0, 0] = 1  # 1 pixel in 40: 97.5% agree
    report = parity.compare_classes(a, flipped)
    assert not report["passed"] and report["agreement"] == pytest.approx(0.975)
    assert parity.compare_classes(np.zeros((2, 4, 5)), np.zeros((2, 4, 5)))["vacuous"]
    assert not parity.compare_classes(a, a[:, :3])["passed"]  # another shape


@pytest.fixture(scope="module")
def freespace_bundle(tmp_path_factory):
    run = _train(tmp_path_factory, "freespace", "--model", "freespace", "--data", "road-freespace", "--limit", "128",
                 "--epochs", "3", "--batch-size", "8")
    return run, _export(tmp_path_factory, run, "freespace")


def test_trained_on_the_road_it_exports_its_class_map_and_the_runtime_reports_free_space(freespace_bundle,
                                                                                        tmp_path):
    import onnx

    from runtime.bundle import load

    run, path = freespace_bundle
    meta = json.loads((run / "meta.json").read_text())
    assert meta["task"] == "segmentation" and meta["labels"][2] == "ego lane"
    history = json.loads((run / "history.json").read_text())
    assert len(history["history"]["val_miou"]) == 3 and "val_iou_ego_lane" in history["history"]
    held = meta["held_out"]
    print("held out after 3 small epochs: %s" % held)
    assert held["val_pixel_accuracy"] > 0.6 and held["val_iou"]["sky"] > 0.8  # more than the sky (43% of pixels)
    report = json.loads((path / "parity.json").read_text())
    assert report["passed"] and report["classes"]["agreement"] >= 0.999 and not report["classes"]["vacuous"]
    ops = {n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}
    assert "ArgMax" in ops
    bundle = load(str(path))
    assert bundle.task == "segmentation" and bundle.segmentation["drivable"] == [2, 3, 4]

    out, video = tmp_path / "results.jsonl", tmp_path / "overlay.mp4"
    proc = cli("runtime", "run", path, "--source", "synthetic://road", "--max-frames", 5, "--jsonl", out,
               "--output", video, "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = read_jsonl(out)
    assert len(rows) == 5
    first = rows[0]["result"]
    assert set(first["shares"]) == set(meta["labels"]) and abs(sum(first["shares"].values()) - 1) < 1e-3
    assert len(first["boundary"]) == 160 and all(0 <= y <= 360 for y in first["boundary"])  # a 640x360 road
    assert 0 <= first["free_space"] <= 1 and "mask" not in first
    assert video.stat().st_size > 0

    import cv2

    masks = tmp_path / "masks"
    masks.mkdir()
    proc = cli("runtime", "run", path, "--source", "synthetic://road", "--max-frames", 4, "--masks", masks,
               "--masks-every", 2, "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in masks.iterdir())
    assert written == ["00000000.png", "00000002.png"]
    mask = cv2.imread(str(masks / written[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (96, 160) and mask.dtype == np.uint8 and mask.max() < len(meta["labels"])
    both = tmp_path / "both"
    both.mkdir()
    proc = cli("runtime", "run", path, "tests/runtime/bundles/pilotnet", "--source", "synthetic://road", "--max-frames",
               20, "--masks", both, "--jsonl", tmp_path / "both.jsonl", "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr  # beside steering: steering first, the map's files still written
    rows = read_jsonl(tmp_path / "both.jsonl")
    assert all(list(r["result"]) == ["pilotnet", "freespace"] for r in rows)  # (how many results freespace gives
    # depends on the cores left to it beside steering: not asserted; each one it gives is a mask file)
    seen = {r["result"]["freespace"]["frame"] for r in rows if r["result"]["freespace"] is not None}
    assert sorted(p.name for p in both.iterdir()) == ["%08d.png" % i for i in sorted(seen)]  # once a frame it saw
    for bad, says in (([path, "--masks", tmp_path / "none"], "no such folder"),
                      (["tests/runtime/bundles/pilotnet", "--masks", masks], "--masks is for segmentation bundles")):
        proc = cli("runtime", "run", bad[0], "--source", "synthetic://road", "--no-display", *bad[1:])
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr


def test_its_fp16_and_int8_variants_are_judged_by_the_pixels_and_the_miou(freespace_bundle, tmp_path):
    import shutil

    _, path = freespace_bundle
    copy = tmp_path / "freespace"
    shutil.copytree(path, copy)
    made = cli("export", "variants", copy, "--calib-data", "road-freespace", "--calib-frames", 100)
    assert made.returncode == 0, made.stderr
    judged = cli("export", "verify", copy, "--data", "road-freespace", "--frames", 100, "--json", tmp_path / "v.json")
    assert judged.returncode == 0, judged.stderr + judged.stdout
    report = json.loads((tmp_path / "v.json").read_text())
    rows = {r["precision"]: r for r in report["rows"]}
    assert set(rows) == {"fp32", "fp16", "int8"} and all(r["passed"] for r in rows.values())
    assert rows["fp16"]["miou_drop"] <= 0.01 and rows["int8"]["miou_drop"] <= 0.02
    maps = {p: r["outputs"][1] for p, r in rows.items()}
    assert maps["fp32"]["class_agreement"] == 1.0 and maps["int8"]["class_agreement"] >= 0.95
    assert rows["int8"]["outputs"][0]["not_judged"]  # INT8 probabilities: the class map and mIoU judge it
    assert "mIoU" in judged.stdout


def test_pixels_that_are_no_class_weigh_nothing_in_training_and_scoring():
    """A dataset's ignore label (masks:PATH's, e.g. Cityscapes' 255): the batches carry per-pixel weights, 0 there,
    and the held-out IoU counts only the pixels that are a class."""
    from train.freespace import FreespaceSpec, batches, predict_classes

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 96, 160, 3), dtype=np.uint8)
    masks = np.zeros((2, 96, 160), np.uint8)
    ignored = np.zeros((2, 96, 160), bool)
    ignored[0, :48] = True
    spec = FreespaceSpec()
    x, y, w = batches((frames, masks), spec, 2, ignored=ignored)[0]
    assert x.shape == (2, 96, 160, 3) and y.shape == w.shape == (2, 96, 160)
    assert w[0, :48].max() == 0 and w[0, 48:].min() == 1 and w[1].min() == 1
    assert len(batches((frames, masks), spec, 2)[0]) == 2  # no ignore map: no weights

    class Constant:  # a network that answers class 1 everywhere
        def predict(self, batch, verbose=0):
            out = np.zeros(batch.shape[:3] + (6,), np.float32)
            out[..., 1] = 1
            return out

    found, truth = predict_classes(Constant(), (frames, masks), spec, ignored=ignored)
    assert found.shape == truth.shape == (2 * 96 * 160 - 48 * 160,)


@pytest.fixture(scope="module")
def mobilenetv2_weights(tmp_path_factory):
    """A MobileNetV2 weights file in the layout of Keras's downloads (its convolutions do not depend on the input
    size), with BatchNormalization statistics of images, as a pretrained network's are: {path: array} of it."""
    from train import load_tensorflow

    load_tensorflow()
    import keras

    from tests.train.test_transfer import _legacy_h5

    keras.utils.set_random_seed(11)
    whole = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    for layer in whole.layers:  # (the initial 0 and 1 with random weights saturate every ReLU6)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    whole(np.random.RandomState(11).uniform(-1, 1, (8, 64, 64, 3)).astype(np.float32), training=True)
    path = _legacy_h5(keras, whole, tmp_path_factory.mktemp("weights") / "mobilenet_v2_no_top.h5")
    return path, {w.path: np.asarray(w) for w in whole.weights}


def test_on_a_pretrained_mobilenetv2_it_trains_frozen_then_fine_tunes_and_exports(mobilenetv2_weights,
                                                                                  tmp_path_factory):
    """--backbone mobilenetv2 --weights: the U-Net's encoder is MobileNetV2's first blocks (maps at strides 2, 4, 8,
    16) holding the file's weights, frozen with its BatchNormalization statistics while the decoder trains, then
    its last layers fine-tune; the run and the bundle take MobileNetV2's input scaling, the class map's parity
    holds."""
    import keras
    import onnx

    from train import backbones

    weights, expected = mobilenetv2_weights
    run = _train(tmp_path_factory, "freespace-mnv2", "--model", "freespace", "--backbone", "mobilenetv2", "--weights",
                 weights, "--fine-tune", "4", "--fine-tune-epochs", "1", "--epochs", "1", "--limit", "8",
                 "--batch-size", "8", "--seed", "3")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["backbone"] == {"name": "mobilenetv2", "weights": "mobilenet_v2_no_top.h5", "fine_tune_layers": 4}
    v2 = backbones.BACKBONES["mobilenetv2"]
    assert (meta["preprocess"]["scale"], meta["preprocess"]["offset"]) == (v2.scale, v2.offset) == (1 / 127.5, -1)
    assert meta["input"]["shape"] == [None, 96, 160, 3] and meta["task"] == "segmentation"
    history = json.loads((run / "history.json").read_text())
    assert [p["epochs"] for p in history["phases"]] == [1, 1]
    mious = history["history"]["val_miou"]
    assert len(mious) == 2 and all(0 <= m <= 1 for m in mious) and "val_iou_ego_lane" in history["history"]
    assert meta["held_out"]["val_miou"] == pytest.approx(mious[-1])

    model = keras.models.load_model(str(run / "model.keras"), compile=False)
    assert model.layers[-1].name == "probabilities" and tuple(model.output_shape) == (None, 96, 160, 6)
    base = backbones.backbone_of(model)
    assert base.name == "mobilenetv2" and base.layers[-1].name == "block_12_add" and len(base.layers) - 1 == 115
    maps = [(name, tuple(t.shape[1:])) for name, t in zip(base.output_names, base.outputs)]
    assert maps == [("expanded_conv_project_BN", (48, 80, 16)), ("block_2_add", (24, 40, 24)),
                    ("block_5_add", (12, 20, 32)), ("block_12_add", (6, 10, 96))], maps
    unfrozen = {la.name for la in base.layers[-4:] if not isinstance(la, keras.layers.BatchNormalization)}
    moved = {w.path.split("/")[0] for w in base.weights if not np.array_equal(np.asarray(w), expected[w.path])}
    assert moved and moved <= unfrozen, (moved, unfrozen)  # BatchNormalization's statistics kept, the rest frozen
    assert len(base.weights) < len(expected)  # its first blocks only

    path = _export(tmp_path_factory, run, "freespace-mnv2")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["preprocess"] == meta["preprocess"] and manifest["segmentation"]["drivable"] == [2, 3, 4]
    report = json.loads((path / "parity.json").read_text())
    assert report["passed"] and report["classes"]["agreement"] >= 0.999
    assert "ArgMax" in {n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}


def test_from_random_weights_every_layer_trains_and_the_summary_says_so(capsys):
    from runtime.cli import main
    from train import backbones, load_tensorflow, models
    from train.__main__ import _main

    load_tensorflow()
    import keras

    assert main("python -m train", _main, ["--model", "freespace", "--backbone", "mobilenetv2", "--summary"]) == 0
    out, err = capsys.readouterr()
    assert "mobilenetv2" in out and "(Functional)" in out and "probabilities" in out
    assert "free-space network on mobilenetv2's first blocks" in err and "RANDOM weights" in err
    spec = models.get("freespace").configure("mobilenetv2")
    base = backbones.backbone_of(spec.build(6))
    assert all(la.trainable for la in base.layers)
    assert {la.momentum for la in base.layers if isinstance(la, keras.layers.BatchNormalization)} == {
        backbones.SCRATCH_BN_MOMENTUM}
    own = models.get("freespace").configure()  # without --backbone: the U-Net's own encoder, scale 1/255
    assert own.backbone is None and (own.scale, own.offset) == (1 / 255, 0.0)


def test_its_backbone_options_are_checked_in_one_line(mobilenetv2_weights, tmp_path, capsys):
    from runtime.cli import main
    from train.__main__ import _main

    weights = mobilenetv2_weights[0]
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    on = ["--model", "freespace", "--backbone", "mobilenetv2"]
    for args, said in (
            (["--model", "freespace", "--backbone", "resnet50"], "invalid choice: 'resnet50'"),
            (["--model", "freespace", "--backbone", "mobilenetv3small"], "invalid choice: 'mobilenetv3small'"),
            (["--model", "freespace", "--weights", weights], "give the free-space network one with --backbone"),
            (["--model", "freespace", "--fine-tune", "3"], "give the free-space network one with --backbone"),
            (on + ["--image-size", "96"], "the free-space network's input is 160x96"),
            (on + ["--fine-tune", "3"], "--fine-tune needs --weights"),
            (on + ["--fine-tune-epochs", "3"], "--fine-tune-epochs needs --fine-tune N"),
            (on + ["--weights", weights, "--fine-tune", "116"],
             "--fine-tune 116: the free-space network's encoder (mobilenetv2 through block_12_add) has 115 layers"),
            (on + ["--weights", str(tmp_path / "none.h5")], "no such file"),
            (on + ["--weights", str(junk)], "does not fit mobilenetv2"),
            (["--model", "pilotnet", "--backbone", "mobilenetv2"], "--backbone is for --model detector|freespace")):
        try:
            status = main("python -m train", _main, args + ["--summary"])
        except SystemExit as exit:  # argparse's own (one line too: runtime/cli.py's ArgumentParser)
            status = exit.code
        assert status == 2, args
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and said in err[0] and "Traceback" not in err[0], (args, err)
