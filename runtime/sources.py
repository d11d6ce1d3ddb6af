"""Frame sources by URI, after jetson-inference's convention. Which reader opens which URI is decided here.

    synthetic://road            the procedural road as a live camera (frames carry the true steering)
    file://PATH or PATH         a video file, an image, a folder of images or a glob of images

Live cameras (csi://, v4l2://, /dev/videoN, rtsp://, gst://) come with the camera pipeline and are
refused with a clear message until then. Every frame is uint8 BGR and carries its index and the time
it was captured.
"""

from __future__ import annotations

import glob
import os
import sys
import time

import numpy as np

from .cli import UserError, native_stderr_silenced, require

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
LIVE_SCHEMES = ("csi://", "v4l2://", "rtsp://", "rtp://", "gst://", "/dev/video")


class Frame:
    """One captured frame: `image` (uint8 BGR), `index`, `timestamp` (epoch s), `t0` (perf_counter at
    capture, for latency), and `truth` (the right answer, where the source knows it)."""

    __slots__ = ("image", "index", "timestamp", "t0", "truth")

    def __init__(self, image, index, truth=None):
        self.image = image
        self.index = index
        self.timestamp = time.time()
        self.t0 = time.perf_counter()
        self.truth = truth


class Source:
    """Iterate to get Frames; `live` sources pace themselves, files give every frame in order."""

    uri = ""
    live = False
    fps = 30.0

    def __iter__(self):
        index = 0
        for image, truth in self._images():
            yield Frame(image, index, truth)
            index += 1

    def _images(self):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SyntheticRoad(Source):
    live = True

    def __init__(self, width=None, height=None, rate=None, seed=0):
        from .road import RoadDrive

        self.uri = "synthetic://road"
        self.width, self.height = width or 640, height or 360
        self.rate = rate
        self.fps = float(rate or 30.0)
        try:
            self.drive = RoadDrive(self.width, self.height, seed=seed, fps=self.fps)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def _images(self):
        period = 1.0 / self.rate if self.rate else 0.0
        next_t = time.perf_counter()
        while True:
            if period:
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            frame, label = self.drive.next()
            yield frame, {"steering": label}


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


def _resized(cv2, image, size):
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if size and (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def open_source(uri: str, width=None, height=None, rate=None, loop=False) -> Source:
    """A Source for a URI; UserError in one line when it cannot be opened."""
    uri = str(uri)
    if uri.startswith("synthetic://"):
        if uri.rstrip("/") != "synthetic://road":
            raise UserError("unknown synthetic source %r (there is synthetic://road)" % uri)
        return SyntheticRoad(width, height, rate)
    if uri.startswith(LIVE_SCHEMES) or uri.isdigit():
        raise UserError("live camera sources (csi://, v4l2://, /dev/videoN, rtsp://, gst://) are not in this "
                        "version yet; use synthetic://road, a video file, an image or a folder")
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" in path:
        raise UserError("unknown source %r (use synthetic://road, file://PATH or a path)" % uri)
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
