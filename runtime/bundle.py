"""The bundle: the one file format between export and the runtime, read and written only here.

A bundle is a directory:

    model.onnx       the network, batch dimension dynamic
    manifest.json    what the network needs and means (below)
    parity.json      export's check of ONNX Runtime against Keras on the samples
    samples/         a few dozen real frames (PNG, as a camera would give them) with the Keras outputs
                     for them (keras_outputs.npz), for parity checks on the board and as a fallback
                     calibration set

manifest.json (format_version 1):

    format, format_version
    name, task          task: classification | binary | steering | regression | detection | segmentation
    labels              class names (classification: one per output; binary: [negative, positive]; detection,
                        segmentation: the classes' names in index order, at least one)
    model               {file, sha256, opset}
    input               {name, shape ([null, H, W, C] ...), layout (NHWC | NCHW | flat), dtype}
    preprocess          in this order, on uint8 BGR frames:
                        {crop: {top, bottom, left, right} fractions of the frame (Python's round), keeping at
                           least MIN_CROP_FRACTION (1%) of its width and of its height, or null,
                         resize: {width, height, interpolation: linear | area | nearest} of the uint8
                           image (so its result is uint8: rounded half up); none when already that size;
                           nearest takes the pixel under each output pixel's centre (as TensorFlow, PIL),
                         color: bgr | rgb | gray | yuv, in float (no rounding): BT.601 as OpenCV defines
                           it, Y = .299 R + .587 G + .114 B, U = .492 (B - Y) + 128, V = .877 (R - Y) + 128,
                         scale, offset (a number or one per channel: value = colour * scale + offset)}
    outputs             [{name, shape, activation: softmax | sigmoid | linear}]
    steering            {inverse_radius_per_unit, positive}  (task steering only)
    detection           (task detection only) {k, threshold, box_format: xyxy, box_units: input pixels, columns,
                        output, raw_output, stride, detections_output}: the detections output (its index in
                        outputs, detections_output, or else the output named `output`) is (1, k, 6) rows x0, y0,
                        x1, y1 (the network input's pixels), score, class, best first, padded with score 0;
                        threshold (0..1) is the score a detection needs by default
    segmentation        (task segmentation only) {output, probabilities_output, drivable, classes_dtype}: the
                        output named `output` is the class map (1, H, W) of int32 class indices, the one named
                        `probabilities_output` (1, H, W, classes); drivable: the indices of the free-space classes
    samples             {dir, files (at most MAX_SAMPLES, 64, holding the pixel budget together), keras_outputs}
    variants            (optional) {fp16: {file, sha256}, int8: {file, sha256, calibration, layers}}: precision
                        variants of model.onnx for strongly typed TensorRT (11) and ONNX Runtime; layers counts
                        the weighted layers and which of them stayed float
    conversion          {route, parity_vacuous}: how export converted the model (export/keras_onnx.py)
    tools               versions of what made it
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile

from . import images
from .errors import UserError

FORMAT = "edge-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TASKS = ("classification", "binary", "steering", "regression", "detection", "segmentation")
LAYOUTS = ("NHWC", "NCHW", "flat")
COLORS = ("bgr", "rgb", "gray", "yuv")
INTERPOLATIONS = ("linear", "area", "nearest")
VARIANTS = ("fp16", "int8")
ACTIVATIONS = ("softmax", "sigmoid", "linear")
# How large a network's input may be. The largest inputs vision networks take are 2048x1024 (Cityscapes
# segmentation) to 4096x4096 (aerial tiles); the runtime holds each frame's input as float32, so 4096 x 4096 x 3
# is 192 MiB a frame (16384 x 16384, which validation used to let through, is 3 GiB).
MAX_SIDE = 16384  # resize width or height
MAX_NETWORK_PIXELS = 4096 * 4096  # resize width x height
MAX_INPUT_VALUES = 3 * MAX_NETWORK_PIXELS  # the input shape's values a frame (its batch dimension aside)
# A bundle's samples: export writes at most MAX_SAMPLES (32 by default, 64 from --samples), and however many a
# manifest lists, their pixels together are held to the image budget as one image's are (runtime/images.py:
# 89,478,485 by default, 256 MiB decoded), read from their headers before any is decoded: a manifest listing one
# 54 KB 4000x4000 PNG 60 times made `bench` and `export verify` decode 2.9 GB.
MAX_SAMPLES = 64
# The narrowest crop, as a fraction of the frame's width or height: the frame whose crop is the network's input
# (bench's) is the resize divided by it, and a crop of 5e-324 made that infinite (an OverflowError).
MIN_CROP_FRACTION = 0.01
MAX_MANIFEST_BYTES = 16 << 20  # a manifest with 100,000 labels is about 2 MB
MAX_MANIFEST_DEPTH = 32  # a manifest is 4 levels deep; json.loads's recursion gave out at 200,000 (or 1,000)


class BundleError(UserError):
    """A bundle that is missing, incomplete or corrupt."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Bundle:
    """A bundle on disk, checked on load. Attributes mirror manifest.json's sections."""

    def __init__(self, path: str, manifest: dict):
        self.path = path
        self.manifest = manifest
        self.name = manifest.get("name", os.path.basename(os.path.abspath(path)))
        self.task = manifest["task"]
        self.labels = list(manifest.get("labels") or [])
        self.input = manifest["input"]
        self.preprocess = manifest["preprocess"]
        self.outputs = manifest["outputs"]
        self.steering = manifest.get("steering") or {}
        self.detection = detection_settings(manifest)
        self.segmentation = segmentation_settings(manifest)
        self.model_path = os.path.join(path, manifest["model"]["file"])

    @property
    def steering_sign(self) -> float:
        """+1 for a bundle whose steering is positive to the right, -1 to the left: its output times this is
        right-positive, the sign the control line and JSON lines' inverse_radius carry."""
        return -1.0 if self.steering.get("positive", "right") == "left" else 1.0

    @property
    def curvature_per_unit(self):
        """Curvature (1/m, right positive) per unit of the bundle's steering output, or None where the manifest does
        not say what its unit means. The one place steering's meaning is worked out: postprocess (JSON lines'
        inverse_radius), the closed-loop drive and the control link use it."""
        per_unit = self.steering.get("inverse_radius_per_unit")
        if self.task != "steering" or not per_unit:
            return None
        return float(per_unit) * self.steering_sign

    @property
    def sample_paths(self):
        samples = self.manifest.get("samples") or {}
        folder = os.path.join(self.path, samples.get("dir", "samples"))
        return [os.path.join(folder, name) for name in samples.get("files", [])]

    def model_file(self, precision: str = "fp32") -> str:
        """model.onnx for fp32, else the precision variant's file, checked against its sha256."""
        if precision == "fp32":
            return self.model_path
        variant = (self.manifest.get("variants") or {}).get(precision)
        if variant is None:
            raise BundleError("%s has no %s variant of its model (make it on the desktop with: python -m export "
                              "variants %s --precision %s)" % (self.path, precision, self.path, precision))
        path = os.path.join(self.path, variant["file"])
        if not os.path.isfile(path) or sha256_file(path) != variant["sha256"]:
            raise BundleError("%s is missing or does not match its sha256: make the variant again with: python -m "
                              "export variants %s --precision %s" % (path, self.path, precision))
        return path

    def model_sha256(self, precision: str = "fp32") -> str:
        if precision == "fp32":
            return self.manifest["model"]["sha256"]
        return (self.manifest.get("variants") or {}).get(precision, {}).get("sha256", "")

    @property
    def variants(self):
        return sorted((self.manifest.get("variants") or {}))

    @property
    def keras_outputs_path(self):
        samples = self.manifest.get("samples") or {}
        name = samples.get("keras_outputs")
        return os.path.join(self.path, samples.get("dir", "samples"), name) if name else None

    @property
    def network_frame_size(self):
        """(width, height) of the frame whose crop is exactly the network's input: nothing left to resize."""
        pre = self.preprocess
        crop = pre.get("crop") or {"top": 0, "bottom": 1, "left": 0, "right": 1}
        w, h = pre["resize"]["width"], pre["resize"]["height"]
        return int(round(w / (crop["right"] - crop["left"]))), int(round(h / (crop["bottom"] - crop["top"])))

    def describe(self) -> str:
        shape = "x".join("N" if d is None else str(d) for d in self.input["shape"])
        pre = self.preprocess
        labels = ", %d labels" % len(self.labels) if self.labels else ""
        return "%s: %s, input '%s' %s %s%s" % (self.name, self.task, self.input["name"], shape, pre["color"], labels)


def bundle_samples(bundle):
    """The bundle's own sample frames (uint8 BGR), exactly those its manifest lists (at most MAX_SAMPLES). Each is
    held to the pixel budget, and all of them together too: every header is read before any image is decoded."""
    def unreadable(path, exc):
        if isinstance(exc, images.TooLarge):
            return UserError("%s: sample %s is %s" % (images.shown(bundle.path), images.shown(path), exc.why))
        return UserError("%s has an unreadable sample image, %s (%s): export it again"
                         % (images.shown(bundle.path), images.shown(path), exc.why))

    budget, paths = images.max_pixels(), bundle.sample_paths
    sizes, total = [], 0
    for path in paths:
        try:
            size = images.header_size(path)
            if size is not None and images.over_budget(size[0], size[1], budget):
                raise images.TooLarge(path, images.over_budget(size[0], size[1], budget))
        except images.ImageError as exc:
            raise unreadable(path, exc) from None
        sizes.append(size)
        total += size[0] * size[1] if size else 0
    _samples_within(bundle, len(paths), total, budget, None in sizes)
    frames = []
    for path, size in zip(paths, sizes):
        try:
            frames.append(images.read_image(path, budget))  # names of any bytes
        except images.ImageError as exc:
            raise unreadable(path, exc) from None
        if size is None:  # a header not read here: counted once decoded
            total += frames[-1].shape[0] * frames[-1].shape[1]
            _samples_within(bundle, len(paths), total, budget, True)
    return frames


def _samples_within(bundle, count, total, budget, partly):
    if total > budget:
        held = ("at least " if partly else "") + images.thousands(total)
        raise UserError("%s: its %d sample images hold %s pixels together, over the image budget of %s that a "
                        "bundle's samples share (%s)" % (images.shown(bundle.path), count, held,
                                                         images.thousands(budget), images.HOW_TO_RAISE))


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v, most=1 << 20):
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= most


def name_inside(v):
    """A file name a manifest (or a run's meta.json) may give: a relative path that stays inside its folder
    (no '..', not absolute)."""
    return (isinstance(v, str) and v != "" and "\0" not in v and "\\" not in v and not os.path.isabs(v)
            and ".." not in v.split("/"))


def is_string_list(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def samples_ok(samples):
    """Whether a samples section {dir, files, keras_outputs} names only files inside its folder (a bundle's,
    or a run directory's)."""
    return (isinstance(samples, dict) and name_inside(samples.get("dir", "samples"))
            and isinstance(samples.get("files", []), list) and all(name_inside(f) for f in samples.get("files", []))
            and (samples.get("keras_outputs") is None or name_inside(samples["keras_outputs"])))


def validate(manifest) -> list:
    """Every problem with a manifest (missing fields, wrong types, values out of range, file names that leave
    the bundle), as short phrases; empty when it is good. Never raises: whatever the JSON holds."""
    if not isinstance(manifest, dict):
        return ["manifest is not a JSON object"]
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append("format is %r, not %r" % (manifest.get("format"), FORMAT))
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        problems.append("format_version %r is not %d (made by another version of this toolkit?)"
                        % (version, FORMAT_VERSION))
    for key, kind in (("task", str), ("model", dict), ("input", dict), ("preprocess", dict), ("outputs", list)):
        if key not in manifest:
            problems.append("no '%s'" % key)
        elif not isinstance(manifest[key], kind):
            problems.append("'%s' must be a %s" % (key, {str: "string", dict: "JSON object", list: "list"}[kind]))
    if problems:
        return problems
    task, model, inp, pre = manifest["task"], manifest["model"], manifest["input"], manifest["preprocess"]
    if task not in TASKS:
        problems.append("task %r is not one of %s" % (task, ", ".join(TASKS)))
    if "name" in manifest and not isinstance(manifest["name"], str):
        problems.append("name must be a string")
    labels = manifest.get("labels")
    if labels is not None and not is_string_list(labels):
        problems.append("labels must be a list of strings")
    elif task == "binary" and labels and len(labels) != 2:
        problems.append("a binary model has 2 labels, not %d" % len(labels))
    if not name_inside(model.get("file")) or not _sha256(model.get("sha256")):
        problems.append("model needs 'file' (a name inside the bundle) and 'sha256' (64 hex digits)")
    problems += input_problems(inp)
    problems += preprocess_problems(pre)
    outputs = manifest["outputs"]
    if not outputs or not all(isinstance(o, dict) and isinstance(o.get("name"), str) and
                              o.get("activation", "linear") in ACTIVATIONS for o in outputs):
        problems.append("outputs must be a non-empty list of {name, shape, activation: %s}" % " | ".join(ACTIVATIONS))
    steering = manifest.get("steering")
    if steering is not None and not (isinstance(steering, dict) and _number(steering.get(
            "inverse_radius_per_unit", 0.0)) and steering.get("positive", "right") in ("right", "left")):
        problems.append("steering needs a number inverse_radius_per_unit and positive: right | left")
    if task == "detection":
        problems += detection_problems(manifest)
    if task == "segmentation":
        problems += segmentation_problems(manifest)
    samples = manifest.get("samples")
    if samples is not None and not samples_ok(samples):
        problems.append("samples needs dir, files and keras_outputs as names inside the bundle")
    elif samples is not None and len(samples.get("files", [])) > MAX_SAMPLES:
        problems.append("samples lists %d files, more than the %d a bundle may have (export writes at most %d)"
                        % (len(samples["files"]), MAX_SAMPLES, MAX_SAMPLES))
    variants = manifest.get("variants") or {}
    if not isinstance(variants, dict) or not all(
            k in VARIANTS and isinstance(v, dict) and name_inside(v.get("file")) and _sha256(v.get("sha256"))
            for k, v in variants.items()):
        problems.append("variants must map %s to {file (a name inside the bundle), sha256}" % " or ".join(VARIANTS))
    return problems


def _detections_index(manifest):
    """The detections output's index: the section's detections_output (or the manifest's), else the output
    whose name the section's `output` gives; None where neither says."""
    section, outputs = manifest.get("detection"), manifest.get("outputs") or []
    index = section.get("detections_output", manifest.get("detections_output"))
    if index is None:
        names = [o.get("name") for o in outputs if isinstance(o, dict)]
        return names.index(section["output"]) if section.get("output") in names else None
    return index


def detection_problems(manifest):
    """What is wrong with a detection bundle: its labels, its detection section, and the detections output's
    place and shape ([null or 1, k, 6]). One phrase: the rest is not checked once the section is wrong."""
    labels, section = manifest.get("labels"), manifest.get("detection")
    if not (is_string_list(labels) and labels):
        return ["a detection bundle needs labels: its classes' names, at least one"]
    if not isinstance(section, dict):
        return ["a detection bundle needs a 'detection' section {k, threshold, detections_output, ...}"]
    k, threshold = section.get("k"), section.get("threshold")
    if not _positive_int(k, 100000):
        return ["detection k must be a positive integer (the detections output's rows), not %r" % (k,)]
    if not (_number(threshold) and 0 <= threshold <= 1):
        return ["detection threshold must be a number from 0 to 1, not %r" % (threshold,)]
    index, outputs = _detections_index(manifest), manifest["outputs"]
    if not (_integer(index) and 0 <= index < len(outputs) and isinstance(outputs[index], dict)):
        return ["detection detections_output must be the index of an output (0 to %d), not %r"
                % (len(outputs) - 1, index)]
    shape = outputs[index].get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and (shape[0] is None or _integer(shape[0]))
            and shape[0] in (None, 1) and all(_integer(d) for d in shape[1:]) and shape[1:] == [k, 6]):
        return ["the bundle is inconsistent: detection output %d's shape is %r, not [null, %d, 6] (k = %d rows of "
                "x0, y0, x1, y1, score, class)" % (index, shape, k, k)]
    return []


def detection_settings(manifest):
    """A valid detection manifest's settings, {k, threshold, index (the detections output's), labels}, or None for
    other tasks."""
    if manifest.get("task") != "detection":
        return None
    section = manifest["detection"]
    return dict(section, index=_detections_index(manifest), threshold=float(section["threshold"]))


def segmentation_problems(manifest):
    """What is wrong with a segmentation bundle: its labels, its section, and the class map's place and shape
    ([null or 1, H, W]). One phrase."""
    labels, section = manifest.get("labels"), manifest.get("segmentation")
    if not (is_string_list(labels) and labels):
        return ["a segmentation bundle needs labels: its classes' names, at least one"]
    if len(labels) > 256:
        return ["a segmentation bundle has at most 256 classes (its maps are written as 8-bit PNGs), not %d"
                % len(labels)]
    if not isinstance(section, dict):
        return ["a segmentation bundle needs a 'segmentation' section {output, drivable, ...}"]
    drivable = section.get("drivable")
    if not (isinstance(drivable, list) and all(_integer(c) and 0 <= c < len(labels) for c in drivable)
            and len(set(drivable)) == len(drivable)):
        return ["segmentation drivable must list class indices (0 to %d), each once, not %r" % (len(labels) - 1,
                                                                                               drivable)]
    names = [o.get("name") for o in manifest["outputs"] if isinstance(o, dict)]
    if section.get("output") not in names:
        return ["segmentation output must name one of the outputs (%s), not %r" % (", ".join(map(str, names)),
                                                                                   section.get("output"))]
    shape = manifest["outputs"][names.index(section["output"])].get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and shape[0] in (None, 1)
            and all(_positive_int(d, 100000) for d in shape[1:])):
        return ["the bundle is inconsistent: the class map's shape is %r, not [null, H, W]" % (shape,)]
    return []


def segmentation_settings(manifest):
    """A valid segmentation manifest's settings, {output, index (the class map's), drivable, labels}, or None for
    other tasks."""
    if manifest.get("task") != "segmentation":
        return None
    section = manifest["segmentation"]
    names = [o["name"] for o in manifest["outputs"]]
    return dict(section, index=names.index(section["output"]), labels=list(manifest["labels"]))


def _sha256(v):
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def input_problems(inp):
    """What is wrong with an input section {name, shape, layout, dtype} (also train's meta.json, without name and
    dtype: train/run_dir.py fills them in to check)."""
    if not {"name", "shape", "layout", "dtype"} <= set(inp):
        return ["input needs name, shape, layout and dtype"]
    if not isinstance(inp["name"], str) or inp["dtype"] != "float32":
        return ["input needs a string name and dtype float32"]
    if inp["layout"] not in LAYOUTS:
        return ["input layout %r is not one of %s" % (inp["layout"], ", ".join(LAYOUTS))]
    shape, rank = inp["shape"], 2 if inp["layout"] == "flat" else 4
    if not (isinstance(shape, list) and len(shape) == rank and (shape[0] is None or _positive_int(shape[0]))
            and all(_positive_int(d) for d in shape[1:])):
        return ["input shape must be [null, %s] of positive integers for layout %s"
                % ("n" if rank == 2 else "d1, d2, d3", inp["layout"])]
    values = 1
    for d in shape[1:]:
        values *= d
    if values > MAX_INPUT_VALUES:
        return ["input shape %s is %d values a frame, more than the %d (4096x4096x3) a network input may have"
                % (shape, values, MAX_INPUT_VALUES)]
    return []


def preprocess_problems(pre):
    """What is wrong with a preprocess section: the input contract that a bundle and a train run share."""
    if not {"resize", "color", "scale", "offset"} <= set(pre):
        return ["preprocess needs resize, color, scale and offset"]
    problems = []
    if pre["color"] not in COLORS:
        problems.append("preprocess color %r is not one of %s" % (pre["color"], ", ".join(COLORS)))
    resize = pre["resize"]
    if not isinstance(resize, dict) or not all(_positive_int(resize.get(k), MAX_SIDE) for k in ("width", "height")):
        problems.append("preprocess resize needs integer width and height from 1 to %d" % MAX_SIDE)
    elif resize["width"] * resize["height"] > MAX_NETWORK_PIXELS:
        problems.append("preprocess resize %dx%d is %d pixels, more than the %d (4096x4096) a network input may have"
                        % (resize["width"], resize["height"], resize["width"] * resize["height"], MAX_NETWORK_PIXELS))
    elif resize.get("interpolation", "linear") not in INTERPOLATIONS:
        problems.append("resize interpolation %r is not one of %s"
                        % (resize.get("interpolation"), ", ".join(INTERPOLATIONS)))
    channels = 1 if pre["color"] == "gray" else 3
    for key in ("scale", "offset"):
        values = pre[key] if isinstance(pre[key], list) else [pre[key]]
        if len(values) not in (1, channels) or not all(_number(v) for v in values):
            problems.append("preprocess %s must be a number or a list of %d (one per channel)" % (key, channels))
    crop = pre.get("crop")
    if crop is not None:
        edges = [crop.get(k) for k in ("top", "bottom", "left", "right")] if isinstance(crop, dict) else []
        if not (len(edges) == 4 and all(_number(v) for v in edges) and 0 <= edges[0] < edges[1] <= 1
                and 0 <= edges[2] < edges[3] <= 1):
            problems.append("preprocess crop needs 0 <= top < bottom <= 1 and 0 <= left < right <= 1")
        else:
            for kept, ends, side in ((edges[1] - edges[0], "bottom - top", "height"),
                                     (edges[3] - edges[2], "right - left", "width")):
                if kept < MIN_CROP_FRACTION:
                    problems.append("preprocess crop keeps %s = %.3g of the frame's %s, less than the %g a crop "
                                    "must keep" % (ends, kept, side, MIN_CROP_FRACTION))
    return problems


def too_deep(value, most):
    """Whether JSON data nests lists and objects more than `most` levels deep (counted without recursion)."""
    level = [value]
    for _ in range(most + 1):
        level = [v for x in level if isinstance(x, (list, dict)) for v in (x.values() if isinstance(x, dict) else x)]
        if not level:
            return False
    return True


def inside(folder, path):
    """Whether path, symbolic links followed, stays inside folder (a bundle's, a tub's, an engine cache's)."""
    root = os.path.realpath(folder)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def load(path: str, verify_model: bool = True) -> Bundle:
    """Open and check a bundle directory; BundleError says what is wrong in one line."""
    if not os.path.exists(path):
        raise BundleError("no bundle at %s (make one with: python -m export onnx RUN_DIR --out %s)"
                          % (path, path))
    if not os.path.isdir(path):
        raise BundleError("%s is not a bundle directory (a bundle is a folder with model.onnx and %s)"
                          % (path, MANIFEST))
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise BundleError("%s has no %s: not a bundle, or an export that did not finish" % (path, MANIFEST))
    size = os.path.getsize(manifest_path)
    if size > MAX_MANIFEST_BYTES:
        raise BundleError("%s is %d bytes, more than a manifest can be (%d): the bundle is corrupt; export it again"
                          % (manifest_path, size, MAX_MANIFEST_BYTES))
    try:
        with open(manifest_path, "rb") as f:
            manifest = json.loads(f.read(MAX_MANIFEST_BYTES + 1).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError("%s is not valid JSON (%s): the bundle is corrupt; export it again"
                          % (manifest_path, exc)) from None
    except RecursionError:  # [[[[...]]]] deeper than Python's recursion limit
        raise BundleError("%s is nested too deeply to be a manifest: the bundle is corrupt; export it again"
                          % manifest_path) from None
    if too_deep(manifest, MAX_MANIFEST_DEPTH):
        raise BundleError("%s is nested more than %d levels deep, which no manifest is: the bundle is corrupt; "
                          "export it again" % (manifest_path, MAX_MANIFEST_DEPTH))
    problems = validate(manifest)
    if problems:
        raise BundleError("%s: %s" % (manifest_path, "; ".join(problems)))
    bundle = Bundle(path, manifest)
    named = [bundle.model_path] + [os.path.join(path, v["file"]) for v in (manifest.get("variants") or {}).values()]
    named += bundle.sample_paths + ([bundle.keras_outputs_path] if bundle.keras_outputs_path else [])
    outside = [p for p in named if not inside(path, p)]
    if outside:
        raise BundleError("%s names %s, which is outside the bundle (a link out of it?): refused"
                          % (manifest_path, outside[0]))
    if not os.path.isfile(bundle.model_path):
        raise BundleError("%s is missing: the bundle is incomplete; export it again" % bundle.model_path)
    if verify_model:
        actual = sha256_file(bundle.model_path)
        if actual != manifest["model"]["sha256"]:
            raise BundleError("%s does not match its sha256 in the manifest (corrupt or replaced); "
                              "export the bundle again" % bundle.model_path)
    return bundle


def write_manifest(folder: str, manifest: dict) -> None:
    """Check a manifest and write it atomically (a temporary file, then a rename)."""
    problems = validate(manifest)
    if problems:
        raise ValueError("refusing to write a bad manifest: " + "; ".join(problems))
    write_json(os.path.join(folder, MANIFEST), manifest)


def umask() -> int:
    """The process's umask, read without changing it (os.umask can only set it, which races other threads):
    from /proc where Linux has it (4.7 and later), else set and put back."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str, data: bytes) -> None:
    """Write data to path so that a reader sees the old file or the whole new one, never a torn one. The file
    gets the mode any new file gets (0666 less the umask), not mkstemp's 0600: an engine or manifest written with
    sudo must stay readable by the user who runs the camera demo."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str, data) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def is_bundle(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


def publish(staging: str, dest: str) -> None:
    """Move a finished staging directory to dest, replacing an older bundle there as one step."""
    dest = os.path.abspath(dest)
    if os.path.exists(dest):
        old = dest + ".old-%d" % os.getpid()
        os.replace(dest, old)
        os.replace(staging, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, dest)
