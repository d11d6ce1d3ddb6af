"""LiveCapture's policy (runtime/sources/live.py), with scripted captures in place of GStreamer: an end of
stream ends a pipeline, a failure or a stall is reconnected, and a source that does not come back is `lost`.
The same policy against real GStreamer pipelines is in test_live_sources.py."""

import io

import numpy as np

from runtime.errors import UserError
from runtime.sources.appsink import END, STALLED
from runtime.sources.live import LiveCapture, NotOpened

IMAGE = np.zeros((4, 6, 3), np.uint8)


class Scripted:
    """A capture that gives `frames` frames, then None with `why` (GstCapture's face)."""

    fps = 30.0

    def __init__(self, frames, why):
        self.left, self.why, self.released = frames, why, False
        self.timeouts = []

    def read(self, timeout):
        self.timeouts.append(timeout)
        if self.left:
            self.left -= 1
            return IMAGE.copy()
        return None

    def release(self):
        self.released = True


def opener_of(*captures):
    """Opens the captures in turn (an exception in the list is raised instead), then fails: "gone"."""
    script, opened = list(captures), []

    def opener(timeout):
        opened.append(timeout)
        item = script.pop(0) if script else UserError("gone")
        if isinstance(item, Exception):
            raise item
        return item

    return opener, opened


def frames_of(source):
    return sum(1 for _ in source)


def test_a_pipeline_that_reaches_its_end_ends_like_a_file():
    opener, opened = opener_of(Scripted(5, END))
    source = LiveCapture("gst://test", opener, reconnect_timeout=5, log=None, ends=True)
    assert frames_of(source) == 5 and len(opened) == 1 and source.lost is None and source.reconnects == 0


def test_a_camera_whose_stream_ends_or_stalls_is_reconnected():
    for why in (END, "%s for 1.0 s" % STALLED, "failed: Internal data stream error."):
        log = io.StringIO()
        opener, opened = opener_of(Scripted(3, why), NotOpened("cannot open it: the whole story", "unplugged"),
                                   Scripted(4, END))
        source = LiveCapture("rtsp://cam", opener, reconnect_timeout=0.3, log=log)  # a camera: ends=False
        assert frames_of(source) == 7 and source.reconnects == 1
        text = log.getvalue()
        assert "rtsp://cam stopped (%s); reconnecting (for up to 0.3 s)" % why in text
        assert "rtsp://cam is back after" in text
        assert source.lost == "rtsp://cam did not come back within 0.3 s (gone)"
        assert opened[1] >= 1.0  # each reopen waits at least a second for its first frame


def test_reads_time_out_after_ten_frame_intervals_or_a_second_or_as_told():
    capture = Scripted(2, END)
    LiveCapture("gst://x", opener_of(capture)[0], log=None, ends=True)
    slow = Scripted(2, END)
    slow.fps = 2.0
    assert LiveCapture("gst://x", opener_of(slow)[0], log=None).read_timeout == 5.0
    assert LiveCapture("gst://x", opener_of(Scripted(2, END))[0], log=None).read_timeout == 1.0
    told = LiveCapture("gst://x", opener_of(capture)[0], log=None, read_timeout=0.25, ends=True)
    frames_of(told)
    assert capture.timeouts[-1] == 0.25


def test_a_pipeline_that_reads_a_file_stops_at_a_failure_without_reconnecting():
    log = io.StringIO()
    opener, opened = opener_of(Scripted(3, "failed: decoding error"))
    source = LiveCapture("gst://filesrc location=x.mp4 ! decodebin ! appsink", opener, log=log, ends=True, live=False)
    assert frames_of(source) == 3 and len(opened) == 1 and source.lost is None
    assert "stopped (failed: decoding error)" in log.getvalue()


def test_long_pipelines_are_named_short_in_the_log():
    log = io.StringIO()
    uri = "gst://udpsrc port=5000 ! " + "queue ! " * 20 + "appsink"
    opener, _ = opener_of(Scripted(1, "%s for 1.0 s" % STALLED))
    source = LiveCapture(uri, opener, reconnect_timeout=0.0, log=log)
    frames_of(source)
    assert uri not in log.getvalue() and "gst://udpsrc port=5000 ! queue" in log.getvalue()
    assert source.lost.startswith(uri[:57] + "... did not come back within 0 s")
