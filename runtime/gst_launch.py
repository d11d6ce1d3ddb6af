"""GStreamer pipeline strings for cameras, streams and encoders, and whether this OpenCV can run them.

Strings only (no GStreamer, no OpenCV imported to build them), so they are tested as strings everywhere and
parsed by GStreamer where its elements exist (load_gst: its Python bindings, where installed). The Jetson
variants follow NVIDIA's Accelerated GStreamer guide: NVMM buffers from nvarguscamerasrc and nvv4l2decoder,
scaling and colour conversion in nvvidconv (the VIC) rather than on the ARM cores, nvv4l2h264enc where the
board has NVENC (Orin Nano has none).

Every capture pipeline ends in `appsink drop=1 max-buffers=1 sync=false` for live sources: GStreamer keeps
only the newest frame, so a slow reader never sees a backlog.

A Prepared (the bundle's crop as a pixel box of the frame the source would give, and the network's size or
None) makes a camera's pipeline hand over only the pixels the network needs (`--gst-preprocess`): the frame is
first brought to the size it has without it, then cropped (`videocrop`; on a Jetson `nvvidconv`'s left, right,
top and bottom, which are the box's coordinates, not margins) and, for "scale", scaled to the network's size
(`videoscale`; `nvvidconv`'s output caps in the VIC).
"""

from __future__ import annotations

import re
from collections import namedtuple

LIVE_SINK = "appsink drop=1 max-buffers=1 sync=false"
BGR = "video/x-raw,format=BGR"
CODECS = ("h264", "h265")


def _size(width, height, fmt=None, memory=None):
    caps = "video/x-raw" + ("(memory:%s)" % memory if memory else "")
    fields = [] if fmt is None else ["format=%s" % fmt]
    if width and height:
        fields = ["width=%d" % width, "height=%d" % height] + fields
    return caps + "".join("," + f for f in fields)


SCALE_METHOD = "lanczos envelope=1"  # videoscale's nearest to an area average (docs/performance.md: measured)


class Prepared(namedtuple("Prepared", "box frame out method")):
    """What a pipeline hands over instead of the whole frame: box (x0, y0, x1, y1), the bundle's crop in pixels
    of the frame (width, height) the source gives without it; out (width, height) to scale the box to, or None
    (crop only); method: videoscale's (elsewhere than a Jetson). stage: "scale" or "crop", what preprocessing
    then skips."""

    @property
    def stage(self):
        return "crop" if self.out is None else "scale"

    @property
    def size(self):
        x0, y0, x1, y1 = self.box
        return self.out or (x1 - x0, y1 - y0)


def prepared_tail(prepared, jetson):
    """The elements from a frame at the source's size (BGR elsewhere; NVMM on a Jetson) to the appsink: crop, then
    (for "scale") scale."""
    x0, y0, x1, y1 = prepared.box
    w, h = prepared.size
    if jetson:
        return ("nvvidconv left=%d right=%d top=%d bottom=%d ! %s ! videoconvert ! %s ! %s"
                % (x0, x1, y0, y1, _size(w, h, "BGRx"), BGR, LIVE_SINK))
    frame_w, frame_h = prepared.frame
    crop = "videocrop left=%d right=%d top=%d bottom=%d" % (x0, frame_w - x1, y0, frame_h - y1)
    if prepared.out is None:
        return "%s ! %s" % (crop, LIVE_SINK)
    return "%s ! videoscale method=%s ! %s ! %s" % (crop, prepared.method, _size(w, h, "BGR"), LIVE_SINK)


def _to_bgr(width, height, jetson, prepared=None):
    """The tail that scales and converts to BGR: in nvvidconv on a Jetson, in software elsewhere; then what
    `prepared` asks (a crop, a scale), where given."""
    if prepared is not None:
        if jetson:  # to the frame's size in NVMM first, as without it, then crop (and scale) in a second pass
            return "nvvidconv ! %s ! %s" % (_size(width, height, memory="NVMM"), prepared_tail(prepared, True))
        head = "videoconvert ! videoscale ! %s" % _size(width, height, "BGR") if width and height else \
            "videoconvert ! %s" % BGR
        return "%s ! %s" % (head, prepared_tail(prepared, False))
    if jetson:
        return "nvvidconv ! %s ! videoconvert ! %s ! %s" % (_size(width, height, "BGRx"), BGR, LIVE_SINK)
    if width and height:
        return "videoconvert ! videoscale ! %s ! %s" % (_size(width, height, "BGR"), LIVE_SINK)
    return "videoconvert ! %s ! %s" % (BGR, LIVE_SINK)


def csi(sensor_id=0, width=None, height=None, fps=30, flip=0, capture=(1920, 1080), prepared=None):
    """A Jetson CSI camera (nvarguscamerasrc); the VIC scales to width x height and flips (then crops and scales
    what `prepared` asks, in a second pass)."""
    cw, ch = capture
    if prepared is not None:
        return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1 ! "
                "nvvidconv flip-method=%d ! %s ! %s"
                % (sensor_id, cw, ch, int(round(fps or 30)), flip, _size(*prepared.frame, memory="NVMM"),
                   prepared_tail(prepared, True)))
    return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM),width=%d,height=%d,framerate=%d/1 ! "
            "nvvidconv flip-method=%d ! %s ! videoconvert ! %s ! %s"
            % (sensor_id, cw, ch, int(round(fps or 30)), flip, _size(width or cw // 2, height or ch // 2, "BGRx"),
               BGR, LIVE_SINK))


def v4l2(device="/dev/video0", width=None, height=None, fps=None, mjpeg=False, jetson=False, flip=0,
         hw_mjpeg=True, prepared=None):
    """A USB (V4L2) camera; MJPEG where the camera offers it (most reach full rate only that way), decoded by
    the Jetson's NVJPG where it has one (hw_mjpeg; Thor decodes MJPEG in software: jpegdec)."""
    fields = "".join([",width=%d,height=%d" % (width, height) if width and height else "",
                      ",framerate=%d/1" % int(round(fps)) if fps else ""])
    if mjpeg:
        if jetson:
            decode = "%s ! nvvidconv flip-method=%d" % ("nvv4l2decoder mjpeg=1" if hw_mjpeg else "jpegdec", flip)
        else:
            decode = "jpegdec"
        head = "v4l2src device=%s io-mode=2 ! image/jpeg%s ! %s" % (device, fields, decode)
    else:
        head = "v4l2src device=%s ! video/x-raw%s" % (device, fields)
        if jetson:
            head += " ! nvvidconv flip-method=%d" % flip
    if jetson and prepared is not None:
        return "%s ! %s ! %s" % (head, _size(None, None, memory="NVMM"), prepared_tail(prepared, True))
    if jetson:
        return "%s ! %s ! videoconvert ! %s ! %s" % (head, _size(None, None, "BGRx"), BGR, LIVE_SINK)
    return "%s ! %s" % (head, _to_bgr(None, None, False, prepared))


def rtsp(uri, codec="h264", width=None, height=None, latency_ms=200, jetson=False, prepared=None):
    """An RTSP stream with low latency: small jitter buffer that drops late packets, newest frame only."""
    if codec not in CODECS:
        raise ValueError("codec %r is not one of %s" % (codec, ", ".join(CODECS)))
    depay = "rtp%sdepay ! %sparse" % (codec, codec)
    decode = "nvv4l2decoder" if jetson else "avdec_%s" % codec
    return ("rtspsrc location=%s latency=%d drop-on-latency=true ! %s ! %s ! %s"
            % (uri, latency_ms, depay, decode, _to_bgr(width, height, jetson, prepared)))


def h264_encoder(jetson=False, nvenc=True, bitrate_kbps=4000):
    if jetson and nvenc:
        return ("videoconvert ! video/x-raw,format=BGRx ! nvvidconv ! video/x-raw(memory:NVMM),format=NV12 ! "
                "nvv4l2h264enc insert-sps-pps=true idrinterval=30 bitrate=%d ! h264parse" % (bitrate_kbps * 1000))
    return ("videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast "
            "bitrate=%d key-int-max=30 ! video/x-h264,profile=baseline ! h264parse" % bitrate_kbps)


def rtp_sender(host, port, jetson=False, nvenc=True):
    """Annotated frames from an OpenCV VideoWriter (appsrc) to RTP/H.264 over UDP."""
    return ("appsrc is-live=true ! %s ! rtph264pay config-interval=1 pt=96 ! udpsink host=%s port=%d sync=false "
            "async=false" % (h264_encoder(jetson, nvenc), host, port))


RTP_CAPS = "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"


def rtsp_relay(port):
    """What the RTSP server serves: the local RTP stream rtp_sender sends to port."""
    return "( udpsrc port=%d caps=\"%s\" ! rtph264depay ! rtph264pay name=pay0 pt=96 config-interval=1 )" % (
        port, RTP_CAPS)


def load_gst():
    """GStreamer's Python bindings (python3-gi: Gst, with GstApp for appsink), initialised; None where they are
    missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        from gi.repository import Gst, GstApp  # noqa: F401  (GstApp gives appsink its pull methods)
    except (ImportError, ValueError):
        return None
    if not Gst.is_initialized():
        Gst.init(None)
    return Gst


def check(pipeline):
    """GStreamer's own complaint about a pipeline (an element this machine lacks, a syntax error), or None.
    Checked before OpenCV sees it: some OpenCV versions hang on a pipeline that does not parse. Needs the
    GStreamer Python bindings (python3-gi); without them nothing is checked here."""
    Gst = load_gst()
    if Gst is None:
        return None
    from gi.repository import GLib

    try:
        element = Gst.parse_launch(pipeline)
    except GLib.Error as exc:
        return exc.message
    element.set_state(Gst.State.NULL)
    return None


def opencv_has_gstreamer(cv2) -> bool:
    match = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() == "YES"


NO_GSTREAMER = ("this OpenCV (%s) is built without GStreamer (pip's opencv-python wheels have none; check with: "
                "python -c \"import cv2; print(cv2.getBuildInformation())\" | grep GStreamer); use the system's "
                "OpenCV through a venv made with --system-site-packages (JetPack's, or Debian's python3-opencv) "
                "and no pip opencv-python in it")
