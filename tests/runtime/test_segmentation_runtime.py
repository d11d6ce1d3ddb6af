"""A segmentation bundle's postprocessing and overlay (issue 32): each class's share, the free space and its
boundary per column in the frame's rows, the class map kept out of the JSON; the manifest's segmentation section
checked in one line. End to end with a trained network: tests/train/test_freespace.py."""

import json

import numpy as np
import pytest

from runtime.bundle import segmentation_problems, segmentation_settings
from runtime.postprocess import Segmentation, freespace_boundary

LABELS = ["sky", "verge", "ego lane", "other road", "marking", "obstacle"]


def _manifest(**section):
    return {"task": "segmentation", "labels": LABELS,
            "outputs": [{"name": "probabilities", "shape": [None, 4, 6, 6]},
                        {"name": "classes", "shape": [None, 4, 6]}],
            "segmentation": dict({"output": "classes", "drivable": [2, 3, 4]}, **section)}


def _mask():
    m = np.zeros((4, 6), np.int32)  # sky on top
    m[2:] = 2  # the ego lane below
    m[1, 0] = 3  # other road reaching higher in column 0
    m[3, 5] = 5  # an obstacle at the bottom of column 5
    m[2, 3] = 1  # verge cutting column 3 one row up
    return m


def test_the_boundary_is_how_far_free_space_reaches_up_from_the_bottom():
    assert list(freespace_boundary(_mask(), [2, 3, 4])) == [3, 2, 2, 1, 2, 0]
    assert list(freespace_boundary(np.full((3, 2), 2), [2])) == [3, 3]


def test_shares_free_space_and_the_boundary_in_the_frames_rows():
    settings = segmentation_settings(_manifest())
    crop = {"top": 0.5, "bottom": 1.0, "left": 0.0, "right": 1.0}
    seg = Segmentation(settings, LABELS, crop, (6, 4))
    outputs = [None, _mask()[None]]
    result = seg(outputs, 0, (60, 80))  # a 60x80 frame: the view is rows 40..80, 10 frame rows a map row
    assert result["shares"]["ego lane"] == pytest.approx(10 / 24, abs=1e-4)
    assert sum(result["shares"].values()) == pytest.approx(1, abs=1e-3)
    assert result["free_space"] == pytest.approx(11 / 24, abs=1e-4)
    assert result["boundary"] == [50.0, 60.0, 60.0, 70.0, 60.0, 80.0]
    assert result.region == (0, 40, 60, 80) and result.mask.shape == (4, 6)
    assert "mask" not in json.loads(json.dumps(result)) and "free" in result.text
    bare = seg(outputs, 0, None)
    assert bare["units"] == "input" and bare["boundary"] == [1, 2, 2, 3, 2, 4]


@pytest.mark.parametrize("value", [np.nan, -1, 6, 30000000])
def test_a_broken_map_is_flagged_not_a_crash(value):
    """NaN, a negative class or one beyond the labels (the review's: a 30,000,000 made a colour table of that
    size): an invalid result, which the overlay draws as text only."""
    from runtime.overlay import draw

    seg = Segmentation(segmentation_settings(_manifest()), LABELS, None, (6, 4))
    broken = _mask().astype(np.float64)[None]
    broken[0, 0, 0] = value
    result = seg([None, broken], 0, (6, 4))
    assert result["invalid"] and result["shares"] is None and getattr(result, "mask", None) is None
    draw(np.zeros((4, 6, 3), np.uint8), result)


def test_a_map_made_on_a_frame_of_another_size_is_not_drawn_on_this_one():
    from runtime.overlay import draw

    seg = Segmentation(segmentation_settings(_manifest()), LABELS, None, (6, 4))
    result = seg([None, _mask()[None]], 0, (60, 40))
    result.frame_size = (1280, 720)  # another network's, made on an earlier frame of another size
    assert not draw(np.zeros((40, 60, 3), np.uint8), result)[20:].any()


@pytest.mark.parametrize("section, says", [
    ({"drivable": [9]}, "drivable must list class indices"),
    ({"drivable": [2, 2]}, "each once"),
    ({"output": "nope"}, "segmentation output must name one of the outputs"),
])
def test_bad_sections_are_one_phrase(section, says):
    problems = segmentation_problems(_manifest(**section))
    assert len(problems) == 1 and says in problems[0]
    assert segmentation_problems(dict(_manifest(), segmentation=None)) == [
        "a segmentation bundle needs a 'segmentation' section {output, drivable, ...}"]


def test_the_overlay_blends_the_classes_over_the_view_and_draws_the_boundary():
    cv2 = pytest.importorskip("cv2")
    from runtime.overlay import draw

    seg = Segmentation(segmentation_settings(_manifest()), LABELS, {"top": 0.5, "bottom": 1.0, "left": 0.0,
                                                                     "right": 1.0}, (6, 4))
    frame = np.zeros((80, 60, 3), np.uint8)
    result = seg([None, _mask()[None]], 0, (60, 80))
    drawn = draw(frame.copy(), result)
    assert drawn[:40].max() <= 255 and drawn[45:75, 10:50].any()  # the view is coloured, the sky above it is not
    assert cv2.countNonZero(cv2.cvtColor(drawn[40:], cv2.COLOR_BGR2GRAY)) > 0.9 * 40 * 60


def test_the_checked_in_network_finds_the_lane_on_the_simulated_road(tmp_path):
    """tests/runtime/bundles/freespace (train's defaults, exported) on synthetic://road: about a fifth of the view is
    my lane and the free space reaches up the middle of the frame, not its sides (runs on a board: no TensorFlow)."""
    from tests.conftest import ROOT, cli, read_jsonl

    jsonl = tmp_path / "out.jsonl"
    proc = cli("runtime", "run", "%s/tests/runtime/bundles/freespace" % ROOT, "--source", "synthetic://road",
               "--max-frames", 3, "--jsonl", jsonl, "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr
    for line in read_jsonl(jsonl):
        result = line["result"]
        assert 0.15 < result["shares"]["ego lane"] < 0.3 and 0.3 < result["free_space"] < 0.5
        boundary = result["boundary"]  # 160 columns of a 640x360 frame: rows where the free space ends
        assert len(boundary) == 160 and min(boundary[70:90]) < 200 < min(boundary[:10] + boundary[-10:])
