"""--gst-preprocess (issue 30): the camera's GStreamer pipeline crops (and scales) to the bundle's crop, and
preprocessing skips what it did. The strings as NVIDIA's nvvidconv and GStreamer's videocrop/videoscale take
them, and real GStreamer (videotestsrc through the system's OpenCV venv) against the CPU path: the crop exact,
the scale within the bound measured (docs/performance.md)."""

import numpy as np
import pytest

from runtime import gst_launch as gst
from runtime.bundle import load
from runtime.errors import UserError
from runtime.preprocess import Preprocessor, crop_box
from tests.conftest import ROOT, cli
from tests.runtime.gstreamer import script_sys

PILOTNET = ROOT + "/tests/runtime/bundles/pilotnet"


def _pre(mode="auto"):
    b = load(PILOTNET)
    pre = Preprocessor(b.preprocess, b.input)
    return pre, pre.request(mode)


def test_the_request_and_the_strings():
    pre, crop = _pre("auto")
    assert crop.out is None and _pre("off")[1] is None and _pre("on")[1].out == (200, 66)
    prepared = _pre("on")[1].prepared(960, 540)
    assert prepared.box == crop_box(pre.crop, 960, 540) == (0, 216, 960, 540) and prepared.stage == "scale"
    assert crop.prepared(None, None) is None  # the frame's size unknown: nothing asked
    # on a Jetson: the VIC scales and flips first, then nvvidconv's crop box (coordinates, not margins)
    assert ("nvvidconv flip-method=2 ! video/x-raw(memory:NVMM),width=960,height=540 ! nvvidconv left=0 right=960 "
            "top=216 bottom=540 ! video/x-raw,width=200,height=66,format=BGRx ! videoconvert ! video/x-raw,"
            "format=BGR ! appsink") in gst.csi(0, flip=2, prepared=prepared)
    assert "nvvidconv left=0 right=1280 top=288 bottom=720 ! video/x-raw,width=1280,height=432,format=BGRx" in \
        gst.v4l2("/dev/video0", 1280, 720, jetson=True, prepared=crop.prepared(1280, 720))
    # elsewhere: videocrop's margins, then videoscale
    desktop = gst.rtsp("rtsp://cam/1", "h264", 1280, 720, prepared=_pre("on")[1].prepared(1280, 720))
    assert desktop.endswith("video/x-raw,width=1280,height=720,format=BGR ! videocrop left=0 right=0 top=288 "
                            "bottom=0 ! videoscale method=%s ! video/x-raw,width=200,height=66,format=BGR ! %s"
                            % (gst.SCALE_METHOD, gst.LIVE_SINK))
    with pytest.raises(UserError, match="not the network's"):
        pre.prepared = "scale"
        pre(np.zeros((432, 1280, 3), np.uint8))
    assert pre.paths() == {"crop": "gstreamer", "resize": "gstreamer", "colour": "cpu"}


def test_outputs_that_need_the_whole_frame_refuse_it(tmp_path):
    proc = cli("runtime", "run", PILOTNET, "--source", tmp_path / "x.avi", "--gst-preprocess", "on",
               "--output", tmp_path / "o.mp4")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "needs the whole frame" in proc.stderr
    proc = cli("runtime", "run", PILOTNET, "--source", PILOTNET + "/samples", "--gst-preprocess", "crop",
               "--no-display", "--jsonl", tmp_path / "o.jsonl")
    assert proc.returncode == 2 and "crop in their pipeline" in proc.stderr.splitlines()[-1], proc.stderr


REAL = """
import sys, numpy as np
from runtime import gst_launch as gst
from runtime.bundle import load
from runtime.preprocess import Preprocessor
from runtime.sources.appsink import GstCapture
b = load(sys.argv[1])
head = "videotestsrc pattern=gradient num-buffers=3 ! video/x-raw,width=1280,height=720,framerate=30/1 ! "
def frames(prepared):
    # a still gray gradient: the live sink keeps the newest frame only, so a reader slowed down (a loaded machine)
    # may get fewer than 3, and each must equal any other (gray: no chroma to differ where the crop cuts); a fresh
    # machine's first GStreamer start scans its plugins
    cap = GstCapture(gst.load_gst(), head + gst._to_bgr(1280, 720, False, prepared), 60.0)
    got = [cap.read(60.0) for _ in range(3)]
    cap.release()
    got = [f for f in got if f is not None]
    assert got, "no frame from GStreamer within 60 s"
    return got
full = Preprocessor(b.preprocess, b.input)
want = [full(f).copy() for f in frames(None)]
for mode in ("crop", "on"):
    pre = Preprocessor(b.preprocess, b.input)
    prepared = pre.request(mode).prepared(1280, 720)
    pre.prepared = prepared.stage
    got = [pre(f).copy() for f in frames(prepared)]
    print(mode, got and list(frames(prepared)[0].shape), max(float(np.abs(g - want[0]).max()) for g in got))
"""


def test_real_gstreamer_crops_exactly_and_scales_near(syspy):
    proc = script_sys(syspy, REAL, PILOTNET)
    assert proc.returncode == 0, proc.stderr
    crop, scale = (line.split() for line in proc.stdout.splitlines())
    assert crop[1:] == ["[432,", "1280,", "3]", "0.0"]  # the crop: the very pixels, so the very tensor
    assert scale[1:4] == ["[66,", "200,", "3]"] and float(scale[4]) < 40  # videoscale: not the area average
