"""Frames pulled from a GStreamer pipeline's appsink through GStreamer's own Python bindings (PyGObject's
Gst, python3-gi) rather than OpenCV's reader, wherever they are installed: OpenCV's read() says only "no
frame", while here the pipeline's bus says whether it reached its end (EOS) or failed (an ERROR message, with
GStreamer's reason), and each frame is pulled with a timeout, so a stream that stalls (no frames, no error: a
frozen sender, a camera that hangs) is caught instead of blocking the run forever.

    capture = GstCapture(gst_launch.load_gst(), pipeline, 20.0)  # UserError if no first frame within 20 s
    image = capture.read(timeout=1.0)       # uint8 BGR, or None: then capture.why says END, STALLED or a failure
    capture.release()

The pipeline's appsink is told to take BGR (as OpenCV's reader asks for it) and, unless the pipeline sets
max-buffers itself, to hold at most four frames (back-pressure for a file, not an unbounded queue).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

END = "it reached its end"  # `why` after a None from read(): EOS on the bus
FAILED = "failed"  # an ERROR on the bus (the reason follows)
STALLED = "no frame"  # the timeout passed with neither


class GstCapture:
    """A running pipeline that ends in appsink, read frame by frame (see the module's docstring)."""

    def __init__(self, Gst, pipeline: str, open_timeout: float):
        from gi.repository import GLib

        self.Gst, self.why, self.fps, self.first = Gst, None, 0.0, None
        try:
            self.pipeline = Gst.parse_launch(pipeline)
        except GLib.Error as exc:
            raise UserError("GStreamer says: %s" % exc.message) from None
        sinks = [e for e in _elements(self.pipeline) if e.get_factory() and e.get_factory().get_name() == "appsink"]
        if not sinks:
            raise UserError("the pipeline has no appsink to read frames from")
        self.sink = sinks[-1]
        self.sink.set_property("caps", Gst.Caps.from_string("video/x-raw,format=BGR"))
        if "max-buffers" not in pipeline:
            self.sink.set_property("max-buffers", 4)
        self.bus = self.pipeline.get_bus()
        self.pipeline.set_state(Gst.State.PLAYING)
        self.first = self.read(open_timeout)
        if self.first is None:
            self.release()
            raise UserError(self.why)

    def read(self, timeout: float):
        """The next frame (uint8 BGR, H x W x 3, its own copy), or None after `timeout` seconds without one:
        then `why` says which (END, or starts with FAILED or STALLED)."""
        if self.first is not None:
            image, self.first = self.first, None
            return image
        Gst = self.Gst
        sample = self.sink.try_pull_sample(int(timeout * Gst.SECOND))
        if sample is not None:
            return self._image(sample)
        error = self.bus.pop_filtered(Gst.MessageType.ERROR)
        if error is not None:
            err, _ = error.parse_error()
            self.why = "%s: %s" % (FAILED, err.message)
        elif self.sink.is_eos():
            self.why = END
        else:
            self.why = "%s for %.1f s" % (STALLED, timeout)
        return None

    def _image(self, sample):
        caps = sample.get_caps().get_structure(0)
        width, height = caps.get_value("width"), caps.get_value("height")
        if not self.fps:
            ok, num, den = caps.get_fraction("framerate")
            self.fps = num / den if ok and den and num else 0.0
        buf = sample.get_buffer()
        data = np.frombuffer(buf.extract_dup(0, buf.get_size()), np.uint8)
        stride = data.size // height  # rows are padded to 4 bytes
        return np.array(data.reshape(height, stride)[:, :width * 3].reshape(height, width, 3))

    def release(self):
        self.pipeline.set_state(self.Gst.State.NULL)


def _elements(bin_):
    """Every element of a pipeline, nested bins included."""
    iterator = bin_.iterate_recurse()
    found = []
    iterator.foreach(found.append)
    return found
