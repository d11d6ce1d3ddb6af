"""Detection data: --data road-obstacles, and YOLO (Ultralytics' layout), Pascal VOC and COCO fixtures written here
and read back (COCO's checked by pycocotools' own reader); what is broken is skipped and named, boxes outside their
image clipped or refused, and every bad layout is one line with exit status 2."""

import json
import os

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.images import write_image
from tests.conftest import cli, one_line_error
from train import datasets, detection_formats

LABELS = ["cone", "car", "stop sign"]


def _image(path, width=64, height=48, value=90):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_image(path, np.full((height, width, 3), value, np.uint8))


def test_road_obstacles_are_rendered_at_the_detectors_size_split_and_deterministic():
    a = datasets.load_detection("road-obstacles", (160, 90), limit=12, seed=1)
    b = datasets.load_detection("road-obstacles", (160, 90), limit=12, seed=1)
    assert a.labels == ["cone", "box", "car", "pedestrian", "stop sign"] and a.task == "detection"
    assert a.train.images.shape == (12, 90, 160, 3) and len(a.val) == 200 and a.val.images.dtype == np.uint8
    assert np.array_equal(a.train.images, b.train.images) and not np.array_equal(a.train.images[:12], a.val.images[:12])
    t = a.train.targets[0]
    assert t.boxes.dtype == np.float32 and t.classes.dtype == np.int64 and t.ignore.dtype == bool
    boxes, classes, regions = detection_formats.positives(t)
    assert len(boxes) + len(regions) == len(t.boxes)


def _yolo(root):
    """Ultralytics' layout: data.yaml, images/{train,val}, labels/{train,val}."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "data.yaml"), "w") as f:
        f.write("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cone\n  1: car\n  2: stop sign\n")
    _image(os.path.join(root, "images", "train", "a.png"))
    _image(os.path.join(root, "images", "train", "b\udce9.png"))  # a Latin-1 name, not UTF-8
    _image(os.path.join(root, "images", "train", "c.jpg"))
    _image(os.path.join(root, "images", "val", "d.png"))
    with open(os.path.join(root, "images", "train", "broken.png"), "wb") as f:
        f.write(b"\x89PNG not really")
    labels = os.path.join(root, "labels")
    os.makedirs(os.path.join(labels, "train"))
    os.makedirs(os.path.join(labels, "val"))
    lines = {"train/a.txt": "1 0.5 0.5 0.25 0.5\n0 0.95 0.1 0.2 0.2\n",  # the second reaches past the corner
             "train/b\udce9.txt": "2 0.1 0.1 0.2 0.2 0.3 0.4\n1 1.5 1.5 0.2 0.2\n",  # a polygon; one wholly outside
             "train/c.txt": "1 half of 0.5\n",  # does not parse
             "val/d.txt": "0 0.5 0.5 0.5 0.5\n"}
    for name, text in lines.items():
        with open(os.path.join(labels, name), "w", errors="surrogateescape") as f:
            f.write(text)


def test_yolo_in_ultralytics_layout(tmp_path, capsys):
    root = str(tmp_path / "set")
    _yolo(root)
    data = datasets.load_detection("yolo:" + root, (128, 96))
    err = capsys.readouterr().err
    assert data.labels == LABELS and len(data.train) == 2 and len(data.val) == 1
    assert "c.txt" in err and "broken.png" in err and "2 of 5 files skipped" in err
    assert "1 box(es) clipped to their image, 1 refused" in err
    by_name = dict(zip(map(os.path.basename, data.train.files), data.train.targets))
    a = by_name["a.png"]
    assert np.allclose(a.boxes, [[24, 12, 40, 36], [54.4, 0, 64, 9.6]], atol=1e-4) and list(a.classes) == [1, 0]
    b = by_name["b\udce9.png"]  # the polygon's extent: x 0.1..0.3, y 0.1..0.4 of 64 x 48
    assert np.allclose(b.boxes, [[6.4, 4.8, 19.2, 19.2]], atol=1e-4) and list(b.classes) == [2]
    assert data.train.images[0].shape == (48, 64, 3) and not a.ignore.any()


def _voc(root):
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, sub))
    objects = {"v1": [("car", (5, 6, 30, 40), 0), ("cone", (50, 10, 70, 30), 1)],
               "v2": [("stop sign", (1, 1, 8, 8), 0)], "v3": [("car", (2, 2, 9, 9), 0)]}
    for name, objs in objects.items():
        _image(os.path.join(root, "JPEGImages", name + ".jpg"))
        body = "".join("<object><name>%s</name><difficult>%d</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin>"
                       "<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>" % ((n, d) + box) for n, box, d in objs)
        with open(os.path.join(root, "Annotations", name + ".xml"), "w") as f:
            f.write("<annotation><filename>%s.jpg</filename>%s</annotation>" % (name, body))
    with open(os.path.join(root, "Annotations", "bomb.xml"), "w") as f:
        f.write('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
                "<annotation><object><name>&lol2;</name></object></annotation>")
    with open(os.path.join(root, "Annotations", "cut.xml"), "w") as f:
        f.write("<annotation><object><name>car</name>")
    main = os.path.join(root, "ImageSets", "Main")
    with open(os.path.join(main, "train.txt"), "w") as f:
        f.write("v1\nbomb\ncut\nv2\n")
    with open(os.path.join(main, "val.txt"), "w") as f:
        f.write("v3\n")
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")


def test_pascal_voc_with_difficult_objects_as_ignore_regions_and_entities_refused(tmp_path, capsys):
    root = str(tmp_path / "VOCdevkit" / "VOC2012")
    _voc(root)
    data = datasets.load_detection("voc:" + str(tmp_path / "VOCdevkit"))
    err = capsys.readouterr().err
    assert "bomb.xml" in err and "DOCTYPE" in err and "cut.xml" in err and "2 of 5 files skipped" in err
    assert data.labels == LABELS and len(data.train) == 2 and len(data.val) == 1
    v1 = data.train.targets[0]
    assert np.array_equal(v1.boxes, [[4, 5, 30, 40], [49, 9, 64, 30]]) and list(v1.classes) == [1, 0]
    assert list(v1.ignore) == [False, True]  # the cone is difficult (and clipped at x = 64)
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.write("cone\ncar\n")
    with pytest.raises(UserError, match="class 'stop sign' is not in"):
        datasets.load_detection("voc:" + root)


def _coco(root):
    images = [{"id": 10 + i, "file_name": "im%d.png" % i, "width": 64, "height": 48} for i in range(4)]
    anns = [{"id": 1, "image_id": 10, "category_id": 3, "bbox": [4.5, 6.0, 20.0, 10.0], "area": 200.0, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [30.0, 20.0, 10.0, 12.0], "area": 120.0, "iscrowd": 1},
            {"id": 3, "image_id": 11, "category_id": 9, "bbox": [50.0, 40.0, 30.0, 30.0], "area": 900.0, "iscrowd": 0},
            {"id": 4, "image_id": 12, "category_id": 3, "bbox": [1.0, 2.0, 3.0, 8.0], "area": 24.0, "iscrowd": 0}]
    cats = [{"id": 3, "name": "cone"}, {"id": 7, "name": "car"}, {"id": 9, "name": "stop sign"}]
    os.makedirs(os.path.join(root, "annotations"))
    for split, ims, ans in (("train", images[:3], anns), ("val", images[3:], [])):
        with open(os.path.join(root, "annotations", "instances_%s.json" % split), "w") as f:
            json.dump({"images": ims, "annotations": ans, "categories": cats}, f)
        for im in ims:
            _image(os.path.join(root, split, im["file_name"]))


def test_coco_read_as_pycocotools_reads_it_with_iscrowd_as_ignore(tmp_path, capsys):
    from pycocotools.coco import COCO

    root = str(tmp_path / "coco")
    _coco(root)
    data = datasets.load_detection("coco:" + root, (64, 48))
    assert "0 box(es) clipped" not in capsys.readouterr().err
    coco = COCO(os.path.join(root, "annotations", "instances_train.json"))
    names = [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))]
    assert data.labels == names == LABELS and len(data.train) == 3 and len(data.val) == 1
    index = {cid: i for i, cid in enumerate(sorted(coco.getCatIds()))}
    for image_id, target in zip(sorted(coco.getImgIds()), data.train.targets):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        expect = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                           for a in anns]).reshape(-1, 4)
        expect = np.minimum(expect, [64, 48, 64, 48])  # clipped to the image
        assert np.allclose(target.boxes, expect) and list(target.classes) == [index[a["category_id"]] for a in anns]
        small = (expect[:, 3] - expect[:, 1]) < 6
        assert list(target.ignore) == [bool(a["iscrowd"]) or s for a, s in zip(anns, small)]


@pytest.mark.parametrize("make, data, message", [
    (None, "yolo:{}/missing", "no such file or folder"),
    ("names", "yolo:{}", "has no names"),
    ("notcoco", "coco:{}/x.json", "is not COCO instances JSON"),
    ("emptyvoc", "voc:{}", "no annotations"),
])
def test_bad_layouts_are_one_line_with_status_2(tmp_path, make, data, message):
    root = str(tmp_path)
    if make == "names":
        with open(os.path.join(root, "data.yaml"), "w") as f:
            f.write("train: images\nnc: 2\n")
    elif make == "notcoco":
        with open(os.path.join(root, "x.json"), "w") as f:
            json.dump([{"images": []}], f)
    elif make == "emptyvoc":
        os.makedirs(os.path.join(root, "Annotations"))
    proc = cli("train", "--model", "mnist_cnn", "--data", data.format(root), "--out", str(tmp_path / "run"))
    if make in ("notcoco", "emptyvoc"):  # found at load time: the detector reads it; here, as load_detection
        assert proc.returncode == 2 and "detection dataset" in proc.stderr
        with pytest.raises(UserError, match=message):
            datasets.load_detection(data.format(root))
    else:
        assert one_line_error(proc) and message in proc.stderr, proc.stderr


def test_unknown_yolo_class_and_no_readable_images_are_one_line(tmp_path):
    root = str(tmp_path)
    _yolo(root)
    with open(os.path.join(root, "labels", "val", "d.txt"), "w") as f:
        f.write("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(UserError, match=r"d.txt line 1: class 5 is not in data.yaml's names \(0..2\)"):
        datasets.load_detection("yolo:" + root)
    os.remove(os.path.join(root, "labels", "val", "d.txt"))
    with open(os.path.join(root, "images", "val", "d.png"), "wb") as f:
        f.write(b"nothing")
    with pytest.raises(UserError, match="no readable validation image"):
        datasets.load_detection("yolo:" + root)
