"""The GPU path for real, where this machine has it; each part skips, saying what it needs, where it has not.

- pycuda on an NVIDIA GPU (any machine with one: pip's pycuda builds with that machine's nvcc): the runtime's
  Gpu (runtime/backends/tensorrt/cuda.py) moves real bytes, its context is current only while it is used (two
  in one thread, one from another thread, one closed after the thread that made it has ended), and real pycuda
  does what the FAKE pycuda (tests/fakes) says it does.
- TensorRT with pycuda on that GPU (a Jetson, or a desktop with pip's tensorrt): engines built from the
  small bundles in fp32 and fp16 agree with ONNX Runtime within export verify's tolerances, buffers are
  made once, the context is balanced after a run, a corrupt engine file is rebuilt, and an INT8 build
  writes a calibration cache that the next build reuses; an engine that takes the 1280x720 frame and
  preprocesses it in layers steers as the CPU path does.
"""

import os
import threading

import numpy as np
import pytest

from tests.conftest import cli, read_jsonl


def _gpu_missing():
    """None where pycuda sees a GPU, else what is missing."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        return "pycuda (%s)" % exc
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # no driver, no device
        return "a CUDA driver that starts (%s)" % exc
    return None if count else "an NVIDIA GPU (the CUDA driver sees none)"


def _tensorrt_missing():
    missing = _gpu_missing()
    if missing:
        return missing
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return "TensorRT (%s)" % exc
    return None


GPU_MISSING = _gpu_missing()
needs_gpu = pytest.mark.skipif(GPU_MISSING is not None, reason="needs %s" % GPU_MISSING)
TRT_MISSING = _tensorrt_missing()
needs_tensorrt = pytest.mark.skipif(TRT_MISSING is not None, reason="needs %s" % TRT_MISSING)


def _current_context():
    import pycuda.driver as cuda

    try:
        return cuda.Context.get_current()
    except cuda.LogicError:  # pycuda raises where there is none, on some versions
        return None


# -- pycuda ------------------------------------------------------------------------------------------------

@needs_gpu
def test_the_gpu_moves_real_bytes_and_leaves_no_context_behind():
    from runtime.backends.tensorrt.cuda import Gpu

    assert _current_context() is None
    gpu = Gpu()
    assert _current_context() is None  # current only inside current()
    info = gpu.info()
    assert info["memory"] > 0 and info["sm_count"] > 0 and len(info["compute_capability"]) == 2
    with gpu.current():
        host = gpu.pagelocked((1, 66, 200, 3), np.float32)
        host[...] = np.random.RandomState(0).rand(*host.shape)
        back = gpu.pagelocked(host.shape, np.float32)
        back[...] = 0
        dev = gpu.alloc(host.nbytes)
        gpu.copy_in(dev, host)
        gpu.copy_out(back, dev)
        gpu.synchronize()
        assert np.array_equal(back, host)
        gpu.free(dev)
        del host, back  # page-locked memory is freed in its context
    gpu.close()
    assert _current_context() is None


@needs_gpu
def test_two_gpus_in_one_thread_and_one_used_from_another_thread():
    """Each pushes and pops its own context (a detector and a classifier in one thread); another thread uses
    one and ends with an empty stack (pycuda aborts the process where a thread ends with one on it)."""
    from runtime.backends.tensorrt.cuda import Gpu

    first, second = Gpu(), Gpu()
    seen = {}

    def roundtrip(gpu, n):
        with gpu.current():
            host = gpu.pagelocked((n,), np.float32)
            host[...] = np.arange(n)
            back = gpu.pagelocked((n,), np.float32)
            dev = gpu.alloc(host.nbytes)
            gpu.copy_in(dev, host)
            gpu.copy_out(back, dev)
            gpu.synchronize()
            gpu.free(dev)
            equal = bool(np.array_equal(back, host))
            del host, back
        return equal

    assert roundtrip(first, 256) and roundtrip(second, 512) and roundtrip(first, 128)
    thread = threading.Thread(target=lambda: seen.update(equal=roundtrip(second, 64), after=_current_context()))
    thread.start()
    thread.join()
    assert seen == {"equal": True, "after": None}
    first.close()
    second.close()
    assert _current_context() is None


@needs_gpu
def test_a_context_made_in_an_ended_thread_is_closed_from_another_and_its_memory_given_back():
    import pycuda.driver as cuda

    from runtime.backends.tensorrt.cuda import Gpu

    def free_memory():
        probe = Gpu()
        try:
            with probe.current():
                return cuda.mem_get_info()[0]
        finally:
            probe.close()

    box = {}

    def maker():
        gpu = box["gpu"] = Gpu()
        with gpu.current():
            box["held"] = gpu.alloc(512 << 20)  # kept: released with its context

    thread = threading.Thread(target=maker, name="maker")
    thread.start()
    thread.join()  # it ended with an empty context stack: no abort
    while_held = free_memory()
    box["gpu"].close()
    assert _current_context() is None
    assert free_memory() - while_held >= 256 << 20  # the context went, with its 512 MiB


@needs_gpu
def test_real_pycuda_behaves_as_the_fake_says():
    """What tests/fakes/site/pycuda models: async copies of pageable memory work (synchronously), of
    non-contiguous arrays are refused; a context pushed in one thread is current there only."""
    import pycuda.driver as cuda

    from runtime.backends.tensorrt.cuda import Gpu

    gpu = Gpu()
    with gpu.current():
        pageable = np.arange(64, dtype=np.float32)
        dev = cuda.mem_alloc(pageable.nbytes)
        cuda.memcpy_htod_async(dev, pageable, gpu.stream)
        back = np.zeros_like(pageable)
        cuda.memcpy_dtoh_async(back, dev, gpu.stream)
        gpu.stream.synchronize()
        assert np.array_equal(back, pageable)
        strided = np.arange(128, dtype=np.float32)[::2]
        with pytest.raises((ValueError, TypeError, BufferError)):  # numpy: "ndarray is not contiguous"
            cuda.memcpy_htod_async(dev, strided, gpu.stream)
        dev.free()
        other = {}
        thread = threading.Thread(target=lambda: other.setdefault("current", _current_context()))
        thread.start()
        thread.join()
        assert other["current"] is None
    gpu.close()


# -- TensorRT ----------------------------------------------------------------------------------------------

@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engines_built_here_agree_with_onnx_runtime(pilot_bundle, digits_bundle, precision, tmp_path):
    import json

    for bundle in (pilot_bundle, digits_bundle):
        proc = cli("runtime", "engine", bundle, "--precision", precision, "--force")
        if proc.returncode == 2 and "variant" in proc.stderr:
            pytest.skip("this TensorRT takes precision from the ONNX and the bundle has no %s variant" % precision)
        assert proc.returncode == 0, proc.stderr
        report = tmp_path / ("%s-%s.json" % (os.path.basename(str(bundle)), precision))
        proc = cli("export", "verify", bundle, "--json", report)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = [r for r in json.loads(report.read_text())["rows"]
                if r.get("backend") == "tensorrt" and r.get("precision") == precision]
        assert rows and all(r["passed"] for r in rows), rows


@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_an_engine_that_takes_the_frame_steers_as_the_cpu_path(pilot_bundle, precision):
    """The preprocessing layers (frame_input.py) built by a real TensorRT: uint8 1280x720 frames in, the CPU
    path's steering out within the skew contract (1e-3; fp16 within export verify's fp16 tolerance)."""
    from runtime import Model
    from runtime.sim import road

    frames = list(road.sample_frames(8, 1280, 720, seed=9)[0])
    with Model(str(pilot_bundle), backend="onnxruntime") as cpu:
        want = cpu.predict(frames)[0]
    with Model(str(pilot_bundle), backend="tensorrt", precision=precision, gpu_preprocess="on",
               frame_size=(1280, 720)) as model:
        assert model.paths()["resize"] == "gpu" and model.backend.frame_size == (1280, 720)
        got = model.predict(frames)[0]
    assert np.abs(got - want).max() < (1e-3 if precision == "fp32" else 2e-2)
    assert _current_context() is None


@needs_tensorrt
def test_a_run_makes_buffers_once_and_leaves_the_context_balanced(pilot_bundle):
    from runtime import Model
    from runtime.sim import road

    frames, _ = road.sample_frames(12, 640, 360, seed=4)
    with Model(str(pilot_bundle), backend="tensorrt", precision="fp32") as model:
        outputs = [model(f) for f in frames]
        backend = model.backend
        assert list(backend._buffers) == [1]  # batch 1 only: made once, reused for every frame
    assert all(-2 < o["steering"] < 2 for o in outputs)
    assert _current_context() is None


@needs_tensorrt
def test_a_corrupt_engine_is_rebuilt(pilot_bundle, tmp_path):
    proc = cli("runtime", "engine", pilot_bundle, "--precision", "fp32")
    assert proc.returncode == 0, proc.stderr
    engines = [os.path.join(d, f) for d, _, fs in os.walk(str(pilot_bundle)) for f in fs if f.endswith(".engine")]
    assert engines
    for path in engines:
        with open(path, "r+b") as f:
            f.write(b"not an engine")
    proc = cli("runtime", "run", pilot_bundle, "--backend", "tensorrt", "--precision", "fp32", "--source",
               "synthetic://road", "--max-frames", "5", "--no-display", "--jsonl", tmp_path / "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "rebuilding" in proc.stderr and len(read_jsonl(tmp_path / "r.jsonl")) == 5


@needs_tensorrt
def test_int8_writes_a_calibration_cache_the_next_build_reuses(pilot_bundle):
    import tensorrt as trt

    if not hasattr(trt.BuilderFlag, "INT8"):
        pytest.skip("TensorRT %s takes INT8 from the bundle's int8 variant (no calibrator)" % trt.__version__)
    proc = cli("runtime", "engine", pilot_bundle, "--precision", "int8", "--calib-data", "road",
               "--calib-frames", "100", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "calibrating INT8" in proc.stderr
    proc = cli("runtime", "engine", pilot_bundle, "--precision", "int8", "--calib-data", "road",
               "--calib-frames", "100", "--force")
    assert proc.returncode == 0, proc.stderr
    assert "reusing the INT8 calibration cache" in proc.stderr and "calibrating INT8" not in proc.stderr
