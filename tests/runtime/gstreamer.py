"""Live tests' helpers: an interpreter whose OpenCV has GStreamer (the system's python3-opencv over numpy 1.x,
as a Jetson's venv sees JetPack's OpenCV) and ways to run the runtime in it. pip's OpenCV has no GStreamer;
`.ci/run` installs the system packages; `videotestsrc is-live=true` is the live camera."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

VENV = os.path.join(ROOT, ".venv-sys")
SYSTEM_PYTHON = "/usr/bin/python3"
CAMERA = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
          "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1 sync=false")


def _opencv_with_gstreamer(python):
    """Whether that interpreter's OpenCV has GStreamer beside numpy 1.x (what it was built against)."""
    code = ("import cv2, numpy, re; print(re.search(r'GStreamer:\\s*YES', cv2.getBuildInformation()) is not None "
            "and numpy.__version__.startswith('1.'))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return False
    return out.strip() == "True"


def system_python():
    """An interpreter whose OpenCV has GStreamer: this one where it has (a board's venv), else the
    system-OpenCV venv (made once): python3 -m venv --system-site-packages; pip install '.[ort]' 'numpy<2'."""
    if _opencv_with_gstreamer(sys.executable):
        return sys.executable
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, ".installed")):
        if not _opencv_with_gstreamer(SYSTEM_PYTHON):
            pytest.skip("no system OpenCV with GStreamer (apt install python3-opencv; .ci/run does)")
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--clear", "--system-site-packages", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", ROOT + "[ort]", "numpy<2"], check=True)
        open(os.path.join(VENV, ".installed"), "w").close()
    out = subprocess.run([python, "-c", "import numpy, cv2, sys; print(numpy.__version__, cv2.__file__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("1.") and out.split()[1].startswith("/usr/lib/python3/dist-packages")
    return python


def run_sys(python, *args, timeout=120):
    return subprocess.run([python, "-m", "runtime"] + [str(a) for a in args], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=timeout)


def script_sys(python, code, *args, timeout=120):
    return subprocess.run([python, "-c", textwrap.dedent(code)] + [str(a) for a in args], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=timeout)
