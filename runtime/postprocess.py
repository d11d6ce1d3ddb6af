"""Network outputs -> a result a person or a controller can use, per the bundle's task.

classification: the top class, its label and confidence (softmax applied if the net gives logits)
binary:         the probability of the positive label and the label chosen at 0.5
steering:       the normalised steering value and the inverse turning radius it means
regression:     the raw values
detection:      `detections`, best first: {box [x0, y0, x1, y1] in the frame's pixels (the bundle's crop and
                resize undone; with no frame size, the network input's pixels and `units`: "input"), score,
                class_id, label, and id with a tracker}, those scoring at least the threshold (the manifest's,
                or the user's) among the classes chosen (all, or the user's)
segmentation:   `shares` (each class's share of the network's view, by label), `free_space` (the drivable
                classes' share) and `boundary`: per column of the class map, the frame's row (pixels, the crop
                and resize undone; with no frame size, the input's and `units`: "input") where the free space
                running up from the bottom of the view ends. The class map itself is the result's `mask`
                attribute (for overlays and mask files), not a key: JSON lines stay short.
Outputs that are NaN or infinite give a result with `invalid` set and the task's fields None.
"""

from __future__ import annotations

import numpy as np

from .detections import to_frame
from .errors import UserError
from .preprocess import crop_box
from .tracker import Tracker

INVALID = "the network gave NaN or infinite values"
_KEYS = {"classification": ("class_id", "label", "confidence", "top"),
         "binary": ("class_id", "label", "confidence", "probability"),
         "steering": ("steering", "inverse_radius"), "regression": ("values",), "detection": ("detections",),
         "segmentation": ("shares", "free_space", "boundary")}
SHOWN = 3  # detections named in an overlay's line


class Result(dict):
    """One frame's result: a plain dict (it goes to JSON as is) with a one-line `text` for overlays. When the
    network's output is not finite, `invalid` says so and the task's fields are None (JSON null). `parts` ((name,
    result) pairs to draw) and `primary` (the result a control link sends) are itself here, each network's and the
    first network's for several networks (runtime/networks.py's Combined)."""

    @property
    def parts(self):
        return [(None, self)]

    @property
    def primary(self):
        return self

    @property
    def text(self) -> str:
        if "invalid" in self:
            return "invalid output (NaN/inf)"
        if "detections" in self:
            return detections_text(self["detections"])
        if "shares" in self:
            top = sorted(self["shares"].items(), key=lambda kv: -kv[1])[:2]
            return "free %.0f%%, %s" % (100.0 * self["free_space"], ", ".join("%s %.0f%%" % (k, 100.0 * v)
                                                                            for k, v in top))
        if "label" in self:
            return "%s %.1f%%" % (self["label"], 100.0 * self["confidence"])
        if "steering" in self:
            return "steer %+.3f" % self["steering"]
        return " ".join("%.4g" % v for v in self["values"])


def detection_name(d) -> str:
    """'person #4 0.80': a detection's label, its id with tracking, and its score (the overlay's tab says it too)."""
    return "%s%s %.2f" % (d["label"], " #%d" % d["id"] if "id" in d else "", d["score"])


def detections_text(detections) -> str:
    """'3 objects: car 0.91, person #4 0.80, cone 0.55' (an id after #, with tracking; the first SHOWN named)."""
    named = ", ".join(detection_name(d) for d in detections[:SHOWN])
    more = ", ..." if len(detections) > SHOWN else ""
    count = "%d object%s" % (len(detections), "" if len(detections) == 1 else "s")
    return count + (": " + named + more if detections else "")


def check_threshold(value) -> float:
    """A score threshold from 0 to 1, or a one-line UserError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise UserError("--threshold takes a score from 0 to 1, not %r" % (value,))
    return float(value)


def choose_classes(classes, labels) -> list:
    """--classes as class indices: a comma-separated string or a list of names and indices; a one-line UserError
    for an unknown one, listing the labels."""
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    chosen = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if isinstance(name, str) and name in labels:
            chosen.append(labels.index(name))
        elif isinstance(name, str) and name.isdigit() and name.isascii() and int(name) < len(labels):
            chosen.append(int(name))
        elif isinstance(name, int) and not isinstance(name, bool) and 0 <= name < len(labels):
            chosen.append(name)
        else:
            raise UserError("--classes: %r is not a class of this bundle; its classes (names, or indices from 0): "
                            "%s" % (name, ", ".join(labels)))
    if not chosen:
        raise UserError("--classes names no class; this bundle's classes: %s" % ", ".join(labels))
    return sorted(set(chosen))


class Detections:
    """A detection bundle's detections output -> the result's detections: the threshold and the classes
    applied, boxes in the frame's pixels, and ids from an IoU tracker (runtime/tracker.py) with track."""

    def __init__(self, settings, labels, crop, size, threshold=None, classes=None, track=False):
        """settings: Bundle.detection; crop, size: the bundle's crop and resize (width, height)."""
        self.index, self.labels, self.crop, self.size = settings["index"], list(labels), crop, tuple(size)
        self.threshold = settings["threshold"] if threshold is None else check_threshold(threshold)
        self.classes = None if classes is None else choose_classes(classes, self.labels)
        self.tracker = Tracker() if track else None

    def __call__(self, outputs, row, frame_size):
        rows = np.asarray(outputs[self.index][row], dtype=np.float64).reshape(-1, 6)
        if not np.isfinite(rows).all():
            if self.tracker is not None:
                self.tracker.update([], [])  # a frame not seen: the tracks miss it
            return Result(detections=None, invalid=INVALID)
        scores, cls = rows[:, 4], np.round(rows[:, 5]).astype(np.int64)
        keep = (scores > 0) & (scores >= self.threshold)  # score 0: padding
        keep &= np.isin(cls, self.classes) if self.classes is not None else (cls >= 0) & (cls < len(self.labels))
        order = np.nonzero(keep)[0]
        order = order[np.argsort(-scores[order], kind="stable")]
        corners = rows[order, :4]  # ordered, x0 <= x1 and y0 <= y1, whatever an untrained network gives
        corners = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2],
                                                                                          corners[:, 2:])], axis=1)
        if frame_size is None:
            boxes = np.clip(corners, 0, [self.size[0], self.size[1]] * 2)
        else:
            boxes = to_frame(corners, frame_size, self.crop, self.size)
        boxes = np.round(boxes, 2)  # to 1/100 pixel: JSON lines stay short
        found = [{"box": [float(v) for v in box], "score": float(scores[i]), "class_id": int(cls[i]),
                  "label": self.labels[cls[i]]} for box, i in zip(boxes, order)]
        if self.tracker is not None:
            for detection, track_id in zip(found, self.tracker.update(boxes, cls[order])):
                detection["id"] = track_id
        result = Result(detections=found)
        if frame_size is None:
            result["units"] = "input"
        return result


def freespace_boundary(mask, drivable):
    """Per column of a class map (H x W), how many rows up from the bottom are free space (drivable classes, no
    gap): H where the whole column is, 0 where its bottom pixel is not."""
    blocked = ~np.isin(mask[::-1], drivable)  # bottom row first
    return np.where(blocked.any(axis=0), np.argmax(blocked, axis=0), mask.shape[0])


def class_iou(truth, found, labels) -> dict:
    """Class maps against their labels (any shapes, the same): per-class IoU (None for a class in neither), their
    mean over the classes present (mIoU), and pixel accuracy. numpy only: train's held-out figures and `export
    verify`'s on a board are the same numbers."""
    n = len(labels)
    index = np.asarray(truth, np.int64).ravel() * n + np.clip(np.asarray(found, np.int64).ravel(), 0, n - 1)
    counts = np.bincount(index, minlength=n * n).reshape(n, n)  # row: the true class; column: the network's
    tp = np.diag(counts).astype(np.float64)
    union = counts.sum(0) + counts.sum(1) - tp
    per_class = {name: (float(tp[i] / union[i]) if union[i] else None) for i, name in enumerate(labels)}
    present = [v for v in per_class.values() if v is not None]
    return {"miou": float(np.mean(present)) if present else 0.0, "iou": per_class,
            "pixel_accuracy": float(tp.sum() / max(counts.sum(), 1))}


class Segmentation:
    """A segmentation bundle's class map -> the result's class shares, free space and its boundary per column
    in the frame's rows (the crop and resize undone), the map kept as the result's `mask`."""

    def __init__(self, settings, labels, crop, size):
        """settings: Bundle.segmentation; crop, size: the bundle's crop and resize (width, height)."""
        self.index, self.labels, self.crop, self.size = settings["index"], list(labels), crop, tuple(size)
        self.drivable = np.asarray(settings["drivable"], np.int64)

    def __call__(self, outputs, row, frame_size):
        mask = np.asarray(outputs[self.index][row])
        if mask.ndim != 2 or mask.dtype.kind not in "iuf" or (mask.dtype.kind == "f" and not np.isfinite(mask).all()):
            return Result(dict.fromkeys(_KEYS["segmentation"]), invalid=INVALID)
        if mask.size and (mask.min() < 0 or mask.max() >= len(self.labels)):  # not one of the classes: broken
            return Result(dict.fromkeys(_KEYS["segmentation"]), invalid="the network gave a class beyond its %d "
                                                                       "labels" % len(self.labels))
        mask = mask.astype(np.int64)
        shares = np.bincount(mask.ravel(), minlength=len(self.labels)) / float(max(mask.size, 1))
        free = mask.shape[0] - freespace_boundary(mask, self.drivable)  # the input's row where free space ends
        result = Result(shares={name: round(float(v), 4) for name, v in zip(self.labels, shares)},
                        free_space=round(float(shares[self.drivable].sum()), 4))
        if frame_size is None:
            result.update(boundary=[int(v) for v in free], units="input")
            region = (0, 0) + self.size
        else:
            x0, y0, x1, y1 = crop_box(self.crop, frame_size[0], frame_size[1])
            result["boundary"] = [round(y0 + float(v) * (y1 - y0) / mask.shape[0], 1) for v in free]
            region = (x0, y0, x1, y1)
        result.mask, result.region = mask, region
        return result


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Postprocessor:
    def __init__(self, task: str, labels, outputs, curvature_per_unit=None, top_k: int = 5, detection=None,
                 segmentation=None):
        """curvature_per_unit: a steering bundle's Bundle.curvature_per_unit (inverse_radius, right-positive);
        detection: a detection bundle's Detections, segmentation a segmentation bundle's Segmentation
        (for_bundle makes them)."""
        self.task = task
        self.labels = list(labels)
        self.activation = outputs[0].get("activation", "linear")
        self.curvature_per_unit = curvature_per_unit
        self.top_k = top_k
        # detection and segmentation: their own class makes the whole result
        self.per_frame = detection if detection is not None else segmentation
        if task in ("detection", "segmentation") and self.per_frame is None:
            raise UserError("a %s bundle's Postprocessor is made by Postprocessor.for_bundle" % task)

    @classmethod
    def for_bundle(cls, bundle, threshold=None, classes=None, track=False):
        """The bundle's Postprocessor; threshold (0..1), classes (names or indices) and track (an IoU tracker's
        ids) are for detection bundles only, each a one-line UserError for another."""
        if bundle.task != "detection":
            given = [name for name, v in (("--threshold", threshold), ("--classes", classes), ("--track", track))
                     if v not in (None, False)]
            if given:
                raise UserError("%s is for detection bundles; %s is a %s bundle"
                                % (given[0], bundle.name, bundle.task))
            if bundle.task == "segmentation":
                resize = bundle.preprocess["resize"]
                found = Segmentation(bundle.segmentation, bundle.labels, bundle.preprocess.get("crop"),
                                     (resize["width"], resize["height"]))
                return cls(bundle.task, bundle.labels, bundle.outputs, segmentation=found)
            return cls(bundle.task, bundle.labels, bundle.outputs, bundle.curvature_per_unit)
        resize = bundle.preprocess["resize"]
        found = Detections(bundle.detection, bundle.labels, bundle.preprocess.get("crop"),
                           (resize["width"], resize["height"]), threshold, classes, track)
        return cls(bundle.task, bundle.labels, bundle.outputs, detection=found)

    def __call__(self, outputs, row: int = 0, frame_size=None) -> Result:
        """outputs: the backend's list of arrays; row: which item of the batch; frame_size (width, height):
        the frame's, for results given in its pixels (a detector's boxes)."""
        if self.per_frame is not None:
            return self.per_frame(outputs, row, frame_size)
        y = np.asarray(outputs[0][row], dtype=np.float64).reshape(-1)
        if not np.isfinite(y).all():  # flagged, not a crash: a broken engine or input must not stop a vehicle's loop
            return Result(dict.fromkeys(_KEYS[self.task]), invalid=INVALID)
        if self.task == "classification":
            probs = y if self.activation == "softmax" else _softmax(y)
            order = np.argsort(-probs)[:self.top_k]
            top = int(order[0])
            return Result(class_id=top, label=self._label(top), confidence=float(probs[top]),
                          top=[[int(i), self._label(int(i)), float(probs[i])] for i in order])
        if self.task == "binary":
            p = float(y[0] if self.activation == "sigmoid" else _sigmoid(y[0]))
            positive = p >= 0.5
            return Result(class_id=int(positive), label=self._label(int(positive)),
                          confidence=p if positive else 1.0 - p, probability=p)
        if self.task == "steering":
            value = float(y[0])
            result = Result(steering=value)
            if self.curvature_per_unit is not None:  # right-positive for every bundle, as the control line's
                result["inverse_radius"] = value * self.curvature_per_unit
            return result
        return Result(values=[float(v) for v in y])

    def _label(self, i: int) -> str:
        return self.labels[i] if i < len(self.labels) else str(i)
