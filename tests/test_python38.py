"""The runtime as JetPack 5 has it: Python 3.8, numpy 1.17, an older ONNX Runtime and OpenCV.

Runs the real runtime in a Python 3.8 venv (made once, in .venv38) on the same bundles and compares its
results with this interpreter's: same frames from the road generator, same outputs.
"""

import glob
import os
import shutil
import subprocess

import pytest

from tests.conftest import FAKES, ROOT, cli, read_jsonl

VENV = os.path.join(ROOT, ".venv38")
PINS = ["numpy==1.17.*", "onnxruntime<1.11", "opencv-python-headless<4.6"]  # JetPack 5's numpy is 1.17.4


def _python38():
    """A working Python 3.8 (pyenv's shims exist even where 3.8 is not selected, so try each)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates += [p for p in (shutil.which("python3.8"),) if p]
    for python in candidates:
        if subprocess.run([python, "-c", "import venv"], capture_output=True).returncode == 0:
            return python
    return None


@pytest.fixture(scope="module")
def py38():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(os.path.join(VENV, ".installed")):
        base = _python38()
        if base is None:
            pytest.skip("no Python 3.8 on this machine (pyenv install 3.8 to run this check)")
        subprocess.run([base, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet"] + PINS, check=True)
        open(os.path.join(VENV, ".installed"), "w").close()
    version = subprocess.run([python, "-c", "import sys, numpy; print(sys.version_info[:2], numpy.__version__)"],
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("(3, 8) 1.17"), version
    return python


def _run38(python, *args, package="runtime", env=None):
    return subprocess.run([python, "-m", package] + [str(a) for a in args], cwd=ROOT, capture_output=True,
                          text=True, env=dict(dict(os.environ, PYTHONPATH=ROOT), **(env or {})), timeout=300)


def test_steering_on_python38_numpy117_matches(py38, pilot_bundle, tmp_path):
    args = ["run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "30", "--no-display",
            "--input-width", "320", "--input-height", "180"]
    proc = _run38(py38, *args, "--jsonl", tmp_path / "old.jsonl", "--output", tmp_path / "old.mp4")
    assert proc.returncode == 0, proc.stderr
    assert cli("runtime", *args, "--jsonl", tmp_path / "new.jsonl").returncode == 0
    old, new = read_jsonl(tmp_path / "old.jsonl"), read_jsonl(tmp_path / "new.jsonl")
    assert [o["truth"] for o in old] == [n["truth"] for n in new]  # the road is the same road on numpy 1.17
    diffs = [abs(o["result"]["steering"] - n["result"]["steering"]) for o, n in zip(old, new)]
    assert len(old) == 30 and max(diffs) < 1e-4


def test_classifier_on_python38_numpy117_matches(py38, digits_bundle, tmp_path):
    args = ["run", digits_bundle, "--source", digits_bundle / "samples", "--no-display"]
    assert _run38(py38, *args, "--jsonl", tmp_path / "old.jsonl").returncode == 0
    assert cli("runtime", *args, "--jsonl", tmp_path / "new.jsonl").returncode == 0
    old, new = read_jsonl(tmp_path / "old.jsonl"), read_jsonl(tmp_path / "new.jsonl")
    assert [o["result"]["class_id"] for o in old] == [n["result"]["class_id"] for n in new]
    assert max(abs(o["result"]["confidence"] - n["result"]["confidence"]) for o, n in zip(old, new)) < 1e-4


def test_bad_bundle_on_python38_is_one_line_exit_2(py38, tmp_path):
    proc = _run38(py38, "run", tmp_path / "missing", "--source", "synthetic://road")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_tensorrt_8_5_path_on_python38_numpy117(py38, digits_bundle, tmp_path):
    """JetPack 5 exactly: Python 3.8, numpy 1.17, TensorRT 8.5 (FAKE tensorrt and pycuda, tests/fakes/)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(str(digits_bundle), str(bundle))
    env = {"PYTHONPATH": os.pathsep.join([ROOT, FAKES]), "FAKE_TENSORRT_VERSION": "8.5.2",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = _run38(py38, "engine", bundle, "--precision", "fp32", package="export", env=env)
    assert proc.returncode == 0, proc.stderr
    args = ["run", bundle, "--source", bundle / "samples", "--no-display", "--precision", "fp32"]
    proc = _run38(py38, *args, "--backend", "tensorrt", "--no-build", "--jsonl", tmp_path / "trt.jsonl", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "with tensorrt (TensorRT 8.5.2 tensor API, fp32 engine" in proc.stderr
    assert cli("runtime", *args, "--backend", "onnxruntime", "--jsonl", tmp_path / "ort.jsonl").returncode == 0
    trt, ort = read_jsonl(tmp_path / "trt.jsonl"), read_jsonl(tmp_path / "ort.jsonl")
    assert [t["result"]["class_id"] for t in trt] == [o["result"]["class_id"] for o in ort]
    assert max(abs(t["result"]["confidence"] - o["result"]["confidence"]) for t, o in zip(trt, ort)) < 1e-5
