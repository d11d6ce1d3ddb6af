"""The TensorRT layer against NVIDIA's REAL Python bindings, without a GPU.

.ci/real_tensorrt.sh unpacks pip's binding wheels (tests/realtrt/wheels.txt: 8.6.1 for JetPack 5's 8.5.2,
10.3.0, 10.13.3.9, 11.4.0.106) into .realtrt/ with stub libraries, so that `import tensorrt` loads the
real module: every class, enum value, signature and callback trampoline is NVIDIA's; Builder and Runtime
raise "factory function returned nullptr", as they do where CUDA cannot start. Real modules are imported
only in subprocesses (one generation per process). Without .realtrt/ these tests fail under CI and are
skipped elsewhere, saying why.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import FAKES, ROOT, cli, one_line_error

WHEELS = os.path.join(ROOT, "tests", "realtrt", "wheels.txt")
REAL = [line.split()[0].split("==")[1] for line in open(WHEELS) if line.strip() and not line.startswith("#")]
FAKE_OF = {"8.6.1": "8.5.2", "10.3.0": "10.3.0", "11.4.0.106": "11.4.1"}  # the fake generation each checks
WEAK = {"8.6.1": True, "10.3.0": True, "10.13.3.9": True, "11.4.0.106": False}


def need(version):
    ready = os.path.join(ROOT, ".realtrt", version, "READY")
    here = "%d.%d" % sys.version_info[:2]
    made_for = open(ready).read().strip() if os.path.isfile(ready) else None
    if made_for != here:
        why = ("the real TensorRT %s bindings are not unpacked for Python %s: run PYTHON=%s .ci/real_tensorrt.sh"
               % (version, here, sys.executable))
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def probe(version, fake="-", recorded="-"):
    need(version)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "tests.realtrt.launch", version, "tests.realtrt.probe", fake,
                           recorded], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[0][len("PROBE "):])
    assert report["version"] == version and ".realtrt" in report["file"]
    return report


WORKLOAD = """
import io, sys
from runtime import bundle as bundle_format
from runtime.backends.tensorrt import build as trt_build
from runtime.backends.tensorrt import TensorRTBackend
from runtime.backends.tensorrt.cuda import Gpu
from runtime.preprocess import Preprocessor
import tensorrt, cv2
bundle = bundle_format.load(sys.argv[1])
gpu = Gpu()
precisions = ["fp32"] + (["fp16", "int8"] if hasattr(tensorrt.BuilderFlag, "INT8") else [])
for p in precisions:
    trt_build.build(bundle, trt_build.BuildOptions(p, calib_frames=8), gpu, tensorrt, log=io.StringIO())
gpu.close()
x = Preprocessor(bundle.preprocess, bundle.input).batch([cv2.imread(q) for q in bundle.sample_paths[:2]])
for p in precisions:
    with TensorRTBackend(bundle, precision=p, build=False, log=io.StringIO()) as backend:
        backend.infer(x)
# the engine that takes the camera's frame (frame_input.py): its layers, pinned to FP32 where precision is a flag
pilot, p = bundle_format.load(sys.argv[2]), precisions[-1] if len(precisions) > 1 else "fp32"
p = "fp16" if p == "int8" else p
gpu = Gpu()
trt_build.build(pilot, trt_build.BuildOptions(p, frame_size=(320, 180)), gpu, tensorrt, log=io.StringIO())
gpu.close()
with TensorRTBackend(pilot, precision=p, build=False, log=io.StringIO(), frame_size=(320, 180)) as backend:
    backend.infer(cv2.resize(cv2.imread(pilot.sample_paths[0]), (320, 180))[None])
"""


@pytest.mark.parametrize("real", sorted(FAKE_OF))
def test_the_fake_is_the_real_api_and_the_code_touches_only_real_names(real, digits_bundle, tmp_path):
    """(a) every public name of the fake generation exists in the real module with the same enum values and
    parameter names; (b) every TensorRT name the project's code touches in the fake exists in the real one;
    (c) the project's callbacks through the real trampolines, and generation detection."""
    need(real)
    bundle = tmp_path / "bundle"
    shutil.copytree(str(digits_bundle), str(bundle))
    record = tmp_path / "touched.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, FAKES]), FAKE_TENSORRT_VERSION=FAKE_OF[real],
               FAKE_TRT_RECORD=str(record), XDG_CACHE_HOME=str(tmp_path / "cache"))
    pilot = tmp_path / "pilotnet"
    shutil.copytree(os.path.join(ROOT, "tests", "runtime", "bundles", "pilotnet"), str(pilot),
                    ignore=shutil.ignore_patterns("engines"))
    proc = subprocess.run([sys.executable, "-c", WORKLOAD, str(bundle), str(pilot)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = probe(real, FAKE_OF[real], str(record))
    assert report["surface"] == [] and report["checked"] > 60
    assert report["recorded_missing"] == []
    touched = set(report["recorded"])
    assert {"Builder", "Runtime", "OnnxParser", "ILogger.__init__", "IBuilderConfig.set_memory_pool_limit",
            "IExecutionContext.execute_async_v3", "ICudaEngine.get_tensor_dtype", "TensorIOMode.INPUT"} <= touched
    assert ("BuilderFlag.INT8" in touched) == WEAK[real] and ("IInt8EntropyCalibrator2" in touched) == WEAK[real]
    assert "nptype" not in touched  # numpy types by DataType name (8.5.2's nptype fails on numpy 1.24-1.26)
    assert {"INetworkDefinition.add_input", "INetworkDefinition.add_matrix_multiply", "UnaryOperation.ROUND",
            "INetworkDefinition.remove_tensor", "ILayer.set_input", "IShuffleLayer.reshape_dims"} <= touched
    assert ("INetworkDefinition.add_identity" in touched) == (real == "8.6.1")  # 8.5 has no add_cast
    assert ("ILayer.precision" in touched) == WEAK[real]  # pinned to FP32 where precision is a flag


@pytest.mark.parametrize("real", REAL)
def test_callbacks_detection_and_startup_on_the_real_module(real):
    report = probe(real)
    calls, found = report["callbacks"], report["detection"]
    assert calls["logger_errors"] == ["an error through the real trampoline"]  # INFO is not an error
    assert calls["logger_caught"] == "BrokenPipeError('stderr is gone')"  # kept, to be raised after the build
    if real != "8.6.1":  # IProgressMonitor: TensorRT 9.0+
        assert calls["step_ok"] is True and calls["progress_shown"][:2] == ["Building", "Building 1/2"]
        assert calls["progress_reraised"] == "the ticker failed"  # swallowed by the trampoline, raised after
        assert calls["step_after_error"] is False  # and the build is cancelled as soon as one was caught
    if WEAK[real]:
        assert calls["batch_size"] == 1 and calls["batches"] == [1, 1, 0] and calls["minmax_batch_size"] == 1
        assert calls["cache_after"] == "calibration table"
        assert calls["batch_after_error"] is None
        assert calls["calibration_reraised"] == "the camera went away during calibration"
    else:
        assert "batch_size" not in calls  # TensorRT 11 has no calibrators
    assert found["tensor_api"] is True and found["weak_typing"] is WEAK[real]
    assert found["describe"] == "TensorRT %s (tensor API, %s)" % (
        real, "precision by builder flags" if WEAK[real] else "strongly typed")
    dtypes = found["dtypes"]
    assert dtypes["FLOAT"] == "float32" and dtypes["HALF"] == "float16" and dtypes["BOOL"] == "bool"
    assert dtypes["FP8"] is None and dtypes.get("BF16") is None  # no numpy type: refused in one line
    for name in ("builder", "runtime"):
        assert found[name].startswith("TensorRT %s does not start: trt.%s() returned nothing" % (
            real, name.capitalize())) and "nvidia-smi" in found[name]


def real_cli(real, *args, fake_pycuda=False, env=None):
    need(real)
    return cli("tests.realtrt.launch", real, *args, env=env, fake_gpu="10.3.0" if fake_pycuda else None)


@pytest.mark.parametrize("real", REAL)
def test_commands_on_a_real_tensorrt_without_a_gpu_end_in_one_line(real, digits_bundle, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    bundle = tmp_path / "bundle"  # a copy: no engine that other tests built in it
    shutil.copytree(str(digits_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    digits_bundle = bundle
    # pycuda sees a GPU (the fake one) but TensorRT cannot start CUDA: a driver or container problem
    proc = real_cli(real, "runtime", "engine", digits_bundle, fake_pycuda=True, env=env)
    assert one_line_error(proc), proc.stderr
    assert "python -m runtime: error: TensorRT %s does not start: trt.Builder()" % real in proc.stderr
    proc = real_cli(real, "runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display",
                    "--backend", "tensorrt", "--precision", "fp32", fake_pycuda=True, env=env)
    assert one_line_error(proc), proc.stderr
    assert "TensorRT %s does not start" % real in proc.stderr

    proc = real_cli(real, "export", "engine", digits_bundle, env=env)  # no pycuda at all
    assert one_line_error(proc) and "pycuda is not installed" in proc.stderr, proc.stderr
    proc = real_cli(real, "runtime", "doctor", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # ONNX Runtime still runs here
    lines = proc.stdout.splitlines()
    trt_line = [ln for ln in lines if "tensorrt" in ln and ln.startswith("[")][0]
    assert trt_line.startswith("[ok]") and "TensorRT %s (tensor API, %s)" % (
        real, "precision by builder flags" if WEAK[real] else "strongly typed") in trt_line
    gpu = lines.index([ln for ln in lines if "pycuda/gpu" in ln and ln.startswith("[")][0])
    assert lines[gpu].startswith("[missing]") and "pycuda not installed" in lines[gpu]
    assert "fix:" in lines[gpu + 1] and "pip install pycuda" in lines[gpu + 1]
    assert any("tensorrt needs pycuda/gpu" in ln for ln in lines)
