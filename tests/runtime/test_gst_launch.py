"""GStreamer pipeline strings (runtime/gst_launch.py) against NVIDIA's Accelerated GStreamer guide, as strings, and
parsed by GStreamer itself wherever this machine has every element (the nv* ones exist only on a Jetson)."""

import json
import subprocess

import pytest

from runtime import gst_launch as gst, platform

SYSTEM_PYTHON = "/usr/bin/python3"


def test_csi_scales_and_flips_in_the_vic_from_nvmm():
    p = gst.csi(1, 960, 540, 30, flip=2)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,"
                        "framerate=30/1 ! nvvidconv flip-method=2 ! video/x-raw,width=960,height=540,format=BGRx ! "
                        "videoconvert ! video/x-raw,format=BGR ! ")
    assert p.endswith("appsink drop=1 max-buffers=1 sync=false")


def test_rtsp_is_low_latency_and_decodes_in_hardware_on_a_jetson():
    jetson = gst.rtsp("rtsp://cam/1", "h265", 640, 360, jetson=True)
    assert "rtspsrc location=rtsp://cam/1 latency=200 drop-on-latency=true ! rtph265depay ! h265parse ! " \
           "nvv4l2decoder ! nvvidconv ! video/x-raw,width=640,height=360,format=BGRx" in jetson
    desktop = gst.rtsp("rtsp://cam/1", "h264")
    assert "avdec_h264" in desktop and "nvv4l2decoder" not in desktop and "omxh264dec" not in desktop
    with pytest.raises(ValueError):
        gst.rtsp("rtsp://cam/1", "mpeg2")


def test_usb_uses_mjpeg_where_offered():
    assert "image/jpeg,width=1280,height=720,framerate=30/1 ! jpegdec" in gst.v4l2("/dev/video1", 1280, 720, 30,
                                                                                     mjpeg=True)
    assert "nvv4l2decoder mjpeg=1 ! nvvidconv" in gst.v4l2("/dev/video1", mjpeg=True, jetson=True)
    assert gst.v4l2("/dev/video0").startswith("v4l2src device=/dev/video0 ! video/x-raw ! videoconvert")


def test_encoders_use_nvenc_where_the_board_has_it():
    assert "nvv4l2h264enc" in gst.h264_encoder(jetson=True, nvenc=True)
    assert "x264enc" in gst.h264_encoder(jetson=True, nvenc=platform.has_nvenc("NVIDIA Jetson Orin Nano Developer Kit"))
    assert platform.has_nvenc("NVIDIA Jetson AGX Orin Developer Kit") and platform.has_nvenc(None)
    # by the module number in the device tree, whatever the model string says (these are real boards' strings)
    nano = ("nvidia,p3768-0000+p3767-0005-super", "nvidia,p3767-0005-super", "nvidia,tegra234")
    orin_nx = ("nvidia,p3768-0000+p3767-0000", "nvidia,p3767-0000", "nvidia,tegra234")
    assert not platform.has_nvenc("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", nano)
    assert not platform.has_nvenc("Some Vendor Carrier", nano)
    assert platform.has_nvenc("NVIDIA Orin NX Developer Kit (Orin Nano carrier)", orin_nx)


def test_thor_decodes_mjpeg_in_software(tmp_path):

    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "compatible").write_bytes(b"nvidia,tegra264\0")  # its SoC entry
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson AGX Thor Developer Kit\0")
    compatible, model = platform.board_compatible(str(tmp_path)), platform.board_model(str(tmp_path))
    assert compatible[-1] == "nvidia,tegra264" and platform.is_thor(None, compatible) and platform.is_thor(model)
    pipeline = gst.v4l2("/dev/video0", mjpeg=True, jetson=True, hw_mjpeg=not platform.is_thor(model, compatible))
    assert "jpegdec ! nvvidconv" in pipeline and "nvv4l2decoder" not in pipeline
    agx_orin = ("nvidia,p3737-0000+p3701-0005", "nvidia,tegra234")
    assert not platform.is_thor("NVIDIA Jetson AGX Orin Developer Kit", agx_orin)
    assert gst.rtp_sender("10.0.0.2", 5000).endswith("rtph264pay config-interval=1 pt=96 ! udpsink host=10.0.0.2 "
                                                     "port=5000 sync=false async=false")


def _parse_all(pipelines):
    """For each pipeline: 'parsed', 'missing: elements' (not on this machine), or GStreamer's error."""
    code = r"""
import json, re, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
out = []
for p in json.load(sys.stdin):
    names = [w.split()[0] for w in re.split(r"\s*!\s*", p.strip("( )")) if w and not w.startswith(("video/", "image/",
             "application/"))]
    missing = sorted({n for n in names if Gst.ElementFactory.find(n) is None})
    if missing:
        out.append("missing: " + " ".join(missing))
        continue
    try:
        Gst.parse_launch(p.replace("appsrc is-live=true", "videotestsrc").strip("( )"))
        out.append("parsed")
    except Exception as exc:
        out.append("error: %s" % exc)
print(json.dumps(out))
"""
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", code], input=json.dumps(pipelines), capture_output=True,
                              text=True, timeout=60)
    except OSError:
        pytest.skip("no system Python")
    if proc.returncode != 0 and "gi" in proc.stderr:
        pytest.skip("no GStreamer Python bindings (apt install python3-gi; .ci/run does)")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_pipeline_parses_where_its_elements_exist():
    pipelines = {
        "csi": gst.csi(0, 960, 540), "usb": gst.v4l2("/dev/video0", 640, 480, 30),
        "usb-mjpeg": gst.v4l2("/dev/video0", 640, 480, 30, mjpeg=True),
        "usb-jetson": gst.v4l2("/dev/video0", mjpeg=True, jetson=True),
        "rtsp": gst.rtsp("rtsp://127.0.0.1:8554/x"), "rtsp-h265": gst.rtsp("rtsp://h/x", "h265", 640, 360),
        "rtsp-jetson": gst.rtsp("rtsp://h/x", jetson=True), "rtp-x264": gst.rtp_sender("127.0.0.1", 5000),
        "rtp-nvenc": gst.rtp_sender("127.0.0.1", 5000, jetson=True), "relay": gst.rtsp_relay(5000),
    }
    verdicts = dict(zip(pipelines, _parse_all(list(pipelines.values()))))
    for name in ("usb", "usb-mjpeg", "rtsp", "rtsp-h265", "rtp-x264", "relay"):
        assert verdicts[name] == "parsed", (name, verdicts[name], pipelines[name])
    for name in ("csi", "usb-jetson", "rtsp-jetson", "rtp-nvenc"):  # Jetson-only: nothing else is missing
        assert verdicts[name].startswith("missing: ") and all(
            n.startswith("nv") for n in verdicts[name].split()[1:]), (name, verdicts[name])
