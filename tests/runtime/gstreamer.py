"""Live tests' helpers: an interpreter whose OpenCV has GStreamer (the system's python3-opencv over numpy 1.x,
in a venv made by jetson_setup.sh's own commands, as a Jetson's venv sees JetPack's OpenCV) and ways to run the
runtime in it. pip's OpenCV has no GStreamer;
`.ci/run` installs the system packages; `videotestsrc is-live=true` is the live camera."""

import os
import shutil
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


def _board_venv_commands(venv):
    """The venv and pip commands jetson_setup.sh runs on a JetPack 6 board (pycuda aside: it needs CUDA), from its
    dry run on a fake board: `/usr/bin/python3 -m venv --system-site-packages VENV`, then its own pip lines."""
    import pathlib
    import shlex
    import tempfile

    from tests.jetson_roots import fake_root

    with tempfile.TemporaryDirectory() as tmp:
        root = fake_root(pathlib.Path(tmp), "jp6", packages=["python3-libnvinfer"])
        fresh = os.path.join(tmp, "venv")  # a fresh board has none: the dry run plans every step
        proc = subprocess.run(["bash", os.path.join(ROOT, "jetson_setup.sh"), "--dry-run", "--root", str(root),
                               "--venv", fresh], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, USER="alice"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    commands = [[venv + a[len(fresh):] if a.startswith(fresh) else a for a in shlex.split(ln[len("would run: "):])]
                for ln in proc.stdout.splitlines()
                if ln.startswith("would run: %s -m venv " % SYSTEM_PYTHON)
                or ln.startswith("would run: %s/bin/pip install " % fresh)]
    assert len(commands) == 3 and commands[0][-2:] == ["--system-site-packages", venv], proc.stdout
    return commands


def system_python():
    """An interpreter whose OpenCV has GStreamer: this one where it has (a board's venv), else a venv made here
    over the system's OpenCV exactly as jetson_setup.sh makes a board's (made once, remade when its commands or
    pyproject.toml change), so that the live tests and `make test-board` run where a board's do."""
    if _opencv_with_gstreamer(sys.executable):
        return sys.executable
    python = os.path.join(VENV, "bin", "python")
    commands = _board_venv_commands(VENV)
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        inputs = repr((commands, f.read()))
    stamp = os.path.join(VENV, ".installed")
    if not os.path.exists(stamp) or open(stamp).read() != inputs:
        if not _opencv_with_gstreamer(SYSTEM_PYTHON):
            pytest.skip("no system OpenCV with GStreamer (apt install python3-opencv; .ci/run does)")
        shutil.rmtree(VENV, ignore_errors=True)
        for command in commands:
            proc = subprocess.run(command + (["--quiet"] if "pip" in command[0] else []), capture_output=True,
                                  text=True)
            assert proc.returncode == 0, "%s\n%s" % (" ".join(command), proc.stderr[-3000:])
        with open(stamp, "w") as f:
            f.write(inputs)
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
