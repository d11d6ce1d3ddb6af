"""Issue 31: a detector trains, exports and runs on a small fixture in each real format (YOLO in Ultralytics'
layout, Pascal VOC, COCO), through the commands a user types. One epoch on a handful of images: what is checked
is the path from files on disk to boxes in JSON lines, not accuracy."""

import json
import os
import shutil

import pytest

from tests.conftest import cli, read_jsonl
from tests.train.test_detection_data import _coco, _voc, _yolo


@pytest.mark.parametrize("kind, make", [("yolo", _yolo), ("voc", _voc), ("coco", _coco)])
def test_a_detector_trains_exports_and_runs_from_each_format(tmp_path, kind, make):
    from export.__main__ import _main as export_main
    from train.__main__ import _main as train_main

    make(str(tmp_path / "data"))
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    train_main(["--model", "detector", "--data", "%s:%s" % (kind, tmp_path / "data"), "--epochs", "1",
                "--batch-size", "2", "--out", str(run)])
    meta = json.loads((run / "meta.json").read_text())
    assert meta["task"] == "detection" and meta["labels"] and "val_map50" in meta["held_out"]
    assert export_main(["onnx", str(run), "--out", str(bundle)]) == 0
    frames = tmp_path / "frames"
    os.makedirs(str(frames))
    for name in sorted(os.listdir(str(run / "samples")))[:2]:
        shutil.copy(str(run / "samples" / name), str(frames / name))
    proc = cli("runtime", "run", str(bundle), "--source", str(frames), "--jsonl", str(tmp_path / "out.jsonl"),
               "--no-display", "--threshold", "0", "--quiet", timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(str(tmp_path / "out.jsonl"))
    assert lines and all(isinstance(line["result"]["detections"], list) for line in lines)
