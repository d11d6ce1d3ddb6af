"""Keras model (a train run directory, or any .keras file) -> a checked ONNX bundle.

Steps: load the model; work out the input contract (from the run's meta.json, or from the model and the
options for a model train did not make); convert to ONNX; run Keras and ONNX Runtime on the same real
samples, prepared by the runtime's own preprocessing; write parity.json. Only when parity holds does the
staging folder get a manifest and become the bundle: a failed export leaves OUT.failed/ (no manifest,
so nothing loads it) with the ONNX and the parity report for a look.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import os
import shutil
import sys

import numpy as np

from runtime import bundle as bundle_format
from runtime import images
from runtime.sim import road
from runtime.errors import UserError
from runtime.preprocess import Preprocessor
from train.run_dir import read_meta

from . import keras_onnx, parity

SAMPLE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
FALLBACK_SAMPLES = 32


class Options:
    """What the user may say about a model that train did not make (each None = work it out)."""

    def __init__(self, opset=keras_onnx.DEFAULT_OPSET, atol=parity.DEFAULT_ATOL, name=None, task=None,
                 labels=None, color=None, scale=None, offset=None, interpolation=None, samples=None, unsafe=False,
                 custom_objects=()):
        self.opset, self.atol, self.name, self.task, self.labels = opset, atol, name, task, labels
        self.color, self.scale, self.offset, self.interpolation = color, scale, offset, interpolation
        self.samples, self.unsafe, self.custom_objects = samples, unsafe, custom_objects


def resolve_source(src):
    """(path of the .keras file, run metadata or None) for a run directory or a model file."""
    if not os.path.exists(src):
        raise UserError("no such run directory or model file: %s" % src)
    if os.path.isdir(src):
        model_path = os.path.join(src, "model.keras")
        if not os.path.isfile(model_path):
            raise UserError("%s has no model.keras: not a train run directory (train with: python -m train "
                            "--model NAME --out %s)" % (src, src))
        return model_path, read_meta(src)
    if not src.endswith(".keras"):
        raise UserError("%s is not a .keras file (legacy .h5 models: load them in Keras and save as .keras)" % src)
    return src, read_meta(os.path.dirname(os.path.abspath(src)))


def _contract_from_model(model, opts, shape, out_shapes):
    """The manifest's task/labels/input/preprocess for a model with no run metadata."""
    out = keras_onnx.describe_output(model)
    if len(shape) == 3 and shape[-1] in (1, 3):
        layout, (h, w, c) = "NHWC", shape
    elif len(shape) == 3 and shape[0] in (1, 3):
        layout, (c, h, w) = "NCHW", shape
    else:
        raise UserError("cannot tell the image layout of input shape %s (want H x W x C or C x H x W with "
                        "1 or 3 channels)" % (shape,))
    units = int(out_shapes[0][-1])
    task = opts.task or ("binary" if units == 1 and out["activation"] == "sigmoid" else
                         "classification" if units > 1 and out["activation"] == "softmax" else "regression")
    labels = opts.labels
    if labels is None and task in ("classification", "binary"):
        labels = [str(i) for i in range(2 if task == "binary" else units)]
    if task == "classification" and len(labels) != units:
        raise UserError("%d labels given for %d outputs" % (len(labels), units))
    color = opts.color or ("gray" if c == 1 else "rgb")
    if (color == "gray") != (c == 1):
        raise UserError("--color %s does not fit an input with %d channel(s)" % (color, c))
    scale = opts.scale
    if scale is None:
        scale = 1.0 if _scales_itself(model) else 1.0 / 255
        print("note: input = pixel x %s%s (--scale and --offset set it)" % (
            "1: the model rescales raw pixels itself" if scale == 1.0 else "1/255",
            "" if opts.offset is None else " + offset"), file=sys.stderr)
    pre = {"crop": None, "resize": {"width": int(w), "height": int(h), "interpolation": opts.interpolation or "linear"},
           "color": color, "scale": scale,
           "offset": 0.0 if opts.offset is None else opts.offset}
    meta = {"name": opts.name or "model", "task": task, "labels": labels or [],
            "input": {"shape": [None] + [int(d) for d in shape], "layout": layout}, "preprocess": pre}
    if task == "steering":
        meta["steering"] = road.steering_metadata()
    return meta


TRAINING_ONLY = ("Dropout", "SpatialDropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Random")


def _scales_itself(model):
    """Whether the first layer that acts at inference is a Rescaling (MobileNetV3, EfficientNet, PilotNet, a
    tutorial's augmentation then Rescaling(1/255)) or a Normalization whose mean is in pixel units, above 1
    (ConvNeXt's ImageNet mean x 255, one adapted on raw pixels): then the model takes raw pixels. Training-only
    layers are identities at inference and are looked through, nested models (an augmentation block) too."""
    return bool(_first_rescales(model))


def _first_rescales(model):
    """True or False for the first layer that acts at inference; None when model has none."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or type(layer).__name__.startswith(TRAINING_ONLY):
            continue
        found = _first_rescales(layer) if isinstance(layer, keras.Model) else (
            isinstance(layer, keras.layers.Rescaling) or isinstance(layer, keras.layers.Normalization) and
            getattr(layer, "mean", None) is not None and float(np.max(np.abs(np.asarray(layer.mean)))) > 1.0)
        if found is not None:
            return found
    return None


def _load_samples(meta, run_dir, opts, size):
    """Raw BGR frames: --samples, else the run's samples, else synthetic road frames (with a warning). Names of
    any bytes; each image held to the pixel budget before it is decoded (runtime/images.py). At most
    bundle_format.MAX_SAMPLES (64), and only as many as hold the pixel budget together, as the runtime reads a
    bundle's samples (more are dropped with a warning)."""
    if opts.samples:
        folder = opts.samples
        if not os.path.isdir(folder):
            raise UserError("--samples %s is not a folder of images" % images.shown(folder))
        paths = sorted(p for p in glob.glob(os.path.join(glob.escape(folder), "*")) if p.lower().endswith(SAMPLE_EXTS))
        if not paths:
            raise UserError("--samples %s has no images (%s)" % (images.shown(folder), ", ".join(SAMPLE_EXTS)))
    elif meta is not None and meta.get("samples", {}).get("files"):
        folder = os.path.join(run_dir, meta["samples"].get("dir", "samples"))
        paths = [os.path.join(folder, n) for n in meta["samples"]["files"]]
    else:
        print("warning: no real samples (give --samples DIR); checking parity on synthetic road frames",
              file=sys.stderr)
        width, height = max(size[0], 64), max(size[1], 64)
        count = max(1, min(FALLBACK_SAMPLES, images.max_pixels() // (width * height)))  # within the budget together
        frames, _ = road.sample_frames(count, width, height, seed=12345)
        return list(frames)
    frames, total, budget = [], 0, images.max_pixels()
    for p in paths[:bundle_format.MAX_SAMPLES]:
        try:
            frame = images.read_image(p, budget)
        except images.ImageError as exc:
            raise UserError("sample %s: %s" % (images.shown(p), exc.why)) from None
        total += frame.shape[0] * frame.shape[1]
        if total > budget and frames:  # the runtime holds a bundle's samples together to the budget: keep what fits
            print("warning: keeping the first %d of %d samples: with the next they would hold more than the image "
                  "budget's %d pixels together, more than the runtime reads of a bundle's samples"
                  % (len(frames), min(len(paths), bundle_format.MAX_SAMPLES), budget), file=sys.stderr)
            break
        frames.append(frame)
    return frames


def _tool_versions():
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def _manifest(contract, model, opts, onnx_bytes, output_names, out_shapes):
    activation = keras_onnx.describe_output(model)["activation"]
    outputs = [{"name": n, "shape": [None] + list(out_shapes[i]),
                "activation": activation if i == 0 else "linear"} for i, n in enumerate(output_names)]
    manifest = {
        "format": bundle_format.FORMAT, "format_version": bundle_format.FORMAT_VERSION,
        "name": contract.get("name", "model"), "task": contract["task"], "labels": contract.get("labels", []),
        "model": {"file": "model.onnx", "sha256": hashlib.sha256(onnx_bytes).hexdigest(), "opset": opts.opset},
        "input": {"name": "input", "shape": contract["input"]["shape"], "layout": contract["input"]["layout"],
                  "dtype": "float32"},
        "preprocess": contract["preprocess"], "outputs": outputs,
    }
    if contract.get("steering"):
        manifest["steering"] = contract["steering"]
    if contract.get("task") == "detection":  # the outputs' names as the ONNX has them
        manifest["detection"] = dict(_detection(contract), raw_output=output_names[0], output=output_names[1])
    if contract.get("task") == "segmentation":
        if not contract.get("segmentation"):
            raise UserError("the run is a segmentation network's but its meta.json has no segmentation section: "
                            "train it again")
        manifest["segmentation"] = dict(contract["segmentation"], probabilities_output=output_names[0],
                                        output=output_names[1])
        outputs[0]["activation"] = "softmax"  # the class map's layer hides the probabilities' own
    problems = bundle_format.validate(manifest)
    if problems:
        raise UserError("the model's metadata makes a bad manifest: " + "; ".join(problems))
    return manifest


def _refuse_to_overwrite(out):
    """out may be a bundle (replaced), an empty folder or nothing yet; anything else is refused."""
    if os.path.exists(out) and not bundle_format.is_bundle(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError("--out %s exists and is not a bundle: refusing to overwrite it" % out)


def _model_and_contract(model_path, meta, opts):
    """(the Keras model, the input contract: the run's metadata or one worked out from the model and opts,
    the output shapes); UserError when the model's input is not the run's."""
    custom = keras_onnx.import_custom_objects(opts.custom_objects)
    model = keras_onnx.load_keras(model_path, unsafe=opts.unsafe, custom_objects=custom)
    shape = keras_onnx.input_spec(model)
    out_shapes = keras_onnx.output_shapes(model, shape)
    contract = meta if meta is not None else _contract_from_model(model, opts, shape, out_shapes)
    if opts.name:
        contract["name"] = opts.name
    if [None] + list(shape) != list(contract["input"]["shape"]):
        raise UserError("the model's input %s is not the run's %s (meta.json): export the run's own model.keras"
                        % ((None,) + shape, tuple(contract["input"]["shape"])))
    return model, contract, out_shapes


def _detection(contract):
    """A detector's manifest section (the run's, with the index of its detections output), or None."""
    if contract.get("task") != "detection":
        return None
    if not contract.get("detection"):
        raise UserError("the run is a detector's but its meta.json has no detection section: train it again")
    return dict(contract["detection"], detections_output=1)


def _keras_outputs(model, x, one_at_a_time=False):
    """Keras's outputs on the batch x, as a list (one array per output); one_at_a_time: a sample at a time (a
    detector's decoding takes batch 1)."""
    if one_at_a_time:
        return parity.frame_at_a_time(lambda batch: model(batch, training=False), x)
    keras_out = model.predict(x, verbose=0, batch_size=64)
    return list(keras_out) if isinstance(keras_out, (list, tuple)) else [keras_out]


def _parity_check(ort, x, keras_out, atol, detection=None, segmentation=False):
    """check(proto) for keras_onnx.convert: (whether ONNX Runtime's outputs on x hold to Keras's, the report).
    detection (the manifest's section): a detector, run a sample at a time (its decoding takes batch 1); its
    RAW output is compared as any output is, its decoded boxes by parity.compare_detections. segmentation: the
    probabilities are compared as any output is, the class maps by parity.compare_classes (pixels that agree)."""
    def check(proto):
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        if detection is None:
            onnx_out = session.run(None, {"input": x})
        else:
            onnx_out = parity.frame_at_a_time(lambda batch: session.run(None, {"input": batch}), x)
        report = parity.compare(keras_out, onnx_out, atol)
        if detection is not None:
            report["outputs"] = report["outputs"][:1]  # the boxes are judged by their own rule, below
            report["passed"] = all(o["passed"] for o in report["outputs"])
            report["vacuous"] = any(o["vacuous"] for o in report["outputs"])
            boxes = parity.compare_detections(keras_out[1], onnx_out[1], detection["threshold"])
            report["detections"] = boxes
            report["passed"] = report["passed"] and boxes["passed"]
            report["vacuous"] = report["vacuous"] or boxes["vacuous"]
        if segmentation:
            report["outputs"] = report["outputs"][:1]  # the class map is judged by the pixels that agree
            classes = parity.compare_classes(keras_out[1], onnx_out[1])
            report["classes"] = classes
            report["passed"] = all(o["passed"] for o in report["outputs"]) and classes["passed"]
            report["vacuous"] = any(o["vacuous"] for o in report["outputs"]) or classes["vacuous"]
        return report["passed"], report

    return check


def _stage(staging, onnx_bytes, report, frames, keras_out, output_names):
    """model.onnx, parity.json and samples/ (the frames as PNG, Keras's outputs on them) in the staging folder;
    the manifest's samples section."""
    with open(os.path.join(staging, "model.onnx"), "wb") as f:
        f.write(onnx_bytes)
    bundle_format.write_json(os.path.join(staging, "parity.json"), report)
    files = []
    for i, frame in enumerate(frames):
        name = "sample_%03d.png" % i
        images.write_image(os.path.join(staging, "samples", name), frame)  # the bundle's path may be any bytes
        files.append(name)
    np.savez(os.path.join(staging, "samples", "keras_outputs.npz"),
             **{n: np.asarray(k) for n, k in zip(output_names, keras_out)})
    return {"dir": "samples", "files": files, "keras_outputs": "keras_outputs.npz"}


def _finish_manifest(manifest, samples, report, meta):
    """The manifest's fields known once the bundle is staged: samples, tools, time, conversion, held-out results."""
    manifest["samples"] = samples
    manifest["tools"] = _tool_versions()
    manifest["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    manifest["conversion"] = {"route": report["route"], "parity_vacuous": report["vacuous"]}
    if meta is not None and meta.get("held_out"):
        manifest["held_out"] = meta["held_out"]


def _write_bundle(out, onnx_bytes, report, frames, keras_out, output_names, manifest, meta):
    """Stage the bundle beside out; publish it there when parity passed, else leave it as OUT.failed/ (no
    manifest). Returns the report."""
    out_abs = os.path.abspath(out)
    os.makedirs(os.path.dirname(out_abs), exist_ok=True)
    staging = out_abs + ".staging-%d" % os.getpid()
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "samples"))
    try:
        samples = _stage(staging, onnx_bytes, report, frames, keras_out, output_names)
        _finish_manifest(manifest, samples, report, meta)
        if not report["passed"]:
            failed = out_abs + ".failed"
            shutil.rmtree(failed, ignore_errors=True)
            os.replace(staging, failed)
            return report
        bundle_format.write_manifest(staging, manifest)
        bundle_format.publish(staging, out_abs)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export(src: str, out: str, opts: Options, log=sys.stderr) -> dict:
    """Write the bundle at out; returns the parity report (report["route"]: which conversion it kept).
    UserError on bad input; a failed parity leaves OUT.failed/ and returns the failing report."""
    import onnxruntime as ort

    _refuse_to_overwrite(out)
    model_path, meta = resolve_source(src)
    model, contract, out_shapes = _model_and_contract(model_path, meta, opts)

    # parity is judged on real frames in the model's real range: the manifest's preprocessing applied to them
    size = (contract["preprocess"]["resize"]["width"], contract["preprocess"]["resize"]["height"])
    frames = _load_samples(meta, os.path.dirname(os.path.abspath(model_path)), opts, size)
    x = Preprocessor(contract["preprocess"], dict(contract["input"], dtype="float32")).batch(frames)
    detection = _detection(contract)
    if detection is not None:  # the decoding in the graph: K boxes out, padded (train/detector.py)
        from train import detector

        model = detector.with_decoding(model, len(contract["labels"]), detection["k"])
        out_shapes = keras_onnx.output_shapes(model, keras_onnx.input_spec(model))
    segmentation = contract.get("task") == "segmentation"
    if segmentation:  # the class map in the graph, beside the probabilities (train/freespace.py)
        from train import freespace

        model = freespace.with_classes(model)
        out_shapes = keras_onnx.output_shapes(model, keras_onnx.input_spec(model))
    keras_out = _keras_outputs(model, x, one_at_a_time=detection is not None)
    check = _parity_check(ort, x, keras_out, opts.atol, detection, segmentation)
    proto, route, report = keras_onnx.convert(model, opts.opset, check, log)
    report["samples"], report["route"] = len(frames), route
    if report.get("detections", {}).get("vacuous"):
        print("warning: no sample has a detection at or above the threshold (%g), so the decoded boxes' parity "
              "proves nothing: an untrained detector, or give --samples DIR with frames that hold objects"
              % detection["threshold"], file=log)
    elif report["vacuous"]:
        print("warning: parity is vacuous: %s, so an error in the conversion would not show (an untrained, dead "
              "or saturated network, or samples scaled into a range it ignores): give --samples DIR with varied "
              "real images, or check the model" % parity.why_vacuous(report), file=log)
    onnx_bytes = proto.SerializeToString()
    output_names = [o.name for o in proto.graph.output]
    manifest = _manifest(contract, model, opts, onnx_bytes, output_names, out_shapes)
    return _write_bundle(out, onnx_bytes, report, frames, keras_out, output_names, manifest, meta)
