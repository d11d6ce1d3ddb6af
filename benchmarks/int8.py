"""What INT8 costs a bundle, and why: each candidate cause measured on the frames `export verify --data`
judges (the bundle's samples and --frames evaluation frames, against model.onnx). Run by hand (a minute or
two per bundle on 2 cores):

    .venv/bin/python benchmarks/int8.py BUNDLE [--data road] [--frames 500] [--calib-frames 500] [--quick]
                                               [--json FILE]

Rows, each an INT8 model made from model.onnx by ONNX Runtime's static quantization (QDQ, symmetric,
per-channel weights) and run in ONNX Runtime on the CPU:
    fp16                     the fp16 variant, for scale
    all-ops                  every op type ONNX Runtime knows quantized (export variants before issue 12)
    weighted-inputs          only the inputs of Conv/MatMul/Gemm, min-max calibration, first and last weighted
                             layers float (what export variants makes now)
    ... -entropy/-percentile the same with another calibration method (-entropy-2048-bins: entropy that can
                             choose a threshold below the maximum, as TensorRT's calibrator does)
    ... -calib-N             the same calibrated on N frames (or the bundle's samples)
    only-LAYER               one weighted layer in INT8, the rest float: its sensitivity
    all-int8                 every weighted layer in INT8
    float-A+B                all but A and B in INT8, for the most sensitive pairs
Per row: mean and max |error| of the first output (steering) or top-1 agreement with FP32 (classifiers).
"""

import argparse
import contextlib
import io
import itertools
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from export import variants  # noqa: E402
from runtime import bundle as bundle_format  # noqa: E402
from runtime.backends.tensorrt import calibrator  # noqa: E402
from runtime.commands import engine as calibration_data  # noqa: E402  (where calibration frames are chosen)
from runtime.preprocess import Preprocessor  # noqa: E402


def _run(model, name, x):
    import onnxruntime as ort

    data = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])


def _score(task, ref, out):
    err = np.abs(ref.astype(np.float64) - out.reshape(ref.shape))
    row = {"mean_abs": float(err.mean()), "max_abs": float(err.max())}
    if task == "classification":
        row["top1"] = float(np.mean(ref.argmax(-1) == out.argmax(-1)))
    elif task == "binary":
        row["top1"] = float(np.mean((ref > 0.5) == (out > 0.5)))
    return row


def _quantize(prepared, bundle, batches, method="minmax", ops=variants.WEIGHTED_OPS, outputs=False,
              exclude=(), only=None, cache=None):
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
               "percentile": CalibrationMethod.Percentile}
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True}
    if not outputs:
        extra["OpTypesToExcludeOutputQuantization"] = list(variants.WEIGHTED_OPS)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        out = os.path.join(tmp, "int8.onnx")
        quantize_static(prepared, out, variants._Reader(bundle.input["name"], batches), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(ops) if ops else None, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True, calibrate_method=methods[method],
                        nodes_to_exclude=list(exclude), nodes_to_quantize=list(only) if only else None,
                        extra_options=extra, calibration_cache_path=cache)
        return onnx.load(out)


def _entropy_cache(prepared, bundle, batches, path, num_bins=2048):
    """TensorRT's entropy calibration for real: quantize_static's Entropy builds 128-bin histograms and looks
    for a threshold among 128 quantized bins, so its only candidate is the full range (min-max)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory() as tmp:
        cal = create_calibrator(prepared, list(variants.WEIGHTED_OPS), os.path.join(tmp, "aug.onnx"),
                                CalibrationMethod.Entropy, extra_options={"num_bins": num_bins,
                                                                          "num_quantized_bins": 128, "symmetric": True})
        cal.collect_data(variants._Reader(bundle.input["name"], batches))
        save_tensors_data(cal.compute_data(), path)
    return path


def main(argv=None):
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    p = argparse.ArgumentParser(prog="benchmarks/int8.py")
    p.add_argument("bundle")
    p.add_argument("--data", default="road", help="calibration and evaluation data (default road)")
    p.add_argument("--frames", type=int, default=500, help="evaluation frames (default 500)")
    p.add_argument("--calib-frames", type=int, default=500, help="calibration frames (default 500)")
    p.add_argument("--quick", action="store_true", help="only the rows that `export variants` can make")
    p.add_argument("--json")
    args = p.parse_args(argv)

    bundle = bundle_format.load(args.bundle)
    pre = Preprocessor(bundle.preprocess, bundle.input)
    frames, _ = calibration_data.load_frames(bundle, args.data, args.frames, None, purpose="evaluation")
    x = np.concatenate([pre.batch(bundle_format.bundle_samples(bundle)), pre.batch(frames)])
    name = bundle.input["name"]
    ref = _run(bundle.model_path, name, x)
    calib = {}

    def batches(n=args.calib_frames, data=args.data):
        if (n, data) not in calib:
            f, _ = calibration_data.load_frames(bundle, data, n, None)
            calib[n, data] = calibrator.batches(bundle, f, 1)
        return list(calib[n, data])

    rows = {}

    def row(label, model):
        rows[label] = _score(bundle.task, ref, _run(model, name, x))
        layers = variants.weighted_layers(model) if not isinstance(model, str) else []
        rows[label]["int8_layers"] = sum(q for _, _, q in layers)
        print("%-34s %s" % (label, "  ".join("%s %.4g" % kv for kv in rows[label].items())), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(bundle.model_path, prepared, skip_symbolic_shape=True)
        weighted = [n for n, _, _ in variants.weighted_layers(onnx.load(prepared))]
        ends = [weighted[0], weighted[-1]]
        print("%s: %d frames (%d samples + %d %s); %d weighted layers: %s" % (
            bundle.path, len(x), len(x) - len(frames), len(frames), args.data, len(weighted), " ".join(weighted)))
        if os.path.isfile(bundle.model_file("fp16") if "fp16" in bundle.variants else ""):
            row("fp16", bundle.model_file("fp16"))
        row("all-ops (before)", _quantize(prepared, bundle, batches(), ops=None, outputs=True, exclude=ends))
        row("weighted-inputs+outputs", _quantize(prepared, bundle, batches(), outputs=True, exclude=ends))
        cache = os.path.join(tmp, "minmax.json")
        row("weighted-inputs", _quantize(prepared, bundle, batches(), exclude=ends, cache=cache))
        row("weighted-inputs all-int8", _quantize(prepared, bundle, batches(), cache=cache))
        if not args.quick:
            for method in ("entropy", "percentile"):
                row("weighted-inputs -%s" % method, _quantize(prepared, bundle, batches(), method, exclude=ends))
            real = _entropy_cache(prepared, bundle, batches(), os.path.join(tmp, "entropy2048.json"))
            row("weighted-inputs -entropy-2048-bins", _quantize(prepared, bundle, batches(), "entropy", exclude=ends,
                                                                 cache=real))
            for n in (100, 2000):
                row("weighted-inputs -calib-%d" % n, _quantize(prepared, bundle, batches(n), exclude=ends))
            row("weighted-inputs -calib-samples", _quantize(prepared, bundle, batches(None, None), exclude=ends))
            sens = {}
            for layer in weighted:
                row("only-" + layer, _quantize(prepared, bundle, batches(), only=[layer], cache=cache))
                sens[layer] = rows["only-" + layer]["max_abs"]
            worst = sorted(weighted, key=sens.get, reverse=True)
            print("most sensitive first:", " ".join(worst))
            for a, b in itertools.islice(itertools.combinations(worst[:4], 2), 6):
                row("float-%s+%s" % (a, b), _quantize(prepared, bundle, batches(), exclude=[a, b], cache=cache))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
