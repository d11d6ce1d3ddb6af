"""Load a Keras 3 model file and convert it to ONNX with one float32 input 'input' and a dynamic batch.

Two routes, tried in this order; each result is checked here (exactly the model's one input, no
TensorFlow op left, no function calls, only standard ONNX ops at the opset asked for) and then by the
caller's check (parity with Keras); a route that fails either falls back to the other, saying why:

    frozen   tf.function(model(x, training=False)), frozen by TensorFlow's convert_variables_to_constants_v2
             (variables and captured tensors become constants, nested functions are inlined; the few that
             Keras compiles with XLA, a grouped Conv2D's, are let inline too: _let_inline), then
             tf2onnx.convert.from_graph_def with the model's input only (and a handler for Erfc, the exact
             GELU's, which tf2onnx lacks)
    keras    Keras's own model.export(format="onnx") (tf2onnx.convert.from_function on the concrete function)

`frozen` comes first because it is right more often (benchmarks/export_routes.py: 16 of 16 against 12 of 16
on the 15 keras.applications families and a Functional model): from_function takes every captured tensor of the
function for a graph input, so a model holding constants as tensors (EfficientNet's Normalization layer)
converts into an ONNX that asks for them as inputs, and Keras's trace of a model with augmentation inside
leaves its random ops in the graph. Opset 15 by default: what TensorRT 8.5 and later parse
(8.x reads up to 17). Training-only layers (Dropout, GaussianNoise, RandomFlip, ...) are identities at
training=False and leave nothing in the graph.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import sys
import tempfile
import warnings
import zipfile

import numpy as np

from runtime.backends.tensorrt.api import TRT8_MAX_OPSET as TENSORRT8_MAX_OPSET
from runtime.errors import UserError

DEFAULT_OPSET = 15
OPSETS = range(13, 21)
ROUTES = ("frozen", "keras")


def check_model_file(path: str) -> None:
    """Cheap checks before TensorFlow is loaded: a .keras file is a zip archive with a config.json."""
    if not zipfile.is_zipfile(path):
        raise UserError("%s is not a Keras 3 model file (.keras is a zip archive): corrupt or another format"
                        % path)
    with zipfile.ZipFile(path) as z:
        if "config.json" not in z.namelist():
            raise UserError("%s is a zip archive without config.json: not a Keras 3 model file" % path)


def _layer_configs(path):
    """Every layer config in the model file's config.json, nested models included (name, class_name); none
    when the file cannot tell (this only names layers in messages)."""
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (OSError, ValueError, KeyError, RecursionError, zipfile.BadZipFile):
        return []
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "class_name" in node and isinstance(node.get("config"), dict) and "name" in node["config"]:
                found.append((node["config"]["name"], node["class_name"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def import_custom_objects(paths):
    """Import each Python file or module that defines the model's custom layers; returns {name: object} of the
    Keras layer and model classes and the functions it defines (registered ones are known to Keras anyway)."""
    import keras

    objects = {}
    for i, path in enumerate(paths or ()):
        try:
            if path.endswith(".py"):
                if not os.path.isfile(path):
                    raise UserError("--custom-objects %s: no such file" % path)
                spec = importlib.util.spec_from_file_location("edge_custom_objects_%d" % i, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(path)
        except UserError:
            raise
        except Exception as exc:
            raise UserError("--custom-objects %s: importing it failed: %s: %s"
                            % (path, type(exc).__name__, _first_line(exc))) from None
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, (keras.layers.Layer, keras.Model)) or (
                    callable(value) and getattr(value, "__module__", None) == module.__name__):
                objects[name] = value
    return objects


def load_keras(path: str, unsafe: bool = False, custom_objects=None):
    """keras.saving.load_model, in safe mode unless unsafe; a bad file is a one-line UserError."""
    check_model_file(path)
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=not unsafe, custom_objects=custom_objects)
    except Exception as exc:
        text = str(exc)
        lambdas = [n for n, c in _layer_configs(path) if c == "Lambda"]
        if "Lambda" in text and "safe_mode" in text:
            raise UserError("%s has Lambda layer(s)%s: loading them runs Python code stored in the file; if you "
                            "trust it, give --unsafe" % (path, "".join(" %r" % n for n in lambdas))) from None
        unknown = re.search(r"Could not locate (class|function) '([^']+)'", text)
        if unknown:
            kind, name = unknown.groups()
            layers = [n for n, c in _layer_configs(path) if c == name]
            what = ("layer %s is of class %s" % (", ".join(repr(n) for n in layers), name) if layers else
                    "the model uses the %s %s" % (kind, name))
            raise UserError("%s: %s, which is not known here: give the Python file that defines it with "
                            "--custom-objects FILE.py" % (path, what)) from None
        raise UserError("cannot load %s: %s" % (path, _first_line(exc)[:300])) from None


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def input_spec(model):
    """The one image input's shape without the batch; UserError for what a camera bundle cannot take. A
    subclassed model has no symbolic inputs: the shape it was built with (its build config) stands in."""
    try:
        shapes = [tuple(t.shape) for t in model.inputs]
    except AttributeError:
        built = (model.get_build_config() or {}).get("input_shape") if hasattr(model, "get_build_config") else None
        if not built or not isinstance(built, (list, tuple)) or isinstance(built[0], (list, tuple, dict)):
            raise UserError("the model has no defined input (a model never built or called before it was saved): "
                            "build it with keras.Input(shape), or call it on a batch, then save it") from None
        shapes = [tuple(built)]
    if len(shapes) != 1:
        raise UserError("the model has %d inputs; a camera bundle needs exactly one image input" % len(shapes))
    shape = shapes[0][1:]
    if any(d is None for d in shape):
        raise UserError("the model's input shape %s has unknown sizes besides the batch; build it with a "
                        "fixed input size" % (shapes[0],))
    return tuple(int(d) for d in shape)


def output_shapes(model, shape):
    """Each output's shape without the batch, from running the model once on zeros (subclassed models
    have no symbolic outputs); UserError for outputs a bundle cannot describe."""
    out = model(np.zeros((1,) + tuple(shape), np.float32), training=False)
    if isinstance(out, dict):
        raise UserError("the model's outputs are a dict (%s); a bundle takes a tensor or a list of tensors: wrap "
                        "it in a keras.Model whose outputs are a list" % ", ".join(sorted(out)))
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    shapes = [tuple(int(d) for d in np.shape(o)[1:]) for o in out]
    if any(not s for s in shapes):
        raise UserError("an output of the model is one number per batch item without a last axis (shape "
                        "(batch,)): end the model with a Dense(1) or a Reshape((1,)) so each output has units")
    return shapes


class _Tf2onnxLog(logging.Handler):
    """tf2onnx's error lines (it logs a failed node and goes on), kept to name the layer at fault."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.nodes = []  # (TensorFlow node name, why)

    def emit(self, record):
        message = record.getMessage()
        m = re.match(r"Tensorflow op \[(.+?): (.+?)\] is not supported", message)
        if m:
            self.nodes.append((m.group(1), "TensorFlow op %s has no ONNX conversion in tf2onnx" % m.group(2)))
            return
        m = re.match(r"Failed to convert node '(.+?)'", message)
        if m:
            why = record.exc_info[1] if record.exc_info else None
            self.nodes.append((m.group(1), "tf2onnx failed on it: %s" % (_first_line(why) if why else "?")))


@contextlib.contextmanager
def _tf2onnx_quiet():
    """tf2onnx's own logging off the console (its optimizers log tracebacks they recover from), errors kept."""
    handler = _Tf2onnxLog()
    tf2onnx_log, tf_log = logging.getLogger("tf2onnx"), logging.getLogger("tensorflow")  # TF: v1-API deprecations
    saved = tf2onnx_log.level, tf2onnx_log.handlers[:], tf2onnx_log.propagate, tf_log.level
    tf2onnx_log.handlers[:] = [handler]
    tf2onnx_log.setLevel(logging.ERROR)
    tf2onnx_log.propagate = False
    tf_log.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        tf2onnx_log.setLevel(saved[0])
        tf2onnx_log.handlers[:] = saved[1]
        tf2onnx_log.propagate = saved[2]
        tf_log.setLevel(saved[3])


def layer_of(model, node_name):
    """The Keras layer a TensorFlow node name belongs to ('functional_1/block_2/conv_1/Conv2D' -> conv), by
    its name scopes (TensorFlow may add _N to a scope); the innermost layer wins. None if no scope names one."""
    layers = {layer.name: layer for layer in model._flatten_layers(include_self=False, recursive=True)}
    found = None
    for part in node_name.split("/"):
        for name in (part, re.sub(r"_\d+$", "", part)):
            if name in layers:
                found = layers[name]
                break
    return found


def _serve(model, shape):
    import tensorflow as tf

    signature = [tf.TensorSpec((None,) + shape, tf.float32, name="input")]

    @tf.function(input_signature=signature)
    def serve(x):
        return model(x, training=False)

    return serve, signature


XLA_ONLY_ATTRS = ("_XlaMustCompile", "_noinline")


def _let_inline(graph_def):
    """The graph with every function call made inlinable. Keras's TensorFlow backend runs a few ops in a
    tf.function(jit_compile=True) of their own (a grouped Conv2D, as ConvNeXt's depthwise convolutions are:
    TensorFlow's CPU kernel cannot run it; keras/src/backend/tensorflow/nn.py, conv), and such a function is
    marked _XlaMustCompile and _noinline: convert_variables_to_constants_v2 and the grappler pass in tf2onnx
    then leave it a StatefulPartitionedCall, which has no ONNX conversion. The marks only ask TensorFlow's
    runtime to compile the function with XLA; the ops inside are the same, and once the marks are gone
    tf2onnx's grappler pass inlines the call (a grouped Conv2D becomes an ONNX Conv with group)."""
    functions = list(graph_def.library.function)
    for holder in list(graph_def.node) + [n for f in functions for n in f.node_def] + functions:  # each has attr
        for name in XLA_ONLY_ATTRS:
            if name in holder.attr:
                del holder.attr[name]
    return graph_def


def _erfc(ctx, node, name, args):
    """tf2onnx's handler for TensorFlow's Erfc, which it lacks (ONNX has Erf, no Erfc): erfc(x) = 1 - erf(x).
    TensorFlow writes the exact GELU (Keras's default, approximate=False: ConvNeXt's) as 0.5 x erfc(-x / sqrt 2).
    Where erfc is tiny (x > 4) 1 - erf(x) rounds to 0 in float32; GELU's value there is below 1e-8 of x."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(name + "_one"), np.array(1, dtype))
    erf = ctx.make_node("Erf", [node.input[0]], name=utils.make_name(name + "_erf"))
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def _route_frozen(model, shape, opset):
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    serve, _ = _serve(model, shape)
    concrete = serve.get_concrete_function()
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False, aggressive_inlining=True)
    graph_def = _let_inline(frozen.graph.as_graph_def(add_shapes=True))
    inputs = [t.name for t in frozen.inputs]
    outputs = [t.name for t in frozen.outputs]
    proto, _ = tf2onnx.convert.from_graph_def(graph_def, name="model", input_names=inputs, output_names=outputs,
                                              opset=opset, custom_op_handlers={"Erfc": (_erfc, [])})
    return proto


def _route_keras(model, shape, opset):
    import onnx
    import tensorflow as tf

    if not getattr(model, "_called", True):
        model(np.zeros((1,) + shape, np.float32), training=False)  # model.export wants a model that has run
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        with contextlib.redirect_stdout(sys.stderr):
            model.export(path, format="onnx", verbose=False, opset_version=opset,
                         input_signature=[tf.TensorSpec((None,) + shape, tf.float32, name="input")])
        return onnx.load(path)


def _tidy(proto):
    """Name the input 'input' and the outputs 'output' (or output_i); mark the batch dimension dynamic."""
    import onnx
    import tf2onnx

    graph = proto.graph
    renames = {graph.input[0].name: "input"} if len(graph.input) == 1 else {}
    outputs = list(graph.output)
    for i, out in enumerate(outputs):
        renames[out.name] = "output" if len(outputs) == 1 else "output_%d" % i
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    proto.producer_name = "edge-toolkit export (tf2onnx %s)" % tf2onnx.__version__
    onnx.checker.check_model(proto)
    return proto


def structural_problem(proto, opset):
    """(node name or None, why) when an ONNX is not one a camera bundle and TensorRT take, else None."""
    import onnx

    graph = proto.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return None, "the ONNX has %d inputs (%s), the model 1" % (len(inputs), ", ".join(inputs))
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            return node.name, "its %s is from domain %s, not a standard ONNX op" % (node.op_type, node.domain)
        try:
            onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            what = "a TensorFlow function left in the graph" if "PartitionedCall" in node.op_type else "no ONNX op"
            return node.name, "its %s is %s (opset %d)" % (node.op_type, what, opset)
    used = {o.domain: o.version for o in proto.opset_import}
    if used.get("", used.get("ai.onnx", opset)) > opset:
        return None, "the ONNX needs opset %d, more than the %d asked for" % (used.get("", 0), opset)
    return None


def _convert_by(route, model, shape, opset):
    """(ONNX or None, None or why it is no good), tf2onnx's complaints turned into the layer they concern."""
    with _tf2onnx_quiet() as errors, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras's numpy-2 patch of tf2onnx says np.object is going
        try:
            proto = (_route_frozen if route == "frozen" else _route_keras)(model, shape, opset)
            found = structural_problem(proto, opset)
            proto = _tidy(proto) if found is None else None  # onnx.checker may object, too
        except Exception as exc:
            proto, found = None, (None, "%s: %s" % (type(exc).__name__, _first_line(exc)[:200]))
    found = errors.nodes[0] if errors.nodes else found
    if found is None:
        return proto, None
    node, why = found
    layer = layer_of(model, node) if node else None
    return None, ("layer %r (%s): %s" % (layer.name, type(layer).__name__, why) if layer is not None else
                  "node %s: %s" % (node, why) if node else why)


def convert(model, opset: int = DEFAULT_OPSET, check=None, log=sys.stderr):
    """(onnx.ModelProto, route, check's result). check(proto) -> (passed, result) judges a converted model
    (export's parity); the first route whose ONNX is sound and passes it is kept, and a route that fails
    says why before the next is tried. When both convert but neither passes, the last one's failing result
    is returned (the caller reports it); when neither converts, a UserError names the layer at fault."""
    if opset not in OPSETS:
        raise UserError("opset %d is not supported (use %d to %d; TensorRT 8.x parses up to %d)"
                        % (opset, OPSETS[0], OPSETS[-1], TENSORRT8_MAX_OPSET))
    if opset > TENSORRT8_MAX_OPSET:
        print("warning: opset %d is newer than TensorRT 8.x (JetPack 5, 6.0) parses" % opset, file=log)
    shape = input_spec(model)
    problems, converted = [], None
    for route in ROUTES:
        proto, problem = _convert_by(route, model, shape, opset)
        if problem is None:
            if check is None:
                return proto, route, None
            try:
                passed, result = check(proto)
            except UserError:
                raise
            except Exception as exc:  # ONNX Runtime cannot load or run what tf2onnx made
                problem = "ONNX Runtime cannot run its ONNX: %s: %s" % (type(exc).__name__, _first_line(exc)[:200])
            else:
                converted = (proto, route, result)
                if passed:
                    return converted
                problem = "its ONNX differs from Keras (parity failed)"
        problems.append(problem)
        after = ROUTES[ROUTES.index(route) + 1] if route != ROUTES[-1] else None
        if after or converted is not None:
            print("warning: the %s route: %s%s" % (route, problem, "; trying the %s route" % after if after else ""),
                  file=log)
    if converted is not None:
        return converted
    same = len({re.sub(r"\d+", "", p) for p in problems}) == 1  # the same fault, whatever tf2onnx numbered
    why = problems[0] + " (both routes)" if same else "; ".join("%s route: %s" % rp for rp in zip(ROUTES, problems))
    raise UserError("cannot convert the model to ONNX: " + why + _what_to_do(problems))


def _what_to_do(problems):
    """The advice that goes with a refusal: for an op or a function that has no ONNX conversion, how to get
    past it (docs/export.md, What a model may hold)."""
    text = " ".join(problems)
    if "PartitionedCall" in text:
        return ("; the layer calls a TensorFlow function that could not be inlined: write its call() without a "
                "tf.function of its own (jit_compile, a nested function), or leave the layer out of the exported "
                "model")
    if "no ONNX conversion" in text or "no ONNX op" in text:
        return ("; build that layer from ops ONNX has (or a custom layer that does: --custom-objects), or leave it "
                "out of the exported model and apply it after the network")
    return ""


def describe_output(model) -> dict:
    """What the last layer says about the output: its activation, as Keras knows it."""
    last = model.layers[-1] if model.layers else None
    activation = (last.get_config().get("activation") if last is not None else None) or "linear"
    if not isinstance(activation, str):
        activation = "linear"
    return {"activation": activation if activation in ("softmax", "sigmoid") else "linear"}
