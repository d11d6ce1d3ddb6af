"""The runtime as JetPack 5 installs it: Python 3.8 and what pip resolves there for jetson_setup.sh.

A fresh Python 3.8 venv (.venv38, remade when its inputs change) gets the project INSTALLED the way
jetson_setup.sh does it on JetPack 5: its own pip commands, read from its --dry-run on a fake JetPack 5 root
(pip >= 21.3, then `pip install -e REPO[ort] "numpy<1.24"`), constrained to the versions pip resolved for the
board (.ci/jetson_resolve.sh: aarch64, Python 3.8, glibc 2.31), so the set is the one a Xavier or Orin gets, not
a hand-picked one. pip builds the project there with the newest setuptools for Python 3.8 (75.3). OpenCV is the
board's system package, so a pip OpenCV of the same generation (4.5) stands in for it. The runtime then runs
from outside the tree (no PYTHONPATH) on the same bundles, and its results are compared with this interpreter's.
"""

import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess

import pytest

from tests.conftest import FAKES, ROOT, cli, read_jsonl
from tests.jetson_roots import fake_root, resolved

VENV = os.path.join(ROOT, ".venv38")
SCRIPT = os.path.join(ROOT, "jetson_setup.sh")
SYSTEM_OPENCV = "opencv-python-headless>=4.5,<4.6"  # stands in for JetPack 5's libopencv-python 4.5.4


def _python38():
    """A working Python 3.8 (pyenv's shims exist even where 3.8 is not selected, so try each)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates += [p for p in (shutil.which("python3.8"),) if p]
    for python in candidates:
        if subprocess.run([python, "-c", "import venv"], capture_output=True).returncode == 0:
            return python
    return None


def _jetson_setup_pip_commands(tmp_path):
    """The venv's pip commands jetson_setup.sh runs on JetPack 5 (pycuda aside: it needs CUDA), from its dry run."""
    root = fake_root(tmp_path, "jp5", packages=["python3-libnvinfer"])
    venv = str(tmp_path / "venv")  # a fresh board has none (the dry run plans every step)
    proc = subprocess.run(["bash", SCRIPT, "--dry-run", "--root", str(root), "--venv", venv], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env=dict(os.environ, USER="alice"))
    assert proc.returncode == 0, proc.stderr
    prefix = "would run: %s/bin/pip install " % venv
    commands = [shlex.split(ln[len("would run: "):]) for ln in proc.stdout.splitlines() if ln.startswith(prefix)]
    assert len(commands) == 2 and "numpy<1.24" in commands[1], proc.stdout
    return [[os.path.join(VENV, "bin", "pip")] + c[1:] for c in commands]


@pytest.fixture(scope="module")
def jp5_pins():
    requirements = subprocess.run(["bash", SCRIPT, "--print-requirements", "5"], capture_output=True, text=True,
                                  check=True).stdout
    versions, _ = resolved(5, requirements)
    return {name: v for name, v in versions.items() if name != "edge-cnn-toolkit"}


@pytest.fixture(scope="module")
def py38(jp5_pins, tmp_path_factory):
    python = os.path.join(VENV, "bin", "python")
    commands = _jetson_setup_pip_commands(tmp_path_factory.mktemp("jp5"))
    constraints = ["%s==%s" % kv for kv in sorted(jp5_pins.items())]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        inputs = json.dumps([commands, constraints, SYSTEM_OPENCV, hashlib.sha256(f.read()).hexdigest()])
    stamp = os.path.join(VENV, ".installed")
    if not os.path.exists(stamp) or open(stamp).read() != inputs:
        base = _python38()
        if base is None:
            why = "no Python 3.8 on this machine (pyenv install 3.8 to run this check)"
            pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
        subprocess.run([base, "-m", "venv", "--clear", VENV], check=True)
        with open(os.path.join(VENV, "constraints.txt"), "w") as f:
            f.write("\n".join(constraints) + "\n")
        for command in commands + [[os.path.join(VENV, "bin", "pip"), "install", SYSTEM_OPENCV]]:
            proc = subprocess.run(command + ["--quiet", "-c", os.path.join(VENV, "constraints.txt")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, "%s\n%s" % (" ".join(command), proc.stderr[-3000:])
        with open(stamp, "w") as f:
            f.write(inputs)
    return python


def _run38(python, cwd, *args, package="runtime", env=None):
    """`python -m PACKAGE` in the Python 3.8 venv, from outside the tree: what runs is what was installed."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env.update(env or {})
    return subprocess.run([python, "-m", package] + [str(a) for a in args], cwd=str(cwd), capture_output=True,
                          text=True, env=full_env, timeout=300)


def test_the_project_installs_on_python38_with_jetpack5s_resolved_set(py38, jp5_pins, tmp_path):
    probe = ("import json, sys, importlib.metadata as m, runtime; print(json.dumps({'python': sys.version_info[:2], "
             "'runtime': runtime.__file__, 'license': m.metadata('edge-cnn-toolkit')['License'], "
             "'versions': {n: m.version(n) for n in sys.argv[1:]}}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([py38, "-c", probe] + sorted(jp5_pins), cwd=str(tmp_path), capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["python"] == [3, 8] and found["license"] == "Apache-2.0"
    assert found["runtime"].startswith(os.path.join(ROOT, "runtime"))  # the editable install, as on the board
    assert found["versions"] == jp5_pins  # exactly what pip resolves for a JetPack 5 board
    assert tuple(int(x) for x in jp5_pins["numpy"].split(".")[:2]) < (1, 24)


def test_steering_on_python38_jetpack5_matches(py38, pilot_bundle, tmp_path):
    args = ["run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "30", "--no-display",
            "--input-width", "320", "--input-height", "180"]
    proc = _run38(py38, tmp_path, *args, "--jsonl", tmp_path / "old.jsonl", "--output", tmp_path / "old.mp4")
    assert proc.returncode == 0, proc.stderr
    assert cli("runtime", *args, "--jsonl", tmp_path / "new.jsonl").returncode == 0
    old, new = read_jsonl(tmp_path / "old.jsonl"), read_jsonl(tmp_path / "new.jsonl")
    assert [o["truth"] for o in old] == [n["truth"] for n in new]  # the road is the same road on JetPack 5's numpy
    diffs = [abs(o["result"]["steering"] - n["result"]["steering"]) for o, n in zip(old, new)]
    assert len(old) == 30 and max(diffs) < 1e-4


def test_classifier_on_python38_jetpack5_matches(py38, digits_bundle, tmp_path):
    args = ["run", digits_bundle, "--source", digits_bundle / "samples", "--no-display"]
    assert _run38(py38, tmp_path, *args, "--jsonl", tmp_path / "old.jsonl").returncode == 0
    assert cli("runtime", *args, "--jsonl", tmp_path / "new.jsonl").returncode == 0
    old, new = read_jsonl(tmp_path / "old.jsonl"), read_jsonl(tmp_path / "new.jsonl")
    assert [o["result"]["class_id"] for o in old] == [n["result"]["class_id"] for n in new]
    assert max(abs(o["result"]["confidence"] - n["result"]["confidence"]) for o, n in zip(old, new)) < 1e-4


def test_bad_bundle_on_python38_is_one_line_exit_2(py38, tmp_path):
    proc = _run38(py38, tmp_path, "run", tmp_path / "missing", "--source", "synthetic://road")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_tensorrt_8_5_path_on_python38_jetpack5(py38, digits_bundle, tmp_path):
    """JetPack 5 exactly: Python 3.8, its resolved numpy, TensorRT 8.5 (FAKE tensorrt and pycuda, tests/fakes/)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(str(digits_bundle), str(bundle))
    env = {"PYTHONPATH": FAKES, "FAKE_TENSORRT_VERSION": "8.5.2",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = _run38(py38, tmp_path, "engine", bundle, "--precision", "fp32", package="runtime", env=env)
    assert proc.returncode == 0, proc.stderr
    args = ["run", bundle, "--source", bundle / "samples", "--no-display", "--precision", "fp32"]
    proc = _run38(py38, tmp_path, *args, "--backend", "tensorrt", "--no-build", "--jsonl", tmp_path / "trt.jsonl",
                  env=env)
    assert proc.returncode == 0, proc.stderr
    assert "with tensorrt (TensorRT 8.5.2 tensor API, fp32 engine" in proc.stderr
    assert cli("runtime", *args, "--backend", "onnxruntime", "--jsonl", tmp_path / "ort.jsonl").returncode == 0
    trt, ort = read_jsonl(tmp_path / "trt.jsonl"), read_jsonl(tmp_path / "ort.jsonl")
    assert [t["result"]["class_id"] for t in trt] == [o["result"]["class_id"] for o in ort]
    assert max(abs(t["result"]["confidence"] - o["result"]["confidence"]) for t, o in zip(trt, ort)) < 1e-5
