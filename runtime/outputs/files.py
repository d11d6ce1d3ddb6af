"""FILE.mp4|.avi|.mkv ...: a video of annotated frames; FILE.jsonl: one JSON line per frame."""

from __future__ import annotations

import json
import os

from ..errors import UserError, require
from .base import Output, OutputStopped, check_space, check_writable

VIDEO_EXTS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoOutput(Output):
    """Annotated frames to a video file (opened at the first frame, when its size is known)."""

    wants_overlay = True

    def __init__(self, path, fps=30.0):
        ext = os.path.splitext(path)[1].lower()
        if ext not in VIDEO_EXTS:
            raise UserError("cannot write video %s: use one of %s" % (path, ", ".join(sorted(VIDEO_EXTS))))
        check_writable(path)
        self.cv2 = require("cv2", "opencv", "writing video")
        self.path, self.fps, self.fourcc = path, fps, VIDEO_EXTS[ext]
        self.folder = os.path.dirname(os.path.abspath(path))
        self.writer = None

    def write(self, frame, result, annotated=None):
        annotated = self.annotate(frame, result, annotated)
        if self.writer is None:
            h, w = annotated.shape[:2]
            fourcc = self.cv2.VideoWriter_fourcc(*self.fourcc)
            self.writer = self.cv2.VideoWriter(self.path, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError("OpenCV cannot write %s with codec %s" % (self.path, self.fourcc))
        check_space(self.path, self.folder)  # OpenCV's writer says nothing when the disk is full (2 us a frame)
        self.writer.write(annotated)

    def close(self):
        if self.writer is not None:
            self.writer.release()


class JsonlOutput(Output):
    """One JSON object per frame: frame, timestamp (capture, epoch s), latency_ms, result, truth."""

    def __init__(self, path):
        check_writable(path)
        self.path, self.lines = path, 0
        self.file = open(path, "w", buffering=1)  # line by line: a reader can follow a live run (tail -f)

    def write(self, frame, result, annotated=None):
        line = {"frame": frame.index, "timestamp": round(frame.timestamp, 6),
                "latency_ms": None if frame.latency_ms is None else round(frame.latency_ms, 3), "result": result}
        if frame.truth is not None:
            line["truth"] = frame.truth
        try:
            self.file.write(json.dumps(line) + "\n")
        except OSError as exc:  # a full disk (ENOSPC), an I/O error: the lines before it are whole
            raise OutputStopped("cannot write %s: %s: the run stopped; its first %d line(s) are kept"
                                % (self.path, exc.strerror or exc, self.lines)) from None
        self.lines += 1

    def close(self):
        try:
            self.file.close()
        except OSError:  # what the failed write left in the buffer; the lines before it are on disk
            pass


def path_of(uri):
    """A file output's path: file://PATH or PATH."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


def open_file(uri, fps=30.0, **_):
    path = path_of(uri)
    return JsonlOutput(path) if path.lower().endswith(".jsonl") else VideoOutput(path, fps)
