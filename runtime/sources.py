"""Frame sources by URI, after jetson-inference's convention. Which reader opens which URI is decided here,
in open_source(), and nowhere else.

    csi://N                     Jetson CSI camera N: GStreamer (nvarguscamerasrc; scaled and flipped in the VIC)
    v4l2:///dev/videoN, /dev/videoN, N
                                USB camera: GStreamer (MJPEG where offered) when this OpenCV has it, else
                                OpenCV's own V4L2 reader
    rtsp://...                  RTSP stream: GStreamer with low latency (hardware decoding on a Jetson),
                                else FFmpeg with its low-delay options
    gst://PIPELINE              any GStreamer pipeline ending in appsink
    synthetic://road            the procedural road as a live camera (frames carry the true steering)
    file://PATH or PATH         a video file, an image, a folder of images or a glob of images

Live sources reconnect with backoff when they stop, for up to --reconnect-timeout seconds. Every frame is
uint8 BGR and carries its index and the time it was captured.
"""

from __future__ import annotations

import glob
import os
import sys
import time

import numpy as np

from .errors import UserError, native_stderr_silenced, require

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FLIPS = ("none", "counterclockwise", "rotate-180", "clockwise", "horizontal", "vertical")
NVVIDCONV_FLIP = {"none": 0, "counterclockwise": 1, "rotate-180": 2, "clockwise": 3, "horizontal": 4, "vertical": 6}
DEFAULT_RECONNECT_TIMEOUT = 10.0
OPEN_TIMEOUT = 20.0  # seconds a camera or stream may take to give its first frame


class Frame:
    """One captured frame: `image` (uint8 BGR), `index`, `timestamp` (epoch s), `t0` (perf_counter at
    capture, for latency), `truth` (the right answer, where the source knows it), and once stream() has
    run the model on it, `latency_ms` (capture -> result)."""

    __slots__ = ("image", "index", "timestamp", "t0", "truth", "read_s", "latency_ms")

    def __init__(self, image, index, truth=None):
        self.image = image
        self.index = index
        self.timestamp = time.time()
        self.t0 = time.perf_counter()
        self.truth = truth
        self.read_s = 0.0  # how long the source took to give it (the capture stage)
        self.latency_ms = None


class Source:
    """Iterate to get Frames; `live` sources pace themselves, files give every frame in order."""

    uri = ""
    live = False
    fps = 30.0
    flip = "none"  # applied here unless the source flips in hardware (CSI on a Jetson)
    in_memory = False  # frames held in memory: read without a thread, and the same arrays come round again
    reconnects = 0

    def __iter__(self):
        index = 0
        for image, truth in self._images():
            if self.flip != "none":
                image = flipped(image, self.flip)
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
    """Rendered as fast as it is read (every frame); with a rate, paced like a camera (newest frame wins)."""

    def __init__(self, width=None, height=None, rate=None, seed=0):
        from .road import RoadDrive

        self.uri = "synthetic://road"
        self.live = rate is not None
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


def flipped(image, how):
    import cv2

    if how == "horizontal":
        return cv2.flip(image, 1)
    if how == "vertical":
        return cv2.flip(image, 0)
    return cv2.rotate(image, {"clockwise": cv2.ROTATE_90_CLOCKWISE, "rotate-180": cv2.ROTATE_180,
                              "counterclockwise": cv2.ROTATE_90_COUNTERCLOCKWISE}[how])


class LiveCapture(Source):
    """A camera or stream read through OpenCV. When it stops it is reopened with backoff (0.25 s doubling to
    4 s) for up to reconnect_timeout seconds; then the iteration ends and the run finishes cleanly."""

    live = True

    def __init__(self, uri, opener, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr):
        self.uri, self.opener, self.reconnect_timeout, self.log = uri, opener, reconnect_timeout, log
        self.cap = opener()  # the first open's errors are the user's to see
        self.fps = self.cap.get(5) or 30.0  # cv2.CAP_PROP_FPS
        self.closing = False

    def _reopen(self):
        started = time.perf_counter()
        deadline, delay = started + self.reconnect_timeout, 0.25
        self._say("%s stopped; reconnecting (for up to %g s)" % (self.uri, self.reconnect_timeout))
        while not self.closing:
            self.cap.release()
            try:
                self.cap = self.opener()
                self.reconnects += 1
                self._say("%s is back after %.1f s" % (self.uri, time.perf_counter() - started))
                return True
            except UserError as exc:
                last = exc
            left = deadline - time.perf_counter()
            if left <= 0:
                self._say("%s did not come back within %g s (%s); stopping" % (self.uri, self.reconnect_timeout, last))
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 4.0)
        return False

    def _say(self, text):
        if self.log is not None:
            print("source: " + text, file=self.log)

    def _images(self):
        while not self.closing:
            ok, image = self.cap.read()
            if ok and image is not None:
                yield image, None
            elif self.closing or not self._reopen():
                return

    def close(self):
        self.closing = True
        self.cap.release()


def _gstreamer_opener(uri, pipeline, cause):
    cv2 = require("cv2", "opencv", "reading cameras and streams")
    from . import gst

    if not gst.opencv_has_gstreamer(cv2):
        raise UserError("%s needs GStreamer, but %s" % (uri, gst.NO_GSTREAMER % cv2.__version__))
    problem = gst.check(pipeline)
    if problem is not None:
        raise UserError("cannot open %s: GStreamer says: %s (the pipeline: %s)" % (uri, problem, pipeline))

    def open_():
        with native_stderr_silenced():  # GStreamer's own warnings; our one line follows
            cap = _within(OPEN_TIMEOUT, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER))
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise UserError("cannot open %s: %s (the pipeline: %s)" % (uri, cause, pipeline))
        return cap

    return open_


def _within(seconds, fn):
    """fn() in a helper thread; None when it has not returned within seconds (a stream that never starts)."""
    import threading

    box = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


def _v4l2_opener(uri, device, width, height, rate):
    """A USB camera: through GStreamer where this OpenCV has it, else OpenCV's V4L2 reader (pip's wheels)."""
    cv2 = require("cv2", "opencv", "reading cameras")
    from . import gst, platform

    if not os.path.exists(device):
        found = sorted(glob.glob("/dev/video*"))
        raise UserError("no such camera %s (%s)" % (device, "cameras here: " + ", ".join(found) if found else
                                                   "no /dev/video* here: is the camera plugged in?"))
    if not os.access(device, os.R_OK | os.W_OK):
        raise UserError("no permission to open %s: add yourself to the video group (sudo usermod -aG video $USER, "
                        "then log in again)" % device)
    formats = v4l2_formats(device)
    mjpeg = "MJPG" in formats
    if gst.opencv_has_gstreamer(cv2):
        pipeline = gst.v4l2(device, width, height, rate, mjpeg=mjpeg, jetson=platform.is_jetson(),
                            hw_mjpeg=not platform.is_thor(platform.board_model(), platform.board_compatible()))
        return _gstreamer_opener(uri, pipeline, "the camera is busy or does not offer that size/rate (list its "
                                                "modes: v4l2-ctl -d %s --list-formats-ext)" % device)

    def open_():
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise UserError("cannot open %s: busy, or not a capture device" % device)
        if mjpeg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if width and height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if rate:
            cap.set(cv2.CAP_PROP_FPS, rate)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones
        return cap

    return open_


def v4l2_formats(device) -> list:
    """The pixel formats a V4L2 device offers (FourCC strings such as 'MJPG', 'YUYV'), by VIDIOC_ENUM_FMT."""
    import fcntl
    import struct

    vidioc_enum_fmt, capture = 0xC0405602, 1  # _IOWR('V', 2, struct v4l2_fmtdesc); V4L2_BUF_TYPE_VIDEO_CAPTURE
    formats = []
    try:
        fd = os.open(device, os.O_RDWR | os.O_NONBLOCK)
    except OSError:
        return formats
    try:
        for index in range(64):
            buf = bytearray(struct.pack("II", index, capture) + bytes(56))
            try:
                fcntl.ioctl(fd, vidioc_enum_fmt, buf)
            except OSError:
                break
            formats.append(bytes(buf[44:48]).decode("ascii", "replace"))
    finally:
        os.close(fd)
    return formats


def _rtsp_opener(uri, codec, width, height):
    cv2 = require("cv2", "opencv", "reading RTSP streams")
    from . import gst, platform

    if gst.opencv_has_gstreamer(cv2):
        pipeline = gst.rtsp(uri, codec or "h264", width, height, jetson=platform.is_jetson())
        return _gstreamer_opener(uri, pipeline, "the stream did not start (wrong address or credentials, the "
                                                "server down, or another codec: try --input-codec h265)")
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay")

    def open_():
        with native_stderr_silenced():
            cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise UserError("cannot open %s: the stream did not start (wrong address or credentials, or the "
                            "server down)" % uri)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    return open_


def _resized(cv2, image, size):
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if size and (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def open_source(uri: str, width=None, height=None, rate=None, loop=False, flip="none", codec=None,
                reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr) -> Source:
    """A Source for a URI; UserError in one line when it cannot be opened. The one place that decides
    which reader opens which URI."""
    from . import gst, platform

    uri = str(uri)
    if flip not in FLIPS:
        raise UserError("--input-flip %r is not one of %s" % (flip, ", ".join(FLIPS)))
    if codec is not None and codec not in gst.CODECS:
        raise UserError("--input-codec %r is not one of %s" % (codec, ", ".join(gst.CODECS)))
    source = _open(uri, width, height, rate, loop, flip, codec, reconnect_timeout, log)
    if not (uri.startswith("csi://") and platform.is_jetson()):
        source.flip = flip
    return source


def _open(uri, width, height, rate, loop, flip, codec, reconnect_timeout, log):
    from . import gst, platform

    def live(opener):
        return LiveCapture(uri, opener, reconnect_timeout, log)

    if uri.startswith("synthetic://"):
        if uri.rstrip("/") != "synthetic://road":
            raise UserError("unknown synthetic source %r (there is synthetic://road)" % uri)
        return SyntheticRoad(width, height, rate)
    if uri.startswith("csi://"):
        sensor = uri[len("csi://"):]
        if not sensor.isdigit():
            raise UserError("csi:// needs a sensor number, as in csi://0")
        if not platform.is_jetson():
            raise UserError("%s: CSI cameras are read through nvarguscamerasrc, which only a Jetson has" % uri)
        pipeline = gst.csi(int(sensor), width, height, rate or 30, NVVIDCONV_FLIP[flip])
        return live(_gstreamer_opener(uri, pipeline, "no camera on that port, or nvargus-daemon is not running "
                                                     "(sudo systemctl restart nvargus-daemon)"))
    if uri.startswith("v4l2://") or uri.startswith("/dev/video") or uri.isdigit():
        device = uri[len("v4l2://"):] if uri.startswith("v4l2://") else uri
        device = "/dev/video" + device if device.isdigit() else device
        return live(_v4l2_opener(uri, device, width, height, rate))
    if uri.startswith("rtsp://") or uri.startswith("rtsps://"):
        return live(_rtsp_opener(uri, codec, width, height))
    if uri.startswith("gst://"):
        pipeline = uri[len("gst://"):].strip()
        if "appsink" not in pipeline:
            raise UserError("gst:// pipelines must end in appsink (as in: gst://videotestsrc ! videoconvert ! appsink)")
        opener = _gstreamer_opener(uri, pipeline, "GStreamer could not start it (try: gst-launch-1.0 %s)"
                                   % pipeline.replace("appsink", "fakesink"))
        if pipeline.split()[0] in ("filesrc", "multifilesrc"):
            return _EndingCapture(uri, opener)
        return live(opener)
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


class _EndingCapture(LiveCapture):
    """A gst:// pipeline that reads a file: every frame in order, and its end is the end (no reconnect)."""

    live = False

    def __init__(self, uri, opener):
        super().__init__(uri, opener, 0.0, None)

    def _reopen(self):
        return False
