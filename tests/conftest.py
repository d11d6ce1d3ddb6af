"""Shared helpers, and fixtures for real training runs and real bundles made once per test session (small but
real). Nothing here imports TensorFlow until a fixture trains: tests/runtime/ runs without it (on a board)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


FAKES = os.path.join(ROOT, "tests", "fakes", "site")  # FAKE tensorrt and pycuda (tests/fakes/README.md)


def cli(*args, timeout=600, env=None, fake_gpu=None):
    """Run `python -m ...` from the repository root as a user would; returns the CompletedProcess.
    fake_gpu="10.3.0" (a TensorRT version) puts the FAKE tensorrt and pycuda on the path."""
    path = ROOT if fake_gpu is None else os.pathsep.join([ROOT, FAKES])
    env = dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    if fake_gpu is not None:
        env["FAKE_TENSORRT_VERSION"] = fake_gpu
    return subprocess.run([sys.executable, "-m"] + [str(a) for a in args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def free_udp_port():
    """A UDP port on the loopback that nothing holds now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port():
    """A TCP port on the loopback that nothing holds now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(proc):
    """Exit status 2 and a single line on stderr (no traceback)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr


def copy_bundle(src, tmp_path, name="bundle"):
    """A copy of a bundle without its engines (tests that build engines write them beside the copy)."""
    dest = tmp_path / name
    shutil.copytree(str(src), str(dest), ignore=shutil.ignore_patterns("engines"))
    return dest


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _train(tmp_path_factory, name, *args):
    from train import load_tensorflow
    from train.__main__ import _main

    load_tensorflow()  # once, without its C++ start-up lines

    out = tmp_path_factory.mktemp("runs") / name
    _main(list(args) + ["--out", str(out)])
    return out


def _export(tmp_path_factory, run, name):
    from export.__main__ import _main

    out = tmp_path_factory.mktemp("bundles") / name
    assert _main(["onnx", str(run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    return _train(tmp_path_factory, "digits", "--model", "mnist_cnn", "--data", "digits", "--epochs", "6")


@pytest.fixture(scope="session")
def digits_bundle(digits_run, tmp_path_factory):
    return _export(tmp_path_factory, digits_run, "digits")


@pytest.fixture(scope="session")
def pilot_run(tmp_path_factory):
    return _train(tmp_path_factory, "pilotnet", "--model", "pilotnet", "--data", "road", "--limit", "1500",
                  "--epochs", "5")


@pytest.fixture(scope="session")
def pilot_bundle(pilot_run, tmp_path_factory):
    return _export(tmp_path_factory, pilot_run, "pilotnet")
