"""The runtime's own tests: they need only the runtime (pip install ".[ort,test]"), never TensorFlow, so
a board runs them with `make test-board`. Their bundles are checked in (bundles/, made by
make_bundles.py) and copied per test session, so tests may write engines beside them."""

import os
import shutil
import subprocess
import uuid

import pytest

BUNDLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundles")


def _copy(tmp_path_factory, name):
    out = tmp_path_factory.mktemp("bundles") / name
    shutil.copytree(os.path.join(BUNDLES, name), str(out))
    return out


@pytest.fixture(scope="session")
def pilot_bundle(tmp_path_factory):
    """PilotNet trained on the procedural road (steering)."""
    return _copy(tmp_path_factory, "pilotnet")


@pytest.fixture(scope="session")
def digits_bundle(tmp_path_factory):
    """The MNIST CNN trained on scikit-learn's digits (classification, gray)."""
    return _copy(tmp_path_factory, "digits")


@pytest.fixture(scope="session")
def syspy():
    """An interpreter whose OpenCV has GStreamer (tests/runtime/gstreamer.py); the test is skipped without one."""
    from tests.runtime.gstreamer import system_python

    return system_python()


def tmpfs(tmp_path, size):
    """A fixture's body: a tmpfs of `size` (mount's -o size=) mounted under tmp_path for one test, a disk that
    really fills up; the test is skipped where one cannot be mounted (not root, or no CAP_SYS_ADMIN)."""
    mount = tmp_path / ("disk-" + uuid.uuid4().hex[:8])
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)
