"""INT8 calibration for TensorRT: frames that its caller chose, prepared by the runtime's own Preprocessor as they
are read (so calibration sees exactly what inference will see), fed to TensorRT's calibrator.

Choosing the frames is the caller's, as Polygraphy's Calibrator takes a data loader: the calibrator takes an
iterable of BGR frames (a generator, so that a kept calibration cache reads none). `python -m runtime engine
--calib-data` picks them (runtime/commands/engine.py: the road, digits, a folder, a video, any source URI); a build
that was given none calibrates on the bundle's own samples (bundle_frames), with a warning: a few dozen are too few.
"""

from __future__ import annotations

import re
import sys

import numpy as np

from ...bundle import bundle_samples, write_atomic
from ...errors import UserError
from ...preprocess import Preprocessor
from . import api as trtlib, engines

DEFAULT_FRAMES = 500


def bundle_frames(bundle, count=DEFAULT_FRAMES, log=sys.stderr):
    """The bundle's own samples (at most count), read when iterated: the calibration data that comes with a bundle,
    and what a build calibrates on when its caller gave none. Too few for an INT8 model to trust: said when read."""
    if not bundle.sample_paths:
        raise UserError("the bundle has no samples to calibrate on: give --calib-data PATH")
    frames = bundle_samples(bundle)[:count]
    if log is not None and len(frames) < 100:
        print("warning: calibrating on the bundle's %d samples only; give --calib-data (a folder or a video "
              "of real frames, hundreds of them) for an INT8 model you can trust" % len(frames), file=log)
    yield from frames


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


def calibration_batches(bundle, frames, input_shape, log, name=None):
    """The network's inputs to calibrate on, batch 1 (see build.py): frames (an iterable of BGR images), each
    preprocessed as it is read so that only network-sized inputs are held (500 raw 4K frames were 12 GB), all
    read and checked BEFORE building: inside get_batch a failure would only be printed by TensorRT's trampoline
    and the build would go on without data. name: what the frames are called (None: the bundle's samples)."""
    pre = Preprocessor(bundle.preprocess, bundle.input)
    prepared = [pre(frame).copy() for frame in frames]  # copy: the preprocessor's output buffer is reused
    where = "bundle samples (%d)" % len(prepared) if name is None else "%s (%d frames)" % (name, len(prepared))
    check_batches(prepared, input_shape, where)
    print("calibrating INT8 on %s" % where, file=log)
    return prepared


def make(trt, gpu, bundle, read_batches, cache_path, batch_size, batches, input_shape, log, caught=None):
    """TensorRT's calibrator for the bundle's task (kind()), fed with batches (prepared and checked before the
    build: calibration_batches). With a kept calibration cache there are none (None): read_batches() gives them
    only if TensorRT rejects the cache and asks for batches anyway. Once any callback has caught an exception it
    feeds no more and writes no cache (it would be a partial one)."""
    base = getattr(trt, kind(bundle.task))

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.caught = caught or trtlib.Caught()
            self.batches = None if batches is None else iter(batches)
            self.host = self.device = None

        @trtlib.guarded(-1)
        def get_batch_size(self):
            return batch_size

        @trtlib.guarded(None)
        def get_batch(self, names):
            if self.caught.exception is not None:
                return None
            if self.batches is None:
                self.batches = iter(read_batches())
            batch = next(self.batches, None)
            return None if batch is None else [feed(gpu, self, batch)]

        @trtlib.guarded(None)
        def read_calibration_cache(self):
            return read_cache(cache_path, log)

        @trtlib.guarded(None)
        def write_calibration_cache(self, cache):
            if self.caught.exception is None:
                write_atomic(cache_path, bytes(cache))

        def release(self):
            if self.device is not None:
                gpu.free(self.device)
                self.device = None

    return Calibrator()


def feed(gpu, calibrator, batch):
    """The device pointer of batch, copied into the calibrator's buffers (made at the first batch)."""
    if calibrator.host is None:
        calibrator.host = gpu.pagelocked(batch.shape, np.float32)
        calibrator.device = gpu.alloc(calibrator.host.nbytes)
    np.copyto(calibrator.host, batch)
    gpu.copy_in(calibrator.device, calibrator.host)
    gpu.synchronize()
    return gpu.pointer(calibrator.device)


def read_cache(cache_path, log):
    """The kept calibration cache's bytes for TensorRT, or None (none kept, or damaged: calibrated again)."""
    if not engines.own_file(cache_path):
        return None
    data = engines.read(cache_path, "INT8 calibration cache")  # checked readable before the build
    if not calibration_cache_ok(data):
        print("warning: the INT8 calibration cache %s is damaged; calibrating again" % cache_path, file=log)
        return None
    print("reusing the INT8 calibration cache %s" % cache_path, file=log)
    return data


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
