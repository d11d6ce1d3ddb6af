"""Load a Keras 3 model file and convert it to ONNX with a dynamic batch dimension.

The route: tf.function with a named input signature -> tf2onnx.convert.from_function. (tf2onnx's
from_keras fails on Keras 3 Sequential models: onnx/tensorflow-onnx#2448.) Opset 15 by default: what
TensorRT 8.5 and later parse (8.x reads up to 17).
"""

from __future__ import annotations

import sys
import zipfile

from runtime.cli import UserError

DEFAULT_OPSET = 15
OPSETS = range(13, 21)
TENSORRT8_MAX_OPSET = 17


def check_model_file(path: str) -> None:
    """Cheap checks before TensorFlow is loaded: a .keras file is a zip archive with a config.json."""
    if not zipfile.is_zipfile(path):
        raise UserError("%s is not a Keras 3 model file (.keras is a zip archive): corrupt or another format"
                        % path)
    with zipfile.ZipFile(path) as z:
        if "config.json" not in z.namelist():
            raise UserError("%s is a zip archive without config.json: not a Keras 3 model file" % path)


def load_keras(path: str):
    """keras.saving.load_model in safe mode; a bad file is a one-line UserError."""
    check_model_file(path)
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError("cannot load %s: %s" % (path, first[:300])) from None


def _rename(graph, old, new):
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]


def convert(model, opset: int = DEFAULT_OPSET):
    """An onnx.ModelProto with one float32 input 'input' [batch, ...] and outputs 'output' (or output_i)."""
    import tensorflow as tf
    import tf2onnx

    if opset not in OPSETS:
        raise UserError("opset %d is not supported (use %d to %d; TensorRT 8.x parses up to %d)"
                        % (opset, OPSETS[0], OPSETS[-1], TENSORRT8_MAX_OPSET))
    if opset > TENSORRT8_MAX_OPSET:
        print("warning: opset %d is newer than TensorRT 8.x (JetPack 5, 6.0) parses" % opset, file=sys.stderr)
    if len(model.inputs) != 1:
        raise UserError("the model has %d inputs; a camera bundle needs exactly one image input" % len(model.inputs))
    shape = tuple(model.inputs[0].shape)[1:]
    if any(d is None for d in shape):
        raise UserError("the model's input shape %s has unknown sizes besides the batch; build it with a "
                        "fixed input size" % (tuple(model.inputs[0].shape),))
    signature = [tf.TensorSpec((None,) + shape, tf.float32, name="input")]

    @tf.function(input_signature=signature)
    def serve(x):
        return model(x, training=False)

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    graph = proto.graph
    outputs = list(graph.output)
    for i, out in enumerate(outputs):
        _rename(graph, out.name, "output" if len(outputs) == 1 else "output_%d" % i)
        out.name = "output" if len(outputs) == 1 else "output_%d" % i
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_param = "batch"
    proto.producer_name = "edge-toolkit export (tf2onnx %s)" % tf2onnx.__version__
    import onnx

    onnx.checker.check_model(proto)
    return proto


def describe_output(model) -> dict:
    """What the last layer says about the output: its activation, as Keras knows it."""
    last = model.layers[-1] if model.layers else None
    activation = (last.get_config().get("activation") if last is not None else None) or "linear"
    if not isinstance(activation, str):
        activation = "linear"
    return {"activation": activation if activation in ("softmax", "sigmoid") else "linear"}
