"""python -m runtime doctor: what this machine can run, one line per capability, and the command that fixes
each thing that is missing. Exit status 0 when the runtime can run (OpenCV and at least one backend).

It reads, never changes: Python and numpy; OpenCV (GStreamer, CUDA); ONNX Runtime (providers); TensorRT
(version, API generation); pycuda and the GPU; on a Jetson the board, L4T/JetPack and power mode; cameras.
--root DIR reads the Jetson's files (/etc/nv_tegra_release, /proc/device-tree/model, /etc/nvpmodel.conf,
/dev/video*, /sys/class/video4linux) under DIR instead, for tests.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import re
import subprocess
import sys

from .. import platform
from ..backends.tensorrt import api as trt
from ..backends.tensorrt.cuda import PYCUDA_HOWTO
from ..gst_launch import opencv_has_gstreamer
from ..images import open_regular

OK, WARN, MISSING = "ok", "warn", "missing"


class Check:
    def __init__(self, name, verdict, detail, fix=None):
        self.name, self.verdict, self.detail, self.fix = name, verdict, detail, fix

    def line(self):
        text = "%-9s %-12s %s" % ("[%s]" % self.verdict, self.name, self.detail)
        return text + ("\n" + " " * 23 + "fix: " + self.fix if self.fix and self.verdict != OK else "")

    def as_dict(self):
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail, "fix": self.fix}


def _module(name):
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # ImportError, or a broken build (numpy 2 under a numpy-1 OpenCV raises others)
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _python_numpy(root="/"):
    np, _ = _module("numpy")
    version = "Python %d.%d.%d" % sys.version_info[:3]
    if sys.version_info < (3, 8):
        return Check("python", MISSING, version + ": the runtime needs 3.8 or later", "use JetPack 5.1 or later")
    if np is None:
        return Check("python", MISSING, version + ", no numpy", "pip install 'numpy<2'")
    detail = "%s, numpy %s" % (version, np.__version__)
    if int(np.__version__.split(".")[0]) >= 2:
        cv2_path = getattr(sys.modules.get("cv2"), "__file__", "") or ""
        if "dist-packages" in cv2_path or platform.is_jetson(root):
            return Check("python", WARN, detail + ": the system's OpenCV and TensorRT are built against numpy 1.x",
                         "pip install 'numpy<2'")
    return Check("python", OK, detail)


def _opencv():
    cv2, error = _module("cv2")
    if cv2 is None:
        return Check("opencv", MISSING, "no OpenCV (%s)" % error,
                     "on a Jetson: sudo apt install libopencv-python (JetPack 5/6; python3-opencv on 7), in a venv "
                     "made by /usr/bin/python3 with --system-site-packages; "
                     "elsewhere: pip install opencv-python (no cameras) or apt install python3-opencv"), None

    info = cv2.getBuildInformation()
    gst = opencv_has_gstreamer(cv2)
    cuda = bool(re.search(r"NVIDIA CUDA:\s*YES", info))
    detail = "OpenCV %s (%s), GStreamer %s, CUDA %s" % (cv2.__version__, os.path.dirname(cv2.__file__ or ""),
                                                         "yes" if gst else "no", "yes" if cuda else "no")
    if not gst:
        return Check("opencv", WARN, detail + ": no cameras or streams (pip's wheels have no GStreamer)",
                     "pip uninstall opencv-python; use the system OpenCV (JetPack's, or apt install python3-opencv) "
                     "through a venv made with --system-site-packages"), cv2
    return Check("opencv", OK, detail), cv2


def _onnxruntime():
    ort, error = _module("onnxruntime")
    if ort is None:
        return Check("onnxruntime", MISSING, "not installed (%s)" % error, "pip install '.[ort]'")
    return Check("onnxruntime", OK, "ONNX Runtime %s, providers %s" % (ort.__version__,
                                                                        ", ".join(ort.get_available_providers())))


def _tensorrt():
    module, error = _module("tensorrt")
    if module is None:
        return Check("tensorrt", MISSING, "not installed (%s)" % error, trt.TENSORRT_HOWTO), None
    if not trt.has_tensor_api(module):
        return Check("tensorrt", MISSING, trt.describe(module), "JetPack 5.1 or later (TensorRT 8.5+); on a desktop: "
                     "pip install tensorrt"), None
    return Check("tensorrt", OK, trt.describe(module)), module


def _gpu():
    cuda, error = _module("pycuda.driver")
    if cuda is None:
        return Check("pycuda/gpu", MISSING, "pycuda not installed (%s)" % error, PYCUDA_HOWTO), False
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # pycuda's driver errors
        return Check("pycuda/gpu", MISSING, "pycuda is here, CUDA does not start (%s)" % exc,
                     "check the NVIDIA driver (nvidia-smi; on a Jetson: is the user in the video and render "
                     "groups?)"), False
    if count == 0:
        return Check("pycuda/gpu", MISSING, "pycuda is here, no CUDA GPU", "check the NVIDIA driver"), False
    d = cuda.Device(0)
    return Check("pycuda/gpu", OK, "%s, compute %d.%d, %.1f GiB" % (
        d.name(), d.compute_capability()[0], d.compute_capability()[1], d.total_memory() / float(1 << 30))), True


def _jetson(root):
    release = platform.l4t_release(root)
    model = platform.board_model(root)
    if release is None:
        return Check("jetson", OK, "not a Jetson" + (" (%s)" % model if model else ""))
    major, version = release
    jetpack = platform.jetpack_of(major)
    detail = "%s, L4T R%s = JetPack %s" % (model or "unknown board", version, jetpack or "?")
    dla = platform.dla_cores(platform.board_compatible(root))
    if dla is not None:
        detail += ", %d DLA core%s" % (dla, "" if dla == 1 else "s")
    if jetpack is None:
        return Check("jetson", MISSING, detail + ": too old for this runtime", "flash JetPack 5.1 or later")
    mode = platform.power_mode(root) or "unknown"
    fastest = platform.fastest_mode(root)
    detail += ", power mode %s" % mode
    if fastest and mode != fastest[1]:
        return Check("jetson", WARN, detail + " (the fastest is %s, mode %d)" % (fastest[1], fastest[0]),
                     "./jetson_setup.sh --max-perf   (or: sudo nvpmodel -m %d && sudo jetson_clocks)" % fastest[0])
    return Check("jetson", OK, detail)


def camera_kind(root, dev):
    """'csi', 'usb' or 'other' for /dev/videoN, from sysfs: a CSI sensor is a node of the Jetson's video input
    (its V4L2 name is "vi-output, SENSOR I2C-ADDRESS" and its device the VI, tegra-capture-vi or NNNNNNNN.vi),
    which gives raw Bayer to V4L2 and is read through Argus (csi://); a USB camera's device is on the USB bus
    (driver uvcvideo). A sensor's model name says nothing: Arducam's "IMX219" USB cameras are UVC."""
    sysdir = os.path.join(root, "sys/class/video4linux", os.path.basename(dev))
    name = _sysfs_text(os.path.join(sysdir, "name")) or ""
    device = os.path.realpath(os.path.join(sysdir, "device"))
    driver = os.path.basename(os.path.realpath(os.path.join(sysdir, "device", "driver")))
    if driver == "uvcvideo" or "/usb" in device:
        return "usb"
    if name.startswith("vi-output") or "tegra-capture-vi" in device or os.path.basename(device).endswith(".vi"):
        return "csi"
    return "other"


def _sysfs_text(path, limit=256):
    """A small sysfs attribute as text, or None: read without blocking (a FIFO under --root never answers) and
    decoded leniently (the kernel cuts a V4L2 name at 32 bytes, which can split a UTF-8 character)."""
    try:
        with open_regular(path) as f:
            return f.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _cameras(root):
    """(check, {device: kind}) for /dev/video*."""
    devices = sorted(glob.glob(os.path.join(root, "dev/video*")))
    kinds, names = {}, []
    for dev in devices:
        shown = dev[len(root.rstrip("/")):]
        kind = kinds[shown] = camera_kind(root, dev)
        label = {"csi": "CSI sensor", "usb": "USB camera", "other": "V4L2 device"}[kind]
        name = _sysfs_text(os.path.join(root, "sys/class/video4linux", os.path.basename(dev), "name"))
        names.append("%s (%s: %s)" % (shown, label, name) if name else "%s (%s)" % (shown, label))
    if not devices:
        return Check("cameras", WARN, "no /dev/video* (no USB or CSI camera connected)",
                     "plug in a camera, or use synthetic://road, a video or rtsp://"), kinds
    unreadable = [d for d in devices if not os.access(d, os.R_OK | os.W_OK)]
    detail = ", ".join(names)
    if "csi" in kinds.values() and root == "/" and not _nvargus_running():
        return Check("cameras", WARN, detail + "; nvargus-daemon is not running (csi:// needs it)",
                     "sudo systemctl restart nvargus-daemon"), kinds
    if unreadable:
        return Check("cameras", WARN, detail + "; no permission for " + ", ".join(unreadable),
                     "sudo usermod -aG video $USER, then log in again"), kinds
    return Check("cameras", OK, detail), kinds


def _nvargus_running():
    return subprocess.run(["pgrep", "-x", "nvargus-daemon"], capture_output=True).returncode == 0


def diagnose(root="/"):
    """(checks, summary lines, runnable)."""
    checks = [_python_numpy(root)]
    opencv, cv2 = _opencv()
    checks.append(opencv)
    ort = _onnxruntime()
    checks.append(ort)
    trt_check, _ = _tensorrt()
    checks.append(trt_check)
    gpu_check, gpu = _gpu()
    checks.append(gpu_check)
    jetson = _jetson(root)
    checks.append(jetson)
    cams, devices = _cameras(root)
    checks.append(cams)

    backends = []
    if ort.verdict == OK:
        backends.append("onnxruntime")
    if trt_check.verdict == OK and gpu:
        backends.append("tensorrt")
    gst = cv2 is not None and opencv.verdict == OK
    on_jetson = platform.l4t_release(root) is not None
    usb = [d for d, kind in devices.items() if kind != "csi"]  # what v4l2:// reads (CSI sensors give raw Bayer)
    csi = [d for d, kind in devices.items() if kind == "csi"]
    sources = {"synthetic://road, files": cv2 is not None, "rtsp://, gst://": gst,
               "v4l2 (USB)": cv2 is not None and bool(usb), "csi://": gst and on_jetson and bool(csi)}
    summary = ["backends that will work: %s" % (", ".join(backends) or "none")]
    if "tensorrt" not in backends:
        for c in (trt_check, gpu_check):
            if c.verdict != OK:
                summary.append("  tensorrt needs %s: %s" % (c.name, c.fix))
    if ort.verdict != OK:
        summary.append("  onnxruntime: %s" % ort.fix)
    summary.append("sources that will work: %s" % (", ".join(k for k, v in sources.items() if v) or "none"))
    fixes = {"synthetic://road, files": opencv.fix,
             "rtsp://, gst://": opencv.fix,
             "v4l2 (USB)": opencv.fix if cv2 is None else "plug in a USB camera (then: ls /dev/video*)"
             + ("; %s is a CSI sensor: use csi://" % ", ".join(csi) if csi and cv2 is not None else ""),
             "csi://": ("only a Jetson has CSI cameras" if not on_jetson else
                        opencv.fix if not gst else "connect a CSI camera; sudo systemctl restart nvargus-daemon"
                        + ("; %s is a USB camera: use v4l2://" % ", ".join(usb) if usb else ""))}
    for name, works in sources.items():
        if not works:
            summary.append("  %s: %s" % (name, fixes[name]))
    runnable = cv2 is not None and bool(backends)
    return checks, summary, runnable


def main(args) -> int:
    checks, summary, runnable = diagnose(args.root)
    if args.json:
        json.dump({"checks": [c.as_dict() for c in checks], "summary": summary, "runnable": runnable},
                  sys.stdout, indent=2)
        print()
    else:
        for c in checks:
            print(c.line())
        print()
        for line in summary:
            print(line)
        print("the runtime %s run here" % ("can" if runnable else "CANNOT"))
    return 0 if runnable else 1


def add_parser(sub):
    doctor = sub.add_parser("doctor", help="what this machine can run, and how to fix what it cannot")
    doctor.prog = "python -m runtime doctor"
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--root", default="/", metavar="DIR", help="read the Jetson's system files under DIR "
                                                                    "(for tests)")
