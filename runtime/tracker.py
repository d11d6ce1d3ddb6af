"""An IoU tracker: each detection gets an id that it keeps across frames, as jetson-inference's detectNet
tracking (its IOU tracker) gives one. numpy only.

Each frame, the detections are matched to the live tracks greedily: the pair of one track and one detection of
the same class that overlap most (IoU at least `overlap`, 0.3 by default) first, then the next best pair among
those left, and so on. A matched track takes the detection's box; a detection left over starts a track with the
next id (1, 2, 3, ... counted up for the tracker's life, never reused); a track left over is missed, and after
more than `drop_frames` missed frames in a row (15 by default, half a second at 30 FPS) it is gone, so an object
hidden for a moment keeps its id. At most `max_tracks` (256) live at once: beyond that the tracks missed longest
go first, so memory is bounded whatever the detector gives.
"""

from __future__ import annotations

import numpy as np

from .detections import iou, pairs

OVERLAP = 0.3
DROP_FRAMES = 15
MAX_TRACKS = 256


class Tracker:
    """tracker.update(boxes, classes) -> one id per detection; state is the live tracks only."""

    def __init__(self, overlap: float = OVERLAP, drop_frames: int = DROP_FRAMES, max_tracks: int = MAX_TRACKS):
        self.overlap, self.drop_frames, self.max_tracks = overlap, drop_frames, max_tracks
        self.ids, self.classes, self.missed = [], [], []
        self.boxes = np.zeros((0, 4))
        self.next_id = 1

    def __len__(self):
        return len(self.ids)

    def update(self, boxes, classes) -> list:
        """boxes (N, 4) x0, y0, x1, y1 and classes (N,) of one frame's detections -> their ids (N ints)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        classes = [int(c) for c in np.asarray(classes).reshape(-1)]
        ids = [None] * len(boxes)
        taken = set()
        for t, d in self._pairs(boxes, classes):
            ids[d] = self.ids[t]
            taken.add(t)
            self.boxes[t], self.missed[t] = boxes[d], 0
        for t in range(len(self.ids)):
            if t not in taken:
                self.missed[t] += 1
        for d, box in enumerate(boxes):
            if ids[d] is None:
                ids[d] = self._start(box, classes[d])
        self._forget()
        return ids

    def _pairs(self, boxes, classes):
        """(track, detection) index pairs of one class at IoU >= overlap, each in one pair at most, best overlap
        first."""
        if not len(self.ids) or not len(boxes):
            return []
        overlaps = iou(self.boxes, boxes)
        same = np.asarray(self.classes)[:, None] == np.asarray(classes)[None, :]
        return [(t, d) for t, d, _ in pairs(overlaps, same & (overlaps >= self.overlap))]

    def _start(self, box, cls):
        new_id, self.next_id = self.next_id, self.next_id + 1
        self.ids.append(new_id)
        self.classes.append(cls)
        self.missed.append(0)
        self.boxes = np.concatenate([self.boxes, np.asarray(box, np.float64).reshape(1, 4)])
        return new_id

    def _forget(self):
        """Drop the tracks missed more than drop_frames frames, then the longest missed beyond max_tracks."""
        keep = [t for t in range(len(self.ids)) if self.missed[t] <= self.drop_frames]
        if len(keep) > self.max_tracks:
            keep = sorted(sorted(keep, key=lambda t: self.missed[t])[:self.max_tracks])
        if len(keep) == len(self.ids):
            return
        self.ids = [self.ids[t] for t in keep]
        self.classes = [self.classes[t] for t in keep]
        self.missed = [self.missed[t] for t in keep]
        self.boxes = self.boxes[keep].reshape(-1, 4)
