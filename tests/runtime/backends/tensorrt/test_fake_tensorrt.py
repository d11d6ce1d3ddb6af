"""The TensorRT path against FAKES of tensorrt and pycuda (tests/fakes/README.md): no GPU here or in CI.

The fakes keep the real names, enum values and parameter names of each generation (8.5 both APIs, 10.3 tensor
API, 11.4 strongly typed; test_real_tensorrt.py beside this file checks them against NVIDIA's real binding
modules) and refuse what the real ones refuse; their engine runs the ONNX model with ONNX
Runtime on the bytes in fake device memory, so the numbers that come back are real.
"""

import io
import json
import os
import sys
import threading

import numpy as np
import pytest

from tests.conftest import FAKES, ROOT, cli, copy_bundle, one_line_error, read_jsonl

VERSIONS = ["8.5.2", "10.3.0", "11.4.1"]
FAKE_MODULES = ("tensorrt", "pycuda", "pycuda.driver")


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """install(version, **env) -> (fake tensorrt, fake pycuda.driver), imported fresh for this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def install(version="10.3.0", **env):
        monkeypatch.setenv("FAKE_TENSORRT_VERSION", version)
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        if FAKES not in sys.path:  # not monkeypatch.syspath_prepend: its undo would also drop what other
            sys.path.insert(0, FAKES)  # packages appended meanwhile (onnxruntime.transformers does)
        for m in FAKE_MODULES:
            sys.modules.pop(m, None)
        import pycuda.driver
        import tensorrt

        assert "FAKE" in tensorrt.__doc__ and "FAKE" in pycuda.driver.__doc__
        return tensorrt, pycuda.driver

    yield install
    if FAKES in sys.path:
        sys.path.remove(FAKES)
    for m in FAKE_MODULES:
        sys.modules.pop(m, None)



def sample_frames(bundle):
    import cv2

    from runtime import bundle as bundle_format

    return [cv2.imread(p) for p in bundle_format.load(str(bundle)).sample_paths]


def calibrated_on(bundle, data, count, precision="int8", **options):
    """BuildOptions for INT8 calibrated on data, the frames chosen as `python -m runtime engine --calib-data`
    chooses them (a list: these options may serve several builds)."""
    from runtime.backends.tensorrt import build as trt_build
    from runtime.commands import engine as engine_command

    frames = list(engine_command.calibration_frames(bundle, data, count, io.StringIO()))
    return trt_build.BuildOptions(precision, calib_data=data, calib_frames=count, calibration=frames, **options)


class Unread:
    """Calibration frames that must not be read (a kept calibration cache needs none)."""

    def __iter__(self):
        raise AssertionError("frames read although the calibration cache was there")


def calls(trt, what):
    return [details for name, details in trt.FAKE_calls if name == what]


@pytest.mark.parametrize("version", VERSIONS)
def test_engine_is_built_then_run_with_the_same_results_as_onnxruntime(version, fake_gpu, pilot_bundle, tmp_path):
    from export import variants
    from runtime.model import Model

    trt, cuda = fake_gpu(version)
    bundle = copy_bundle(pilot_bundle, tmp_path)
    if version.startswith("11."):
        pytest.importorskip("onnx")  # the fp16 variant is made on the desktop (pip install '.[train]')
        variants.make(str(bundle), "fp16")  # TensorRT 11 takes FP16 from a strongly typed ONNX
    frames = sample_frames(bundle)
    with Model(str(bundle), backend="onnxruntime") as reference:
        expected = reference.predict(frames)[0]
    log = io.StringIO()
    with Model(str(bundle), backend="tensorrt") as model:
        model.backend.log = log
        assert model.backend.precision == "fp16" and model.backend.name == "tensorrt"
        got = model.predict(frames)[0]  # N frames through a batch-1 engine: N executions, one set of buffers
        one = model(frames[0])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-2
    assert one["steering"] == pytest.approx(float(got[0, 0]), abs=1e-6)

    assert calls(trt, "create_network")[0]["flags"] == (0 if version.startswith("11.") else 1)  # explicit batch
    built = calls(trt, "build_serialized_network")[0]
    assert built["profile"] == [[1, 66, 200, 3], [1, 66, 200, 3], [1, 66, 200, 3]]
    assert built["workspace"] == 1024 << 20  # an 8 GB board
    api = {d["api"] for d in calls(trt, "execute")}
    assert api == {"execute_async_v3"}  # the tensor API on every generation (8.5 has both)
    runs = len(frames) + 1
    assert len(calls(trt, "execute")) == runs and all(d["stream"] for d in calls(trt, "execute"))
    assert cuda.fake_stats["allocations"] == 2 and cuda.fake_stats["frees"] == 2  # one input, one output, made once
    assert cuda.fake_stats["htod"] == runs and cuda.fake_stats["dtoh"] == runs
    assert cuda.fake_stats["pageable_copies"] == 0  # page-locked buffers: the copies really are asynchronous
    assert cuda.fake_stats["destroyed_contexts"] == 1 and cuda.fake_stats["leaked_contexts"] == 0
    assert cuda.Context.get_current() is None  # every push popped, the context released
    engine = [p for p in os.listdir(bundle / "engines") if p.endswith(".engine")]
    assert len(engine) == 1 and engine[0].startswith("fp16-b1-gpu-trt%s-" % version)


def test_fp32_clears_tf32_and_a_batch_profile_gets_buffers_per_shape(fake_gpu, pilot_bundle, tmp_path):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt import TensorRTBackend
    from runtime.backends.tensorrt.cuda import Gpu
    from runtime.errors import UserError
    from runtime.preprocess import Preprocessor

    trt, cuda = fake_gpu("10.3.0")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    gpu = Gpu()
    path = trt_build.build(bundle, trt_build.BuildOptions("fp32", workspace_mib=300, max_batch=8), gpu, trt,
                           log=io.StringIO())
    gpu.close()
    built = calls(trt, "build_serialized_network")[0]
    assert built["tf32"] is False and built["precision"] == "fp32"  # FP32 means FP32
    assert built["workspace"] == 300 << 20
    assert built["profile"][0][0] == 1 and built["profile"][2][0] == 8
    assert os.path.basename(path).startswith("fp32-b8-gpu-trt10.3.0-")
    assert json.load(open(path[:-len(".engine")] + ".json"))["max_batch"] == 8

    x = Preprocessor(bundle.preprocess, bundle.input).batch((sample_frames(bundle.path) * 20)[:20])
    with TensorRTBackend(bundle, precision="fp32", engine=path) as backend:
        assert backend.max_batch == 8
        out = backend.infer(x)[0]  # 8 + 8 + 4
        again = backend.infer(x)[0]
    from runtime.backends.onnxruntime import OnnxRuntimeBackend

    with OnnxRuntimeBackend(bundle.model_path) as ort:
        expected = ort.infer(x)[0]
    assert np.abs(out - expected).max() < 1e-5 and np.array_equal(out, again)
    assert [d["batch"] for d in calls(trt, "execute")] == [8, 8, 4, 8, 8, 4]
    assert cuda.fake_stats["allocations"] == 4  # input+output for batch 8, and for batch 4; reused the second time

    with open(path, "rb") as f:  # the runner takes the engine itself too, as bytes
        data = f.read()
    with TensorRTBackend(bundle, precision="fp32", engine=data) as backend:
        assert np.array_equal(backend.infer(x)[0], out)
    with pytest.raises(UserError, match="the engine given will not deserialize.*python -m runtime engine"):
        TensorRTBackend(bundle, precision="fp32", engine=data[:100]).activate()  # no loader to rebuild it


def test_an_engine_is_reused_and_each_precision_gets_its_own(fake_gpu, digits_bundle, tmp_path):
    from runtime.model import Model

    trt, _ = fake_gpu("8.5.2")
    bundle = copy_bundle(digits_bundle, tmp_path)
    Model(str(bundle), backend="tensorrt").close()
    Model(str(bundle), backend="tensorrt").close()
    assert len(calls(trt, "build_serialized_network")) == 1
    with Model(str(bundle), backend="tensorrt", precision="fp32") as model:
        assert model.backend.precision == "fp32"
    assert len(calls(trt, "build_serialized_network")) == 2
    names = sorted(p for p in os.listdir(bundle / "engines") if p.endswith(".engine"))
    assert [n.split("-")[0] for n in names] == ["fp16", "fp32"]
    timing = [n for n in os.listdir(bundle / "engines") if n.startswith("timing-trt8.5.2-")]
    assert len(timing) == 1  # one timing cache per device, saved after the first build and read by the second:
    assert json.loads((bundle / "engines" / timing[0]).read_bytes()[len(b"FAKE-TIMING "):])["n"] == 2


def test_a_corrupt_engine_is_reported_and_rebuilt(digits_bundle, tmp_path):
    bundle = copy_bundle(digits_bundle, tmp_path)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = cli("runtime", "engine", bundle, fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    engine = [bundle / "engines" / n for n in os.listdir(bundle / "engines") if n.endswith(".engine")][0]
    assert "wrote %s" % engine in proc.stderr
    assert "up to date" in cli("export", "engine", bundle, fake_gpu="10.3.0", env=env).stdout

    engine.write_bytes(b"half an engine, cut off by a power failure")
    proc = cli("runtime", "run", bundle, "--source", bundle / "samples", "--no-display", "--backend", "tensorrt",
               "--no-build", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc), proc.stderr
    assert "will not deserialize" in proc.stderr and "magic tag" in proc.stderr

    proc = cli("runtime", "run", bundle, "--source", bundle / "samples", "--no-display", "--jsonl",
               tmp_path / "r.jsonl", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "rebuilding" in proc.stderr and "with tensorrt" in proc.stderr
    assert len(read_jsonl(tmp_path / "r.jsonl")) == len(sample_frames(bundle))

    # an engine from another TensorRT version under this one's name: the same report, then a rebuild
    other = engine.read_bytes().replace(b'"version": "10.3.0"', b'"version": "10.2.0"')
    engine.write_bytes(other)
    proc = cli("runtime", "run", bundle, "--source", bundle / "samples", "--no-display", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0 and "not compatible with this version" in proc.stderr


def test_no_build_without_an_engine_is_one_line(digits_bundle, tmp_path):
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display", "--no-build",
               fake_gpu="10.3.0", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert one_line_error(proc), proc.stderr
    assert "no fp16 engine for this device" in proc.stderr and "python -m runtime engine" in proc.stderr


def test_a_classifier_calibrates_by_entropy(fake_gpu, digits_bundle, tmp_path):
    pytest.importorskip("sklearn")  # a desktop package (pip install '.[train]'): not on a board
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("8.5.2")
    bundle = bundle_format.load(str(copy_bundle(digits_bundle, tmp_path)))
    gpu = Gpu()
    try:
        trt_build.build(bundle, calibrated_on(bundle, "digits", 8), gpu, trt,
                        log=io.StringIO())
    finally:
        gpu.close()
    assert calls(trt, "build_serialized_network")[0]["calibration"]["algorithm"] == "IInt8EntropyCalibrator2"


def test_int8_calibration_feeds_preprocessed_frames_and_keeps_its_cache(fake_gpu, pilot_bundle, tmp_path):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build, calibrator
    from runtime.backends.tensorrt.cuda import Gpu

    trt, cuda = fake_gpu("10.3.0")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    gpu = Gpu()
    log = io.StringIO()
    opts = calibrated_on(bundle, "road", 24)
    trt_build.build(bundle, opts, gpu, trt, log=log)
    calibration = calls(trt, "build_serialized_network")[0]["calibration"]
    assert calibration["batches"] == 24 and calibration["batch_size"] == 1 and not calibration["from_cache"]
    assert calibration["algorithm"] == "IInt8MinMaxCalibrator"  # steering: entropy's clipped tails are its value
    low, high = calibration["range"]
    assert 0 <= low < 60 and 150 < high <= 255  # YUV pixels, as the runtime's preprocessing gives PilotNet
    assert "calibrating INT8 on road (24 frames)" in log.getvalue()
    caches = [n for n in os.listdir(os.path.join(bundle.path, "engines")) if n.startswith("calibration-")]
    assert len(caches) == 1

    trt_build.build(bundle, trt_build.BuildOptions("int8", calib_data="road", calib_frames=24, calibration=Unread()),
                    gpu, trt, log=log)
    assert calls(trt, "build_serialized_network")[1]["calibration"]["from_cache"] is True
    assert "reusing the INT8 calibration cache" in log.getvalue()
    cache = os.path.join(bundle.path, "engines", caches[0])
    assert calibrator.calibration_cache_ok(open(cache, "rb").read())  # TensorRT's layout, as the fake writes it
    with open(cache, "r+b") as f:  # cut short in the middle of a scale, as a full disk or a kill would leave it
        f.truncate(os.path.getsize(cache) - 4)
    log = io.StringIO()
    trt_build.build(bundle, opts, gpu, trt, log=log)
    assert "calibration cache %s is damaged; calibrating again" % cache in log.getvalue()
    assert calls(trt, "build_serialized_network")[2]["calibration"]["from_cache"] is False
    assert calibrator.calibration_cache_ok(open(cache, "rb").read())  # and written whole again

    log = io.StringIO()  # no --calib-data: the bundle's few samples, with a warning
    trt_build.build(bundle, trt_build.BuildOptions("int8", max_batch=4), gpu, trt, log=log)
    assert "calibrating on the bundle's %d samples only" % len(bundle.sample_paths) in log.getvalue()
    gpu.close()
    assert cuda.Context.get_current() is None


def test_tensorrt_11_takes_precision_from_the_bundles_variants(fake_gpu, digits_bundle, tmp_path):
    pytest.importorskip("onnx")  # a desktop package (pip install '.[train]'): not on a board
    pytest.importorskip("sklearn")  # a desktop package (pip install '.[train]'): not on a board
    from export import variants
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.errors import UserError
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("11.4.1")
    path = str(copy_bundle(digits_bundle, tmp_path))
    gpu = Gpu()
    with pytest.raises(UserError, match="no int8 variant.*python -m export variants"):
        trt_build.build(bundle_format.load(path), trt_build.BuildOptions("int8"), gpu, trt, log=io.StringIO())
    plan = trt_build.make_plan(trt, gpu, bundle_format.load(path), trt_build.BuildOptions())
    assert plan.precision == "fp32" and "no fp16 variant" in plan.reason

    variants.make(path, "int8", calib_data="digits", calib_frames=64, log=io.StringIO())
    engine = trt_build.build(bundle_format.load(path), trt_build.BuildOptions("int8"), gpu, trt, log=io.StringIO())
    gpu.close()
    assert calls(trt, "parse")[-1]["kind"] == "int8-qdq" and calls(trt, "create_network")[-1]["flags"] == 0
    fields = json.load(open(engine[:-len(".engine")] + ".json"))
    assert fields["model_sha256"] == bundle_format.load(path).model_sha256("int8")  # named by the variant it built


def test_dla_needs_fp16_or_int8_and_a_board_that_has_one(digits_bundle, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = cli("export", "engine", digits_bundle, "--precision", "fp32", "--dla-core", "0", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc) and "DLA runs FP16 or INT8 only" in proc.stderr
    proc = cli("export", "engine", digits_bundle, "--dla-core", "0", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc) and "0 DLA core(s)" in proc.stderr and "Orin Nano has none" in proc.stderr

    bundle = copy_bundle(digits_bundle, tmp_path)
    env["FAKE_DLA_CORES"] = "2"
    proc = cli("export", "engine", bundle, "--dla-core", "1", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert any(n.startswith("fp16-b1-dla1-trt10.3.0-") for n in os.listdir(bundle / "engines"))
    proc = cli("runtime", "run", bundle, "--source", bundle / "samples", "--no-display", "--dla-core", "1",
               "--no-build", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr


def test_parser_errors_are_listed_with_their_node(fake_gpu, digits_bundle, tmp_path):
    pytest.importorskip("onnx")  # a desktop package (pip install '.[train]'): not on a board
    import onnx

    from runtime import bundle as bundle_format

    bundle = copy_bundle(digits_bundle, tmp_path)
    model = onnx.load(str(bundle / "model.onnx"))
    model.opset_import[0].version = 18  # newer than TensorRT 8.5/8.6's parser reads
    onnx.save(model, str(bundle / "model.onnx"))
    manifest = json.load(open(bundle / "manifest.json"))
    manifest["model"]["sha256"] = bundle_format.sha256_file(str(bundle / "model.onnx"))
    bundle_format.write_manifest(str(bundle), manifest)
    proc = cli("export", "engine", bundle, fake_gpu="8.5.2", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "ONNX parser: node" in lines[-2] and "opset 18" in lines[-2]
    assert "ONNX parser rejected" in lines[-1] and "--opset 17" in lines[-1]

    model.graph.node[1].op_type = "FakeUnsupportedOp"  # an op the parser has no importer for
    model.opset_import[0].version = 15
    onnx.save(model, str(bundle / "model.onnx"))
    manifest["model"]["sha256"] = bundle_format.sha256_file(str(bundle / "model.onnx"))
    bundle_format.write_manifest(str(bundle), manifest)
    proc = cli("export", "engine", bundle, fake_gpu="10.3.0", env={"XDG_CACHE_HOME": str(tmp_path)})
    assert proc.returncode == 2
    assert "node 1 (FakeUnsupportedOp %s)" % model.graph.node[1].name in proc.stderr


def test_a_failed_build_is_one_line_with_tensorrts_reason(digits_bundle, tmp_path):
    proc = cli("export", "engine", digits_bundle, fake_gpu="10.3.0",
               env={"XDG_CACHE_HOME": str(tmp_path), "FAKE_TRT_BUILD_FAILS": "1"})
    lines = proc.stderr.strip().splitlines()  # "building ..." (what it was doing), then the error
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(lines) == 2, proc.stderr
    assert lines[-1].startswith("python -m export: error: ")
    assert "could not build the engine (FAKE: out of memory while building)" in proc.stderr
    assert "--workspace" in proc.stderr


def test_the_cuda_context_is_current_only_while_the_backend_works(fake_gpu, digits_bundle, pilot_bundle, tmp_path):
    """A model made in a thread that has ended is used and closed from another, and two models share a
    thread: each pushes and pops its own context, none is left on any stack (where pycuda would abort the
    process when the thread ends), none leaks."""
    from runtime.model import Model

    _, cuda = fake_gpu("10.3.0")
    bundle, pilot = copy_bundle(digits_bundle, tmp_path), copy_bundle(pilot_bundle, tmp_path, "pilot")
    made = {}
    maker = threading.Thread(target=lambda: made.update(model=Model(str(bundle), backend="tensorrt")))
    maker.start()
    maker.join()
    model = made["model"]
    assert cuda.Context.get_current() is None  # not current here between uses...
    with pytest.raises(cuda.LogicError, match="invalid device context"):
        cuda.mem_alloc(16)  # ...so CUDA calls outside the backend fail here, as they would on a real GPU
    other = Model(str(pilot), backend="tensorrt")  # a second model in this thread
    digit = model(sample_frames(bundle)[0])
    steer = other(sample_frames(pilot)[0])
    assert cuda.Context.get_current() is None and digit["label"] in [str(i) for i in range(10)]
    assert -2 < steer["steering"] < 2
    model.close()  # made in the ended thread, closed here: destroyed, not leaked
    other.close()
    import gc

    gc.collect()
    assert cuda.fake_stats["destroyed_contexts"] == 2 and cuda.fake_stats["leaked_contexts"] == 0
    assert cuda.fake_stats["aborts"] == 0


def test_auto_picks_tensorrt_where_it_and_a_gpu_are(digits_bundle, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display", "--quiet",
               fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "with tensorrt" in proc.stderr and "auto: TensorRT and a CUDA GPU are here" in proc.stderr
    assert "building one now" in proc.stderr

    env["FAKE_GPU_COUNT"] = "0"
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display", "--quiet",
               fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0 and "with onnxruntime" in proc.stderr and "no CUDA GPU is visible" in proc.stderr
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display",
               "--backend", "tensorrt", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc) and "no CUDA GPU is visible" in proc.stderr


def test_missing_pycuda_or_tensorrt_says_how_to_get_them(fake_gpu, digits_bundle, monkeypatch):
    from runtime.backends import choose
    from runtime.errors import UserError

    fake_gpu("10.3.0")
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)  # as if pycuda never built
    with pytest.raises(UserError, match="pycuda is not installed.*nvcc must be on PATH"):
        choose("tensorrt")
    assert choose("auto")[0] == "onnxruntime"

    proc = cli("export", "engine", digits_bundle)  # no fakes on the path: this machine has no TensorRT
    assert one_line_error(proc) and "TensorRT is not installed" in proc.stderr and "pip install tensorrt" in proc.stderr


def test_building_on_the_board_never_imports_tensorflow(digits_bundle, tmp_path):
    import subprocess

    bundle = copy_bundle(digits_bundle, tmp_path)
    code = ("import sys\n"
            "from export.__main__ import _main\n"
            "assert _main(['engine', sys.argv[1]]) == 0\n"
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, FAKES]), XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


# -- issue 11's defects, each shown failing before its fix ---------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_numpy_types_come_from_datatype_names_not_nptype(version, fake_gpu, monkeypatch):
    """8.5.2's trt.nptype names np.bool, gone in numpy 1.24 (JetPack 5 gets 1.23.5 now, but a venv may not)."""
    from runtime.backends.tensorrt import api as trtlib
    from runtime.errors import UserError

    trt, _ = fake_gpu(version)
    if not hasattr(np, "bool"):
        monkeypatch.setattr(np, "bool", np.bool_, raising=False)  # the numpy < 1.24 this machine lacks
    monkeypatch.delattr(np, "bool")  # numpy >= 1.24
    if version.startswith("8."):
        with pytest.raises(AttributeError):
            trt.nptype(trt.DataType.FLOAT)  # what every run and verify died of on JetPack 5
    expected = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_,
                "UINT8": np.uint8}
    for name, dtype in expected.items():
        assert trtlib.numpy_dtype(getattr(trt.DataType, name)) == np.dtype(dtype)
    if hasattr(trt.DataType, "BF16"):
        with pytest.raises(UserError, match="BF16"):
            trtlib.numpy_dtype(trt.DataType.BF16)


@pytest.mark.parametrize("cc, precision", [((8, 7), "fp16"), ((5, 3), "fp16"), ((6, 1), "fp32"), ((5, 2), "fp32")])
def test_the_default_precision_comes_from_the_compute_capability_without_a_builder(fake_gpu, digits_bundle, cc,
                                                                                   precision):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("10.3.0", FAKE_GPU_CC="%d.%d" % cc)
    gpu = Gpu()
    try:
        plan = trt_build.make_plan(trt, gpu, bundle_format.load(str(digits_bundle)), trt_build.BuildOptions())
    finally:
        gpu.close()
    assert plan.precision == precision
    assert calls(trt, "Builder") == []  # no TensorRT builder (seconds of start-up) just to read one flag


def test_dla_engines_have_static_shapes(fake_gpu, digits_bundle, tmp_path):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.errors import UserError
    from runtime.backends.tensorrt.cuda import Gpu

    with pytest.raises(UserError, match="batch 1 only"):
        trt_build.BuildOptions("fp16", dla_core=0, max_batch=4)
    trt, _ = fake_gpu("10.3.0", FAKE_DLA_CORES=2)
    gpu = Gpu()
    bundle = bundle_format.load(str(copy_bundle(digits_bundle, tmp_path)))
    trt_build.build(bundle, trt_build.BuildOptions("fp16", dla_core=0), gpu, trt, log=io.StringIO())
    gpu.close()
    low, opt, high = calls(trt, "build_serialized_network")[0]["profile"]
    assert low == opt == high and low[0] == 1  # min = opt = max, or the DLA silently gives every layer back


def test_an_int8_engine_is_named_by_its_calibration(fake_gpu, pilot_bundle, tmp_path):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("10.3.0")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    gpu = Gpu()
    log = io.StringIO()
    road = trt_build.build(bundle, calibrated_on(bundle, "road", 24), gpu, trt,
                           log=log)
    again = trt_build.build(bundle, calibrated_on(bundle, "road", 24), gpu, trt,
                            log=log)
    samples = trt_build.build(bundle, trt_build.BuildOptions("int8"), gpu, trt, log=log)
    gpu.close()
    assert road == again  # the same calibration: the same engine
    assert samples != road  # other calibration data: another engine, not the first one overwritten or reused
    assert {json.load(open(p[:-len(".engine")] + ".json"))["calibration"] for p in (road, samples)} \
        and os.path.isfile(road) and os.path.isfile(samples)


def test_a_context_is_on_no_stack_between_uses(fake_gpu):
    """pycuda aborts the process when a thread ends with a context on its stack (seen on an H100; the fake
    counts it): a Gpu's context is current only inside current(), so threads may end, and close() works
    from any thread, outside current()."""
    from runtime.backends.tensorrt.cuda import Gpu

    _, cuda = fake_gpu("10.3.0")
    box = {}
    maker = threading.Thread(target=lambda: box.update(gpu=Gpu()))
    maker.start()
    maker.join()
    gpu = box["gpu"]
    with gpu.current():
        with gpu.current():  # nested: no second push
            assert cuda.Context.get_current() is gpu.context and len(cuda._stack()) == 1
        with pytest.raises(RuntimeError, match="inside"):
            gpu.close()
    assert cuda.Context.get_current() is None
    gpu.close()
    with pytest.raises(RuntimeError, match="closed"):
        with gpu.current():
            pass
    import gc

    gc.collect()
    assert cuda.fake_stats["destroyed_contexts"] == 1 and cuda.fake_stats["leaked_contexts"] == 0
    assert cuda.fake_stats["aborts"] == 0

    def forgetful():  # what the Gpu no longer does: a context left current when its thread ends
        cuda.Device(0).make_context()

    thread = threading.Thread(target=forgetful)
    thread.start()
    thread.join()
    gc.collect()
    assert cuda.fake_stats["aborts"] == 1  # the fake reports it where real pycuda aborts


def test_an_engine_with_fp16_inputs_and_outputs_takes_and_gives_float32(fake_gpu, digits_bundle, tmp_path):
    """Strongly typed FP16 models can have half-precision I/O: the backend converts at its buffers."""
    from runtime.model import Model

    trt, cuda = fake_gpu("10.3.0", FAKE_TRT_IO_DTYPE="HALF")
    bundle = copy_bundle(digits_bundle, tmp_path)
    frames = sample_frames(bundle)
    with Model(str(bundle), backend="onnxruntime") as reference:
        expected = reference.predict(frames)[0]
    with Model(str(bundle), backend="tensorrt", precision="fp16") as model:
        assert {t.dtype for t in model.backend.io.tensors} == {np.dtype(np.float16)}
        got = model.predict(frames)[0]
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-2  # half-precision I/O on probabilities
    assert cuda.fake_stats["pageable_copies"] == 0


def test_the_runtime_takes_the_newest_int8_engine(fake_gpu, pilot_bundle, tmp_path):
    """A first run calibrates on the bundle's samples (with a warning); an engine built afterwards with real
    calibration data is the one the next run uses."""
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt import TensorRTBackend
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("10.3.0")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    with TensorRTBackend(bundle, precision="int8", log=io.StringIO()) as first:
        samples_engine = first.path
    gpu = Gpu()
    road_engine = trt_build.build(bundle, calibrated_on(bundle, "road", 24), gpu,
                                  trt, log=io.StringIO())
    gpu.close()
    os.utime(samples_engine, (1, 1))  # older, whatever the file system's time resolution
    with TensorRTBackend(bundle, precision="int8", log=io.StringIO()) as second:
        assert second.path == road_engine != samples_engine


def test_a_ctrl_c_inside_a_callback_stops_the_build_and_keeps_no_partial_cache(fake_gpu, pilot_bundle, tmp_path,
                                                                                monkeypatch):
    """TensorRT's trampolines swallow what a callback raises; a Ctrl-C during calibration must still end the
    build, with no calibration cache from the frames so far (the next build would reuse it silently)."""
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build, calibrator
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("10.3.0")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    real_batches = calibrator.calibration_batches

    def interrupted(*args):
        batches = real_batches(*args)

        def feed():
            yield from batches[:3]
            raise KeyboardInterrupt

        return feed()

    monkeypatch.setattr(calibrator, "calibration_batches", interrupted)
    gpu = Gpu()
    with pytest.raises(KeyboardInterrupt):
        trt_build.build(bundle, calibrated_on(bundle, "road", 24), gpu, trt,
                        log=io.StringIO())
    gpu.close()
    engines_dir = os.path.join(bundle.path, "engines")
    left = os.listdir(engines_dir) if os.path.isdir(engines_dir) else []
    assert not [n for n in left if n.startswith("calibration-") or n.endswith(".engine")], left


def test_tensorrt_that_cannot_start_cuda_is_one_line_with_its_warning_as_the_reason(digits_bundle, tmp_path):
    """TensorRT 8.5+ logs "CUDA initialization failure" as a WARNING, then Builder/Runtime return null."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_TRT_NO_CUDA": "1"}
    bundle = copy_bundle(digits_bundle, tmp_path)  # no engines: TensorRT must start to build one
    for args in (("export", "engine", bundle),
                 ("runtime", "run", bundle, "--backend", "tensorrt", "--source", bundle / "samples", "--no-display")):
        proc = cli(*args, fake_gpu="10.3.0", env=env)
        assert one_line_error(proc), proc.stderr
        assert "does not start" in proc.stderr and "CUDA initialization failure with error: 35" in proc.stderr


# -- the board's first run: engine files, Ctrl-C ----------------------------------------------------------------
def _build_int8(trt, bundle):
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    gpu = Gpu()
    try:
        return trt_build.build(bundle, calibrated_on(bundle, "road", 8), gpu, trt,
                               log=io.StringIO())
    finally:
        gpu.close()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_engines_and_caches_are_written_with_the_umasks_mode(fake_gpu, pilot_bundle, tmp_path, umask, mode):
    """An engine built with sudo must stay readable by the user who runs the camera demo: engines, their JSON,
    timing and calibration caches get the mode any new file gets (mkstemp's 0600 made them root's only)."""
    from runtime import bundle as bundle_format

    trt, _ = fake_gpu("8.5.2")  # INT8 by calibration: an engine, its JSON, a timing and a calibration cache
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    old = os.umask(umask)
    try:
        _build_int8(trt, bundle)
    finally:
        os.umask(old)
    made = os.listdir(os.path.join(bundle.path, "engines"))
    assert {n.rsplit(".", 1)[-1] for n in made} == {"engine", "json", "cache"} and len(made) == 4, made
    assert {n: oct(os.stat(os.path.join(bundle.path, "engines", n)).st_mode & 0o777) for n in made} == \
        {n: oct(mode) for n in made}


def test_an_engine_that_cannot_be_read_is_one_line(fake_gpu, digits_bundle, tmp_path, monkeypatch):
    """Root reads any file, so the refusal a user meets (an engine left 0600 by a build under sudo) is made here by
    open() itself; the message names the file, its owner and the fix."""
    import builtins

    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import TensorRTBackend, engines
    from runtime.errors import UserError

    fake_gpu("10.3.0")
    bundle = copy_bundle(digits_bundle, tmp_path)
    TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", log=io.StringIO()).activate().deactivate()
    engine = [str(bundle / "engines" / n) for n in os.listdir(bundle / "engines") if n.endswith(".engine")][0]
    real_open = builtins.open

    def refusing(path, *args, **kwargs):
        if str(path) == engine:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(engines, "open", refusing, raising=False)  # engines.read's open
    with pytest.raises(UserError) as err:
        TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", build=False, log=io.StringIO()).activate()
    message = str(err.value)
    assert message.startswith("cannot read the engine %s (Permission denied, owned by " % engine), message
    assert "chmod a+r" in message and "\n" not in message


def test_a_ctrl_c_caught_by_the_logger_while_deserializing_is_raised(fake_gpu, digits_bundle, tmp_path, monkeypatch):
    """TensorRT's trampoline drops what the logger raises; deserializing a large engine takes seconds on a Nano,
    and a Ctrl-C landing in the logger then must still stop the run."""
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import TensorRTBackend

    trt, _ = fake_gpu("10.3.0")
    bundle = copy_bundle(digits_bundle, tmp_path)
    TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", log=io.StringIO()).activate().deactivate()

    class CtrlC:  # a message whose reading is interrupted: the KeyboardInterrupt is raised inside log()
        def __str__(self):
            raise KeyboardInterrupt

    real = trt.Runtime.deserialize_cuda_engine

    def deserialize(self, data):
        trt._log(self.logger, trt.Logger.WARNING, CtrlC())
        return real(self, data)

    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", deserialize)
    backend = TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", build=False, log=io.StringIO())
    with pytest.raises(KeyboardInterrupt):
        backend.activate()


def test_an_engines_folder_that_links_out_of_the_bundle_is_refused(digits_bundle, tmp_path):
    bundle = copy_bundle(digits_bundle, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), str(bundle / "engines"))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    for args in (("runtime", "engine", bundle, "--precision", "fp32"),
                 ("runtime", "run", bundle, "--backend", "tensorrt", "--source", bundle / "samples", "--no-display")):
        proc = cli(*args, fake_gpu="10.3.0", env=env)
        assert one_line_error(proc), proc.stderr
        assert "is a link out of the bundle" in proc.stderr
    assert os.listdir(str(outside)) == [] and not (tmp_path / "cache").exists()


def test_an_engine_file_that_links_out_is_not_read(fake_gpu, digits_bundle, tmp_path):
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import TensorRTBackend

    fake_gpu("10.3.0")
    bundle = copy_bundle(digits_bundle, tmp_path)
    with TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", log=io.StringIO()) as backend:
        engine = backend.path
    moved = str(tmp_path / "elsewhere.engine")
    os.replace(engine, moved)
    os.symlink(moved, engine)
    log = io.StringIO()
    with TensorRTBackend(bundle_format.load(str(bundle)), precision="fp32", log=log) as backend:  # built again
        assert backend.path == engine and not os.path.islink(engine)
    assert "building a TensorRT engine" in log.getvalue()


def test_tensorrt_before_9_says_a_build_cannot_be_cancelled_and_a_ctrl_c_keeps_nothing(fake_gpu, pilot_bundle,
                                                                                     tmp_path, monkeypatch):
    """TensorRT 8.5 (JetPack 5) has no IProgressMonitor: the build says so before it starts, and a Ctrl-C that a
    callback caught during it ends it with nothing kept (no engine, no timing or calibration cache)."""
    from runtime import bundle as bundle_format
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    trt, _ = fake_gpu("8.5.2")
    assert not hasattr(trt, "IProgressMonitor")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    real = trt.Builder.build_serialized_network

    class CtrlC:
        def __str__(self):
            raise KeyboardInterrupt

    def build(self, network, config):
        trt._log(self.logger, trt.Logger.WARNING, CtrlC())  # a Ctrl-C landing in the logger mid-build
        return real(self, network, config)

    monkeypatch.setattr(trt.Builder, "build_serialized_network", build)
    log = io.StringIO()
    gpu = Gpu()
    try:
        with pytest.raises(KeyboardInterrupt):
            trt_build.build(bundle, trt_build.BuildOptions("fp16"), gpu, trt, log=log)
    finally:
        gpu.close()
    assert "TensorRT 8.5.2 cannot cancel a build once it runs: a first Ctrl-C stops when it ends" in log.getvalue()
    engines_dir = os.path.join(bundle.path, "engines")
    assert not os.path.isdir(engines_dir) or os.listdir(engines_dir) == []


def test_ctrl_c_during_an_uncancellable_build_is_said_at_once_and_twice_quits(fake_gpu, monkeypatch):
    """Python runs a signal handler only when the main thread runs Python, which during a TensorRT 8 build is
    only inside callbacks; the wakeup descriptor is written by the C-level handler at once. Signals are sent to
    this process, with a Python handler that does nothing, as when the main thread is inside TensorRT."""
    import signal

    from runtime.backends.tensorrt import api as trtlib
    from runtime.backends.tensorrt.build import Ticker, Uncancellable

    trt, _ = fake_gpu("8.5.2")
    log, exits = io.StringIO(), []
    caught = trtlib.Caught()
    previous = signal.signal(signal.SIGINT, lambda *a: None)
    watch = Uncancellable(trt, Ticker("building engine", io.StringIO()), caught, log, exit=exits.append).start()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        deadline = threading.Event()
        for _ in range(100):  # the watcher reads the byte within its 0.5 s select; wait for it, not for a time
            if caught.exception is not None:
                break
            deadline.wait(0.05)
        assert isinstance(caught.exception, KeyboardInterrupt)
        assert "Ctrl-C: TensorRT 8.5.2 cannot cancel a build once it runs" in log.getvalue() and not exits
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            if exits:
                break
            deadline.wait(0.05)
        assert exits == [130] and "Ctrl-C again: quitting at once" in log.getvalue()
    finally:
        watch.stop()
        signal.signal(signal.SIGINT, previous)
    assert signal.set_wakeup_fd(-1) == -1  # the wakeup descriptor was given back


def test_engine_places_that_are_not_files_are_one_line_before_building(digits_bundle, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    bundle = copy_bundle(digits_bundle, tmp_path, "as-file")
    (bundle / "engines").write_text("not a folder")
    proc = cli("runtime", "engine", bundle, "--precision", "fp32", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc) and "engines is not a folder" in proc.stderr, proc.stderr
    bundle = copy_bundle(digits_bundle, tmp_path, "dangling")
    os.symlink("nowhere", str(bundle / "engines"))
    proc = cli("runtime", "engine", bundle, "--precision", "fp32", fake_gpu="10.3.0", env=env)
    assert one_line_error(proc) and "a link to nothing" in proc.stderr, proc.stderr
    bundle = copy_bundle(digits_bundle, tmp_path, "timing-dir")
    proc = cli("runtime", "engine", bundle, "--precision", "fp32", "--timing-cache", tmp_path, fake_gpu="10.3.0",
               env=env)
    assert one_line_error(proc) and "in the way of the timing cache" in proc.stderr, proc.stderr
    assert "building a TensorRT engine" not in proc.stderr  # refused before minutes of building, not after
    proc = cli("runtime", "engine", bundle, "--precision", "fp32", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    engine = [n for n in os.listdir(bundle / "engines") if n.endswith(".engine")][0]
    for name in (engine, engine[:-len(".engine")] + ".json"):  # a folder where the engine or its JSON goes
        for n in os.listdir(bundle / "engines"):
            os.remove(str(bundle / "engines" / n))
        (bundle / "engines" / name).mkdir()
        proc = cli("runtime", "engine", bundle, "--precision", "fp32", fake_gpu="10.3.0", env=env)
        assert one_line_error(proc) and "is in the way of the engine" in proc.stderr, proc.stderr
        os.rmdir(str(bundle / "engines" / name))


def test_caches_that_link_out_of_the_bundle_are_not_read(fake_gpu, pilot_bundle, tmp_path):
    """A timing or calibration cache in a bundle's engines/ that links elsewhere is taken as no cache (and the
    build's own replaces the link): a copied bundle must not make the board read, or calibrate from, its files."""
    from runtime import bundle as bundle_format

    trt, _ = fake_gpu("8.5.2")
    bundle = bundle_format.load(str(copy_bundle(pilot_bundle, tmp_path)))
    _build_int8(trt, bundle)  # real caches, to be moved out and linked to
    engines_dir = os.path.join(bundle.path, "engines")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in os.listdir(engines_dir):
        if name.endswith(".cache"):
            os.replace(os.path.join(engines_dir, name), str(outside / name))
            os.symlink(str(outside / name), os.path.join(engines_dir, name))
        else:
            os.remove(os.path.join(engines_dir, name))
    (outside / [n for n in os.listdir(str(outside)) if n.startswith("timing-")][0]).write_bytes(b"not a cache")
    kept = {n: (outside / n).read_bytes() for n in os.listdir(str(outside))}
    from runtime.backends.tensorrt import build as trt_build
    from runtime.backends.tensorrt.cuda import Gpu

    log = io.StringIO()
    gpu = Gpu()
    try:
        trt_build.build(bundle, calibrated_on(bundle, "road", 8), gpu, trt, log=log)
    finally:
        gpu.close()
    assert "reusing the INT8 calibration cache" not in log.getvalue()  # calibrated again, from its own frames
    assert {n: (outside / n).read_bytes() for n in os.listdir(str(outside))} == kept  # nothing outside touched
    assert not any(os.path.islink(os.path.join(engines_dir, n)) for n in os.listdir(engines_dir))


def test_calibration_frames_from_a_folder_named_in_any_bytes(digits_bundle, tmp_path):
    import cv2

    bundle = copy_bundle(digits_bundle, tmp_path)
    frames = os.path.join(os.fsencode(str(tmp_path)), b"frames_\xff")
    os.mkdir(frames)
    for i, name in enumerate(sorted(os.listdir(str(bundle / "samples")))[:8]):
        if name.endswith(".png"):
            image = cv2.imread(str(bundle / "samples" / name))
            with open(os.path.join(frames, b"f%d.png" % i), "wb") as f:
                f.write(cv2.imencode(".png", image)[1].tobytes())
    proc = cli("runtime", "engine", bundle, "--precision", "int8", "--calib-data", os.fsdecode(frames),
               fake_gpu="8.5.2", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert any(n.startswith("calibration-") for n in os.listdir(bundle / "engines"))
