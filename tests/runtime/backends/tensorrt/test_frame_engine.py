"""The engine that takes the camera's frame (issue 30, on the GPU), end to end against the FAKE tensorrt (it runs
the layers frame_input.py put in front of the model in numpy, then the model in ONNX Runtime): built with a frame
size, named by it, fed a uint8 frame by Model.prepare, the same steering as the CPU path within the skew contract;
every combination that cannot be is one line, exit status 2. The names it calls in NVIDIA's real bindings:
test_real_tensorrt.py's workload builds one too."""

import io
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.runtime.backends.tensorrt import test_fake_tensorrt

fake_gpu = test_fake_tensorrt.fake_gpu  # the fixture: fresh FAKE tensorrt and pycuda of a generation

PILOTNET = ROOT + "/tests/runtime/bundles/pilotnet"
DIGITS = ROOT + "/tests/runtime/bundles/digits"
SIZE = (320, 180)  # small frames: the fake evaluates the layers in numpy


def _bundle(src, tmp_path):
    dest = tmp_path / "bundle"
    shutil.copytree(src, str(dest), ignore=shutil.ignore_patterns("engines"))
    return str(dest)


def _cli(argv, capsys):
    from runtime.__main__ import _main
    from runtime.cli import main

    code = main("python -m runtime", _main, argv)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return code, lines


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_an_engine_built_for_a_frame_size_takes_the_frame_and_steers_as_the_cpu_path(version, fake_gpu, tmp_path):
    trt, _ = fake_gpu(version)
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu
    from runtime.model import Model
    from runtime.sim import road

    bundle = _bundle(PILOTNET, tmp_path)
    gpu = Gpu()
    for frame_size in (SIZE, None):  # and the plain engine: another file
        trt_build.build(bundle_format.load(bundle), trt_build.BuildOptions("fp32", frame_size=frame_size), gpu, trt,
                        log=io.StringIO())
        if frame_size:
            built = [c for c in trt.FAKE_calls if c[0] == "build_serialized_network"][-1][1]
    gpu.close()
    assert built["inputs"] == [["frame", [1, SIZE[1], SIZE[0], 3], "UINT8"]] and built["profile"] is None
    frames = list(road.sample_frames(3, SIZE[0], SIZE[1], seed=5)[0])
    with Model(bundle, backend="onnxruntime") as cpu:
        want = cpu.predict(frames)[0]
    with Model(bundle, backend="tensorrt", precision="fp32", build=False, gpu_preprocess="on", frame_size=SIZE) as m:
        assert "-frame320x180-" in m.backend.path and m.paths() == {"crop": "gpu", "resize": "gpu", "colour": "gpu"}
        batch = m.prepare(frames[0], m.new_buffer())
        assert batch.dtype == np.uint8 and batch.shape == (1, SIZE[1], SIZE[0], 3)
        got = np.concatenate([m.backend.infer(m.prepare(f))[0] for f in frames])
        assert np.abs(got - want).max() < 1e-3  # the skew contract's steering bound
        fed = [c[1] for c in trt.FAKE_calls if c[0] == "frame_layers"]
        assert fed and fed[-1]["dtype"] == "uint8"
        with pytest.raises(Exception) as bad:
            m.prepare(np.zeros((720, 1280, 3), np.uint8))
        assert "a 1280x720 uint8 frame came, and the TensorRT engine takes 320x180" in str(bad.value)
    engines = sorted((tmp_path / "bundle" / "engines").glob("*.engine"))
    assert len(engines) == 2 and sum("-frame320x180-" in p.name for p in engines) == 1
    [p.unlink() for p in engines if "-frame" in p.name]  # auto with --no-build and no frame engine: the plain one
    with Model(bundle, backend="tensorrt", precision="fp32", build=False, gpu_preprocess="auto", frame_size=SIZE) as m:
        assert m.frame_size is None and "--frame-size 320x180" in m.gpu_note and m.paths()["resize"] == "cpu"


def test_what_cannot_preprocess_on_the_gpu_is_one_line(fake_gpu, tmp_path, capsys):
    fake_gpu("10.3.0")
    pilot = _bundle(PILOTNET, tmp_path)
    cases = [
        (["engine", DIGITS, "--frame-size", "320x180"], "only an area resize is built into the engine"),
        (["engine", pilot, "--frame-size", "160x90"], "smaller than the network's 200x66 input"),
        (["engine", pilot, "--frame-size", "320x180", "--max-batch", "2"], "leave out --max-batch"),
        (["engine", pilot, "--frame-size", "320x180", "--precision", "int8"], "build fp16 or fp32 with --frame"),
        (["run", pilot, "--source", pilot + "/samples", "--backend", "onnxruntime", "--gpu-preprocess", "on",
          "--no-display"], "--gpu-preprocess on: the onnxruntime backend preprocesses on the CPU"),
        (["run", pilot, "--source", pilot + "/samples", "--backend", "tensorrt", "--gpu-preprocess", "on",
          "--no-display"], "give --input-width and --input-height"),
        (["run", pilot, "--source", pilot + "/samples", "--gpu-preprocess", "on", "--gst-preprocess", "crop",
          "--no-display"], "does not go with --gst-preprocess crop"),
    ]
    for argv, said in cases:
        code, lines = _cli(argv, capsys)
        assert code == 2 and len(lines) == 1 and said in lines[0], (argv, lines)


def test_auto_stays_on_the_cpu_where_it_cannot_and_says_why():
    from runtime.bundle import load
    from runtime.model import gpu_frames

    pre = load(PILOTNET).preprocess
    assert gpu_frames("auto", "tensorrt", pre, (1280, 720)) == ((1280, 720), "")
    assert gpu_frames("auto", "onnxruntime", pre, (1280, 720))[0] is None
    size, why = gpu_frames("auto", "tensorrt", pre, None)
    assert size is None and "--input-width" in why
    assert gpu_frames("auto", "tensorrt", load(DIGITS).preprocess, (320, 180))[1].endswith("stays on the CPU)")
