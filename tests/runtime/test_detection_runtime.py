"""A detection bundle in the runtime: its manifest's checks (runtime/bundle.py), its results (runtime/postprocess.py:
the threshold, the classes, boxes in the frame's pixels with the crop undone, padding and NaN rows), the IoU
tracker (runtime/tracker.py), the overlay's boxes, and `runtime run`'s --threshold, --classes and --track, with
a small detection bundle made here (a constant ONNX graph, no TensorFlow)."""

import hashlib
import json
import os

import numpy as np
import pytest

from runtime import bundle as bundle_format
from runtime.bundle import BundleError
from runtime.errors import UserError
from runtime.postprocess import Postprocessor, Result, check_threshold, choose_classes
from runtime.tracker import Tracker
from tests.runtime.test_bundle import _with
from tests.conftest import cli, one_line_error, read_jsonl

LABELS = ["cone", "car", "person"]
K = 5
CROP = {"top": 0.5, "bottom": 1.0, "left": 0.0, "right": 1.0}
SIZE = (128, 72)  # the network input (width, height); a 640x360 frame's crop is 640x180: x / 0.2, y / 0.4
ROWS = [[10, 10, 20, 30, 0.9, 1], [0, 0, 5, 5, 0.2, 0], [30, 30, 40, 40, 0.5, 0], [50, 20, 60, 40, 0.4, 2]]


def _manifest(sha="0" * 64):
    return {"format": "edge-bundle", "format_version": 1, "name": "tiny_detector", "task": "detection",
            "labels": list(LABELS), "model": {"file": "model.onnx", "sha256": sha, "opset": 13},
            "input": {"name": "input", "shape": [None, SIZE[1], SIZE[0], 3], "layout": "NHWC", "dtype": "float32"},
            "preprocess": {"crop": dict(CROP), "resize": {"width": SIZE[0], "height": SIZE[1],
                                                          "interpolation": "area"},
                           "color": "rgb", "scale": 1 / 255.0, "offset": 0.0},
            "outputs": [{"name": "raw", "shape": [None, 18, 32, len(LABELS) + 4], "activation": "linear"},
                        {"name": "detections", "shape": [None, K, 6], "activation": "linear"}],
            "detection": {"k": K, "threshold": 0.3, "box_format": "xyxy", "box_units": "input pixels",
                          "columns": ["x0", "y0", "x1", "y1", "score", "class"], "output": "detections",
                          "raw_output": "raw", "stride": 4, "detections_output": 1}}


def _outputs(rows=ROWS):
    det = np.zeros((1, K, 6), np.float32)
    det[0, :len(rows)] = np.reshape(rows, (-1, 6))
    return [np.zeros((1, 18, 32, len(LABELS) + 4), np.float32), det]


def _post(**options):
    b = bundle_format.Bundle("tiny", _manifest())
    return Postprocessor.for_bundle(b, **options)


def test_results_in_the_frames_pixels_best_first_above_the_threshold():
    result = _post()(_outputs(), frame_size=(640, 360))
    found = result["detections"]
    assert [d["label"] for d in found] == ["car", "cone", "person"]  # 0.2 is under 0.3; padding rows are gone
    assert [d["score"] for d in found] == pytest.approx([0.9, 0.5, 0.4])
    assert found[0]["box"] == pytest.approx([50, 205, 100, 255])  # x / 0.2, y / 0.4 + the crop's 180 rows
    assert found[0]["class_id"] == 1 and "units" not in result and "id" not in found[0]
    assert result.text == "3 objects: car 0.90, cone 0.50, person 0.40"
    json.dumps(result)  # JSON lines write it as it is


def test_threshold_classes_and_input_units():
    assert len(_post(threshold=0.1)(_outputs(), frame_size=(640, 360))["detections"]) == 4
    assert len(_post(threshold=0.0)(_outputs(), frame_size=(640, 360))["detections"]) == 4  # never padding
    cars = _post(classes="car, 2")(_outputs(), frame_size=(640, 360))["detections"]
    assert [d["label"] for d in cars] == ["car", "person"]
    assert [d["label"] for d in _post(classes=[0])(_outputs())["detections"]] == ["cone"]
    inputs = _post()(_outputs())  # no frame size: the network input's pixels, and said so
    assert inputs["units"] == "input" and inputs["detections"][0]["box"] == [10, 10, 20, 30]
    assert _post()(_outputs([]), frame_size=(640, 360)).text == "0 objects"
    flipped = _post()(_outputs([[20, 30, 10, 10, 0.9, 1]]))["detections"][0]["box"]
    assert flipped == [10, 10, 20, 30]  # corners ordered


def test_nan_rows_flag_the_result_invalid():
    rows = [list(ROWS[0]), [1, 1, 2, float("nan"), 0.5, 0]]
    result = _post()(_outputs(rows), frame_size=(640, 360))
    assert result["detections"] is None and "invalid" in result and "NaN" in result.text


def test_option_errors_are_one_line():
    for bad in (1.5, -0.1, float("nan"), "0.5", True):
        with pytest.raises(UserError, match="from 0 to 1"):
            check_threshold(bad)
    with pytest.raises(UserError, match="'truck' is not a class of this bundle.*cone, car, person"):
        choose_classes("car,truck", LABELS)
    with pytest.raises(UserError, match="is not a class"):
        choose_classes("3", LABELS)
    steering = _manifest()
    steering.update(task="steering", labels=[], outputs=[{"name": "y", "shape": [None, 1]}])
    for option in ({"threshold": 0.5}, {"classes": "car"}, {"track": True}):
        with pytest.raises(UserError, match="is for detection bundles; tiny_detector is a steering bundle"):
            Postprocessor.for_bundle(bundle_format.Bundle("s", steering), **option)


def test_tracker_keeps_ids_across_frames_and_a_missed_one():
    tracker = Tracker(drop_frames=2)
    a, b = [0, 0, 10, 10], [50, 50, 70, 70]
    assert tracker.update([a, b], [0, 1]) == [1, 2]
    assert tracker.update([[52, 51, 72, 71], [1, 0, 11, 10]], [1, 0]) == [2, 1]  # moved, other order
    assert tracker.update([[2, 0, 12, 10]], [0]) == [1]  # b missed a frame...
    assert tracker.update([[54, 52, 74, 72], [3, 0, 13, 10]], [1, 0]) == [2, 1]  # ...and keeps its id
    assert tracker.update([[3, 0, 13, 10]], [1]) == [3]  # same place, another class: a new object
    for _ in range(3):
        tracker.update([], [])
    assert len(tracker) == 0 and tracker.update([a], [0]) == [4]  # gone after 2 missed; ids never reused


def test_tracker_memory_is_bounded():
    tracker = Tracker(max_tracks=50)
    for frame in range(20):
        boxes = [[i * 20 + frame * 1000, 0, i * 20 + 10 + frame * 1000, 10] for i in range(40)]  # all new
        tracker.update(boxes, [0] * 40)
        assert len(tracker) <= 50
    assert tracker.next_id == 801


def test_track_gives_ids_in_results():
    post = _post(track=True)
    first = post(_outputs(), frame_size=(640, 360))["detections"]
    second = post(_outputs(), frame_size=(640, 360))["detections"]
    assert [d["id"] for d in first] == [d["id"] for d in second] == [1, 2, 3]
    assert "car #1 0.90" in Result(detections=second).text


@pytest.mark.parametrize("path, value, message", [
    (("detection", "k"), 0, "detection k must be a positive integer"),
    (("detection", "threshold"), 1.5, "detection threshold must be a number from 0 to 1"),
    (("detection", "detections_output"), 2, "detections_output must be the index of an output (0 to 1)"),
    (("detection", "detections_output"), True, "detections_output must be the index"),
    (("detection", "k"), 7, "the bundle is inconsistent: detection output 1's shape is [None, 5, 6], not [null, 7"),
    (("labels",), [], "a detection bundle needs labels"),
    (("detection",), ..., "a detection bundle needs a 'detection' section"),
])
def test_bad_detection_manifests(tmp_path, path, value, message):
    manifest = _with(_manifest(), path, value)
    assert any(message in p for p in bundle_format.validate(manifest))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as exc:
        bundle_format.load(str(tmp_path))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_good_manifest_and_the_output_found_by_name():
    assert bundle_format.validate(_manifest()) == []
    manifest = _manifest()
    del manifest["detection"]["detections_output"]
    assert bundle_format.Bundle("b", manifest).detection["index"] == 1


def test_overlay_draws_the_boxes():
    from runtime.overlay import draw

    image = np.zeros((360, 640, 3), np.uint8)
    result = _post()(_outputs(), frame_size=(640, 360))
    draw(image, result)
    x0, y0, x1, y1 = (int(v) for v in result["detections"][0]["box"])  # 50, 205, 100, 255
    assert image[y1, x0:x1 + 1].any(axis=1).all() and image[y0 + 5:y1, x1].any(axis=1).all()  # its outline
    assert not image[y0 + 8:y1 - 8, x0 + 8:x1 - 8].any()  # the inside is left as it was
    assert not image[300:, 300:].any()


def _tiny_bundle(folder):
    """A detection bundle whose network gives the same detections for every frame (ROWS), any input."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    raw, det = _outputs()
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], keepdims=1),  # (N, 1, 1, 1)
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["nothing", "raw_const"], ["raw"]),
             helper.make_node("Reshape", ["nothing", "shape3"], ["nothing3"]),
             helper.make_node("Add", ["nothing3", "det_const"], ["detections"])]
    inits = [numpy_helper.from_array(np.zeros((), np.float32), "zero"),
             numpy_helper.from_array(raw, "raw_const"), numpy_helper.from_array(det, "det_const"),
             numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape3")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", SIZE[1], SIZE[0], 3])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N", 18, 32, 7]),
         helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["N", K, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    sha = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(_manifest(sha)))
    return folder


def test_run_with_a_detection_bundle(tmp_path):
    bundle = _tiny_bundle(tmp_path / "detector")
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    proc = cli("runtime", "run", bundle, "--source", "synthetic://road", "--max-frames", 3, "--jsonl", jsonl,
               "--output", video, "--no-display", "--track", "--threshold", 0.45, "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(jsonl)
    assert len(lines) == 3 and video.stat().st_size > 0
    found = lines[-1]["result"]["detections"]
    assert [(d["label"], d["id"]) for d in found] == [("car", 1), ("cone", 2)]
    assert found[0]["box"] == pytest.approx([50, 205, 100, 255])  # synthetic://road is 640x360
    bad = cli("runtime", "run", bundle, "--source", "synthetic://road", "--classes", "truck", "--no-display")
    assert one_line_error(bad) and "cone, car, person" in bad.stderr
    crop = cli("runtime", "run", bundle, "--source", "synthetic://road", "--gst-preprocess", "crop",
               "--jsonl", jsonl, "--no-display")
    assert one_line_error(crop) and "whole frame" in crop.stderr


def test_cli_option_errors(pilot_bundle):
    for value in ("2", "nan", "x"):
        proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--threshold", value)
        assert one_line_error(proc) and "score from 0 to 1" in proc.stderr
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--track", "--no-display")
    assert one_line_error(proc) and "--track is for detection bundles" in proc.stderr



def test_the_browser_views_stats_count_the_objects():
    pytest.importorskip("aiohttp")
    from runtime.outputs.web import WebOutput
    from tests.conftest import free_tcp_port

    web = WebOutput("127.0.0.1", free_tcp_port(), log=None)
    try:
        assert "objects" not in web._snapshot()
        web.write(None, _post()(_outputs(), frame_size=(640, 360)), np.zeros((36, 64, 3), np.uint8))
        assert web._snapshot()["objects"] == 3
    finally:
        web.close()


REAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundles", "detector")


@pytest.mark.skipif(not os.path.isdir(REAL), reason="no checked-in detector bundle (tests/runtime/bundles/detector)")
def test_run_the_real_detector(tmp_path):
    jsonl = tmp_path / "out.jsonl"
    proc = cli("runtime", "run", REAL, "--source", "synthetic://road", "--max-frames", 3, "--jsonl", jsonl,
               "--output", tmp_path / "out.mp4", "--no-display", "--track", "--quiet")
    assert proc.returncode == 0, proc.stderr
    for line in read_jsonl(jsonl):
        for d in line["result"]["detections"]:
            assert 0 <= d["box"][0] <= d["box"][2] <= 640 and 0 <= d["box"][1] <= d["box"][3] <= 360
            assert d["score"] >= 0.3 and isinstance(d["id"], int)
