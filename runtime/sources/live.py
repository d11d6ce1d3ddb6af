"""Live sources read through OpenCV (cameras, streams, GStreamer pipelines): reopened with backoff when
they stop, and the GStreamer opener they share."""

from __future__ import annotations

import sys
import time

from ..errors import UserError, native_stderr_silenced, require
from .base import DEFAULT_RECONNECT_TIMEOUT, OPEN_TIMEOUT, Source


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


class _EndingCapture(LiveCapture):
    """A gst:// pipeline that reads a file: every frame in order, and its end is the end (no reconnect)."""

    live = False

    def __init__(self, uri, opener):
        super().__init__(uri, opener, 0.0, None)

    def _reopen(self):
        return False


def _gstreamer_opener(uri, pipeline, cause):
    cv2 = require("cv2", "opencv", "reading cameras and streams")
    from .. import gst

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
