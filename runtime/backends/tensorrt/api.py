"""TensorRT 8.5 to 11 behind a few names: load it, start it, say what this device is, deserialize an
engine, and describe/bind/execute its input and output tensors.

Generations are told apart by what the module has (hasattr), never by parsing its version:
- the tensor API (num_io_tensors, set_input_shape, set_tensor_address, execute_async_v3): 8.5 and later,
  the only one used (JetPack 5.1 ships 8.5.2; older TensorRT is refused with what to install);
- weak typing (BuilderFlag.FP16/INT8, INT8 calibrators): up to 10.x; TensorRT 11 takes precision from a
  strongly typed ONNX instead (the bundle's fp16/int8 variants).
Names are NVIDIA's (python/src/infer/pyCore.cpp); tests/runtime/backends/tensorrt/test_real_tensorrt.py
checks every name this code touches against the real binding modules of 8.6.1, 10.3.0, 10.13 and 11.4.

Only this package (runtime/backends/tensorrt/) imports tensorrt, and only when asked to.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

from ... import platform
from ...errors import UserError
from . import engines

TRT8_MAX_OPSET = 17  # the newest ONNX opset TensorRT 8.x's parser reads (JetPack 5, 6.0)

TENSORRT_HOWTO = ("on a Jetson, JetPack's python3-libnvinfer seen through a venv made with "
                  "--system-site-packages; on a desktop with an NVIDIA GPU, pip install tensorrt")
START_HOWTO = ("check that this process sees a CUDA GPU (nvidia-smi, or on a Jetson: is the user in the video "
               "and render groups?; in a container: --runtime nvidia) and that the NVIDIA driver is new enough "
               "for this TensorRT's CUDA")
# numpy types of TensorRT's DataType members, by name: trt.nptype is broken on 8.5.2 under numpy 1.24-1.26
# (its table names np.bool; NVIDIA/TensorRT issues 2557, 2567). BF16, FP8, INT4, FP4, E8M0 have none.
NUMPY_TYPES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "INT64": "int64",
               "BOOL": "bool_", "UINT8": "uint8"}


def load():
    """The tensorrt module, or a UserError saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise UserError("TensorRT is not installed (%s): %s" % (exc, TENSORRT_HOWTO)) from None
    if not has_tensor_api(tensorrt):
        raise UserError("TensorRT %s is too old: the runtime needs 8.5 or later (JetPack 5.1 or later; on a desktop "
                        "pip install tensorrt)" % tensorrt.__version__)
    return tensorrt


def has_tensor_api(trt) -> bool:
    return hasattr(trt.ICudaEngine, "num_io_tensors")


def has_weak_typing(trt) -> bool:
    """Whether the builder takes FP16/INT8 as flags (8.x-10.x) rather than from the ONNX (11)."""
    return hasattr(trt.BuilderFlag, "FP16")


def describe(trt) -> str:
    api = "tensor API" if has_tensor_api(trt) else "no tensor API: older than 8.5, not supported"
    typing = "precision by builder flags" if has_weak_typing(trt) else "strongly typed"
    return "TensorRT %s (%s, %s)" % (trt.__version__, api, typing)


def fast_fp16(compute_capability) -> bool:
    """Whether the GPU runs FP16 at full rate or better (what Builder.platform_has_fast_fp16 answers, without
    making a Builder: that starts CUDA and TensorRT, and is deprecated in 10.5, removed in 11): sm 5.3
    (Jetson Nano/TX1), 6.0, 6.2 (TX2) and 7.0 and later (Xavier 7.2, Orin 8.7, Thor); not 6.1 or other 5.x."""
    major, minor = (int(v) for v in tuple(compute_capability)[:2])
    return major >= 7 or (major, minor) in ((5, 3), (6, 0), (6, 2))


def numpy_dtype(data_type, what="tensor"):
    """The numpy dtype of a trt.DataType member, by its name (not trt.nptype, see NUMPY_TYPES)."""
    name = getattr(data_type, "name", None) or str(data_type).split(".")[-1]
    if name not in NUMPY_TYPES:
        raise UserError("%s is of TensorRT type %s, which numpy has no type for: export the model with float32, "
                        "float16 or integer inputs and outputs" % (what, name))
    return np.dtype(NUMPY_TYPES[name])


class Caught:
    """The first exception a Python callback raised inside TensorRT, whose trampolines only print it and go
    on ("Exception caught in log()"), kept to be raised once TensorRT returns. One per build, shared by the
    logger, the progress monitor and the calibrator, so that a Ctrl-C landing in any of them stops the rest:
    the monitor cancels the build, the calibrator feeds no more and writes no cache."""

    def __init__(self):
        self.exception = None

    def keep(self, exc):
        if self.exception is None:
            self.exception = exc

    def raise_it(self):
        if self.exception is not None:
            exc, self.exception = self.exception, None
            raise exc


def logger(trt, echo=True, out=None, caught=None):
    """A TensorRT logger that keeps the errors and warnings (so the reason goes into our one-line messages)
    and prints warnings (and, with echo, errors) to stderr, or holds them while `holding` (see _started);
    warnings that contain one of `quiet` are kept, not printed (build.py's DLA fallback: one line of its own)."""
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors, self.warnings, self.held = [], [], []
            self.holding = False
            self.caught = caught or Caught()
            self.quiet = ()  # warnings containing one of these are kept but not printed (said otherwise)

        def log(self, severity, msg):
            try:
                severity = int(severity)  # pybind11 enums compare reliably only as ints
                text = str(msg).strip()
                if severity <= int(trt.ILogger.Severity.ERROR):
                    self.errors.append(text)
                    if not echo:
                        return
                elif severity <= int(trt.ILogger.Severity.WARNING):
                    self.warnings.append(text)
                    if any(q in text for q in self.quiet):
                        return
                if severity <= int(trt.ILogger.Severity.WARNING):
                    if self.holding:
                        self.held.append(text)
                    else:
                        print("TensorRT: %s" % text, file=out or sys.stderr)
            except BaseException as exc:  # noqa: BLE001 (a Ctrl-C lands here most often during a build)
                self.caught.keep(exc)

        def release_held(self):
            self.holding = False
            for text in self.held:
                print("TensorRT: %s" % text, file=out or sys.stderr)
            self.held = []

        def last_error(self, default=""):
            """The last error TensorRT logged, else its last warning (TensorRT 8.5+ logs a CUDA start-up
            failure as a warning), else default."""
            return self.errors[-1] if self.errors else self.warnings[-1] if self.warnings else default

    return Logger()


def _started(trt, factory, name, log):
    """trt.Builder(log) or trt.Runtime(log); TensorRT that cannot start CUDA (no GPU visible, a driver that
    does not fit, a container without the GPU) makes pybind11 raise TypeError "factory function returned
    nullptr": that becomes one line with what TensorRT logged and what to check."""
    log.holding = True  # what TensorRT says while it starts goes into our one line if it does not start
    try:
        started = factory(log)
    except TypeError as exc:
        if "nullptr" not in str(exc):
            log.release_held()
            raise
        raise UserError("TensorRT %s does not start: trt.%s() returned nothing (%s); %s"
                        % (trt.__version__, name, log.last_error("TensorRT logged no reason"), START_HOWTO)) from None
    log.release_held()
    return started


def builder(trt, log):
    return _started(trt, trt.Builder, "Builder", log)


def runtime(trt, log):
    return _started(trt, trt.Runtime, "Runtime", log)


def this_device(trt, gpu, root: str = "/") -> engines.Device:
    info = gpu.info()
    return engines.Device(info["name"], info["compute_capability"], info["sm_count"], trt.__version__,
                          board=platform.board_model(root))


def deserialize(trt, log, plan: bytes, dla_core=None):
    """(runtime, engine); engine is None when this TensorRT cannot read the plan (other version, corrupt)."""
    rt = runtime(trt, log)
    if dla_core is not None:
        rt.DLA_core = int(dla_core)
    try:
        engine = rt.deserialize_cuda_engine(plan)
    except Exception:  # some versions raise instead of returning None
        engine = None
    return rt, engine  # the runtime is kept beside its engine: it must outlive it


class Tensor:
    """One input or output of an engine: name, direction, numpy dtype, shape (-1 = dynamic), max batch."""

    def __init__(self, name, is_input, dtype, shape, max_shape):
        self.name, self.is_input = name, is_input
        self.dtype = np.dtype(dtype)
        self.shape, self.max_shape = tuple(shape), tuple(max_shape)

    def __repr__(self):
        return "Tensor(%r, %s, %s %s)" % (self.name, "in" if self.is_input else "out", self.dtype, self.shape)


def _refused(tensor, shape, log):
    static = len(shape) != len(tensor.shape) or any(d != -1 and d != s for d, s in zip(tensor.shape, shape))
    why = ("the engine's input is %s (-1 = any)" % (tensor.shape,) if static
           else "the engine's profile allows up to %s" % (tensor.max_shape,))
    reason = log.last_error("") if log is not None else ""
    return UserError("TensorRT refused input shape %s for '%s' (%s)%s" % (tuple(shape), tensor.name, why,
                                                                          ": " + reason if reason else ""))


class TensorAPI:
    """TensorRT 8.5+: tensors by name, addresses set one by one, execute_async_v3."""

    def __init__(self, trt, engine, log=None):
        self.trt, self.log = trt, log
        self.tensors = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(engine.get_tensor_shape(name))
            max_shape = tuple(engine.get_tensor_profile_shape(name, 0)[2]) if is_input and -1 in shape else shape
            dtype = numpy_dtype(engine.get_tensor_dtype(name), "the engine's tensor '%s'" % name)
            self.tensors.append(Tensor(name, is_input, dtype, shape, max_shape))

    def set_input_shape(self, context, tensor, shape):
        if not context.set_input_shape(tensor.name, tuple(shape)):
            raise _refused(tensor, shape, self.log)

    def shape(self, context, tensor):
        return tuple(context.get_tensor_shape(tensor.name))

    def execute(self, context, addresses, stream_handle):
        for tensor, address in zip(self.tensors, addresses):
            context.set_tensor_address(tensor.name, address)
        return context.execute_async_v3(stream_handle)


def guarded(fallback):
    """A callback that keeps what it raises in self.caught (a trt.Caught shared by the build's logger,
    monitor and calibrator) and answers `fallback` (None stops calibration, False cancels the build) instead
    of leaving the exception to TensorRT's trampoline."""

    def wrap(method):
        @functools.wraps(method)
        def call(self, *args):
            try:
                return method(self, *args)
            except BaseException as exc:  # noqa: BLE001 (raised again after the build, with its traceback)
                self.caught.keep(exc)
                return fallback

        return call

    return wrap
