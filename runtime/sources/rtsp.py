"""rtsp://... and rtsps://...: GStreamer with low latency (hardware decoding on a Jetson), else FFmpeg with its
low-delay options."""

from __future__ import annotations

import os
import sys

from .. import gst_launch, platform
from ..errors import UserError, native_stderr_silenced, require
from ..uri import port_number, port_text, split
from .base import DEFAULT_RECONNECT_TIMEOUT
from .live import LiveCapture, OpenCvCapture, gstreamer_opener, gstreamer_readable


def open_rtsp(uri, width=None, height=None, codec=None, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr,
              read_timeout=None, prepare=None, **_):
    port = port_text(split(uri).netloc)
    if port and port_number(port) is None:
        raise UserError("%s: the port must be a number from 1 to 65535 (rtsp://HOST:PORT/PATH; 554 when left out)"
                        % uri)
    used = []
    source = LiveCapture(uri, _rtsp_opener(uri, codec, width, height, prepare, used), reconnect_timeout, log,
                         read_timeout)
    source.prepared = used[0].stage if used else None
    return source


def _rtsp_opener(uri, codec, width, height, prepare=None, used=None):
    """GStreamer where it can be read (cropping and scaling in it as prepare asks, at a known size: the Prepared
    goes into `used`), else FFmpeg."""
    cv2 = require("cv2", "opencv", "reading RTSP streams")

    if gstreamer_readable(cv2):
        prepared = prepare and prepare.prepared(width, height)
        if prepared:
            used.append(prepared)
        pipeline = gst_launch.rtsp(uri, codec or "h264", width, height, jetson=platform.is_jetson(),
                                   prepared=prepared)
        return gstreamer_opener(uri, pipeline, "the stream did not start (wrong address or credentials, the "
                                                "server down, or another codec: try --input-codec h265)")
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay")

    def open_(timeout):
        with native_stderr_silenced():  # FFmpeg's own timeouts: it can tell a stall, OpenCV's GStreamer cannot
            cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout * 1000),
                                                         cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
        if not cap.isOpened():
            raise UserError("cannot open %s: the stream did not start (wrong address or credentials, or the "
                            "server down)" % uri)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return OpenCvCapture(cap)

    return open_
