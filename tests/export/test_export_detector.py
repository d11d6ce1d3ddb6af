"""A detector's export (issue 31): the decoding in the graph (K boxes, padded, no NMS), parity on the raw output as
for other tasks and on the decoded boxes by their own rule, and a bundle the runtime loads."""

import json

import numpy as np
import pytest

from export import parity
from tests.conftest import _export, _train


def _rows(*rows):
    return np.array(rows, np.float64).reshape(-1, 6)


def test_decoded_boxes_match_by_iou_and_score_with_near_ties_at_the_threshold():
    keras = [_rows([10, 10, 50, 50, 0.9, 2], [60, 10, 90, 40, 0.5, 0], [0, 0, 5, 5, 0.30005, 1], [0, 0, 1, 1, 0.0, 0])]
    same = [keras[0][[1, 0, 2, 3]]]  # TopK may order them otherwise
    assert parity.compare_detections(keras, same, 0.3)["passed"]
    near_tie = [keras[0][[0, 1, 3]]]  # the 0.30005 one fell below the threshold in the other: allowed
    report = parity.compare_detections(keras, near_tie, 0.3)
    assert report["passed"] and report["unmatched"] == 0
    missing = [keras[0][[0, 2, 3]]]  # the 0.5 one is gone: not allowed
    assert parity.compare_detections(keras, missing, 0.3)["unmatched"] == 1
    moved = [keras[0].copy()]
    moved[0][0, :4] += [1, 0, 1, 0]  # IoU 0.95
    assert not parity.compare_detections(keras, moved, 0.3)["passed"]
    scored = [keras[0].copy()]
    scored[0][1, 4] += 2e-4
    assert not parity.compare_detections(keras, scored, 0.3)["passed"]
    other_class = [keras[0].copy()]
    other_class[0][0, 5] = 1
    assert not parity.compare_detections(keras, other_class, 0.3)["passed"]
    nothing = parity.compare_detections([_rows([0, 0, 1, 1, 0.1, 0])], [_rows([0, 0, 1, 1, 0.1, 0])], 0.3)
    assert nothing["passed"] and nothing["vacuous"]  # no detection to compare: proves nothing, and says so


@pytest.fixture(scope="module")
def detector_bundle(tmp_path_factory):
    run = _train(tmp_path_factory, "detector", "--model", "detector", "--data", "road-obstacles", "--limit", "48",
                 "--epochs", "1")
    return run, _export(tmp_path_factory, run, "detector")


def test_an_untrained_detector_exports_with_its_decoding_and_says_the_boxes_parity_is_vacuous(detector_bundle):
    import onnx

    from runtime.bundle import load

    run, path = detector_bundle
    meta = json.loads((run / "meta.json").read_text())
    assert meta["task"] == "detection" and set(meta["held_out"]) >= {"val_map50", "val_map", "val_ap50"}
    assert len(meta["samples"]["targets"]) == len(meta["samples"]["files"]) > 0
    report = json.loads((path / "parity.json").read_text())
    assert report["passed"] and report["detections"]["vacuous"] and report["vacuous"]  # nothing above 0.3 yet
    ops = {n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}
    assert {"TopK", "MaxPool", "Gather"} <= ops and not ops & {"NonMaxSuppression", "ArgMax", "Loop", "If"}
    bundle = load(str(path))
    assert bundle.task == "detection" and bundle.detection["k"] == 50
    assert [o["shape"] for o in bundle.outputs] == [[None, 36, 64, 9], [None, 50, 6]]


def test_verify_runs_a_detector_a_frame_at_a_time_and_judges_its_boxes_by_their_rule(detector_bundle):
    from export.verify import verify

    _, path = detector_bundle
    report = verify(str(path), log=None)
    (row,) = report["rows"]
    assert report["passed"] and row["outputs"][1]["tolerance"] == "IoU >= 0.99, score +-0.0001"
    assert row["outputs"][0]["tolerance"] == "rel <= 0.0001"


def test_each_detection_is_matched_once():
    """Found in review: two overlapping Keras boxes both matched one ONNX box, and a missing detection passed."""
    keras = [_rows([10, 10, 50, 50, 0.9, 2], [10.05, 10, 50.05, 50, 0.8999, 2])]
    one = [_rows([10, 10, 50, 50, 0.9, 2])]
    report = parity.compare_detections(keras, one, 0.3)
    assert not report["passed"] and report["unmatched"] == 1 and report["compared"] == 3


def test_a_detector_on_a_pretrained_mobilenetv2_trains_frozen_then_fine_tunes_and_exports(tmp_path_factory):
    """--backbone mobilenetv2 --weights: the backbone's first blocks hold the file's weights, frozen (its
    BatchNormalization statistics too) while the rest trains, then its last layers fine-tune; the bundle's
    preprocessing is MobileNetV2's, and its parity holds."""
    from train import backbones, load_tensorflow

    load_tensorflow()
    import keras

    keras.utils.set_random_seed(5)
    whole = keras.applications.MobileNetV2(input_shape=(64, 64, 3), include_top=False, weights=None)
    for layer in whole.layers:  # statistics of images, as a pretrained network's are (random weights with the
        if isinstance(layer, keras.layers.BatchNormalization):  # initial 0 and 1 saturate every ReLU6)
            layer.momentum = 0.0
    whole(np.random.RandomState(5).uniform(-1, 1, (8, 64, 64, 3)).astype(np.float32), training=True)
    weights = tmp_path_factory.mktemp("weights") / "mobilenet_v2_no_top.h5"
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(weights, "w") as f:  # the layout of Keras's downloads
        legacy_h5_format.save_weights_to_hdf5_group(f, whole)
    expected = {w.path: np.asarray(w) for w in whole.weights}
    from tests.train.test_detection_data import _yolo

    data = tmp_path_factory.mktemp("yolo")
    _yolo(str(data))
    run = _train(tmp_path_factory, "detector-mnv2", "--model", "detector", "--backbone", "mobilenetv2", "--weights",
                 str(weights), "--fine-tune", "4", "--data", "yolo:%s" % data, "--epochs", "1", "--batch-size", "2")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["backbone"] == {"name": "mobilenetv2", "weights": "mobilenet_v2_no_top.h5", "fine_tune_layers": 4}
    history = json.loads((run / "history.json").read_text())
    assert [p["epochs"] for p in history["phases"]] == [1, 1]
    base = backbones.backbone_of(keras.models.load_model(str(run / "model.keras"), compile=False))
    layers = base.layers[1:]
    unfrozen = {la.name for la in layers[-4:] if not isinstance(la, keras.layers.BatchNormalization)}
    moved = {w.path.split("/")[0] for w in base.weights if not np.array_equal(np.asarray(w), expected[w.path])}
    assert moved and moved <= unfrozen and len(base.weights) < len(expected)  # its first blocks only
    path = _export(tmp_path_factory, run, "detector-mnv2")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["preprocess"]["scale"] == pytest.approx(1 / 127.5) and manifest["preprocess"]["offset"] == -1
    assert json.loads((path / "parity.json").read_text())["outputs"][0]["passed"]
