"""TensorRT 8.5 to 11, both API generations, behind a few names: load it, say what this device is,
deserialize an engine, and describe/bind/execute its input and output tensors.

Generations are told apart by what the module has (hasattr), never by parsing its version:
- the tensor API (num_io_tensors, set_input_shape, set_tensor_address, execute_async_v3): 8.5 and later;
- the bindings API (num_bindings, binding_is_input, execute_async_v2): up to 8.6, used only where the tensor
  API is missing;
- weak typing (BuilderFlag.FP16/INT8, platform_has_fast_fp16, INT8 calibrators): up to 10.x; TensorRT 11
  takes precision from a strongly typed ONNX instead (the bundle's fp16/int8 variants).

Only this module, trt_build.py and backends/tensorrt.py import tensorrt, and only when asked to.
"""

from __future__ import annotations

import numpy as np

from . import engines
from .cli import UserError

TENSORRT_HOWTO = ("on a Jetson, JetPack's python3-libnvinfer seen through a venv made with "
                  "--system-site-packages; on a desktop with an NVIDIA GPU, pip install tensorrt")


def load():
    """The tensorrt module, or a UserError saying how to get it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise UserError("TensorRT is not installed (%s): %s" % (exc, TENSORRT_HOWTO)) from None
    return tensorrt


def has_tensor_api(trt) -> bool:
    return hasattr(trt.ICudaEngine, "num_io_tensors")


def has_weak_typing(trt) -> bool:
    """Whether the builder takes FP16/INT8 as flags (8.x-10.x) rather than from the ONNX (11)."""
    return hasattr(trt.BuilderFlag, "FP16")


def describe(trt) -> str:
    api = "tensor API" if has_tensor_api(trt) else "bindings API"
    typing = "precision by builder flags" if has_weak_typing(trt) else "strongly typed"
    return "TensorRT %s (%s, %s)" % (trt.__version__, api, typing)


def logger(trt, echo=True, out=None):
    """A TensorRT logger that keeps the errors (so they go into our one-line messages) and prints warnings
    (and, with echo, errors) to stderr."""
    import sys

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []

        def log(self, severity, msg):
            severity = int(severity)  # pybind11 enums compare reliably only as ints
            if severity <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg).strip())
                if not echo:
                    return
            if severity <= int(trt.ILogger.Severity.WARNING):
                print("TensorRT: %s" % str(msg).strip(), file=out or sys.stderr)

        def last_error(self, default=""):
            return self.errors[-1] if self.errors else default

    return Logger()


def this_device(trt, gpu, root: str = "/") -> engines.Device:
    info = gpu.info()
    return engines.Device(info["name"], info["compute_capability"], info["sm_count"], trt.__version__,
                          board=engines.board_model(root))


def deserialize(trt, log, plan: bytes, dla_core=None):
    """(runtime, engine); engine is None when this TensorRT cannot read the plan (other version, corrupt)."""
    runtime = trt.Runtime(log)
    if dla_core is not None:
        runtime.DLA_core = int(dla_core)
    try:
        engine = runtime.deserialize_cuda_engine(plan)
    except Exception:  # some versions raise instead of returning None
        engine = None
    return runtime, engine  # the runtime is kept beside its engine: it must outlive it


class Tensor:
    """One input or output of an engine: name, direction, numpy dtype, shape (-1 = dynamic), max batch."""

    def __init__(self, name, index, is_input, dtype, shape, max_shape):
        self.name, self.index, self.is_input = name, index, is_input
        self.dtype = np.dtype(dtype)
        self.shape, self.max_shape = tuple(shape), tuple(max_shape)

    def __repr__(self):
        return "Tensor(%r, %s, %s %s)" % (self.name, "in" if self.is_input else "out", self.dtype, self.shape)


def _refused(tensor, shape):
    return UserError("TensorRT refused input shape %s for '%s' (the engine's profile allows up to %s)"
                     % (tuple(shape), tensor.name, tensor.max_shape))


class TensorAPI:
    """TensorRT 8.5+: tensors by name, addresses set one by one, execute_async_v3."""

    def __init__(self, trt, engine):
        self.trt = trt
        self.tensors = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = tuple(engine.get_tensor_shape(name))
            max_shape = tuple(engine.get_tensor_profile_shape(name, 0)[2]) if is_input and -1 in shape else shape
            self.tensors.append(Tensor(name, i, is_input, trt.nptype(engine.get_tensor_dtype(name)), shape,
                                       max_shape))

    def set_input_shape(self, context, tensor, shape):
        if not context.set_input_shape(tensor.name, tuple(shape)):
            raise _refused(tensor, shape)

    def shape(self, context, tensor):
        return tuple(context.get_tensor_shape(tensor.name))

    def execute(self, context, addresses, stream_handle):
        for tensor, address in zip(self.tensors, addresses):
            context.set_tensor_address(tensor.name, address)
        return context.execute_async_v3(stream_handle)


class BindingsAPI:
    """TensorRT up to 8.6 (removed in 10): tensors by binding index, execute_async_v2 with a pointer list."""

    def __init__(self, trt, engine):
        self.trt = trt
        self.tensors = []
        for i in range(engine.num_bindings):
            is_input = engine.binding_is_input(i)
            shape = tuple(engine.get_binding_shape(i))
            max_shape = tuple(engine.get_profile_shape(0, i)[2]) if is_input and -1 in shape else shape
            self.tensors.append(Tensor(engine.get_binding_name(i), i, is_input,
                                       trt.nptype(engine.get_binding_dtype(i)), shape, max_shape))

    def set_input_shape(self, context, tensor, shape):
        if not context.set_binding_shape(tensor.index, tuple(shape)):
            raise _refused(tensor, shape)

    def shape(self, context, tensor):
        return tuple(context.get_binding_shape(tensor.index))

    def execute(self, context, addresses, stream_handle):
        return context.execute_async_v2(bindings=[int(a) for a in addresses], stream_handle=stream_handle)


def io_api(trt, engine):
    return TensorAPI(trt, engine) if has_tensor_api(trt) else BindingsAPI(trt, engine)
