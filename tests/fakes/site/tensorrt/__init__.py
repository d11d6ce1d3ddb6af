"""FAKE tensorrt for tests (no GPU here; see tests/fakes/README.md).

Names and signatures follow NVIDIA/TensorRT's Python bindings (python/src/infer/pyCore.cpp, pyCoreDoc.h,
parsers/pyOnnx.cpp) at the generation chosen by FAKE_TENSORRT_VERSION (default 10.3.0):
    8.4   bindings API only; BuilderFlag.FP16/INT8; EXPLICIT_BATCH needed by the ONNX parser
    8.5   both the bindings and the tensor API (8.5 added the tensor API)
    10.3  tensor API only (bindings, build_engine, max_workspace_size removed); IProgressMonitor (9.0+)
    11.4  strongly typed only: no BuilderFlag.FP16/INT8, no platform_has_fast_fp16, no INT8 calibrators,
          no EXPLICIT_BATCH flag (create_network takes 0)
The "engine" is the parsed ONNX model; executing it runs ONNX Runtime on the bytes in the fake pycuda's
device memory and writes the results back there. FP16 engines round inputs and outputs to float16.
Other env: FAKE_DLA_CORES (default 0), FAKE_TRT_BUILD_FAILS=1 (build_serialized_network returns None).
"""

import enum
import json
import os
import sys

import numpy as np

__version__ = os.environ.get("FAKE_TENSORRT_VERSION", "10.3.0")
_MAJOR_MINOR = tuple(int(v) for v in __version__.split(".")[:2])
_BINDINGS = _MAJOR_MINOR < (10, 0)
_TENSOR_API = _MAJOR_MINOR >= (8, 5)
_WEAK_TYPING = _MAJOR_MINOR < (11, 0)
_PROGRESS = _MAJOR_MINOR >= (9, 0)
_MAGIC = b"FAKE-TRT-PLAN\0"
calls = []  # FAKE-only: (what, details) in call order, for tests to read


def _driver():
    import pycuda.driver as cuda  # the fake one, from the same site folder

    return cuda


class Dims(tuple):
    pass


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4


def nptype(trt_type):
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
            DataType.INT32: np.int32, DataType.BOOL: np.bool_}[trt_type]


def volume(iterable):
    v = 1
    for d in iterable:
        v *= d
    return v


NetworkDefinitionCreationFlag = enum.IntEnum(
    "NetworkDefinitionCreationFlag",
    ([("EXPLICIT_BATCH", 0)] if _WEAK_TYPING else []) + ([("STRONGLY_TYPED", 5)] if _MAJOR_MINOR >= (10, 0) else []))
BuilderFlag = enum.IntEnum(
    "BuilderFlag", ([("FP16", 0), ("INT8", 1)] if _WEAK_TYPING else []) + [("GPU_FALLBACK", 3), ("TF32", 6)])


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1


class DeviceType(enum.IntEnum):
    GPU = 0
    DLA = 1


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        self._fake_base_initialized = True

    def log(self, severity, msg):
        raise NotImplementedError


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = list(ILogger.Severity)

    def __init__(self, min_severity=ILogger.Severity.WARNING):
        ILogger.__init__(self)
        self.min_severity = min_severity

    def log(self, severity, msg):
        if severity <= self.min_severity:
            print("[TRT] [%s] %s" % ("IEWIV"[int(severity)], msg), file=sys.stderr)


class _BaseInitChecked:
    """pybind11 trampolines fail when a subclass forgets to call the base __init__."""

    def __init__(self):
        self._fake_base_initialized = True

    def _fake_check(self):
        if not getattr(self, "_fake_base_initialized", False):
            raise TypeError("%s.__init__() must be called when overriding __init__" % type(self).__mro__[1].__name__)


if _WEAK_TYPING:
    class IInt8Calibrator(_BaseInitChecked):
        pass

    class IInt8EntropyCalibrator2(IInt8Calibrator):
        pass

if _PROGRESS:
    class IProgressMonitor(_BaseInitChecked):
        pass


class ITensor:
    def __init__(self, name, shape, dtype=DataType.FLOAT):
        self.name, self.shape, self.dtype = name, Dims(shape), dtype


class INetworkDefinition:
    def __init__(self, flags):
        self.flags = flags
        self.inputs, self.outputs, self.onnx = [], [], None

    @property
    def num_inputs(self):
        return len(self.inputs)

    @property
    def num_outputs(self):
        return len(self.outputs)

    def get_input(self, index):
        return self.inputs[index]

    def get_output(self, index):
        return self.outputs[index]


class _ParserError:
    def __init__(self, code, desc, node=-1, node_name="", op=""):
        self._code, self._desc, self._node, self._name, self._op = code, desc, node, node_name, op

    def code(self):
        return self._code

    def desc(self):
        return self._desc

    def node(self):
        return self._node

    if _MAJOR_MINOR >= (10, 0):
        def node_name(self):
            return self._name

        def node_operator(self):
            return self._op


class OnnxParser:
    def __init__(self, network, logger):
        self.network, self.logger, self.errors = network, logger, []

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, index):
        return self.errors[index]

    def parse_from_file(self, model):
        with open(model, "rb") as f:
            return self.parse(f.read())

    def parse(self, model, path=None):
        net = self.network
        if _WEAK_TYPING and _MAJOR_MINOR < (10, 0) and not net.flags & (1 << 0):
            self.errors.append(_ParserError(4, "The ONNX parser only supports networks with an explicit batch "
                                               "dimension"))
            return False
        try:
            graph = _read_onnx(bytes(model))
        except Exception as exc:  # noqa: BLE001 (the real parser reports any decode failure the same way)
            self.errors.append(_ParserError(1, "Failed to parse ONNX model: %s" % exc))
            return False
        max_opset = 17 if _MAJOR_MINOR < (10, 0) else 22
        if graph["opset"] > max_opset:
            self.errors.append(_ParserError(8, "Unsupported ONNX opset %d (this parser reads up to %d)"
                                               % (graph["opset"], max_opset)))
            return False
        for i, (op, name) in enumerate(graph["nodes"]):
            if op.startswith("FakeUnsupported"):
                self.errors.append(_ParserError(8, "No importer registered for op: %s" % op, i, name, op))
        if self.errors:
            return False
        net.inputs = [ITensor(n, s) for n, s in graph["inputs"]]
        net.outputs = [ITensor(n, s) for n, s in graph["outputs"]]
        net.onnx = bytes(model)
        net.onnx_kind = graph["kind"]
        calls.append(("parse", {"inputs": [t.name for t in net.inputs], "kind": net.onnx_kind}))
        return True


def _read_onnx(data):
    """Inputs, outputs, opset, nodes and precision kind of an ONNX model: with the onnx package where it is
    installed, else (a Python 3.8 venv with only onnxruntime) IO from ONNX Runtime and no node checks."""
    try:
        import onnx
    except ImportError:
        import onnxruntime

        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])

        def shape(v):
            return [d if isinstance(d, int) else -1 for d in v.shape]

        return {"opset": 0, "nodes": [], "kind": "fp32", "inputs": [(v.name, shape(v)) for v in session.get_inputs()],
                "outputs": [(v.name, shape(v)) for v in session.get_outputs()]}
    proto = onnx.load_from_string(data)

    def dims(value_info):
        return [d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim]

    initializers = {i.name for i in proto.graph.initializer}
    quantized = any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    float16 = any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer)
    return {"opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
            "nodes": [(n.op_type, n.name) for n in proto.graph.node],
            "kind": "int8-qdq" if quantized else "fp16" if float16 else "fp32",
            "inputs": [(v.name, dims(v)) for v in proto.graph.input if v.name not in initializers],
            "outputs": [(v.name, dims(v)) for v in proto.graph.output]}


class IOptimizationProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's parameter names)
        if not (len(min) == len(opt) == len(max)) or any(a > b for a, b in zip(min, opt)) or any(
                a > b for a, b in zip(opt, max)):
            raise ValueError("profile needs min <= opt <= max")
        self.shapes[input] = (Dims(min), Dims(opt), Dims(max))

    def get_shape(self, input):  # noqa: A002
        return list(self.shapes[input])


class ITimingCache:
    def __init__(self, data):
        self.entries = json.loads(data[len(b"FAKE-TIMING "):].decode()) if data else {"version": __version__, "n": 0}

    def serialize(self):
        return b"FAKE-TIMING " + json.dumps(self.entries).encode()


class IBuilderConfig:
    def __init__(self):
        self.flags = {BuilderFlag.TF32}
        self.pools = {}
        self.profiles = []
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        self.timing_cache = None
        if _WEAK_TYPING:
            self.int8_calibrator = None
            self.calibration_profile = None
        if _PROGRESS:
            self.progress_monitor = None

    if _BINDINGS:
        @property
        def max_workspace_size(self):
            return self.pools.get(MemoryPoolType.WORKSPACE, 0)

        @max_workspace_size.setter
        def max_workspace_size(self, value):
            raise AssertionError("FAKE: max_workspace_size is deprecated (removed in 10.0); use set_memory_pool_limit")

    def set_memory_pool_limit(self, pool, pool_size):
        self.pools[pool] = int(pool_size)

    def get_memory_pool_limit(self, pool):
        return self.pools.get(pool, 1 << 40)

    def set_flag(self, flag):
        self.flags.add(BuilderFlag(flag))

    def clear_flag(self, flag):
        self.flags.discard(BuilderFlag(flag))

    def get_flag(self, flag):
        return BuilderFlag(flag) in self.flags

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)
        return len(self.profiles) - 1

    if _WEAK_TYPING:
        def set_calibration_profile(self, profile):
            self.calibration_profile = profile

    def create_timing_cache(self, serialized_timing_cache):
        data = bytes(serialized_timing_cache)
        if data and not data.startswith(b"FAKE-TIMING "):
            raise RuntimeError("FAKE: not a timing cache")
        return ITimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache.entries.get("version") != __version__ and not ignore_mismatch:
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self):
        return self.timing_cache


class IHostMemory:
    def __init__(self, data):
        self._data = data

    @property
    def nbytes(self):
        return len(self._data)

    def __buffer__(self, flags):  # bytes(obj) on Python 3.12+
        return memoryview(self._data)

    def __bytes__(self):
        return self._data


class Builder:
    def __init__(self, logger):
        self.logger = logger
        calls.append(("Builder", {}))

    if _WEAK_TYPING:
        @property
        def platform_has_fast_fp16(self):
            return os.environ.get("FAKE_FAST_FP16", "1") == "1"

        @property
        def platform_has_fast_int8(self):
            return True

    @property
    def num_DLA_cores(self):  # noqa: N802 (TensorRT's name)
        return int(os.environ.get("FAKE_DLA_CORES", "0"))

    def create_network(self, flags=0):
        known = sum(1 << int(f) for f in NetworkDefinitionCreationFlag)
        if flags & ~known:
            raise TypeError("FAKE: unknown NetworkDefinitionCreationFlag bits %#x (TensorRT %s)" % (flags, __version__))
        calls.append(("create_network", {"flags": flags}))
        return INetworkDefinition(flags)

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    if _BINDINGS:
        def build_engine(self, network, config):
            raise AssertionError("FAKE: build_engine is deprecated (removed in 10.0); use build_serialized_network")

    def build_serialized_network(self, network, config):
        if network.onnx is None:
            raise AssertionError("FAKE: building a network the parser did not fill")
        if config.timing_cache is None:
            raise AssertionError("FAKE: the toolkit always sets a timing cache")
        inp = network.inputs[0]
        profile = None
        if -1 in inp.shape:
            if not config.profiles or inp.name not in config.profiles[0].shapes:
                self.logger.log(Logger.ERROR, "Network has dynamic or shape inputs, but no optimization profile")
                return None
            profile = [list(s) for s in config.profiles[0].shapes[inp.name]]
        weak = _WEAK_TYPING and {BuilderFlag(f).name for f in config.flags} & {"FP16", "INT8"}
        precision = ("int8" if "INT8" in weak else "fp16") if weak else \
            {"fp16": "fp16", "int8-qdq": "int8", "fp32": "fp32"}[network.onnx_kind]
        if config.default_device_type == DeviceType.DLA and precision == "fp32":
            self.logger.log(Logger.ERROR, "DLA supports only FP16 and INT8")
            return None
        calibration = None
        if weak and "INT8" in weak:
            calibration = self._calibrate(config, inp, profile)
            if calibration is None:
                return None
        if _PROGRESS and config.progress_monitor is not None:
            monitor = config.progress_monitor
            monitor._fake_check()
            monitor.phase_start("Building engine", None, 3)
            for step in range(3):
                if not monitor.step_complete("Building engine", step):
                    return None
            monitor.phase_finish("Building engine")
        if os.environ.get("FAKE_TRT_BUILD_FAILS") == "1":
            self.logger.log(Logger.ERROR, "FAKE: out of memory while building")
            return None
        config.timing_cache.entries["n"] += 1
        header = {"version": __version__, "precision": precision, "tf32": BuilderFlag.TF32 in config.flags,
                  "workspace": config.pools.get(MemoryPoolType.WORKSPACE),
                  "dla_core": config.DLA_core if config.default_device_type == DeviceType.DLA else None,
                  "gpu_fallback": BuilderFlag.GPU_FALLBACK in config.flags, "profile": profile,
                  "inputs": [[t.name, list(t.shape)] for t in network.inputs],
                  "outputs": [[t.name, list(t.shape)] for t in network.outputs], "calibration": calibration}
        calls.append(("build_serialized_network", header))
        return IHostMemory(_MAGIC + json.dumps(header).encode() + b"\0" + network.onnx)

    def _calibrate(self, config, inp, profile):
        calibrator = config.int8_calibrator
        if calibrator is None:
            self.logger.log(Logger.ERROR, "INT8 requested but no calibrator and no Q/DQ nodes")
            return None
        calibrator._fake_check()
        if profile is not None and config.calibration_profile is None:
            self.logger.log(Logger.ERROR, "dynamic shapes with INT8 need a calibration profile")
            return None
        cache = calibrator.read_calibration_cache()
        if cache:
            return {"from_cache": True, "batches": 0}
        batch_size = calibrator.get_batch_size()
        cuda = _driver()
        per_item = volume(inp.shape[1:]) * 4
        batches, low, high = 0, np.inf, -np.inf
        while True:
            pointers = calibrator.get_batch([inp.name])
            if pointers is None:
                break
            if len(pointers) != 1:
                raise AssertionError("FAKE: get_batch must give one pointer per input")
            data = cuda.device_view(int(pointers[0]), batch_size * per_item).view(np.float32)
            low, high = min(low, float(data.min())), max(high, float(data.max()))
            batches += 1
        if batches == 0:
            self.logger.log(Logger.ERROR, "Calibration failure: no batches")
            return None
        result = {"from_cache": False, "batches": batches, "batch_size": batch_size, "range": [low, high]}
        calibrator.write_calibration_cache(b"FAKE-CALIBRATION " + json.dumps(result).encode())
        return result


class ICudaEngine:
    def __init__(self, header, onnx_bytes):
        import onnxruntime

        self.header = header
        self.session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self._io = [(n, s, True) for n, s in header["inputs"]] + [(n, s, False) for n, s in header["outputs"]]

    def _index(self, name):
        for i, (n, _, _) in enumerate(self._io):
            if n == name:
                return i
        raise KeyError(name)

    def create_execution_context(self):
        return IExecutionContext(self)

    if _TENSOR_API:
        @property
        def num_io_tensors(self):
            return len(self._io)

        def get_tensor_name(self, index):
            return self._io[index][0]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if self._io[self._index(name)][2] else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return Dims(self._io[self._index(name)][1])

        def get_tensor_dtype(self, name):
            self._index(name)
            return DataType.FLOAT

        def get_tensor_profile_shape(self, name, profile_index):
            return [Dims(s) for s in self.header["profile"]]

    if _BINDINGS:
        @property
        def num_bindings(self):
            return len(self._io)

        def binding_is_input(self, index):
            return self._io[index][2]

        def get_binding_name(self, index):
            return self._io[index][0]

        def get_binding_shape(self, index):
            return Dims(self._io[index][1])

        def get_binding_dtype(self, index):
            return DataType.FLOAT

        def get_profile_shape(self, profile_index, binding):
            return [Dims(s) for s in self.header["profile"]]


class Runtime:
    def __init__(self, logger):
        self.logger = logger
        self.DLA_core = -1

    def deserialize_cuda_engine(self, serialized_engine):
        data = bytes(serialized_engine)
        if not data.startswith(_MAGIC):
            self.logger.log(Logger.ERROR, "1: [runtime.cpp::parsePlan] Error Code 1: Serialization (magic tag "
                                          "does not match)")
            return None
        head, _, onnx_bytes = data[len(_MAGIC):].partition(b"\0")
        header = json.loads(head.decode())
        if header["version"] != __version__:
            self.logger.log(Logger.ERROR, "6: The engine plan file is not compatible with this version of TensorRT, "
                                          "expecting library version %s got %s" % (__version__, header["version"]))
            return None
        calls.append(("deserialize_cuda_engine", {"precision": header["precision"], "dla_core": self.DLA_core}))
        return ICudaEngine(header, onnx_bytes)


class IExecutionContext:
    def __init__(self, engine):
        self.engine = engine
        self.input_shapes = {}
        self.addresses = {}

    def _output_shape(self, name):
        shape = list(dict((n, s) for n, s, _ in self.engine._io)[name])
        if shape and shape[0] == -1:
            batch = next(iter(self.input_shapes.values()), None)
            shape[0] = batch[0] if batch else -1
        return Dims(shape)

    def _set_shape(self, name, shape):
        profile = self.engine.header["profile"]
        if profile is not None and any(not lo <= d <= hi for d, lo, hi in zip(shape, profile[0], profile[2])):
            return False
        self.input_shapes[name] = tuple(shape)
        return True

    def _run(self, addresses, stream_handle, api):
        cuda = _driver()
        cuda._require_context("execute")
        header = self.engine.header
        name, shape = header["inputs"][0][0], self.input_shapes.get(header["inputs"][0][0])
        if shape is None:
            if -1 in header["inputs"][0][1]:
                raise AssertionError("FAKE: input shape not set before execute")
            shape = tuple(header["inputs"][0][1])
        x = cuda.device_view(addresses[name], volume(shape) * 4).view(np.float32).reshape(shape)
        if header["precision"] != "fp32":
            x = x.astype(np.float16).astype(np.float32)
        outs = self.engine.session.run([n for n, _ in header["outputs"]], {name: x})
        for (out_name, _), value in zip(header["outputs"], outs):
            value = np.asarray(value, np.float32)
            if header["precision"] != "fp32":
                value = value.astype(np.float16).astype(np.float32)
            cuda.device_view(addresses[out_name], value.nbytes)[:] = value.view(np.uint8).ravel()
        calls.append(("execute", {"batch": shape[0], "stream": stream_handle, "api": api}))
        return True

    if _TENSOR_API:
        def set_input_shape(self, name, shape):
            return self._set_shape(name, shape)

        def get_tensor_shape(self, name):
            if name in self.input_shapes:
                return Dims(self.input_shapes[name])
            return self._output_shape(name)

        def set_tensor_address(self, name, memory):
            self.engine._index(name)
            self.addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle):
            if not stream_handle:
                raise AssertionError("FAKE: the toolkit must not use the default stream")
            missing = [n for n, _, _ in self.engine._io if n not in self.addresses]
            if missing:
                raise AssertionError("FAKE: no address set for %s" % missing)
            return self._run(self.addresses, stream_handle, "execute_async_v3")

    if _BINDINGS:
        def set_binding_shape(self, binding, shape):
            return self._set_shape(self.engine._io[binding][0], shape)

        def get_binding_shape(self, binding):
            name, _, is_input = self.engine._io[binding]
            return Dims(self.input_shapes[name]) if is_input and name in self.input_shapes else self._output_shape(name)

        def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
            if len(bindings) != len(self.engine._io):
                raise AssertionError("FAKE: one pointer per binding")
            return self._run({n: int(p) for (n, _, _), p in zip(self.engine._io, bindings)}, stream_handle,
                             "execute_async_v2")
