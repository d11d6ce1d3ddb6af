"""Representative frames for INT8 calibration (TensorRT's calibrator, ONNX Runtime's QDQ quantization),
prepared by the runtime's own Preprocessor, so calibration sees exactly what inference will see.

    --calib-data road           the procedural road (what the embedded-default PilotNet drives on)
    --calib-data digits         scikit-learn's digits (needs scikit-learn: the train extra)
    --calib-data PATH|URI       any source the runtime reads: a folder or glob of images, a video, synthetic://road
    (none)                      the bundle's own samples, with a warning: a few dozen are too few
"""

from __future__ import annotations

import sys

import numpy as np

from .cli import UserError
from .preprocess import Preprocessor

DEFAULT_FRAMES = 500
DATASETS = ("road", "digits")


SEEDS = {"calibration": 2024, "evaluation": 7}  # different road frames for calibrating and for judging


def _road(count, purpose):
    from . import road

    frames, _ = road.sample_frames(count, 320, 180, seed=SEEDS[purpose])
    return list(frames)


def _digits(count, purpose):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("--calib-data digits needs scikit-learn (pip install '.[train]'); or give a folder of "
                        "images") from None
    images = load_digits().images
    images = images[-count:] if purpose == "calibration" else images[:count]  # apart when count <= 898
    images = np.round(images * (255.0 / 16.0)).astype(np.uint8)
    return [np.repeat(im[:, :, None], 3, axis=2) for im in images]


def _from_source(uri, count):
    from .sources import open_source

    frames = []
    with open_source(uri) as source:
        for frame in source:
            frames.append(frame.image)
            if len(frames) >= count:
                break
    if not frames:
        raise UserError("--calib-data %s gave no frames" % uri)
    return frames


def bundle_samples(bundle):
    """The bundle's own sample frames (uint8 BGR), exactly those its manifest lists."""
    from .cli import require

    cv2 = require("cv2", "opencv", "reading the bundle's samples")
    frames = [cv2.imread(p, cv2.IMREAD_COLOR) for p in bundle.sample_paths]
    if any(f is None for f in frames):
        raise UserError("%s has unreadable sample images: export it again" % bundle.path)
    return frames


def load_frames(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration"):
    """(raw BGR frames, a description of where they came from). For purpose="evaluation" the datasets give
    other frames than for calibration (a folder or video gives the same ones: use another for judging)."""
    if spec is None:
        if not bundle.sample_paths:
            raise UserError("the bundle has no samples to calibrate on: give --calib-data PATH")
        frames = bundle_samples(bundle)[:count]
        if log is not None and len(frames) < 100:
            print("warning: calibrating on the bundle's %d samples only; give --calib-data (a folder or a video "
                  "of real frames, hundreds of them) for an INT8 model you can trust" % len(frames), file=log)
        return frames, "bundle samples (%d)" % len(frames)
    if spec == "road":
        frames = _road(count, purpose)
    elif spec == "digits":
        frames = _digits(count, purpose)
    else:
        frames = _from_source(spec, count)
    if log is not None and len(frames) < min(count, 100):
        print("warning: --calib-data %s gave only %d frames; hundreds calibrate better" % (spec, len(frames)),
              file=log)
    return frames, "%s (%d frames)" % (spec, len(frames))


def batches(bundle, frames, batch_size=1):
    """The frames preprocessed as the runtime does, in float32 batches of batch_size (a short tail dropped,
    unless it is the only batch)."""
    pre = Preprocessor(bundle.preprocess, bundle.input)
    x = pre.batch(frames)
    n = len(x) // batch_size * batch_size or len(x)
    return [np.ascontiguousarray(x[i:i + batch_size]) for i in range(0, n, batch_size)]


def check_batches(batches, input_shape, where):
    """Refuse calibration batches that TensorRT could not use, before it is asked to: none at all, a shape
    other than the network's input (-1 = any), or values that are not finite."""
    if not batches:
        raise UserError("no calibration frames from %s" % where)
    want = tuple(input_shape)
    for batch in batches:
        if len(batch.shape) != len(want) or any(w not in (-1, b) for w, b in zip(want, batch.shape)):
            raise UserError("calibration frames from %s come out as %s; the network's input is %s (-1 = any)"
                            % (where, tuple(batch.shape), want))
        if not np.isfinite(batch).all():
            raise UserError("calibration frames from %s give values that are not finite" % where)
