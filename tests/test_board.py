"""README step 3 on a board, `make test-board PYTHON_BOARD=.venv/bin/python`, in the venv jetson_setup.sh makes
there: here that is .venv-sys (tests/runtime/gstreamer.py), made by jetson_setup.sh's own commands for a JetPack 6
board over Debian's GStreamer-enabled python3-opencv. The whole of tests/runtime in it is the acceptance run (README,
Tests); these checks are the cheap part of it that failed before: pytest missing from the board's venv, a test
that ran a live camera for ever where OpenCV has GStreamer, and a test that failed without an optional extra."""

import os
import re
import subprocess

from tests.conftest import ROOT
from tests.runtime.gstreamer import system_python


def _pytest(python, *args, env=None):
    return subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + list(args), cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, **(env or {})))


def test_make_test_board_runs_in_the_venv_jetson_setup_makes(tmp_path):
    python = system_python()
    spaced = tmp_path / "board venv"  # a venv whose path has a space: the Makefile quotes it
    os.symlink(os.path.dirname(os.path.dirname(python)), str(spaced))
    python = os.path.join(str(spaced), "bin", os.path.basename(python))
    proc = subprocess.run(["make", "test-board", "PYTHON_BOARD=%s" % python], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTEST_ADDOPTS="--collect-only -q"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = [int(n) for n in re.findall(r"^tests/runtime/\S+\.py: (\d+)$", proc.stdout, re.M)]
    assert sum(counts) > 150 and "error" not in proc.stdout.lower(), proc.stdout[-2000:]
    # the files run in parallel there (pytest-xdist, in the test extra): under 3 minutes on 2 cores (README)
    assert subprocess.run([python, "-c", "import xdist"]).returncode == 0


def test_where_opencv_has_gstreamer_the_pip_opencv_test_skips_instead_of_running_a_camera():
    proc = _pytest(system_python(), "tests/runtime/sources/test_live_sources.py::"
                                    "test_pips_opencv_says_it_has_no_gstreamer", "-rs")
    assert proc.returncode == 0 and "1 skipped" in proc.stdout and "has GStreamer" in proc.stdout, proc.stdout


def test_a_test_that_needs_pyserial_skips_without_it(tmp_path):
    """The board's venv may lack an extra (a venv made before the vehicle extra): such tests skip, saying why."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "serial.py").write_text("raise ModuleNotFoundError('pyserial hidden by the test', name='serial')\n")
    proc = _pytest(system_python(), "tests/runtime/vehicle/test_vehicle.py", "-rs", "-k",
                   "serial_pseudo_terminal or (bad_vehicle_options and cannot)",
                   env={"PYTHONPATH": "%s%s%s" % (hidden, os.pathsep, ROOT)})
    assert proc.returncode == 0 and "failed" not in proc.stdout, proc.stdout[-3000:]
    assert "2 skipped" in proc.stdout and "passed" not in proc.stdout, proc.stdout[-3000:]
    assert proc.stdout.count("pyserial hidden by the test") == 2, proc.stdout[-3000:]
