"""python -m export verify BUNDLE: the bundle's samples through every backend this machine has, against
Keras's outputs stored at export, one table row per backend and precision.

The reference is Keras's outputs stored with the samples; --data adds frames (a dataset or a folder, video
or glob) whose reference is model.onnx, which export checked against Keras to 1e-4. Rows: Keras itself when
given --keras and TensorFlow is here; ONNX Runtime on model.onnx and on each
precision variant; each TensorRT engine in the bundle (or the user cache) built for this device and TensorRT.
Errors are scaled to the output's range (max |error| / max |reference|): FP32 within 1e-4, FP16 within 1e-2;
INT8 is judged by the task: top-1 agreement >= 99% (classification, binary), steering error within 5% of the
steering range [-1, 1] (so 0.1), relative error within 5% for other regressions. With an int8 variant the
report (a note in the table, `int8_layers` in the JSON) says how many of its weighted layers run in INT8 and
which stayed float (the manifest's variants.int8.layers, else counted in its graph). A detector's decoded boxes
are matched one to one (IoU and score within a tolerance per precision); with --data road-obstacles, whose frames
come labelled, each row also gets its mAP@0.5, and a variant passes only within 1 point of model.onnx's (FP16)
or 2 points (INT8).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import zipfile
import zlib

import numpy as np

from runtime import bundle as bundle_format, detections
from runtime.backends import choose
from runtime.backends.onnxruntime import OnnxRuntimeBackend
from runtime.backends.tensorrt import TensorRTBackend, engines
from runtime.backends.tensorrt import api as trtlib
from runtime.backends.tensorrt.cuda import Gpu
from runtime.bundle import bundle_samples
from runtime.commands import engine as calibration_data
from runtime.errors import UserError
from runtime.images import shown
from runtime.postprocess import class_iou
from runtime.preprocess import Preprocessor, nearest_indices
from runtime.sim import segmentation

from . import keras_onnx, load_tensorflow, parity
from .onnx_bundle import resolve_source
from .variants import describe, layer_counts

RELATIVE_TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2}
INT8_TOP1_AGREEMENT = 0.99
INT8_STEERING_FRACTION = 0.05
STEERING_RANGE = 2.0  # steering is normalised to [-1, 1]
INT8_RELATIVE = 0.05
MAX_REFERENCE_BYTES = 1 << 30  # Keras's outputs for the samples: 32 frames of 512x512x21 float32 are 704 MiB
MIN_FRAMES_FOR_AGREEMENT = 100  # with 32 frames one disagreement is 96.9%: 99% cannot be told from chance


MAP50_DROP = {"fp16": 0.01, "int8": 0.02}  # a detector's variants on labelled frames: mAP@0.5 below model.onnx's
# a detector's boxes per precision: (IoU, score within, the share of boxes that may have no such counterpart: a
# peak that moves to the next cell, a score that crosses the threshold; 0.2% at FP16 and 2.8% at INT8 on 300
# road-obstacles frames)
DETECTION_TOLERANCE = {"fp32": (0.99, 1e-4, 0.0), "fp16": (0.9, 1e-2, 0.01), "int8": (0.7, 0.1, 0.05)}


MIOU_DROP = {"fp16": 0.01, "int8": 0.02}  # a segmentation network's variants on labelled frames: mIoU below fp32's
# the share of pixels whose class must agree with the reference's, per precision (an ArgMax flips where two classes
# are near a tie: rounding at FP32, more at FP16 and INT8; mIoU on labelled frames judges what that costs)
CLASS_AGREEMENT = {"fp32": 0.999, "fp16": 0.99, "int8": 0.95}


def _judge_detections(entry, precision, ref, out, detection):
    """A detector's decoded boxes against the reference's, by export's rule (export/parity.compare_detections)
    at this precision's IoU and score tolerance, with the share of boxes that may go unmatched."""
    min_iou, score_tol, share = DETECTION_TOLERANCE.get(precision, DETECTION_TOLERANCE["int8"])
    boxes = parity.compare_detections(ref, out, detection["threshold"], min_iou, score_tol)
    entry.update(tolerance="IoU >= %g, score +-%g%s" % (min_iou, score_tol, ", %g%% unmatched" % (100 * share)
                                                          if share else ""),
                 boxes_compared=boxes["compared"], boxes_unmatched=boxes["unmatched"], worst_iou=boxes["worst_iou"])
    return boxes["unmatched"] <= share * boxes["compared"]


def judge(task, precision, reference, outputs, detection=None, segmentation=None):
    """One row's numbers and verdict: max abs/rel error per output, top-1 agreement where it means something;
    a detector's boxes (detection: the manifest's section) by their own rule; a segmentation network's class map
    (segmentation: the bundle's settings) by the share of pixels that agree."""
    row = {"precision": precision, "outputs": [], "passed": True}
    for i, (ref, out) in enumerate(zip(reference, outputs)):
        ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
        if out.size != ref.size:
            raise UserError("output %d is %s here, but the bundle's reference for it is %s: the bundle is "
                            "inconsistent; export it again" % (i, out.shape, ref.shape))
        out = out.reshape(ref.shape)
        max_abs = float(np.abs(ref - out).max())
        rel = max_abs / max(float(np.abs(ref).max()), 1e-12)
        entry = {"index": i, "max_abs_error": max_abs, "max_rel_error": rel,
                 "mean_abs_error": float(np.abs(ref - out).mean())}
        if i == 0 and task in ("classification", "binary"):
            if task == "classification":
                agree = float(np.mean(ref.argmax(-1) == out.argmax(-1)))
            else:
                agree = float(np.mean((ref > 0.5) == (out > 0.5)))
            entry["top1_agreement"] = agree
        if segmentation is not None and i == segmentation["index"]:
            least = CLASS_AGREEMENT.get(precision, CLASS_AGREEMENT["int8"])
            entry["class_agreement"] = float(np.mean(ref == out))
            entry["tolerance"] = "pixels >= %g%%" % (100 * least)
            ok = entry["class_agreement"] >= least
        elif segmentation is not None and precision not in RELATIVE_TOLERANCE:
            entry["tolerance"], ok = "-", None  # INT8 probabilities: its class map (and mIoU) judge it
            entry["not_judged"] = "a segmentation network's probabilities at INT8: its class map (and mIoU) judge it"
        elif detection is not None and i == detection["index"]:
            ok = _judge_detections(entry, precision, ref, out, detection)
        elif detection is not None and precision not in RELATIVE_TOLERANCE:
            entry["tolerance"], ok = "-", None  # INT8 heatmap logits far below any score: its boxes judge it
            entry["not_judged"] = "a detector's raw output at INT8: its decoded boxes (and mAP) judge it"
        elif precision in RELATIVE_TOLERANCE:
            entry["tolerance"] = "rel <= %g" % RELATIVE_TOLERANCE[precision]
            ok = rel <= RELATIVE_TOLERANCE[precision]
        elif "top1_agreement" in entry:
            entry["tolerance"] = "top-1 >= %g%%" % (100 * INT8_TOP1_AGREEMENT)
            ok = entry["top1_agreement"] >= INT8_TOP1_AGREEMENT
            if len(ref) < MIN_FRAMES_FOR_AGREEMENT:
                ok = None  # not judged: too few frames
        elif task == "steering":
            limit = INT8_STEERING_FRACTION * STEERING_RANGE
            entry["tolerance"] = "abs <= %g" % limit
            ok = max_abs <= limit
        else:
            entry["tolerance"] = "rel <= %g" % INT8_RELATIVE
            ok = rel <= INT8_RELATIVE
        entry["passed"] = None if ok is None else bool(ok)
        row["passed"] = row["passed"] and entry["passed"] is not False
        row["outputs"].append(entry)
    return row


def _samples(bundle):
    if not bundle.sample_paths or not bundle.keras_outputs_path or not os.path.isfile(bundle.keras_outputs_path):
        raise UserError("%s has no samples with Keras outputs to verify against (export it again)" % bundle.path)
    reference = keras_reference(bundle, len(bundle.sample_paths))  # checked before any sample is decoded
    frames = bundle_samples(bundle)
    x = Preprocessor(bundle.preprocess, bundle.input).batch(frames)
    return x, reference


def keras_reference(bundle, count):
    """Keras's outputs stored with the samples (samples/keras_outputs.npz, np.savez's zip of .npy arrays, one per
    output name): each array's header is checked before its data is read (a number type, `count` rows, the
    manifest's output shape), and read without pickles. A damaged file is one line: not a zip, an output missing,
    another shape, object or text arrays, values that are not finite."""
    path = bundle.keras_outputs_path

    def damaged(why):
        return UserError("%s is damaged: %s; export the bundle again" % (shown(path), why))

    if not zipfile.is_zipfile(path):
        raise damaged("it is not a zip archive of arrays (.npz)")
    reference = []
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for output in bundle.outputs:
                name = output["name"]
                if name + ".npy" not in members:
                    raise damaged("it has no array for the output %r (it has %s)" % (
                        name, ", ".join(sorted(repr(m[:-4]) for m in members if m.endswith(".npy"))) or "none"))
                with archive.open(name + ".npy") as f:
                    shape, dtype = _npy_header(f)
                want = output.get("shape")
                known = want if isinstance(want, list) and len(want) == len(shape) else None
                if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
                    raise damaged("the output %r is stored as %s, not numbers" % (name, dtype))
                if not shape or shape[0] != count or (known and any(
                        isinstance(w, int) and w != d for w, d in zip(known[1:], shape[1:]))):
                    raise damaged("the output %r is stored with shape %s; %d samples with the manifest's shape %s "
                                  "need %s" % (name, tuple(shape), count, want,
                                               tuple([count] + (list(known[1:]) if known else ["..."]))))
                size = dtype.itemsize * int(np.prod(shape, dtype=np.float64))
                if size > min(archive.getinfo(name + ".npy").file_size, MAX_REFERENCE_BYTES):
                    raise damaged("the output %r says it holds %d bytes (%s of %s), more than %s" % (
                        name, size, tuple(shape), dtype, "its file in the archive" if size <= MAX_REFERENCE_BYTES
                        else "the %d MiB a reference may take" % (MAX_REFERENCE_BYTES >> 20)))
                with archive.open(name + ".npy") as f:
                    array = np.lib.format.read_array(f, allow_pickle=False)
                if not np.isfinite(array.astype(np.float64, copy=False)).all():
                    raise damaged("the output %r holds values that are not finite" % name)
                reference.append(array)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
            KeyError, struct.error) as exc:  # a cut or corrupt archive, an encrypted or unknown compression
        raise damaged("%s" % (" ".join(str(exc).split())[:200] or type(exc).__name__)) from None
    return reference


def _npy_header(f):
    """(shape, dtype) from a .npy header, without reading its data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(f)
    else:
        raise ValueError("a .npy format version %d.%d this reader does not take" % version)
    return shape, dtype


def int8_layers(bundle):
    """The int8 variant's layer counts (export/variants.py's layer_counts): from the manifest, which its
    sha256 ties to the file, or counted in the graph for a variant made before the manifest recorded them
    (needs onnx; None without it)."""
    entry = (bundle.manifest.get("variants") or {}).get("int8")
    if not entry:
        return None
    if isinstance(entry.get("layers"), dict):
        return entry["layers"]
    try:
        import onnx
    except ImportError:
        return None

    return layer_counts(onnx.load(bundle.model_file("int8")))


def _keras_row(src, x, unsafe=False, custom_objects=()):
    model_path, _ = resolve_source(src)
    load_tensorflow()
    model = keras_onnx.load_keras(model_path, unsafe, keras_onnx.import_custom_objects(custom_objects))
    out = model.predict(x, verbose=0)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _engine_rows(bundle, log):
    """(backend label, precision, backend) for every engine that fits this device; notes for the rest."""
    notes, runs = [], []
    shas = {bundle.model_sha256(p): p for p in ("fp32",) + tuple(bundle.variants)}
    paths = sorted({p for sha in shas for p in engines.listed(bundle.path, sha)})
    if not paths:
        return runs, ["TensorRT: no engines in the bundle (build one with: python -m runtime engine %s)" % bundle.path]
    try:
        choose("tensorrt")
    except UserError as exc:
        return runs, ["TensorRT: %d engine(s) not checked: %s" % (len(paths), exc)]

    trt = trtlib.load()
    gpu = Gpu()
    try:
        here = trtlib.this_device(trt, gpu).as_dict()
    finally:
        gpu.close()
    for path in paths:
        try:
            with open(path[:-len(".engine")] + ".json") as f:
                fields = json.load(f)
            if not isinstance(fields, dict) or not isinstance(fields.get("precision"), str):
                raise ValueError("not an engine's fields")
        except (OSError, ValueError, RecursionError):
            notes.append("%s: no readable .json beside it; skipped" % os.path.basename(path))
            continue
        if any(fields.get(k) != v for k, v in here.items()):
            notes.append("%s: built for %s / TensorRT %s; skipped" % (os.path.basename(path), fields.get("gpu"),
                                                                      fields.get("tensorrt")))
            continue
        backend = TensorRTBackend(bundle, precision=fields["precision"], dla_core=fields.get("dla_core"),
                                  engine=path, log=log)
        runs.append(("tensorrt " + os.path.basename(path), fields["precision"], backend))
    return runs, notes


def _more_frames(bundle, data, count, log, option="--data"):
    """(frames from --data, model.onnx's outputs on them as their reference (export checked it against Keras),
    where they came from, truths): for a detector on road-obstacles, the frames' labelled boxes in the network
    input's pixels (else None)."""
    truths = None
    if data == "road-freespace" and bundle.task == "segmentation":
        size = bundle.network_frame_size
        images, masks = segmentation.sample_segmentation_frames(count, size[0], size[1], seed=calibration_data.SEEDS[
            "evaluation"])
        pre = Preprocessor(bundle.preprocess, bundle.input)
        x = np.concatenate([pre(image).copy() for image in images])
        rows, cols = nearest_indices(size[1], pre.size[1]), nearest_indices(size[0], pre.size[0])
        truths = masks[:, rows[:, None], cols]  # the labels at the network's pixels, as train samples them
        where = "road-freespace (%d labelled frames)" % len(x)
    elif data == "road-obstacles" and bundle.task == "detection":
        size = bundle.network_frame_size  # rendered as train renders them, where the crop is the whole frame
        images, labelled = calibration_data.road_obstacles(count, "evaluation", size)
        pre = Preprocessor(bundle.preprocess, bundle.input)
        x = np.concatenate([pre(image).copy() for image in images])
        def to_input(boxes):
            return detections.to_input(boxes, size, pre.crop, pre.size)

        truths = [(to_input(b), c, to_input(i)) for b, c, i in labelled]
        where = "road-obstacles (%d labelled frames)" % len(x)
    else:
        x, where = calibration_data.load_batch(bundle, data, count, None, purpose="evaluation")  # preprocessed as read
    if log is not None and len(x) < min(count, MIN_FRAMES_FOR_AGREEMENT):
        print("warning: %s %s gave only %d frames; hundreds judge better (INT8 agreement is judged from %d)"
              % (option, shown(data), len(x), MIN_FRAMES_FOR_AGREEMENT), file=log)
    with _onnxruntime(bundle, "fp32") as fp32:
        reference = fp32.infer(x) if bundle.task != "detection" else parity.frame_at_a_time(fp32.infer, x)
    return x, reference, where, truths


SCORES = (("map50", "mAP@0.5"), ("miou", "mIoU"))  # a row's score on labelled frames: a detector's, a segmenter's


def _judge_drop(rows, key, limits):
    """Each row's score on labelled frames (row[key]: a detector's mAP@0.5, a segmentation network's mIoU) and each
    variant's drop from model.onnx's in ONNX Runtime, within limits[precision] (key_drop, key_tolerance,
    key_passed); what the note says of them."""
    base = next(r[key] for r in rows if r["precision"] == "fp32" and r["backend"].startswith("onnxruntime"))
    said = []
    for row in rows:
        limit = limits.get(row["precision"])
        if limit is not None:
            row[key + "_drop"], row[key + "_tolerance"] = base - row[key], "drop <= %g" % limit
            row[key + "_passed"] = row[key + "_drop"] <= limit
            row["passed"] = row["passed"] and row[key + "_passed"]
        said.append("%s %.4f%s" % (row["backend"], row[key], "" if limit is None else " (%+.4f; %s%s)" % (
            -row[key + "_drop"], row[key + "_tolerance"], "" if row[key + "_passed"] else ": FAIL")))
    return "; ".join(said)


def _onnxruntime(bundle, precision):
    """ONNX Runtime on the CPU with model.onnx or a variant, its input checked against the manifest's when it
    loads (a bundle whose manifest disagrees with its model is one line, as in `runtime run`)."""
    return OnnxRuntimeBackend(bundle.model_file(precision), providers=["CPUExecutionProvider"],
                              input_shape=bundle.input["shape"])


def verify(bundle_path, keras_src=None, data=None, frames=500, log=sys.stderr, keras_options=None,
           data_option="--data") -> dict:
    """data (a dataset name or a path, as --calib-data takes) adds frames judged against model.onnx;
    keras_options (unsafe, custom_objects) load keras_src as export onnx loads a model; data_option: the option
    that gave data, as a warning names it (`export variants` passes its --calib-data)."""
    bundle = bundle_format.load(bundle_path)
    x, reference = _samples(bundle)
    rows, notes, truths = [], [], None
    reference_text = "Keras's outputs on the bundle's %d samples" % len(x)
    if data is not None:
        if keras_src is not None:
            raise UserError("--keras and --data do not go together (Keras's outputs exist for the samples only)")
        more, more_ref, where, truths = _more_frames(bundle, data, frames, log, data_option)
        x = np.concatenate([x, more])
        reference = [np.concatenate([r, m]) for r, m in zip(reference, more_ref)]
        reference_text += " and model.onnx's on %s" % where
    notes.append("reference: " + reference_text)
    if keras_src is not None:
        row = judge(bundle.task, "fp32", reference, _keras_row(keras_src, x, **(keras_options or {})))
        rows.append(dict(row, backend="keras (now)"))
    runs = [("onnxruntime " + os.path.basename(bundle.model_file(p)), p, _onnxruntime(bundle, p))
            for p in ("fp32",) + tuple(bundle.variants)]
    engine_runs, engine_notes = _engine_rows(bundle, log)
    notes.extend(engine_notes)
    detection, segmentation = bundle.detection, bundle.segmentation  # None but for their tasks
    for label, precision, backend in runs + engine_runs:
        with backend:
            outputs = backend.infer(x) if detection is None else parity.frame_at_a_time(backend.infer, x)
        rows.append(dict(judge(bundle.task, precision, reference, outputs, detection, segmentation), backend=label))
        if truths is not None and segmentation is not None:
            found = outputs[segmentation["index"]][len(x) - len(truths):]
            rows[-1]["miou"] = class_iou(truths, found, bundle.labels)["miou"]
        elif truths is not None:
            found = list(outputs[detection["index"]][len(x) - len(truths):])
            rows[-1]["map50"] = detections.average_precision(found, truths, len(bundle.labels))[1]
    if truths is not None and segmentation is not None:
        notes.append("mIoU on %d labelled road-freespace frames (%s): %s" % (
            len(truths), ", ".join(bundle.labels), _judge_drop(rows, "miou", MIOU_DROP)))
    elif truths is not None:
        notes.append("mAP@0.5 on %d labelled road-obstacles frames: %s" % (len(truths),
                                                                        _judge_drop(rows, "map50", MAP50_DROP)))
    report = {"bundle": bundle.path, "task": bundle.task, "samples": int(len(x)), "rows": rows, "notes": notes,
              "passed": all(r["passed"] for r in rows)}
    layers = int8_layers(bundle)
    if layers is not None:
        report["int8_layers"] = layers
        notes.append("%s: %s (float: %s)" % (bundle.manifest["variants"]["int8"]["file"], describe(layers),
                                             ", ".join(layers["float"]) or "none"))
    return report


def table(report) -> str:
    lines = ["%-52s %-5s %3s %10s %10s %7s  %-15s %s" % ("backend", "prec", "out", "max abs", "max rel", "top-1",
                                                        "tolerance", "verdict")]
    for row in report["rows"]:
        for o in row["outputs"]:
            agreement = o.get("top1_agreement", o.get("class_agreement"))  # top-1, or a class map's pixels
            top1 = "%.1f%%" % (100 * agreement) if agreement is not None else "-"
            lines.append("%-52s %-5s %3d %10.3g %10.3g %7s  %-15s %s" % (
                row["backend"][:52], row["precision"], o["index"], o["max_abs_error"], o["max_rel_error"], top1,
                o["tolerance"], "not judged" if o.get("not_judged") else {True: "ok", False: "FAIL",
                                                                         None: "too few frames"}[o["passed"]]))
        for key, name in SCORES:  # a variant's score on labelled frames
            if key + "_drop" in row:
                score = "%s %.4f (%+.4f)" % (name, row[key], -row[key + "_drop"])
                lines.append("%-52s %-5s %3s %21s  %-15s %s" % (row["backend"][:52], row["precision"], "-", score,
                                                                row[key + "_tolerance"],
                                                                "ok" if row[key + "_passed"] else "FAIL"))
    if any(o["passed"] is None and not o.get("not_judged") for row in report["rows"] for o in row["outputs"]):
        lines.append("note: INT8 agreement needs >= %d frames to judge: add --data (a dataset, or a folder or video of "
                     "real frames)" % MIN_FRAMES_FOR_AGREEMENT)
    lines.extend("note: " + n for n in report["notes"])
    return "\n".join(lines)
