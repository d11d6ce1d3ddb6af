"""Live sources (cameras, streams, GStreamer pipelines): read with a timeout, reopened with backoff when they
fail or stall, given up (`lost`) when they do not come back; the GStreamer opener they share, and gst://PIPELINE
(any GStreamer pipeline ending in appsink), which is that opener used directly."""

from __future__ import annotations

import re
import sys
import time

from .. import gst_launch
from ..errors import UserError, native_stderr_silenced, require
from .appsink import END, GstCapture
from .base import DEFAULT_RECONNECT_TIMEOUT, OPEN_TIMEOUT, Source, within


class NotOpened(UserError):
    """A live source that did not open: the whole story for the user, and a short `reason` for the log of a
    reconnection."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


class LiveCapture(Source):
    """A camera or stream: frames from a capture that `opener(open_timeout)` makes (a GstCapture, or OpenCV's reader
    wrapped in OpenCvCapture). A read that gives no frame within read_timeout seconds (default: 10 frame
    intervals, at least 1 s) counts as a failure, as an error does; then the capture is reopened with backoff
    (0.25 s doubling to 4 s) for up to reconnect_timeout seconds, and if it does not come back the iteration
    ends with `lost` saying why (`runtime run` exits 3). ends: the source's own end of stream (EOS) ends the
    iteration, as a file's end does (gst:// pipelines); a camera or a network stream is reconnected instead.
    live=False: every frame in order and no reconnecting (a pipeline that reads a file)."""

    live = True

    def __init__(self, uri, opener, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr, read_timeout=None,
                 ends=False, live=True):
        self.uri, self.opener, self.reconnect_timeout, self.log = uri, opener, reconnect_timeout, log
        self.ends, self.live = ends, live
        self.name = uri if len(uri) <= 60 else uri[:57] + "..."  # a pipeline can be long: the log names it short
        self.cap = self._open(OPEN_TIMEOUT)  # the first open's errors are the user's to see
        self.fps = self.cap.fps or 30.0
        self.read_timeout = read_timeout or max(1.0, 10.0 / self.fps)
        self.closing = False

    def _open(self, timeout):
        cap = self.opener(timeout)
        if hasattr(cap, "why"):  # a capture: read(timeout), why, fps, release() (GstCapture, OpenCvCapture, ...)
            return cap
        return OpenCvCapture(cap)  # a caller's opener may give OpenCV's VideoCapture itself

    def _reopen(self, why):
        started = time.perf_counter()
        deadline, delay = started + self.reconnect_timeout, 0.25
        self._say("%s stopped (%s); reconnecting (for up to %g s)" % (self.name, why, self.reconnect_timeout))
        while not self.closing:
            self.cap.release()
            try:
                self.cap = self._open(max(1.0, min(OPEN_TIMEOUT, deadline - time.perf_counter())))
                self.reconnects += 1
                self._say("%s is back after %.1f s" % (self.name, time.perf_counter() - started))
                return True
            except NotOpened as exc:
                last = exc.reason
            except UserError as exc:
                last = str(exc)
            left = deadline - time.perf_counter()
            if left <= 0:
                self.lost = "%s did not come back within %g s (%s)" % (self.name, self.reconnect_timeout, last)
                self._say(self.lost + "; stopping")
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, 4.0)
        return False

    def _say(self, text):
        if self.log is not None:
            print("source: " + text, file=self.log)

    def _images(self):
        while not self.closing:
            image = self.cap.read(self.read_timeout)
            if image is not None:
                yield image, None
                continue
            why = self.cap.why
            if self.closing or (self.ends and why == END):
                return
            if not self.live:
                self._say("%s stopped (%s)" % (self.name, why))
                return
            if not self._reopen(why):
                return

    def close(self):
        self.closing = True
        self.cap.release()


class OpenCvCapture:
    """OpenCV's VideoCapture with GstCapture's face. Its read() has no timeout and cannot tell an end from
    a failure: where GStreamer's Python bindings are missing, a stall blocks until OpenCV's own timeouts
    (FFmpeg's, V4L2's) if any, and a pipeline's end looks like a failure."""

    why = "no frame (OpenCV's reader does not say why)"

    def __init__(self, cap):
        self.cap = cap
        self.fps = cap.get(5)  # cv2.CAP_PROP_FPS

    def read(self, timeout=None):
        ok, image = self.cap.read()
        return image if ok and image is not None else None

    def release(self):
        self.cap.release()


def gstreamer_readable(cv2) -> bool:
    """Whether GStreamer pipelines can be read here: through its Python bindings, or through OpenCV."""
    return gst_launch.load_gst() is not None or gst_launch.opencv_has_gstreamer(cv2)


def gstreamer_opener(uri, pipeline, cause):
    """An opener for a GStreamer pipeline: read by GstCapture where GStreamer's Python bindings are, else by
    OpenCV's GStreamer reader (which cannot tell a pipeline's end from a failure, nor time out a stall)."""
    Gst = gst_launch.load_gst()
    if Gst is not None:
        problem = gst_launch.check(pipeline)
        if problem is not None:
            raise UserError("cannot open %s: GStreamer says: %s (the pipeline: %s)" % (uri, problem, pipeline))

        def open_gst(timeout=OPEN_TIMEOUT):
            try:
                return GstCapture(Gst, pipeline, timeout)
            except UserError as exc:
                raise NotOpened("cannot open %s: %s: %s (the pipeline: %s)" % (uri, cause, exc, pipeline),
                                str(exc)) from None

        return open_gst
    cv2 = require("cv2", "opencv", "reading cameras and streams")
    if not gst_launch.opencv_has_gstreamer(cv2):
        raise UserError("%s needs GStreamer: its Python bindings (python3-gi) are not importable here and %s"
                        % (uri, gst_launch.NO_GSTREAMER % cv2.__version__))

    def open_cv(timeout=OPEN_TIMEOUT):
        with native_stderr_silenced():  # GStreamer's own warnings; our one line follows
            cap = within(timeout, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER))
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise NotOpened("cannot open %s: %s (the pipeline: %s)" % (uri, cause, pipeline), "did not open")
        return OpenCvCapture(cap)

    return open_cv


def open_gst(uri, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr, read_timeout=None, **_):
    """Any pipeline ending in appsink. Its end of stream ends the run, as a file's does; a failure or a stall
    is reconnected. One that begins with filesrc is a file: every frame in order, and no reconnecting."""
    pipeline = uri[len("gst://"):].strip()
    if "appsink" not in pipeline:
        raise UserError("gst:// pipelines must end in appsink (as in: gst://videotestsrc ! videoconvert ! appsink)")
    opener = gstreamer_opener(uri, pipeline, "GStreamer could not start it (try: gst-launch-1.0 %s)"
                               % re.sub(r"appsink[^!]*$", "fakesink", pipeline))
    finite = pipeline.split()[0] in ("filesrc", "multifilesrc")
    return LiveCapture(uri, opener, reconnect_timeout, log, read_timeout, ends=True, live=not finite)
