"""Representative frames for INT8 calibration (TensorRT's calibrator, ONNX Runtime's QDQ quantization),
prepared by the runtime's own Preprocessor, so calibration sees exactly what inference will see.

    --calib-data road           the procedural road (what the embedded-default PilotNet drives on)
    --calib-data digits         scikit-learn's digits (needs scikit-learn: the train extra)
    --calib-data PATH|URI       any source the runtime reads: a folder or glob of images, a video, synthetic://road
    (none)                      the bundle's own samples, with a warning: a few dozen are too few
"""

from __future__ import annotations

import re
import sys

import numpy as np

from ...bundle import bundle_samples, write_atomic
from ...errors import UserError
from ...preprocess import Preprocessor

DEFAULT_FRAMES = 500
DATASETS = ("road", "digits")


SEEDS = {"calibration": 2024, "evaluation": 7}  # different road frames for calibrating and for judging


def _road(count, purpose):
    from ...sim import road

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


def _from_source(uri, count, prepare=None):
    from ...sources import open_source

    frames = []
    with open_source(uri) as source:
        for frame in source:
            frames.append(frame.image if prepare is None else prepare(frame.image))
            if len(frames) >= count:
                break
    if not frames:
        raise UserError("--calib-data %s gave no frames" % uri)
    return frames


def load_batch(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration"):
    """(the frames preprocessed as the runtime does: float32 (N, ...), where they came from), as load_frames
    gives them. Frames from a folder, glob or video are preprocessed as they are read, so that only
    network-sized inputs are held: 500 raw 4K frames held for preprocessing afterwards were 12 GB."""
    pre = Preprocessor(bundle.preprocess, bundle.input)
    frames, where = load_frames(bundle, spec, count, log, purpose, prepare=lambda image: pre(image).copy())
    return np.concatenate(frames, axis=0), where


def load_frames(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration", prepare=None):
    """(raw BGR frames, a description of where they came from); with prepare, each frame as prepare(frame)
    gives it, applied as frames are read. For purpose="evaluation" the datasets give other frames than for
    calibration (a folder or video gives the same ones: use another for judging)."""
    frames, where = _load_frames(bundle, spec, count, log, purpose, prepare)
    if prepare is not None and spec in (None, "road", "digits"):  # small frames, made or read all at once
        frames = [prepare(f) for f in frames]
    return frames, where


def _load_frames(bundle, spec, count, log, purpose, prepare):
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
        frames = _from_source(spec, count, prepare)
    if log is not None and len(frames) < min(count, 100):
        print("warning: --calib-data %s gave only %d frames; hundreds calibrate better" % (spec, len(frames))
              if purpose == "calibration" else
              "warning: %s gave only %d frames to judge on; hundreds judge better" % (spec, len(frames)), file=log)
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


def kind(task):
    """TensorRT's calibrator for a task. Entropy (IInt8EntropyCalibrator2) clips each activation's range where
    little is lost for a top-1 choice; a regression's value is what the clipped tails carry: emulated on the
    demo PilotNet, entropy clipping gives a steering error up to 0.06-0.10 against min-max's 0.006
    (benchmarks/int8.py), so steering and other regressions calibrate by min-max (IInt8MinMaxCalibrator)."""
    return "IInt8EntropyCalibrator2" if task in ("classification", "binary") else "IInt8MinMaxCalibrator"


def calibration_batches(bundle, opts, input_shape, log):
    """The calibration frames, read, preprocessed and checked BEFORE building: inside get_batch a failure
    would only be printed by TensorRT's trampoline and the build would go on without data."""
    x, where = load_batch(bundle, opts.calib_data, opts.calib_frames, log)
    prepared = [np.ascontiguousarray(x[i:i + 1]) for i in range(len(x))]  # batch 1 (see build.py)
    check_batches(prepared, input_shape, where)
    print("calibrating INT8 on %s" % where, file=log)
    return prepared


def make(trt, gpu, bundle, opts, cache_path, batch_size, batches, input_shape, log, caught=None):
    """The task's calibrator (kind()) fed with the prepared batches; with a kept calibration cache
    there are none, and frames are read only if TensorRT rejects the cache and asks for batches anyway. Once
    any callback has caught an exception it feeds no more and writes no cache (it would be a partial one)."""
    from . import api as trtlib, engines  # the build's; not needed to list the calibration options at start-up

    base = getattr(trt, kind(bundle.task))

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.caught = caught or trtlib.Caught()
            self.batches = None if batches is None else iter(batches)
            self.fed = 0
            self.host = self.device = None

        @trtlib.guarded(-1)
        def get_batch_size(self):
            return batch_size

        @trtlib.guarded(None)
        def get_batch(self, names):
            if self.caught.exception is not None:
                return None
            if self.batches is None:
                self.batches = iter(calibration_batches(bundle, opts, input_shape, log))
            batch = next(self.batches, None)
            if batch is None:
                return None
            if self.host is None:
                self.host = gpu.pagelocked(batch.shape, np.float32)
                self.device = gpu.alloc(self.host.nbytes)
            np.copyto(self.host, batch)
            gpu.copy_in(self.device, self.host)
            gpu.synchronize()
            self.fed += 1
            return [gpu.pointer(self.device)]

        @trtlib.guarded(None)
        def read_calibration_cache(self):
            if engines.own_file(cache_path):
                data = engines.read(cache_path, "INT8 calibration cache")  # checked readable before the build
                if not calibration_cache_ok(data):
                    print("warning: the INT8 calibration cache %s is damaged; calibrating again" % cache_path, file=log)
                    return None
                print("reusing the INT8 calibration cache %s" % cache_path, file=log)
                return data
            return None

        @trtlib.guarded(None)
        def write_calibration_cache(self, cache):
            if self.caught.exception is None:
                write_atomic(cache_path, bytes(cache))

        def release(self):
            if self.device is not None:
                gpu.free(self.device)
                self.device = None

    return Calibrator()


def calibration_cache_ok(data: bytes) -> bool:
    """Whether data reads as TensorRT's calibration cache: a `TRT-<version>-<calibrator>` line, then one
    `tensor name: scale` line per tensor (the scale as 8 hex digits, a float32's bits). A truncated or
    damaged file is calibrated again rather than handed to TensorRT."""
    try:
        lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        return False
    return (len(lines) > 1 and lines[0].startswith("TRT-")
            and all(re.fullmatch(r"[^\n]+: [0-9a-fA-F]{8}", line) for line in lines[1:] if line))
