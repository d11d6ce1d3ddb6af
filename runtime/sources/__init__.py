"""Frame sources by URI, after jetson-inference's convention. Which reader opens which URI is decided here,
in open_source(), and nowhere else.

    csi://N                     Jetson CSI camera N: GStreamer (nvarguscamerasrc; scaled and flipped in the VIC)
    v4l2:///dev/videoN, /dev/videoN, N
                                USB camera: GStreamer (MJPEG where offered) when this OpenCV has it, else
                                OpenCV's own V4L2 reader
    rtsp://...                  RTSP stream: GStreamer with low latency (hardware decoding on a Jetson),
                                else FFmpeg with its low-delay options
    gst://PIPELINE              any GStreamer pipeline ending in appsink
    synthetic://road            the procedural road as a camera (frames carry the true steering); with
                                ?control=udp://:PORT the simulated car driven through the control link,
                                with ?steering=udp://HOST:PORT its driver's steering sent as readings
    file://PATH or PATH         a video file, an image, a folder of images or a glob of images

With prepare (a preprocess.PipelineRequest, `--gst-preprocess`), csi://, and v4l2:// and rtsp:// read
through GStreamer at a known size (--input-width/--input-height), crop (and scale) in their pipeline; the
source's `prepared` then says so ("crop" or "scale"; None for every other source), and the Preprocessor is told
(Preprocessor.prepared). Not with a flip done after capture (only csi:// on a Jetson flips before).

Names of any bytes work for files (a video's, an image's, a folder's); a device, stream or pipeline whose
URI is not UTF-8 is refused in one line (OpenCV and GStreamer take UTF-8). --input-width x --input-height is
held to the pixel budget (runtime/images.py), as images are.

Live sources reconnect with backoff when they fail or stall (no frame for --read-timeout seconds), for up to
--reconnect-timeout seconds; a gst:// pipeline's own end of stream ends the run as a file's end does. Every
frame is uint8 BGR and carries its index and the time it was captured.
"""

from __future__ import annotations

import sys

from .. import gst_launch, images, platform
from ..errors import UserError, printable
from .base import DEFAULT_RECONNECT_TIMEOUT, FLIPS, IMAGE_EXTS, Frame, Source
from .cameras import open_csi, open_v4l2, v4l2_formats
from .files import open_path
from .live import LiveCapture, open_gst
from .rtsp import open_rtsp

OPENERS = {"csi": open_csi, "v4l2": open_v4l2, "rtsp": open_rtsp, "rtsps": open_rtsp, "gst": open_gst,
           "file": open_path}  # scheme -> opener: a new kind of source is one file and one line; the simulator
# wing adds synthetic:// (sim/)
PREPARES = ("csi", "v4l2", "rtsp", "rtsps")  # the openers that take prepare= (a crop in their own pipeline)

__all__ = ["DEFAULT_RECONNECT_TIMEOUT", "FLIPS", "IMAGE_EXTS", "OPENERS", "Frame", "LiveCapture", "Source",
           "open_source", "v4l2_formats"]


def scheme_of(uri: str) -> str:
    """The URI's scheme; /dev/videoN and a bare N are V4L2 cameras, a path without one is a file."""
    if "://" in uri:
        return uri.partition("://")[0].lower()
    digits = uri != "" and all(c in "0123456789" for c in uri)  # ASCII: str.isdigit() takes '²' too
    return "v4l2" if uri.startswith("/dev/video") or digits else "file"


def open_source(uri: str, width=None, height=None, rate=None, loop=False, flip="none", codec=None,
                reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr, read_timeout=None, link=None,
                prepare=None) -> Source:
    """A Source for a URI; UserError in one line when it cannot be opened. The one place that decides
    which reader opens which URI (OPENERS). link: the control link's control.Security, for
    synthetic://road?control= and ?steering=."""
    uri = str(uri)
    if flip not in FLIPS:
        raise UserError("--input-flip %r is not one of %s" % (flip, ", ".join(FLIPS)))
    if codec is not None and codec not in gst_launch.CODECS:
        raise UserError("--input-codec %r is not one of %s" % (codec, ", ".join(gst_launch.CODECS)))
    if width and height:  # a frame this size is allocated for every frame (MemoryError at 20000x20000)
        images.check_frame_size(width, height, "--input-width %d --input-height %d" % (width, height))
    scheme = scheme_of(uri)
    if scheme not in OPENERS:
        raise UserError("unknown source %s (use csi://N, v4l2:///dev/videoN, rtsp://..., gst://PIPELINE, "
                        "synthetic://road, file://PATH or a path)" % printable(repr(uri)))
    if scheme != "file" and not images.utf8(uri):
        raise UserError("source %s: its name is not UTF-8, which devices, streams and pipelines must be (OpenCV "
                        "and GStreamer take UTF-8)" % printable(uri))
    flips_in_vic = scheme == "csi" and platform.is_jetson()
    if flip != "none" and not flips_in_vic:
        prepare = None  # the flip comes after the capture, and the crop must come after the flip
    source = OPENERS[scheme](uri, width=width, height=height, rate=rate, loop=loop, flip=flip, codec=codec,
                             reconnect_timeout=reconnect_timeout, log=log, read_timeout=read_timeout, link=link,
                             **({"prepare": prepare} if prepare is not None and scheme in PREPARES else {}))
    if not flips_in_vic:
        source.flip = flip
    return source
