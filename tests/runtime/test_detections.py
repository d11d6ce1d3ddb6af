"""runtime/detections.py: boxes between the network's input and the frame, and the board's AP matcher checked
against pycocotools (the desktop's reference) on the same detections."""

import numpy as np
import pytest

from runtime import detections

CROP = {"top": 0.25, "bottom": 1.0, "left": 0.1, "right": 0.9}


def test_boxes_go_to_the_input_and_back_to_the_frame():
    boxes = np.array([[100.0, 200.0, 300.0, 400.0], [0.0, 180.0, 1280.0, 720.0]])
    inside = detections.to_input(boxes, (1280, 720), CROP, (256, 144))
    # the crop is x 128..1152, y 180..720: a quarter across, 144/540 down; the first box starts left of it
    assert np.allclose(inside[0], [0.0, 20 * 144 / 540, 172 * 0.25, 220 * 144 / 540])
    assert np.allclose(inside[1], [0, 0, 256, 144])
    back = detections.to_frame(detections.to_input(boxes[1:], (1280, 720), None, (256, 144)), (1280, 720), None,
                               (256, 144))
    assert np.allclose(back, boxes[1:])
    middle = np.array([[300.0, 300.0, 500.0, 600.0]])
    assert np.allclose(detections.to_frame(detections.to_input(middle, (1280, 720), CROP, (256, 144)), (1280, 720),
                                           CROP, (256, 144)), middle)


def _scene(rng, n_images=40, classes=3):
    detected, truths = [], []
    for _ in range(n_images):
        m = rng.randint(0, 6)
        xy = rng.uniform(0, 200, (m, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 60, (m, 2))], axis=1)
        cls = rng.randint(0, classes, m)
        ignore = np.array([[0.0, 0.0, 30.0, 30.0]]) if rng.rand() < 0.3 else np.zeros((0, 4))
        found = [np.concatenate([b + rng.normal(0, 4, 4), [rng.uniform(0.3, 1.0), c]]) for b, c in zip(boxes, cls)
                 if rng.rand() < 0.85]
        for _ in range(rng.randint(0, 3)):  # false ones, some inside the ignore region
            xy = rng.uniform(0, 200, 2)
            found.append(np.concatenate([xy, xy + rng.uniform(5, 40, 2), [rng.uniform(0, 0.8), rng.randint(classes)]]))
        detected.append(np.array(found).reshape(-1, 6))
        truths.append((boxes, cls, ignore))
    return detected, truths


def test_the_boards_matcher_agrees_with_pycocotools():
    coco_mod = pytest.importorskip("pycocotools.coco")
    from pycocotools.cocoeval import COCOeval

    detected, truths = _scene(np.random.RandomState(4))
    per_class, mean = detections.average_precision(detected, truths, 3, threshold=0.5)
    images, annotations, results = [], [], []
    for i, (found, (boxes, cls, ignore)) in enumerate(zip(detected, truths)):
        images.append({"id": i, "width": 300, "height": 300})
        for b, c in zip(boxes, cls):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(c), "iscrowd": 0,
                                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        for b in ignore:
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": 0, "iscrowd": 1,
                                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})
        results += [{"image_id": i, "category_id": int(d[5]), "bbox": [d[0], d[1], d[2] - d[0], d[3] - d[1]],
                     "score": float(d[4])} for d in found]
    gt = coco_mod.COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in range(3)]}
    gt.createIndex()
    evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluation.params.maxDets = [1, 10, 100]
    evaluation.evaluate()
    evaluation.accumulate()
    precision = evaluation.eval["precision"][0, :, :, 0, 2]  # IoU 0.5, 101 recall points, each class, all areas
    coco_per_class = [float(np.mean(precision[:, c][precision[:, c] > -1])) for c in range(3)]
    assert all(abs(per_class[c] - coco_per_class[c]) < 0.03 for c in range(3)), (per_class, coco_per_class)
    assert abs(mean - np.mean(coco_per_class)) < 0.02 and 0.4 < mean < 0.95


def test_perfect_and_empty_detections():
    boxes, cls = np.array([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 30.0]]), np.array([0, 1])
    perfect = np.concatenate([boxes, [[0.9], [0.8]], cls[:, None]], axis=1)
    assert detections.average_precision([perfect], [(boxes, cls, np.zeros((0, 4)))], 2) == ({0: 1.0, 1: 1.0}, 1.0)
    assert detections.average_precision([np.zeros((0, 6))], [(boxes, cls, np.zeros((0, 4)))], 3) == (
        {0: 0.0, 1: 0.0, 2: None}, 0.0)
