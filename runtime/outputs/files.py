"""FILE.mp4|.avi|.mkv ...: a video of annotated frames; FILE.jsonl: one JSON line per frame.

Names of any bytes work (a video whose name is not UTF-8 is written through a link with a plain name:
runtime/images.py). A JSON-lines file never ends in a torn line: a write that fails part-way (a full disk)
is cut back to the last whole line.
"""

from __future__ import annotations

import errno
import json
import os
import stat

from .. import images
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
        self.writer = self.name = None

    def write(self, frame, result, annotated=None):
        annotated = self.annotate(frame, result, annotated)
        if self.writer is None:
            h, w = annotated.shape[:2]
            fourcc = self.cv2.VideoWriter_fourcc(*self.fourcc)
            self.name = images.OpenCvName(self.path)  # a name that is not UTF-8 crashed OpenCV
            self.writer = self.cv2.VideoWriter(self.name.name, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError("OpenCV cannot write %s with codec %s" % (images.shown(self.path), self.fourcc))
        check_space(images.shown(self.path), self.folder)  # OpenCV's writer says nothing when the disk is full
        self.writer.write(annotated)                         # (2 us a frame)

    def close(self):
        if self.writer is not None:
            self.writer.release()
        if self.name is not None:
            self.name.close()


class JsonlOutput(Output):
    """One JSON object per frame: frame, timestamp (capture, epoch s), latency_ms, result, truth."""

    def __init__(self, path):
        check_writable(path)
        self.path, self.lines = path, 0
        try:  # unbuffered: each line goes out whole in one write (a reader can follow a live run: tail -f)
            self.file = open(path, "wb", buffering=0)
        except OSError as exc:
            raise UserError("cannot write %s: %s" % (images.shown(path), exc.strerror or exc)) from None
        try:
            self.regular = stat.S_ISREG(os.fstat(self.file.fileno()).st_mode)
            self.end = self.file.tell() if self.regular else 0  # where the last whole line ends
        except OSError:
            self.regular, self.end = False, 0

    def write(self, frame, result, annotated=None):
        line = {"frame": frame.index, "timestamp": round(frame.timestamp, 6),
                "latency_ms": None if frame.latency_ms is None else round(frame.latency_ms, 3), "result": result}
        if frame.truth is not None:
            line["truth"] = frame.truth
        data = (json.dumps(line) + "\n").encode("utf-8")
        try:
            rest = memoryview(data)
            while rest:
                written = self.file.write(rest)  # a full disk can take part of a line, then refuse the rest
                if written is None:  # a non-blocking reader that is not reading: nothing was taken
                    raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                rest = rest[written:]
        except OSError as exc:  # a full disk (ENOSPC), an I/O error: cut back to the last whole line
            self._cut()
            raise OutputStopped("cannot write %s: %s: the run stopped; its first %d line(s) are kept"
                                % (images.shown(self.path), exc.strerror or exc, self.lines)) from None
        self.lines += 1
        self.end += len(data)

    def _cut(self):
        """Truncate the file to its last whole line (a pipe or a device keeps what it took: it cannot be cut)."""
        if self.regular:
            try:
                os.ftruncate(self.file.fileno(), self.end)
                self.file.seek(self.end)
            except OSError:
                pass

    def close(self):
        try:
            self.file.close()
        except OSError:
            pass


def path_of(uri):
    """A file output's path: file://PATH or PATH."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


def open_file(uri, fps=30.0, **_):
    path = path_of(uri)
    return JsonlOutput(path) if path.lower().endswith(".jsonl") else VideoOutput(path, fps)
