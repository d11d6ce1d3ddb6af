"""FAKE tensorrt for tests (no GPU here; see tests/fakes/README.md).

Names, enum values and parameter names follow NVIDIA's real Python bindings of each generation, and
tests/runtime/backends/tensorrt/test_real_tensorrt.py checks them against the real modules (pip's binding
wheels, loaded over stub libraries). FAKE_TENSORRT_VERSION picks the generation (default 10.3.0):
    8.5.x   JetPack 5.1 (8.5.2; checked against the real 8.6.1): bindings API and tensor API, weak typing,
            EXPLICIT_BATCH needed by the ONNX parser, nptype naming np.bool (fails on numpy 1.24-1.26)
    10.x    JetPack 6.1/6.2 (10.3.0): tensor API only; IProgressMonitor (9.0+); weak typing deprecated
    11.x    JetPack 7.2.2+ and pip (11.4): strongly typed only: no BuilderFlag.FP16/INT8, no
            platform_has_fast_fp16, no INT8 calibrators, no EXPLICIT_BATCH (STRONGLY_TYPED is flag 0)
What the real bindings do that the fakes copy: the trampolines of ILogger, IProgressMonitor and the
calibrators (IInt8EntropyCalibrator2, IInt8MinMaxCalibrator) catch every exception a Python callback raises,
print "[ERROR] Exception caught in get_batch()" and go on with a neutral answer; Builder/Runtime raise
TypeError "factory function returned nullptr" when TensorRT cannot start CUDA; set_input_shape refuses (False,
an error logged) a shape outside the profile or one that changes a static dimension;
IOptimizationProfile.set_shape raises RuntimeError.
The "engine" is the parsed ONNX model; executing it runs ONNX Runtime on the bytes in the fake pycuda's
device memory. Everything here that is not NVIDIA's API is named FAKE*, fake_* or _*.
Env: FAKE_DLA_CORES (0), FAKE_FAST_FP16 (1), FAKE_TRT_BUILD_FAILS=1 (build returns None),
FAKE_TRT_NO_CUDA=1 (Builder/Runtime return nullptr), FAKE_TRT_IO_DTYPE=HALF (engines with FP16 inputs and
outputs), FAKE_TRT_RECORD=FILE (append every TensorRT name the project's code touches to FILE).
"""

import enum as _py_enum
import json as _json
import os as _os
import sys as _sys

import numpy as _np

__version__ = _os.environ.get("FAKE_TENSORRT_VERSION", "10.3.0")
_MAJOR_MINOR = tuple(int(v) for v in __version__.split(".")[:2])
if _MAJOR_MINOR < (8, 5):
    raise ImportError("FAKE tensorrt: generation %s is not faked (JetPack 5.1 ships 8.5.2; 8.5 is the oldest)"
                      % __version__)
_BINDINGS = _MAJOR_MINOR < (10, 0)
_WEAK_TYPING = _MAJOR_MINOR < (11, 0)
_PROGRESS = _MAJOR_MINOR >= (9, 0)
_MAGIC = b"FAKE-TRT-PLAN\0"
FAKE_calls = []  # (what, details) in call order, for tests to read


def _driver():
    import pycuda.driver as cuda  # the fake one, from the same site folder

    return cuda


def _enum(name, members):
    return _py_enum.IntEnum(name, members, module=__name__)


# Enum members and values as the real modules have them (8.5: 8.5.2's, a subset of 8.6.1's).
if _BINDINGS:
    DataType = _enum("DataType", [("FLOAT", 0), ("HALF", 1), ("INT8", 2), ("INT32", 3), ("BOOL", 4), ("UINT8", 5)])
    NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag",
                                          [("EXPLICIT_BATCH", 0), ("EXPLICIT_PRECISION", 1)])
    BuilderFlag = _enum("BuilderFlag", [
        ("FP16", 0), ("INT8", 1), ("DEBUG", 2), ("GPU_FALLBACK", 3), ("STRICT_TYPES", 4), ("REFIT", 5),
        ("DISABLE_TIMING_CACHE", 6), ("TF32", 7), ("SPARSE_WEIGHTS", 8), ("SAFETY_SCOPE", 9),
        ("OBEY_PRECISION_CONSTRAINTS", 10), ("PREFER_PRECISION_CONSTRAINTS", 11), ("DIRECT_IO", 12),
        ("REJECT_EMPTY_ALGORITHMS", 13), ("ENABLE_TACTIC_HEURISTIC", 14)])
    MemoryPoolType = _enum("MemoryPoolType", [("WORKSPACE", 0), ("DLA_MANAGED_SRAM", 1), ("DLA_LOCAL_DRAM", 2),
                                              ("DLA_GLOBAL_DRAM", 3), ("TACTIC_DRAM", 4)])
elif _WEAK_TYPING:
    DataType = _enum("DataType", [("FLOAT", 0), ("HALF", 1), ("BF16", 7), ("INT8", 2), ("INT32", 3), ("INT64", 8),
                                  ("BOOL", 4), ("UINT8", 5), ("FP8", 6), ("INT4", 9)])
    NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag",
                                          [("EXPLICIT_BATCH", 0), ("STRONGLY_TYPED", 1)])
    BuilderFlag = _enum("BuilderFlag", [
        ("FP16", 0), ("BF16", 17), ("INT8", 1), ("DEBUG", 2), ("GPU_FALLBACK", 3), ("REFIT", 4),
        ("DISABLE_TIMING_CACHE", 5), ("TF32", 6), ("SPARSE_WEIGHTS", 7), ("SAFETY_SCOPE", 8),
        ("OBEY_PRECISION_CONSTRAINTS", 9), ("PREFER_PRECISION_CONSTRAINTS", 10), ("DIRECT_IO", 11),
        ("REJECT_EMPTY_ALGORITHMS", 12), ("VERSION_COMPATIBLE", 13), ("EXCLUDE_LEAN_RUNTIME", 14), ("FP8", 15),
        ("ERROR_ON_TIMING_CACHE_MISS", 16), ("DISABLE_COMPILATION_CACHE", 18), ("WEIGHTLESS", 19),
        ("STRIP_PLAN", 19), ("REFIT_IDENTICAL", 20), ("WEIGHT_STREAMING", 21), ("INT4", 22),
        ("REFIT_INDIVIDUAL", 23)])
else:
    DataType = _enum("DataType", [("FLOAT", 0), ("HALF", 1), ("BF16", 7), ("INT8", 2), ("INT32", 3), ("INT64", 8),
                                  ("BOOL", 4), ("UINT8", 5), ("FP8", 6), ("INT4", 9), ("FP4", 10), ("E8M0", 11)])
    NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", [
        ("STRONGLY_TYPED", 0), ("PREFER_AOT_PYTHON_PLUGINS", 2), ("PREFER_JIT_PYTHON_PLUGINS", 1)])
    BuilderFlag = _enum("BuilderFlag", [
        ("DEBUG", 2), ("GPU_FALLBACK", 3), ("REFIT", 4), ("DISABLE_TIMING_CACHE", 5), ("EDITABLE_TIMING_CACHE", 26),
        ("TF32", 6), ("SPARSE_WEIGHTS", 7), ("SAFETY_SCOPE", 8), ("DIRECT_IO", 11), ("VERSION_COMPATIBLE", 12),
        ("EXCLUDE_LEAN_RUNTIME", 13), ("ERROR_ON_TIMING_CACHE_MISS", 15), ("DISABLE_COMPILATION_CACHE", 17),
        ("STRIP_PLAN", 18), ("REFIT_IDENTICAL", 19), ("WEIGHT_STREAMING", 20), ("REFIT_INDIVIDUAL", 22),
        ("STRICT_NANS", 23), ("MONITOR_MEMORY", 24), ("DISTRIBUTIVE_INDEPENDENCE", 27)])
if not _BINDINGS:
    MemoryPoolType = _enum("MemoryPoolType", [("WORKSPACE", 0), ("DLA_MANAGED_SRAM", 1), ("DLA_LOCAL_DRAM", 2),
                                              ("DLA_GLOBAL_DRAM", 3), ("TACTIC_DRAM", 4), ("TACTIC_SHARED_MEMORY", 5)])
DeviceType = _enum("DeviceType", [("GPU", 0), ("DLA", 1)])
TensorIOMode = _enum("TensorIOMode", [("NONE", 0), ("INPUT", 1), ("OUTPUT", 2)])
_NUMPY = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32", "INT64": "int64", "BOOL": "bool_",
          "UINT8": "uint8"}


def nptype(trt_type):
    """The numpy type of a DataType. 8.5.2's table names np.bool, which numpy 1.24 removed (NVIDIA/TensorRT
    issues 2557, 2567; fixed in 8.6): there every call raises AttributeError, as here."""
    if _BINDINGS:
        table = {DataType.FLOAT: _np.float32, DataType.HALF: _np.float16, DataType.INT8: _np.int8,
                 DataType.INT32: _np.int32, DataType.BOOL: _np.bool, DataType.UINT8: _np.uint8}  # noqa: NPY001
        return table[trt_type]
    name = _NUMPY.get(DataType(trt_type).name)
    if name is None:
        raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
    return getattr(_np, name)


def volume(iterable):
    v = 1
    for d in iterable:
        v *= d
    return v


class Dims(tuple):
    pass


def _caught(where, exc):
    """What the real trampolines print when a Python callback raises (pyCore.cpp: std::cerr)."""
    print("[ERROR] Exception caught in %s(): %s: %s" % (where, type(exc).__name__, exc), file=_sys.stderr)


class ILogger:
    class Severity(_py_enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        self._fake_base_initialized = True

    def log(self, severity, msg):
        raise NotImplementedError


def _log(logger, severity, msg):
    """TensorRT calling the logger's log() through its trampoline: exceptions are printed and dropped."""
    _fake_check(logger)
    try:
        logger.log(severity, msg)
    except Exception as exc:  # noqa: BLE001 (the real trampoline catches everything)
        _caught("log", exc)


class Logger(ILogger):
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = list(ILogger.Severity)

    def __init__(self, min_severity=ILogger.Severity.WARNING):
        ILogger.__init__(self)
        self.min_severity = min_severity

    def log(self, severity, msg):
        if severity <= self.min_severity:
            print("[TRT] [%s] %s" % ("IEWIV"[int(severity)], msg), file=_sys.stderr)


def _fake_check(obj):
    """pybind11 trampolines refuse a subclass that did not call the base __init__."""
    if not getattr(obj, "_fake_base_initialized", False):
        base = [c for c in type(obj).__mro__ if c.__module__ == __name__][0]
        raise TypeError("tensorrt.tensorrt.%s.__init__() must be called when overriding __init__" % base.__name__)


class _BaseInitChecked:
    def __init__(self):
        self._fake_base_initialized = True


def _callback(obj, where, fallback, *args):
    """TensorRT calling a Python callback through its trampoline."""
    _fake_check(obj)
    try:
        return getattr(obj, where)(*args)
    except Exception as exc:  # noqa: BLE001 (the real trampoline catches everything)
        _caught(where, exc)
        return fallback


if _WEAK_TYPING:
    class IInt8Calibrator(_BaseInitChecked):
        pass

    class IInt8EntropyCalibrator2(IInt8Calibrator):
        pass

    class IInt8MinMaxCalibrator(IInt8Calibrator):
        pass

if _PROGRESS:
    class IProgressMonitor(_BaseInitChecked):
        pass


class ITensor:
    def __init__(self, name, shape, dtype=DataType.FLOAT):
        self.name, self.shape, self.dtype = name, Dims(shape), dtype


class INetworkDefinition:
    def __init__(self, flags):
        self._fake_flags = flags
        self._fake_inputs, self._fake_outputs, self._fake_onnx, self._fake_kind = [], [], None, None
        self._fake_layers = []
        self._fake_onnx_layer = None

    @property
    def num_inputs(self):
        return len(self._fake_inputs)

    @property
    def num_outputs(self):
        return len(self._fake_outputs)

    def get_input(self, index):
        return self._fake_inputs[index]

    def get_output(self, index):
        return self._fake_outputs[index]


# FAKE layer API (issue 30: runtime/backends/tensorrt/frame_input.py), names and parameters as the real 8.6.1,
# 10.3 and 11.4 bindings have them (add_cast is taken as missing in the 8.5 fake: not checked against a real
# 8.5.2). Each fake tensor computes itself in numpy from the fed inputs (FAKE_evaluate), so the layers a network
# was given can be checked against numpy.
MatrixOperation = _enum("MatrixOperation", [("NONE", 0), ("TRANSPOSE", 1), ("VECTOR", 2)])
UnaryOperation = _enum("UnaryOperation", list(zip(
    ["EXP", "LOG", "SQRT", "RECIP", "ABS", "NEG", "SIN", "COS", "TAN", "SINH", "COSH", "ASIN", "ACOS", "ATAN",
     "ASINH", "ACOSH", "ATANH", "CEIL", "FLOOR", "ERF", "NOT", "SIGN", "ROUND", "ISINF"]
    + ([] if _BINDINGS else ["ISNAN"]), range(25))))
ElementWiseOperation = _enum("ElementWiseOperation", list(zip(
    ["SUM", "PROD", "MAX", "MIN", "SUB", "DIV", "POW", "FLOOR_DIV", "AND", "OR", "XOR", "EQUAL", "GREATER", "LESS"],
    range(14))))


_FAKE_ONNX_TYPES = {1: "FP32", 10: "FP16", 16: "BF16", 6: "INT32", 7: "INT64", 3: "INT8", 2: "UINT8", 9: "BOOL",
                    11: "DOUBLE", 17: "FP8", 18: "FP8", 19: "FP8", 20: "FP8", 22: "INT4"}
_FAKE_ALL_INPUTS = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "Concat", "Equal",
                    "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or", "Xor", "Range"}
_LAYER_TYPES = [
    "CONVOLUTION", "FULLY_CONNECTED", "ACTIVATION", "POOLING", "LRN", "SCALE", "SOFTMAX", "DECONVOLUTION",
    "CONCATENATION", "ELEMENTWISE", "PLUGIN", "UNARY", "PADDING", "SHUFFLE", "REDUCE", "TOPK", "GATHER",
    "MATRIX_MULTIPLY", "RAGGED_SOFTMAX", "CONSTANT", "RNN_V2", "IDENTITY", "PLUGIN_V2", "SLICE", "SHAPE",
    "PARAMETRIC_RELU", "RESIZE", "TRIP_LIMIT", "RECURRENCE", "ITERATOR", "LOOP_OUTPUT", "SELECT", "FILL", "QUANTIZE",
    "DEQUANTIZE", "CONDITION", "CONDITIONAL_INPUT", "CONDITIONAL_OUTPUT", "SCATTER", "EINSUM", "ASSERTION",
    "ONE_HOT", "NON_ZERO", "GRID_SAMPLE", "NMS", "REVERSE_SEQUENCE"]
if _BINDINGS:  # 8.5.2's values (8.6 added NORMALIZATION 46 and CAST 47)
    LayerType = _enum("LayerType", list(zip(_LAYER_TYPES, range(46))))
else:  # 10.0 dropped FULLY_CONNECTED and RNN_V2 and gave CAST value 1
    LayerType = _enum("LayerType", [("CAST", 1)] + list(zip(
        [t for t in _LAYER_TYPES if t not in ("FULLY_CONNECTED", "RNN_V2")] + ["NORMALIZATION", "PLUGIN_V3"],
        [0] + list(range(2, 47)))) + ([] if _WEAK_TYPING else [
            ("SQUEEZE", 47), ("UNSQUEEZE", 48), ("CUMULATIVE", 49), ("DYNAMIC_QUANTIZE", 50), ("ATTENTION_INPUT", 51),
            ("ATTENTION_OUTPUT", 52), ("ROTARY_EMBEDDING", 53), ("KV_CACHE_UPDATE", 54), ("MOE", 55),
            ("DIST_COLLECTIVE", 56)]))
# FAKE: the layer an ONNX node becomes (the parser's importers), and what the DLA runs (TensorRT's developer
# guide, "DLA Supported Layers": floating-point tensors only; never TopK, Gather, NMS, Shape, Select, Cast)
_FAKE_NODE_LAYERS = dict(
    [(op, "ACTIVATION") for op in ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "Elu", "Selu", "HardSigmoid",
                                   "Softplus", "ThresholdedRelu")]
    + [(op, "ELEMENTWISE") for op in sorted(_FAKE_ALL_INPUTS - {"Concat", "Range"})]
    + [(op, "SHUFFLE") for op in ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")]
    + [(op, "UNARY") for op in ("Not", "Abs", "Exp", "Log", "Sqrt", "Neg", "Floor", "Ceil", "Round", "Sin", "Cos")]
    + [(op, "REDUCE") for op in ("ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "GlobalAveragePool")]
    + [("Conv", "CONVOLUTION"), ("ConvTranspose", "DECONVOLUTION"), ("MaxPool", "POOLING"),
       ("AveragePool", "POOLING"), ("BatchNormalization", "SCALE"), ("Concat", "CONCATENATION"), ("Slice", "SLICE"),
       ("Tile", "SLICE"), ("Expand", "SLICE"), ("Pad", "SLICE"), ("Gather", "GATHER"), ("GatherElements", "GATHER"),
       ("TopK", "TOPK"), ("ArgMax", "TOPK"), ("ArgMin", "TOPK"), ("NonMaxSuppression", "NMS"), ("Shape", "SHAPE"),
       ("Constant", "CONSTANT"), ("MatMul", "MATRIX_MULTIPLY"), ("Gemm", "MATRIX_MULTIPLY"), ("Softmax", "SOFTMAX"),
       ("Resize", "RESIZE"), ("Where", "SELECT"), ("QuantizeLinear", "QUANTIZE"), ("DequantizeLinear", "DEQUANTIZE"),
       ("ConstantOfShape", "FILL"), ("Range", "FILL"), ("Cast", "IDENTITY" if _BINDINGS else "CAST")])
_FAKE_OP_LAYERS = {"identity": "IDENTITY", "cast": "CAST", "slice": "SLICE", "shuffle": "SHUFFLE",
                   "constant": "CONSTANT", "matmul": "MATRIX_MULTIPLY", "round": "UNARY", "sum": "ELEMENTWISE",
                   "prod": "ELEMENTWISE", "onnx": "IDENTITY"}
_FAKE_DLA_LAYERS = {"CONVOLUTION", "DECONVOLUTION", "FULLY_CONNECTED", "ACTIVATION", "POOLING", "LRN", "SCALE",
                    "ELEMENTWISE", "CONCATENATION", "RESIZE", "UNARY", "SLICE", "SOFTMAX", "SHUFFLE", "REDUCE",
                    "PARAMETRIC_RELU", "CONSTANT"}


def _fake_on_dla(layer):
    """Whether the fake DLA runs this layer: the parsed model's stand-in (its nodes are layers of their own) and
    floating-point layers of the kinds the DLA has."""
    if layer._fake_op == "onnx":
        return True
    types = layer._fake_params[1] if layer._fake_op == "node" else ["FP32"]
    return layer.type.name in _FAKE_DLA_LAYERS and all(t in ("FP32", "FP16", "INT8") for t in types)


class ILayer:
    name = ""

    @property
    def type(self):
        kind = (_FAKE_NODE_LAYERS.get(self._fake_params[0], "IDENTITY") if self._fake_op == "node"
                else _FAKE_OP_LAYERS[self._fake_op])
        return LayerType[kind if kind in LayerType.__members__ else "IDENTITY"]

    if _WEAK_TYPING:
        precision = DataType.FLOAT  # the real bindings' property (8.5-10.x); pinned by the frame layers

    def __init__(self, network, inputs, op, params=None):
        self._fake_network, self._fake_inputs_, self._fake_op, self._fake_params = network, list(inputs), op, params
        self._fake_out = ITensor("FAKE_layer%d" % len(network._fake_layers), ())
        self._fake_out._fake_layer = self

    @property
    def num_inputs(self):
        return len(self._fake_inputs_)

    def get_input(self, index):
        return self._fake_inputs_[index]

    def set_input(self, index, tensor):
        self._fake_inputs_[index] = tensor

    def get_output(self, index):
        return self._fake_out

    if _WEAK_TYPING:  # 11.x removed it
        def set_output_type(self, index, dtype):
            self._fake_out.dtype = dtype


class IShuffleLayer(ILayer):
    first_transpose, reshape_dims = None, None


def _fake_shuffle(params, x):
    transpose, shape = params
    x = x.transpose(transpose) if transpose is not None else x
    return x.reshape(tuple(shape))


def _fake_no_uint8(op, values):
    if op not in ("cast", "identity") and any(getattr(v, "dtype", None) == _np.uint8 for v in values):
        raise AssertionError("FAKE: a %s layer reads UINT8: TensorRT converts uint8 only to and from float and half "
                             "(a cast or identity layer first)" % op)


_FAKE_OPS = {
    "cast": lambda p, x: x.astype(_NUMPY[DataType(p).name]), "identity": lambda p, x: x.astype(_np.float32),
    "slice": lambda p, x: x[tuple(slice(b, b + n * s, s) for b, n, s in zip(*p))], "shuffle": _fake_shuffle,
    "constant": lambda p: p, "matmul": lambda p, a, b: _np.matmul(a, b), "round": lambda p, x: _np.rint(x),
    "sum": lambda p, a, b: a + b, "prod": lambda p, a, b: a * b,
}


def _fake_graph(tensor):
    """The layers that compute tensor, as plain data (op, params, inputs), down to inputs ("input", name): what
    the fake engine keeps (pickled) and evaluates in numpy."""
    layer = getattr(tensor, "_fake_layer", None)
    if layer is None:
        return ("input", tensor.name, [])
    op, params = layer._fake_op, layer._fake_params
    if op == "shuffle":
        params = (layer.first_transpose, layer.reshape_dims)
    elif op == "identity":  # 8.5's cast: an identity layer told its output type
        op, params = "cast", int(layer._fake_out.dtype)
    return (op, params, [_fake_graph(t) for t in layer._fake_inputs_])


def _fake_run_graph(graph, feed):
    op, params, inputs = graph
    if op == "input":
        return feed[params]
    values = [_fake_run_graph(g, feed) for g in inputs]
    _fake_no_uint8(op, values)
    return _FAKE_OPS[op](params, *values)


def _fake_evaluate(tensor, feed):
    return _fake_run_graph(_fake_graph(tensor), feed)


def _fake_network_layers(cls):
    def _add(self, inputs, op, params=None, kind=ILayer):
        layer = kind(self, inputs, op, params)
        self._fake_layers.append(layer)
        return layer

    def add_input(self, name, dtype, shape):
        tensor = ITensor(name, shape, dtype)
        self._fake_inputs.append(tensor)
        return tensor

    def add_identity(self, input):
        return _add(self, [input], "identity")

    def add_slice(self, input, start, shape, stride):
        return _add(self, [input], "slice", (tuple(start), tuple(shape), tuple(stride)))

    def add_shuffle(self, input):
        return _add(self, [input], "shuffle", kind=IShuffleLayer)

    def add_constant(self, shape, weights):
        return _add(self, [], "constant", _np.array(weights, _np.float32).reshape(tuple(shape)))

    def add_matrix_multiply(self, input0, op0, input1, op1):
        return _add(self, [input0, input1], "matmul")

    def add_unary(self, input, op):
        if op != UnaryOperation.ROUND:
            raise AssertionError("FAKE: only UnaryOperation.ROUND is evaluated")
        return _add(self, [input], "round")

    def add_elementwise(self, input1, input2, op):
        return _add(self, [input1, input2], "sum" if op == ElementWiseOperation.SUM else "prod")

    def get_layer(self, index):
        return self._fake_layers[index]

    def remove_tensor(self, tensor):
        self._fake_inputs = [t for t in self._fake_inputs if t is not tensor]

    for fn in (add_input, add_identity, add_slice, add_shuffle, add_constant, add_matrix_multiply, add_unary,
               add_elementwise, get_layer, remove_tensor):
        setattr(cls, fn.__name__, fn)
    cls.num_layers = property(lambda self: len(self._fake_layers))
    cls._fake_layers = ()
    if not _BINDINGS:
        cls.add_cast = lambda self, input, to_type: _add(self, [input], "cast", int(to_type))


_fake_network_layers(INetworkDefinition)
FAKE_evaluate = _fake_evaluate


class ParserError:
    def __init__(self, code, desc, node=-1, node_name="", op=""):
        self._fake = (code, desc, node, node_name, op)

    def code(self):
        return self._fake[0]

    def desc(self):
        return self._fake[1]

    def node(self):
        return self._fake[2]

    if not _BINDINGS:
        def node_name(self):
            return self._fake[3]

        def node_operator(self):
            return self._fake[4]


class OnnxParser:
    def __init__(self, network, logger):
        self._fake_network, self._fake_logger, self._fake_errors = network, logger, []

    @property
    def num_errors(self):
        return len(self._fake_errors)

    def get_error(self, index):
        return self._fake_errors[index]

    def parse_from_file(self, model):
        with open(model, "rb") as f:
            return self.parse(f.read())

    def parse(self, model, path=None):
        net, errors = self._fake_network, self._fake_errors
        if _BINDINGS and not net._fake_flags & (1 << int(NetworkDefinitionCreationFlag.EXPLICIT_BATCH)):
            errors.append(ParserError(4, "The ONNX parser only supports networks with an explicit batch dimension"))
            return False
        try:
            graph = _read_onnx(bytes(model))
        except Exception as exc:  # noqa: BLE001 (the real parser reports any decode failure the same way)
            errors.append(ParserError(1, "Failed to parse ONNX model: %s" % exc))
            return False
        max_opset = 17 if _BINDINGS else 22
        if graph["opset"] > max_opset:
            errors.append(ParserError(8, "Unsupported ONNX opset %d (this parser reads up to %d)"
                                         % (graph["opset"], max_opset)))
            return False
        for i, (op, name) in enumerate(graph["nodes"]):
            if op.startswith("FakeUnsupported"):
                errors.append(ParserError(8, "No importer registered for op: %s" % op, i, name, op))
        if errors:
            return False
        refused = _fake_refused_node(graph.get("typed", []), self._fake_logger)
        if refused is not None:  # the real parser stops at the first node it cannot import
            errors.append(refused)
            return False
        io_type = DataType[_os.environ.get("FAKE_TRT_IO_DTYPE", "FLOAT")]
        net._fake_inputs = [ITensor(n, s, io_type) for n, s in graph["inputs"]]
        net._fake_outputs = [ITensor(n, s, io_type) for n, s in graph["outputs"]]
        # the parsed model as one layer reading its inputs (what a rewiring of the input sees)
        net._fake_onnx_layer = ILayer(net, net._fake_inputs, "onnx")
        net._fake_layers.append(net._fake_onnx_layer)
        for op, name, types, _, _ in graph.get("typed", []):  # one layer per node, for its type and name
            layer = ILayer(net, [], "node", (op, types))
            layer.name = name
            net._fake_layers.append(layer)
        net._fake_onnx = bytes(model)
        net._fake_kind = graph["kind"]
        FAKE_calls.append(("parse", {"inputs": [t.name for t in net._fake_inputs], "kind": net._fake_kind}))
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
            "nodes": [(n.op_type, n.name) for n in proto.graph.node], "typed": _fake_typed_nodes(onnx, proto),
            "kind": "int8-qdq" if quantized else "fp16" if float16 else "fp32",
            "inputs": [(v.name, dims(v)) for v in proto.graph.input if v.name not in initializers],
            "outputs": [(v.name, dims(v)) for v in proto.graph.output]}


# FAKE: what each generation's ONNX parser takes (onnx-tensorrt's docs/operators.md at a release tag, in
# _fake_onnx_ops.py, made by tests/fakes/make_trt_onnx_ops.py): an op with no row is refused, and so is an op
# given an input of a type its row does not list. 8.x casts INT64 down to INT32 (and DOUBLE to FLOAT, as 10+
# does), with a warning once, so INT64 is INT32 there. Which inputs carry the op's type: the first, all of
# them for element-wise and variadic ops, the values of Where, the output of ConstantOfShape, and both
# sides of Cast.


def _fake_typed_nodes(onnx, proto):
    """(op, name, the types that carry the op's type, whether K is a constant (TopK), the output types)."""
    try:
        proto = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 (a model shape inference cannot read: its types stay unknown)
        pass
    g = proto.graph
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    types.update((i.name, i.data_type) for i in g.initializer)
    constants = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
    nodes = []
    for n in g.node:
        ins = [types.get(x) for x in n.input if x]
        outs = [types.get(x) for x in n.output if x]
        carried = (ins if n.op_type in _FAKE_ALL_INPUTS else ins[1:3] if n.op_type == "Where"
                   else outs[:1] if n.op_type == "ConstantOfShape" else ins[:1] + outs[:1] if n.op_type == "Cast"
                   else ins[:1])
        names = [_FAKE_ONNX_TYPES.get(t, "TYPE%d" % t) for t in carried if t]
        k_constant = n.op_type != "TopK" or (len(n.input) > 1 and n.input[1] in constants)
        nodes.append((n.op_type, n.name, names, k_constant, outs))
    return nodes


# Where the parser's code takes more than operators.md's row says: DequantizeLinear of INT32 (a bias, as ONNX
# Runtime's quantize_static writes it): QuantDequantLinearHelper (onnxOpImporters.cpp, release/10.1-GA) refuses
# only UINT8 input; what the builder then does with it is not faked.
_FAKE_PARSER_TAKES_TOO = {"DequantizeLinear": {"INT32"}}
_FAKE_TABLE = {}


def _fake_onnx_ops():
    """_fake_onnx_ops.py's table, read by path (this module is also loaded under other names: tests/realtrt)."""
    if not _FAKE_TABLE:
        scope = {}
        with open(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "_fake_onnx_ops.py")) as f:
            exec(compile(f.read(), f.name, "exec"), scope)  # noqa: S102 (our own data file)
        _FAKE_TABLE.update(scope["FAKE_ONNX_OPS"])
    return _FAKE_TABLE


def _fake_refused_node(typed, logger):
    """The ParserError of the first node this generation's parser would refuse, or None."""
    gen = "8.5" if _BINDINGS else "10" if _WEAK_TYPING else "11"
    table = _fake_onnx_ops()[gen]
    if _BINDINGS and any("INT64" in types for _, _, types, _, _ in typed):
        _log(logger, Logger.WARNING, "onnx2trt_utils.cpp:377: Your ONNX model has been generated with INT64 "
             "weights, while TensorRT does not natively support INT64. Attempting to cast down to INT32.")
    for i, (op, name, types, k_constant, _) in enumerate(typed):
        if op not in table:
            return ParserError(8, "No importer registered for op: %s" % op, i, name, op)
        taken = table[op].split() + sorted(_FAKE_PARSER_TAKES_TOO.get(op, ()))
        for t in types:
            t = {"DOUBLE": "FP32", "INT64": "INT32" if _BINDINGS else "INT64"}.get(t, t)
            if t not in taken:
                return ParserError(8, "FAKE (operators.md, TensorRT %s): %s takes %s, not %s"
                                   % (gen, op, ", ".join(taken), t), i, name, op)
        if not k_constant:
            return ParserError(8, "Assertion failed: K input must be an initializer (TopK)", i, name, op)
    return None


class IOptimizationProfile:
    def __init__(self):
        self._fake_shapes = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's parameter names)
        if not (len(min) == len(opt) == len(max)) or any(a > b for a, b in zip(min, opt)) or any(
                a > b for a, b in zip(opt, max)):
            raise RuntimeError("Shape provided for set_shape() is invalid.")  # pyCore.cpp: PY_ASSERT_RUNTIME_ERROR
        self._fake_shapes[input] = (Dims(min), Dims(opt), Dims(max))

    def get_shape(self, input):  # noqa: A002
        return list(self._fake_shapes[input])


class ITimingCache:
    def __init__(self, data):
        self._fake_entries = (_json.loads(data[len(b"FAKE-TIMING "):].decode()) if data
                              else {"version": __version__, "n": 0})

    def serialize(self):
        return IHostMemory(b"FAKE-TIMING " + _json.dumps(self._fake_entries).encode())


class IBuilderConfig:
    def __init__(self):
        self._fake_flags = {BuilderFlag.TF32}
        self._fake_pools = {}
        self._fake_profiles = []
        self._fake_timing_cache = None
        self._fake_calibration_profile = None
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        if _WEAK_TYPING:
            self.int8_calibrator = None
        if _PROGRESS:
            self.progress_monitor = None

    if _BINDINGS:
        @property
        def max_workspace_size(self):
            return self._fake_pools.get(MemoryPoolType.WORKSPACE, 0)

        @max_workspace_size.setter
        def max_workspace_size(self, value):
            raise AssertionError("FAKE: max_workspace_size is deprecated (removed in 10.0); use set_memory_pool_limit")

    def set_memory_pool_limit(self, pool, pool_size):
        self._fake_pools[pool] = int(pool_size)

    def get_memory_pool_limit(self, pool):
        return self._fake_pools.get(pool, 1 << 40)

    def set_flag(self, flag):
        self._fake_flags.add(BuilderFlag(flag))

    def clear_flag(self, flag):
        self._fake_flags.discard(BuilderFlag(flag))

    def get_flag(self, flag):
        return BuilderFlag(flag) in self._fake_flags

    def can_run_on_DLA(self, layer):  # noqa: N802 (TensorRT's name)
        return _fake_on_dla(layer)

    def add_optimization_profile(self, profile):
        self._fake_profiles.append(profile)
        return len(self._fake_profiles) - 1

    if _WEAK_TYPING:
        def set_calibration_profile(self, profile):
            self._fake_calibration_profile = profile

    def create_timing_cache(self, serialized_timing_cache):
        data = bytes(serialized_timing_cache)
        if data and not data.startswith(b"FAKE-TIMING "):
            raise RuntimeError("FAKE: not a timing cache")
        return ITimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        if cache._fake_entries.get("version") != __version__ and not ignore_mismatch:
            return False
        self._fake_timing_cache = cache
        return True

    def get_timing_cache(self):
        return self._fake_timing_cache


class IHostMemory:
    def __init__(self, data):
        self._fake_data = data

    @property
    def nbytes(self):
        return len(self._fake_data)

    def __buffer__(self, flags):  # bytes(obj) on Python 3.12+
        return memoryview(self._fake_data)

    def __bytes__(self):
        return self._fake_data


def _no_cuda(logger):
    if _os.environ.get("FAKE_TRT_NO_CUDA") == "1":
        # a WARNING since TensorRT 8.5 ("[TRT] [W] CUDA initialization failure with error: 35", NVIDIA/TensorRT#2913)
        _log(logger, Logger.WARNING, "CUDA initialization failure with error: 35. Please check your CUDA installation: "
                                   "http://docs.nvidia.com/cuda/cuda-installation-guide-linux/index.html")
        raise TypeError("pybind11::init(): factory function returned nullptr")


class Builder:
    def __init__(self, logger):
        _no_cuda(logger)
        self.logger = logger
        FAKE_calls.append(("Builder", {}))

    if _WEAK_TYPING:
        @property
        def platform_has_fast_fp16(self):
            return _os.environ.get("FAKE_FAST_FP16", "1") == "1"

        @property
        def platform_has_fast_int8(self):
            return True

    @property
    def num_DLA_cores(self):  # noqa: N802 (TensorRT's name)
        return int(_os.environ.get("FAKE_DLA_CORES", "0"))

    def create_network(self, flags=0):
        known = sum(1 << int(f) for f in NetworkDefinitionCreationFlag)
        if flags & ~known:
            raise TypeError("FAKE: unknown NetworkDefinitionCreationFlag bits %#x (TensorRT %s)" % (flags, __version__))
        FAKE_calls.append(("create_network", {"flags": flags}))
        return INetworkDefinition(flags)

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    if _BINDINGS:
        def build_engine(self, network, config):
            raise AssertionError("FAKE: build_engine is deprecated (removed in 10.0); use build_serialized_network")

    def build_serialized_network(self, network, config):
        if network._fake_onnx is None:
            raise AssertionError("FAKE: building a network the parser did not fill")
        if config._fake_timing_cache is None:
            raise AssertionError("FAKE: the toolkit always sets a timing cache")
        inp = network._fake_inputs[0]
        frame_graph = self._fake_frame_graph(network)
        profile = None
        if -1 in inp.shape:
            if not config._fake_profiles or inp.name not in config._fake_profiles[0]._fake_shapes:
                _log(self.logger, Logger.ERROR, "Network has dynamic or shape inputs, but no optimization profile")
                return None
            profile = [list(s) for s in config._fake_profiles[0]._fake_shapes[inp.name]]
        flags = {BuilderFlag(f).name for f in config._fake_flags}
        weak = _WEAK_TYPING and flags & {"FP16", "INT8"}
        precision = ("int8" if "INT8" in weak else "fp16") if weak else \
            {"fp16": "fp16", "int8-qdq": "int8", "fp32": "fp32"}[network._fake_kind]
        dla = config.default_device_type == DeviceType.DLA
        if dla and precision == "fp32":
            _log(self.logger, Logger.ERROR, "DLA supports only FP16 and INT8")
            return None
        dla_on_gpu = dla and profile is not None and not profile[0] == profile[1] == profile[2]
        if dla_on_gpu:  # what TensorRT does with dynamic shapes on the DLA: every layer falls back to the GPU
            _log(self.logger, Logger.WARNING, "DLA does not support dynamic shapes: layers fall back to the GPU")
        if dla and not self._fake_dla_layers(network, config):
            return None
        calibration = None
        if weak and "INT8" in weak:
            calibration = self._fake_calibrate(config, inp, profile)
            if calibration is None:
                return None
        if _PROGRESS and config.progress_monitor is not None:
            monitor = config.progress_monitor
            _callback(monitor, "phase_start", None, "Building engine", None, 3)
            for step in range(3):
                if not _callback(monitor, "step_complete", False, "Building engine", step):
                    _log(self.logger, Logger.ERROR, "Build was cancelled by the progress monitor")
                    return None
            _callback(monitor, "phase_finish", None, "Building engine")
        if _os.environ.get("FAKE_TRT_BUILD_FAILS") == "1":
            _log(self.logger, Logger.ERROR, "FAKE: out of memory while building")
            return None
        config._fake_timing_cache._fake_entries["n"] += 1
        header = {"version": __version__, "precision": precision, "tf32": BuilderFlag.TF32 in config._fake_flags,
                  "fp16_flag": "FP16" in flags, "workspace": config._fake_pools.get(MemoryPoolType.WORKSPACE),
                  "dla_core": config.DLA_core if dla else None, "dla_on_gpu": dla_on_gpu,
                  "gpu_fallback": BuilderFlag.GPU_FALLBACK in config._fake_flags, "profile": profile,
                  "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._fake_inputs],
                  "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._fake_outputs],
                  "calibration": calibration, "frame_graph": frame_graph}
        FAKE_calls.append(("build_serialized_network", header))
        return IHostMemory(_MAGIC + _json.dumps(header).encode() + b"\0" + network._fake_onnx)

    def _fake_dla_layers(self, network, config):
        """TensorRT's word on each layer the DLA cannot run (a warning each; an error without GPU_FALLBACK)."""
        for layer in network._fake_layers:
            if _fake_on_dla(layer):
                continue
            if BuilderFlag.GPU_FALLBACK not in config._fake_flags:
                _log(self.logger, Logger.ERROR, "%s (%s): Unsupported on DLA and GPU fallback is disabled"
                     % (layer.name, layer.type.name))
                return False
            _log(self.logger, Logger.WARNING, "Default DLA is enabled but layer %s is not supported on DLA, falling "
                 "back to GPU." % layer.name if _BINDINGS else "Layer '%s' (%s): Unsupported on DLA. Switching this "
                 "layer's device type to GPU." % (layer.name, layer.type.name))
        return True

    @staticmethod
    def _fake_frame_graph(network):
        """Layers put in front of the parsed model (frame_input.py): their graph, pickled, base64 (None: none)."""
        if network._fake_onnx_layer is None:
            return None
        reads = network._fake_onnx_layer.get_input(0)
        if getattr(reads, "_fake_layer", None) is None:
            return None
        import base64
        import pickle

        return [reads.name,
                base64.b64encode(pickle.dumps(_fake_graph(reads))).decode("ascii")]

    def _fake_calibrate(self, config, inp, profile):
        calibrator = config.int8_calibrator
        if calibrator is None:
            _log(self.logger, Logger.ERROR, "INT8 requested but no calibrator and no Q/DQ nodes")
            return None
        _fake_check(calibrator)
        if profile is not None and config._fake_calibration_profile is None:
            _log(self.logger, Logger.ERROR, "dynamic shapes with INT8 need a calibration profile")
            return None
        cache = _callback(calibrator, "read_calibration_cache", None)
        if cache:
            return {"from_cache": True, "batches": 0, "cache": bytes(cache).decode(errors="replace")}
        batch_size = _callback(calibrator, "get_batch_size", -1)
        cuda = _driver()
        per_item = volume(inp.shape[1:]) * 4
        batches, low, high = 0, _np.inf, -_np.inf
        while True:
            pointers = _callback(calibrator, "get_batch", None, [inp.name])
            if not pointers:
                break
            if len(pointers) != 1:
                raise AssertionError("FAKE: get_batch must give one pointer per input")
            data = cuda.fake_device_view(int(pointers[0]), batch_size * per_item).view(_np.float32)
            low, high = min(low, float(data.min())), max(high, float(data.max()))
            batches += 1
        if batches == 0:
            _log(self.logger, Logger.ERROR, "Calibration failure occurred with no scaling factors detected. This "
                                            "could be due to no int8 calibrator or insufficient custom scales")
            return None
        algorithm = next(c.__name__ for c in type(calibrator).__mro__
                         if c.__name__ in ("IInt8EntropyCalibrator2", "IInt8MinMaxCalibrator"))
        result = {"from_cache": False, "batches": batches, "batch_size": batch_size, "range": [low, high],
                  "algorithm": algorithm}
        # the cache in TensorRT's own layout: a header line, then `tensor: scale`, the scale's float32 bits in hex
        # (the input's scale, and FAKE entries that tell calibrations on other data apart, as real layers' would)
        def bits(x):
            return int(_np.float32(x).view(_np.uint32))

        cache = "TRT-%s-%s\n%s: %08x\nFAKE_low: %08x\nFAKE_batches: %08x\n" % (
            __version__.replace(".", ""), algorithm.replace("IInt8", ""), inp.name,
            bits(max(abs(low), abs(high)) / 127), bits(low), bits(batches))
        _callback(calibrator, "write_calibration_cache", None, cache.encode("ascii"))
        return result


class ICudaEngine:
    def __init__(self, header, onnx_bytes, logger):
        import onnxruntime

        self._fake_header, self._fake_logger = header, logger
        self._fake_session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        self._fake_io = ([(n, s, True, DataType[t]) for n, s, t in header["inputs"]]
                         + [(n, s, False, DataType[t]) for n, s, t in header["outputs"]])

    def _fake_index(self, name):
        for i, io in enumerate(self._fake_io):
            if io[0] == name:
                return i
        raise KeyError(name)

    def create_execution_context(self):
        return IExecutionContext(self)

    @property
    def num_io_tensors(self):
        return len(self._fake_io)

    def get_tensor_name(self, index):
        return self._fake_io[index][0]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if self._fake_io[self._fake_index(name)][2] else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return Dims(self._fake_io[self._fake_index(name)][1])

    def get_tensor_dtype(self, name):
        return self._fake_io[self._fake_index(name)][3]

    def get_tensor_profile_shape(self, name, profile_index):
        return [Dims(s) for s in self._fake_header["profile"]]

    if _BINDINGS:
        @property
        def num_bindings(self):
            return len(self._fake_io)

        def binding_is_input(self, index):
            return self._fake_io[index][2]

        def get_binding_name(self, index):
            return self._fake_io[index][0]

        def get_binding_shape(self, index):
            return Dims(self._fake_io[index][1])

        def get_binding_dtype(self, index):
            return self._fake_io[index][3]

        def get_profile_shape(self, profile_index, binding):
            return [Dims(s) for s in self._fake_header["profile"]]


class Runtime:
    def __init__(self, logger):
        _no_cuda(logger)
        self.logger = logger
        self.DLA_core = -1

    def deserialize_cuda_engine(self, serialized_engine):
        data = bytes(serialized_engine)
        if not data.startswith(_MAGIC):
            _log(self.logger, Logger.ERROR, "1: [runtime.cpp::parsePlan] Error Code 1: Serialization (magic tag "
                                            "does not match)")
            return None
        head, _, onnx_bytes = data[len(_MAGIC):].partition(b"\0")
        header = _json.loads(head.decode())
        if header["version"] != __version__:
            _log(self.logger, Logger.ERROR, "6: The engine plan file is not compatible with this version of TensorRT, "
                                            "expecting library version %s got %s" % (__version__, header["version"]))
            return None
        FAKE_calls.append(("deserialize_cuda_engine", {"precision": header["precision"], "dla_core": self.DLA_core}))
        return ICudaEngine(header, onnx_bytes, self.logger)


class IExecutionContext:
    def __init__(self, engine):
        self._fake_engine = engine
        self._fake_input_shapes = {}
        self._fake_addresses = {}

    def _fake_output_shape(self, name):
        shape = list(dict((io[0], io[1]) for io in self._fake_engine._fake_io)[name])
        if shape and shape[0] == -1:
            batch = next(iter(self._fake_input_shapes.values()), None)
            shape[0] = batch[0] if batch else -1
        return Dims(shape)

    def _fake_set_shape(self, name, shape):
        engine = self._fake_engine
        declared = engine._fake_io[engine._fake_index(name)][1]
        profile = engine._fake_header["profile"]
        static = [i for i, d in enumerate(declared) if d != -1 and d != shape[i]]
        if len(shape) != len(declared) or static:
            _log(engine._fake_logger, Logger.ERROR, "3: [executionContext.cpp::setInputShape] Error Code 3: API Usage "
                 "Error (Parameter check failed, condition: engineDims.d[i] == dims.d[i]. Static dimension mismatch "
                 "while setting input shape for %s. Set dimensions are %s. Expected dimensions are %s.)"
                 % (name, list(shape), declared))
            return False
        if profile is not None and any(not lo <= d <= hi for d, lo, hi in zip(shape, profile[0], profile[2])):
            _log(engine._fake_logger, Logger.ERROR, "3: [executionContext.cpp::setInputShape] Error Code 3: API Usage "
                 "Error (Parameter check failed, condition: satisfyProfile. Set dimension %s for tensor %s does not "
                 "satisfy any optimization profiles.)" % (list(shape), name))
            return False
        self._fake_input_shapes[name] = tuple(shape)
        return True

    def _fake_run(self, addresses, stream_handle, api):
        cuda = _driver()
        cuda._require_context("execute")
        engine = self._fake_engine
        header = engine._fake_header
        name, declared, _, in_type = engine._fake_io[0]
        shape = self._fake_input_shapes.get(name)
        if shape is None:
            if -1 in declared:
                raise AssertionError("FAKE: input shape not set before execute")
            shape = tuple(declared)
        in_dtype = _np.dtype(_NUMPY[in_type.name])
        x = cuda.fake_device_view(addresses[name], volume(shape) * in_dtype.itemsize).view(in_dtype).reshape(shape)
        x = self._fake_frame_layers(header, name, x)
        x = x.astype(_np.float32)
        if header["precision"] != "fp32":
            x = x.astype(_np.float16).astype(_np.float32)
        outputs = [io for io in engine._fake_io if not io[2]]
        onnx_input = engine._fake_session.get_inputs()[0].name
        outs = engine._fake_session.run([io[0] for io in outputs], {onnx_input: x})
        for (out_name, _, _, out_type), value in zip(outputs, outs):
            value = _np.asarray(value, _np.float32)
            if header["precision"] != "fp32":
                value = value.astype(_np.float16).astype(_np.float32)
            value = value.astype(_NUMPY[out_type.name])
            cuda.fake_device_view(addresses[out_name], value.nbytes)[:] = value.view(_np.uint8).ravel()
        FAKE_calls.append(("execute", {"batch": shape[0], "stream": stream_handle, "api": api}))
        return True

    @staticmethod
    def _fake_frame_layers(header, name, x):
        """The network input computed from the engine's input by the layers in front of the model, in numpy."""
        if not header.get("frame_graph"):
            return x
        import base64
        import pickle

        if "_graph" not in header:  # decoded once per engine
            header["_graph"] = pickle.loads(base64.b64decode(header["frame_graph"][1]))
        FAKE_calls.append(("frame_layers", {"input": name, "dtype": str(x.dtype), "shape": list(x.shape)}))
        return _fake_run_graph(header["_graph"], {name: x})

    def set_input_shape(self, name, shape):
        return self._fake_set_shape(name, shape)

    def get_tensor_shape(self, name):
        if name in self._fake_input_shapes:
            return Dims(self._fake_input_shapes[name])
        return self._fake_output_shape(name)

    def set_tensor_address(self, name, memory):
        self._fake_engine._fake_index(name)
        self._fake_addresses[name] = int(memory)
        return True

    def execute_async_v3(self, stream_handle):
        if not stream_handle:
            raise AssertionError("FAKE: the toolkit must not use the default stream")
        missing = [io[0] for io in self._fake_engine._fake_io if io[0] not in self._fake_addresses]
        if missing:
            raise AssertionError("FAKE: no address set for %s" % missing)
        return self._fake_run(self._fake_addresses, stream_handle, "execute_async_v3")

    if _BINDINGS:
        def set_binding_shape(self, binding, shape):
            return self._fake_set_shape(self._fake_engine._fake_io[binding][0], shape)

        def get_binding_shape(self, binding):
            name, _, is_input, _ = self._fake_engine._fake_io[binding]
            return (Dims(self._fake_input_shapes[name]) if is_input and name in self._fake_input_shapes
                    else self._fake_output_shape(name))

        def execute_async_v2(self, bindings, stream_handle, input_consumed=None):
            if len(bindings) != len(self._fake_engine._fake_io):
                raise AssertionError("FAKE: one pointer per binding")
            return self._fake_run({io[0]: int(p) for io, p in zip(self._fake_engine._fake_io, bindings)},
                                  stream_handle, "execute_async_v2")


if _os.environ.get("FAKE_TRT_RECORD"):
    from ._fake_record import fake_install

    fake_install(_sys.modules[__name__], _os.environ["FAKE_TRT_RECORD"])
