"""The runtime's own tests: they need only the runtime (pip install ".[ort,test]"), never TensorFlow, so
a board runs them with `make test-board`. Their bundles are checked in (bundles/, made by
make_bundles.py) and copied per test session, so tests may write engines beside them."""

import os
import shutil

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
