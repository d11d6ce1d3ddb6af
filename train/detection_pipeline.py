"""Detection's training input: frames with their boxes, augmented with the boxes moved as the image is, then
preprocessed exactly as the runtime does (runtime/preprocess.py: the bundle's contract) and encoded as the
detector's targets (train/detector.py), in batches that Keras's fit takes (a keras.utils.PyDataset).

A split is frames (uint8 BGR, any size) and per frame its boxes (M, 4: x0 y0 x1 y1 in its pixels), classes (M,)
and ignore regions (I, 4). Augmentation, for training only, seeded by (seed, epoch, index) so that a run is
repeatable: a horizontal flip (half the frames), a scale of 0.8-1.25 and a shift of up to 10% of each side
about the centre (cv2.warpAffine; the border is the frame's edge pixels repeated), and a brightness of
0.75-1.25. A box is moved with its corners and clipped to the frame; one left with under MIN_KEPT of its area
becomes an ignore region, and one under 2 pixels wide or high is dropped.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from runtime import detections
from runtime.preprocess import Preprocessor

from . import detection_formats, detector
from .pipeline import seeded_batches

MIN_KEPT = 0.4
SCALE, SHIFT, BRIGHTNESS = (0.8, 1.25), 0.1, (0.75, 1.25)


def _affine(cv2, image, boxes, ignore, rng):
    h, w = image.shape[:2]
    s = float(np.exp(rng.uniform(np.log(SCALE[0]), np.log(SCALE[1]))))
    tx, ty = rng.uniform(-SHIFT, SHIFT) * w, rng.uniform(-SHIFT, SHIFT) * h
    matrix = np.array([[s, 0.0, (1 - s) * w / 2 + tx], [0.0, s, (1 - s) * h / 2 + ty]])
    moved = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def move(b):
        b = np.asarray(b, np.float64).reshape(-1, 4)
        return b * s + [matrix[0, 2], matrix[1, 2], matrix[0, 2], matrix[1, 2]]

    return moved, move(boxes), move(ignore)


def _flipped(boxes, width):
    return boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [width, 0, width, 0]


def augment(cv2, image, boxes, classes, ignore, rng):
    """One training frame, augmented (the module's docstring); the boxes moved with it."""
    boxes, classes = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes).reshape(-1)
    ignore = np.asarray(ignore, np.float64).reshape(-1, 4)
    h, w = image.shape[:2]
    if rng.rand() < 0.5:
        image, boxes, ignore = image[:, ::-1], _flipped(boxes, w), _flipped(ignore, w)
    image, boxes, ignore = _affine(cv2, np.ascontiguousarray(image), boxes, ignore, rng)
    image = cv2.convertScaleAbs(image, alpha=rng.uniform(*BRIGHTNESS))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    boxes, ignore = np.clip(boxes, 0, [w, h, w, h]), np.clip(ignore, 0, [w, h, w, h])
    kept = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    big = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    whole = kept >= MIN_KEPT * np.maximum(area, 1e-9)
    ignore = np.concatenate([ignore, boxes[big & ~whole]])
    return image, boxes[big & whole], classes[big & whole], ignore


class Frames:
    """A DetectionSplit (train/detection_formats.py) as this module reads it: frame i as (BGR image, boxes,
    classes, ignore regions)."""

    def __init__(self, split):
        self.split = split

    def __len__(self):
        return len(self.split)

    def __getitem__(self, i):
        boxes, classes, ignore = detection_formats.positives(self.split.targets[i])
        return np.ascontiguousarray(self.split.images[i][..., ::-1]), boxes, classes, ignore


class Encoder:
    """A frame and its boxes -> (network input, detector target), as the runtime's preprocessing makes the input
    (the spec's contract) and the boxes moved to its pixels."""

    def __init__(self, spec, num_classes):
        self.pre = spec.preprocess()
        self.preprocessor = Preprocessor(self.pre, {"layout": spec.layout, "shape": [None] + list(spec.input_shape)})
        self.size, self.num_classes = spec.size, num_classes

    def __call__(self, image, boxes, classes, ignore):
        target = detector.encode(self.boxes(image, boxes), classes, self.boxes(image, ignore), self.size,
                                 self.num_classes)
        return self.input(image), target

    def input(self, image):
        """The network's input for a frame."""
        return self.preprocessor(image, self.preprocessor.new_buffer())[0]

    def boxes(self, image, boxes):
        """A frame's boxes in the network input's pixels."""
        return detections.to_input(boxes, (image.shape[1], image.shape[0]), self.pre["crop"], self.size)


def batches(split, spec, num_classes, batch_size, seed=0, training=False):
    """The split as a keras.utils.PyDataset of (inputs, targets) batches; training: shuffled and augmented anew
    each epoch (seeded)."""
    import cv2

    encode = Encoder(spec, num_classes)

    def example(i, rng):
        image, boxes, classes, ignore = split[i]
        if rng is not None:
            image, boxes, classes, ignore = augment(cv2, image, boxes, classes, ignore, rng)
        return encode(image, boxes, classes, ignore)

    return seeded_batches(len(split), batch_size, seed, training, example)


def predict(model, split, spec, num_classes, batch_size=32):
    """The model's decoded detections on every frame of a split, and the truths, both in the network input's
    pixels: ([(K, 6) per frame], [(boxes, classes, ignore) per frame])."""
    encode = Encoder(spec, num_classes)
    found, truths = [], []
    for start in range(0, len(split), batch_size):
        items = [split[i] for i in range(start, min(start + batch_size, len(split)))]
        raw = np.asarray(model(np.stack([encode.input(item[0]) for item in items]), training=False))
        for row, (image, boxes, classes, ignore) in zip(raw, items):
            found.append(np.asarray(detector.decode(row[None], num_classes))[0])
            truths.append((encode.boxes(image, boxes), np.asarray(classes).reshape(-1), encode.boxes(image, ignore)))
    return found, truths


def coco_metrics(found, truths, labels):
    """pycocotools' COCOeval on the detections: mAP@0.5, COCO's mAP@0.5:0.95 and each class's AP@0.5 (None for
    a class with no truth), ignore regions as iscrowd."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for i, (dets, (boxes, classes, ignore)) in enumerate(zip(found, truths)):
        images.append({"id": i})
        crowds = [(b, c, 1) for b in ignore for c in range(len(labels))]  # an ignore region is one for every class
        for box, c, crowd in [(b, int(c), 0) for b, c in zip(boxes, classes)] + crowds:
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": c, "iscrowd": crowd,
                                "bbox": [float(box[0]), float(box[1]), float(w), float(h)], "area": float(w * h)})
        results += [{"image_id": i, "category_id": int(d[5]), "score": float(d[4]),
                     "bbox": [float(d[0]), float(d[1]), float(d[2] - d[0]), float(d[3] - d[1])]}
                    for d in dets if d[4] > 0.001]
    if not results:
        return {"map50": 0.0, "map": 0.0, "ap50": {label: 0.0 for label in labels}}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c, "name": name} for c, name in enumerate(labels)]}
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # IoU, recall, class; all areas, 100 detections
    ap50 = {}
    for c, name in enumerate(labels):
        column = precision[0, :, c]
        ap50[name] = float(np.mean(column)) if (column > -1).all() else None
    valid = precision[precision > -1]
    return {"map50": float(np.mean([v for v in ap50.values() if v is not None] or [0.0])),
            "map": float(np.mean(valid)) if valid.size else 0.0, "ap50": ap50}


def held_out(model, dataset, spec, num_classes):
    """The held-out results of a detector: pycocotools' mAP@0.5, mAP@0.5:0.95 and per-class AP@0.5, and the
    board's matcher's mAP@0.5 beside them (runtime/detections.py: what `export verify` computes there)."""
    found, truths = predict(model, Frames(dataset.val), spec, num_classes)
    coco = coco_metrics(found, truths, dataset.labels)
    _, board = detections.average_precision(found, truths, num_classes)
    return {"val_map50": coco["map50"], "val_map": coco["map"], "val_ap50": coco["ap50"],
            "val_map50_board_matcher": board}
