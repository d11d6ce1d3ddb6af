"""Engine bookkeeping that needs no GPU: fingerprints, file names, where engines live, atomic writes,
and what --backend tensorrt says on a machine without TensorRT."""

import json

import pytest

from runtime import platform
from runtime.backends.tensorrt import engines
from tests.conftest import cli, one_line_error

ORIN = engines.Device("Orin", (8, 7), 8, "10.3.0", board="NVIDIA Jetson Orin Nano Developer Kit")


def key(**changes):
    fields = dict(device=ORIN, precision="fp16", max_batch=1, dla_core=None, model_sha256="ab" * 32)
    fields.update(changes)
    return engines.EngineKey(**fields)


def test_the_fingerprint_changes_with_everything_that_makes_an_engine_valid():
    base = key()
    assert base.fingerprint == key().fingerprint
    others = [
        key(device=engines.Device("Orin", (8, 7), 16, "10.3.0", board="NVIDIA Jetson AGX Orin")),  # same GPU name
        key(device=engines.Device("Orin", (8, 7), 8, "8.5.2", board=ORIN.board)),
        key(precision="int8"), key(max_batch=8), key(dla_core=0), key(model_sha256="cd" * 32),
    ]
    assert len({base.fingerprint} | {k.fingerprint for k in others}) == 1 + len(others)
    assert base.filename == "fp16-b1-gpu-trt10.3.0-%s.engine" % base.fingerprint
    assert key(dla_core=1).filename.startswith("fp16-b1-dla1-trt10.3.0-")
    with pytest.raises(ValueError):
        key(precision="fp8")


def test_board_model_is_read_from_the_device_tree(tmp_path):
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    assert platform.board_model(str(tmp_path)) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert platform.board_model(str(tmp_path / "elsewhere")) is None


def test_engines_live_in_the_bundle_or_in_the_user_cache_when_it_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    k = key()
    assert engines.find(str(bundle), k) is None
    path = engines.save(str(bundle), k, b"plan bytes")
    assert path == str(bundle / "engines" / k.filename)
    assert engines.find(str(bundle), k) == path and open(path, "rb").read() == b"plan bytes"
    assert json.loads(open(path[:-len(".engine")] + ".json").read())["board"] == ORIN.board
    assert engines.find(str(bundle), key(precision="fp32")) is None  # another precision: build, don't reuse

    k2 = key(max_batch=4)
    cached = engines.save(str(bundle), k2, b"other plan", writable=lambda folder: False)
    assert cached.startswith(str(tmp_path / "cache" / "edge-cnn-toolkit" / "engines"))
    assert engines.find(str(bundle), k2) == cached


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "x.engine"
    engines.write_atomic(str(target), b"old")

    with pytest.raises(TypeError):
        engines.write_atomic(str(target), object())  # fails inside the write, after the temporary file exists
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.engine"]  # no temporary file left behind


def test_backend_tensorrt_without_tensorrt_is_one_line_exit_2(digits_bundle):
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display",
               "--backend", "tensorrt")
    assert one_line_error(proc), proc.stderr
    assert "TensorRT is not installed" in proc.stderr and "pip install tensorrt" in proc.stderr


def test_auto_says_which_backend_and_why(digits_bundle):
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display")
    assert proc.returncode == 0, proc.stderr
    assert "with onnxruntime" in proc.stderr and "auto: TensorRT is not installed" in proc.stderr
