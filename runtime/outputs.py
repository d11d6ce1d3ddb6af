"""Where results go: a video file of annotated frames, JSON lines, a window. Each closes cleanly."""

from __future__ import annotations

import json
import os
import sys

from .cli import UserError, require

VIDEO_EXTS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def _check_writable(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError("cannot write %s: folder %s does not exist" % (path, folder))
    if not os.access(folder, os.W_OK):
        raise UserError("cannot write %s: folder %s is not writable" % (path, folder))


class VideoOutput:
    """Annotated frames to a video file (opened at the first frame, when its size is known)."""

    wants_overlay = True

    def __init__(self, path, fps=30.0):
        ext = os.path.splitext(path)[1].lower()
        if ext not in VIDEO_EXTS:
            raise UserError("cannot write video %s: use one of %s" % (path, ", ".join(sorted(VIDEO_EXTS))))
        _check_writable(path)
        self.cv2 = require("cv2", "opencv", "writing video")
        self.path, self.fps, self.fourcc = path, fps, VIDEO_EXTS[ext]
        self.writer = None

    def write(self, frame, result, annotated, latency_ms=None):
        if self.writer is None:
            h, w = annotated.shape[:2]
            fourcc = self.cv2.VideoWriter_fourcc(*self.fourcc)
            self.writer = self.cv2.VideoWriter(self.path, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError("OpenCV cannot write %s with codec %s" % (self.path, self.fourcc))
        self.writer.write(annotated)

    def close(self):
        if self.writer is not None:
            self.writer.release()


class JsonlOutput:
    """One JSON object per frame: frame, timestamp (capture, epoch s), latency_ms, result, truth."""

    wants_overlay = False

    def __init__(self, path):
        _check_writable(path)
        self.path = path
        self.file = open(path, "w")

    def write(self, frame, result, annotated, latency_ms=None):
        line = {"frame": frame.index, "timestamp": round(frame.timestamp, 6),
                "latency_ms": None if latency_ms is None else round(latency_ms, 3), "result": result}
        if frame.truth is not None:
            line["truth"] = frame.truth
        self.file.write(json.dumps(line) + "\n")

    def close(self):
        self.file.close()


class DisplayOutput:
    """A window with the overlay; q or Esc stops the run."""

    wants_overlay = True

    def __init__(self, title="runtime"):
        self.cv2 = require("cv2", "opencv", "showing a window")
        self.title = title
        try:
            self.cv2.namedWindow(title, self.cv2.WINDOW_NORMAL)
        except self.cv2.error:
            raise UserError("this OpenCV cannot open a window (a headless build, or no display); "
                            "run with --no-display") from None
        self.closed_by_user = False

    def write(self, frame, result, annotated, latency_ms=None):
        self.cv2.imshow(self.title, annotated)
        if self.cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed_by_user = True

    def close(self):
        self.cv2.destroyWindow(self.title)


def open_outputs(videos=(), jsonl=None, display=False, fps=30.0) -> list:
    """The outputs a run asked for; if one cannot open, those already open are closed again."""
    opened = []
    try:
        for path in videos:
            opened.append(VideoOutput(path, fps))
        if jsonl:
            opened.append(JsonlOutput(jsonl))
        if display:
            opened.append(DisplayOutput())
    except BaseException:
        for out in opened:
            out.close()
        raise
    return opened
