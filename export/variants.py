"""Precision variants of a bundle's model.onnx, for TensorRT 11 (strongly typed: precision comes from the
ONNX) and for ONNX Runtime:

    model.fp16.onnx   float16 weights and compute, float32 input and output (onnxruntime's float16 converter)
    model.int8.onnx   QuantizeLinear/DequantizeLinear on the inputs (data and weights) of the Conv/MatMul/Gemm
                      layers only, symmetric INT8 (what TensorRT's explicit quantization takes): their outputs,
                      Relu, Add, Softmax, Sigmoid, Concat and the graph's outputs stay float, so probabilities
                      and a steering value never pass through INT8. ONNX Runtime's QDQ quantizer gives every
                      consumer of a quantized tensor its dequantized value (in a residual block, the Add beside
                      a quantized Conv), so those consumers are pointed back at the float tensor afterwards.
                      Calibrated by ONNX Runtime's static quantization (min-max) on representative frames
                      prepared by the runtime's own preprocessing. The first
                      and last weighted layers stay float; the manifest's variants.int8.layers records how
                      many weighted layers are INT8 and which stayed float.

Each is written atomically, then the manifest gains `variants.<precision>` with its sha256; the variant is
then run in ONNX Runtime on the bundle's samples and compared with Keras's outputs (export/verify.py).
Needs onnx and onnxruntime (the `train` extra), never TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from runtime import bundle as bundle_format, images
from runtime.commands import engine as calibration_data
from runtime.errors import UserError, require

FILES = {"fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}
WEIGHTED_OPS = ("Conv", "MatMul", "Gemm")


def fp16_model(src: str):
    onnx = require("onnx", "train", "making an fp16 variant")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load(src), keep_io_types=True)


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader face over our preprocessed batches."""

    def __init__(self, name, batches):
        self.name, self.batches = name, iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch}

    def rewind(self):  # newer onnxruntime versions call it
        pass


def weighted_layers(proto):
    """[(node name, op type, in INT8?)] for the graph's Conv/MatMul/Gemm nodes in order; a layer is INT8 when
    both its data and its weights come from DequantizeLinear nodes."""
    from_dq = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [(n.name, n.op_type, n.input[0] in from_dq and n.input[1] in from_dq)
            for n in proto.graph.node if n.op_type in WEIGHTED_OPS]


def layer_counts(proto) -> dict:
    """What the manifest's variants.int8.layers records: how many weighted layers there are, how many of them
    run in INT8, and the names of those left in float."""
    layers = weighted_layers(proto)
    return {"weighted": len(layers), "int8": sum(q for _, _, q in layers),
            "float": [name for name, _, q in layers if not q], "quantized": "inputs of %s" % "/".join(WEIGHTED_OPS)}


def describe(layers) -> str:
    """"int8: 7 of 9 weighted layers" from a layer_counts() dict."""
    return "int8: %d of %d weighted layers" % (layers["int8"], layers["weighted"])


def quantize(src, dst, reader, keep_float=()):
    """ONNX Runtime's static QDQ quantization of the weighted layers' inputs (data and weights), symmetric
    INT8, per-channel weights, min-max calibration; keep_float: node names left in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(src, dst, reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(WEIGHTED_OPS),
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(keep_float),
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   "OpTypesToExcludeOutputQuantization": list(WEIGHTED_OPS)})


def float_beside_int8(proto):
    """Only weighted layers read dequantized data: every other consumer of a quantized tensor, and a graph
    output that is one, gets the float tensor back (quantize_static hands all of them the DequantizeLinear's
    output). Changes proto in place and returns it."""
    graph = proto.graph
    nodes, outputs = list(graph.node), {o.name for o in graph.output}
    quantizers = {n.output[0]: n for n in nodes if n.op_type == "QuantizeLinear"}
    for dq in [n for n in nodes if n.op_type == "DequantizeLinear" and n.input[0] in quantizers]:
        float_name, dq_name = quantizers[dq.input[0]].input[0], dq.output[0]
        if dq_name in outputs:  # a graph output keeps its name, as the float tensor; the weighted layers get
            dq.output[0] = dq_name + "_dequantized"  # the dequantized one under a new name
            for n in nodes:
                if n is not dq:
                    n.output[:] = [dq_name if o == float_name else o for o in n.output]
                    n.input[:] = [dq.output[0] if i == dq_name and n.op_type in WEIGHTED_OPS else
                                  dq_name if i == float_name else i for i in n.input]
        else:
            for n in nodes:
                if n.op_type not in WEIGHTED_OPS:
                    n.input[:] = [float_name if i == dq_name else i for i in n.input]
    produced = {o for n in nodes for o in n.output}
    kept = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return proto


def int8_model(bundle, calib_data, calib_frames, log, keep_float=None):
    """(onnx ModelProto with Q/DQ nodes, where the calibration frames came from). Only the inputs (data and
    weights) of the weighted operators are quantized: their outputs, and Relu, Add, Softmax, Sigmoid, Concat
    and the graph's outputs stay float. keep_float: node names left in float (default: the first and last
    weighted layers)."""
    onnx = require("onnx", "train", "making an int8 variant")
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x, where = calibration_data.load_batch(bundle, calib_data, calib_frames, log)  # preprocessed as they are read
    batches = [x[i:i + 1] for i in range(len(x))]  # batch 1, each contiguous
    with tempfile.TemporaryDirectory() as tmp:
        prepared, out = os.path.join(tmp, "prepared.onnx"), os.path.join(tmp, "int8.onnx")
        with images.PlainName(bundle.model_path, folder=True, who="ONNX Runtime") as model_path:
            quant_pre_process(model_path, prepared, skip_symbolic_shape=True)  # ORT refused a name not UTF-8
        if keep_float is None:
            weighted = [name for name, _, _ in weighted_layers(onnx.load(prepared))]
            keep_float = [weighted[0], weighted[-1]] if len(weighted) > 2 else []
        with contextlib.redirect_stdout(log):  # its progress prints, kept off our stdout
            quantize(prepared, out, _Reader(bundle.input["name"], batches), keep_float)
        proto = float_beside_int8(onnx.load(out))
        onnx.checker.check_model(proto)
        return proto, where


def make(bundle_path: str, precision: str, calib_data=None, calib_frames=calibration_data.DEFAULT_FRAMES,
         log=sys.stderr) -> str:
    """Write one variant into the bundle and record it in the manifest; returns the variant's path."""
    if precision not in FILES:
        raise UserError("no %s variant: choose from %s" % (precision, ", ".join(FILES)))
    bundle = bundle_format.load(bundle_path)
    if not os.access(bundle.path, os.W_OK):
        raise UserError("%s is read-only: copy the bundle somewhere writable to add variants" % bundle.path)
    entry = {"file": FILES[precision]}
    if precision == "fp16":
        proto = fp16_model(bundle.model_path)
    else:
        proto, where = int8_model(bundle, calib_data, calib_frames, log)
        entry["calibration"] = {"data": where, "method": "minmax", "format": "QDQ, symmetric, per-channel weights"}
        entry["layers"] = layer_counts(proto)
    data = proto.SerializeToString()
    path = os.path.join(bundle.path, entry["file"])
    bundle_format.write_atomic(path, data)
    entry["sha256"] = bundle_format.sha256_file(path)
    manifest = dict(bundle.manifest)
    manifest["variants"] = dict(manifest.get("variants") or {}, **{precision: entry})
    bundle_format.write_manifest(bundle.path, manifest)
    return path
