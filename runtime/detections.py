"""Boxes as a detection bundle gives them, and what the board does with them: numpy only.

A detector's boxes are (x0, y0, x1, y1) in pixels of the network's input: its crop of the frame resized to
(width, height). to_frame() undoes that (the crop and the resize, as preprocess.py made them) so boxes are in the
source frame's pixels; to_input() goes the other way (training targets, from a dataset's boxes). average_precision()
is a small matcher for `export verify` on the board, where pycocotools has no wheel for every JetPack's Python:
VOC's all-point interpolated AP at one IoU threshold, with ignore regions that are neither an object to find nor a
false detection (as pycocotools' iscrowd: a detection mostly inside one is set aside).
"""

from __future__ import annotations

import numpy as np

from .preprocess import crop_box


def _scales(frame_size, crop, size):
    x0, y0, x1, y1 = crop_box(crop, frame_size[0], frame_size[1])
    return x0, y0, size[0] / float(x1 - x0), size[1] / float(y1 - y0)


def to_frame(boxes, frame_size, crop, size):
    """boxes (N, 4) in the network input's pixels -> the frame's (frame_size: width, height), clipped to it."""
    x0, y0, sx, sy = _scales(frame_size, crop, size)
    out = np.asarray(boxes, np.float64).reshape(-1, 4) / [sx, sy, sx, sy] + [x0, y0, x0, y0]
    return np.clip(out, 0, [frame_size[0], frame_size[1], frame_size[0], frame_size[1]])


def to_input(boxes, frame_size, crop, size):
    """boxes (N, 4) in the frame's pixels -> the network input's, clipped to it."""
    x0, y0, sx, sy = _scales(frame_size, crop, size)
    out = (np.asarray(boxes, np.float64).reshape(-1, 4) - [x0, y0, x0, y0]) * [sx, sy, sx, sy]
    return np.clip(out, 0, [size[0], size[1], size[0], size[1]])


def _intersections(a, b):
    """The area of each box in a (N, 4) that overlaps each box in b (M, 4): (N, M)."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    return w * h


def iou(a, b):
    """IoU of every box in a (N, 4) with every box in b (M, 4): (N, M)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = _intersections(a, b)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def pairs(overlaps, fits):
    """(i, j, overlap) for the pairs where fits (N, M) holds, each i and each j in one pair at most, taken
    greedily by the best overlap first (equal ones in row-major order): how export's parity pairs two sides'
    boxes and the tracker pairs tracks with detections."""
    out, used_i, used_j = [], set(), set()
    rows, cols = np.nonzero(fits)
    for k in np.argsort(-overlaps[rows, cols], kind="stable"):
        i, j = int(rows[k]), int(cols[k])
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j, float(overlaps[i, j])))
    return out


def _inside(boxes, regions):
    """The share of each box's area inside any one region: (N,)."""
    boxes, regions = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(regions, np.float64).reshape(-1, 4)
    if not len(regions) or not len(boxes):
        return np.zeros(len(boxes))
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-12)
    return _intersections(boxes, regions).max(axis=1) / area


def average_precision(detections, truths, num_classes, threshold=0.5, ignore_share=0.5):
    """Per-class AP and their mean at one IoU threshold. detections: per image (N, 6) x0 y0 x1 y1 score class;
    truths: per image (boxes (M, 4), classes (M,), ignore (I, 4)). Each detection, best score first, takes the
    unmatched truth of its class it overlaps most at IoU >= threshold; one that takes none and lies at least
    ignore_share inside an ignore region is set aside. AP: the area under the precision envelope (VOC 2010+).
    Returns ({class: AP or None where the class has no truth}, mAP over the classes that have)."""
    per_class = {}
    for c in range(num_classes):
        scored, total = [], 0
        for found, (boxes, classes, ignore) in zip(detections, truths):
            found = np.asarray(found, np.float64).reshape(-1, 6)
            found = found[(found[:, 5] == c) & (found[:, 4] > 0)]
            mine = np.asarray(boxes, np.float64).reshape(-1, 4)[np.asarray(classes).reshape(-1) == c]
            total += len(mine)
            scored += _match(found[np.argsort(-found[:, 4], kind="stable")], mine, ignore, threshold, ignore_share)
        per_class[c] = _area(scored, total) if total else None
    values = [ap for ap in per_class.values() if ap is not None]
    return per_class, float(np.mean(values)) if values else 0.0


def _match(found, truths, ignore, threshold, ignore_share):
    """[(score, 1 true positive / 0 false)] for one image's detections of one class, best first."""
    taken = np.zeros(len(truths), bool)
    overlaps = iou(found[:, :4], truths) if len(truths) else np.zeros((len(found), 0))
    inside = _inside(found[:, :4], ignore)
    out = []
    for i, row in enumerate(found):
        choices = np.where(~taken & (overlaps[i] >= threshold))[0] if len(truths) else []
        if len(choices):
            taken[choices[np.argmax(overlaps[i, choices])]] = True
            out.append((row[4], 1))
        elif inside[i] < ignore_share:
            out.append((row[4], 0))
    return out


def _area(scored, total):
    if not scored:
        return 0.0
    scored.sort(key=lambda pair: -pair[0])
    hits = np.array([hit for _, hit in scored], np.float64)
    tp = np.cumsum(hits)
    recall = np.concatenate([[0.0], tp / total, [tp[-1] / total]])
    precision = np.concatenate([[1.0], tp / np.arange(1, len(hits) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))
