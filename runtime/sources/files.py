"""file://PATH or PATH: a video file, an image, a folder of images or a glob of images (every frame, in
order; --input-loop to loop)."""

from __future__ import annotations

import glob
import os
import sys

from ..errors import UserError, native_stderr_silenced, require
from .base import IMAGE_EXTS, Source, _resized


class VideoFile(Source):
    def __init__(self, path, width=None, height=None, loop=False):
        cv2 = require("cv2", "opencv", "reading video files")
        self.uri, self.path, self.loop = "file://" + path, path, loop
        self.size = (width, height) if width and height else None
        with native_stderr_silenced():  # FFmpeg's own complaints; ours follows in one line
            self.cap = cv2.VideoCapture(path)
        if not self.cap.isOpened():
            raise UserError("cannot open video %s: not a video, or this OpenCV has no decoder for it" % path)
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.cv2 = cv2

    def _images(self):
        while True:
            ok, image = self.cap.read()
            if not ok and self.loop:
                self.cap.set(self.cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self.cap.read()
            if not ok:
                return
            yield _resized(self.cv2, image, self.size), None

    def close(self):
        self.cap.release()


class Images(Source):
    def __init__(self, paths, uri, width=None, height=None, loop=False):
        self.cv2 = require("cv2", "opencv", "reading images")
        self.paths, self.uri, self.loop = paths, uri, loop
        self.size = (width, height) if width and height else None

    def _images(self):
        while True:
            for path in self.paths:
                image = self.cv2.imread(path, self.cv2.IMREAD_COLOR)
                if image is None:
                    if len(self.paths) == 1:
                        raise UserError("cannot read image %s (corrupt or not an image)" % path)
                    print("warning: skipping %s: not a readable image" % path, file=sys.stderr)
                    continue
                yield _resized(self.cv2, image, self.size), None
            if not self.loop:
                return


def open_path(uri, width=None, height=None, loop=False, **_):
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" in path:
        raise UserError("unknown source %r (use csi://N, v4l2:///dev/videoN, rtsp://..., gst://PIPELINE, "
                        "synthetic://road, file://PATH or a path)" % uri)
    if any(c in path for c in "*?["):
        paths = sorted(p for p in glob.glob(path) if p.lower().endswith(IMAGE_EXTS))
        if not paths:
            raise UserError("no images match %s" % path)
        return Images(paths, uri, width, height, loop)
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS))
        if not paths:
            raise UserError("folder %s has no images (%s)" % (path, ", ".join(IMAGE_EXTS)))
        return Images(paths, uri, width, height, loop)
    if not os.path.exists(path):
        raise UserError("no such file or folder: %s" % path)
    if path.lower().endswith(IMAGE_EXTS):
        return Images([path], uri, width, height, loop)
    return VideoFile(path, width, height, loop)
