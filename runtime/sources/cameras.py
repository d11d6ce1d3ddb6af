"""Cameras: csi://N (a Jetson's CSI camera through nvarguscamerasrc) and v4l2:///dev/videoN, /dev/videoN
or N (a USB camera: GStreamer with MJPEG where offered, else OpenCV's V4L2 reader)."""

from __future__ import annotations

import glob
import os
import struct
import sys

from .. import gst_launch, platform
from ..errors import UserError, require
from .base import DEFAULT_RECONNECT_TIMEOUT, NVVIDCONV_FLIP
from .live import LiveCapture, OpenCvCapture, gstreamer_opener, gstreamer_readable


def open_csi(uri, width=None, height=None, rate=None, flip="none", reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT,
             log=sys.stderr, read_timeout=None, prepare=None, **_):
    sensor = uri[len("csi://"):]
    if not (sensor.isascii() and sensor.isdigit()) or len(sensor) > 2:  # '²'.isdigit() is True
        raise UserError("csi:// needs a sensor number, as in csi://0")
    if not platform.is_jetson():
        raise UserError("%s: CSI cameras are read through nvarguscamerasrc, which only a Jetson has" % uri)
    capture = (1920, 1080)
    prepared = prepare and prepare.prepared(width or capture[0] // 2, height or capture[1] // 2)
    pipeline = gst_launch.csi(int(sensor), width, height, rate or 30, NVVIDCONV_FLIP[flip], capture, prepared)
    source = LiveCapture(uri, gstreamer_opener(uri, pipeline, "no camera on that port, or nvargus-daemon is not "
                                                               "running (sudo systemctl restart nvargus-daemon)"),
                         reconnect_timeout, log, read_timeout)
    source.prepared = prepared and prepared.stage
    return source


def open_v4l2(uri, width=None, height=None, rate=None, reconnect_timeout=DEFAULT_RECONNECT_TIMEOUT, log=sys.stderr,
              read_timeout=None, prepare=None, **_):
    device = uri[len("v4l2://"):] if uri.startswith("v4l2://") else uri
    device = "/dev/video" + device if device.isascii() and device.isdigit() else device
    box = []  # the Prepared the opener used, if any
    source = LiveCapture(uri, _v4l2_opener(uri, device, width, height, rate, prepare, box), reconnect_timeout, log,
                         read_timeout)
    source.prepared = box[0].stage if box else None
    return source


def _v4l2_opener(uri, device, width, height, rate, prepare=None, used=None):
    """A USB camera: through GStreamer where this OpenCV has it, else OpenCV's V4L2 reader (pip's wheels). With
    prepare and a known size, the pipeline crops (and scales); the Prepared goes into `used`."""
    cv2 = require("cv2", "opencv", "reading cameras")

    if not os.path.exists(device):
        found = sorted(glob.glob("/dev/video*"))
        raise UserError("no such camera %s (%s)" % (device, "cameras here: " + ", ".join(found) if found else
                                                   "no /dev/video* here: is the camera plugged in?"))
    if not os.access(device, os.R_OK | os.W_OK):
        raise UserError("no permission to open %s: add yourself to the video group (sudo usermod -aG video $USER, "
                        "then log in again)" % device)
    formats = v4l2_formats(device)
    mjpeg = "MJPG" in formats
    if gstreamer_readable(cv2):
        prepared = prepare and prepare.prepared(width, height)
        pipeline = gst_launch.v4l2(device, width, height, rate, mjpeg=mjpeg, jetson=platform.is_jetson(),
                                   hw_mjpeg=not platform.is_thor(platform.board_model(), platform.board_compatible()),
                                   prepared=prepared)
        if prepared:
            used.append(prepared)
        return gstreamer_opener(uri, pipeline, "the camera is busy or does not offer that size/rate (list its "
                                                "modes: v4l2-ctl -d %s --list-formats-ext)" % device)

    def open_(timeout):
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
        return OpenCvCapture(cap)

    return open_


def v4l2_formats(device) -> list:
    """The pixel formats a V4L2 device offers (FourCC strings such as 'MJPG', 'YUYV'), by VIDIOC_ENUM_FMT."""
    import fcntl

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
