"""Where the runner's engine comes from, as Polygraphy's loaders compose (EngineFromBytes, EngineFromPath): a
loader is called with (trt, gpu) and gives (what the engine is called, its serialized bytes); one that can make
a new engine in place of one that will not load has rebuild(trt, gpu, why) too, giving the same.

    EngineFromBytes(data)    an engine given as bytes
    EngineFromPath(path)     an engine file
    CachedEngine(bundle)     the bundle's engine for this device, from the engine cache (engines.py): found there,
                             built once when it is missing, and rebuilt when the file found will not load
"""

from __future__ import annotations

import sys

from ...errors import UserError
from . import build as trt_build, engines


def as_loader(engine):
    """A loader for what the runner was given: a path, bytes, or a loader already."""
    if isinstance(engine, (bytes, bytearray)):
        return EngineFromBytes(engine)
    if isinstance(engine, str):
        return EngineFromPath(engine)
    return engine


class EngineFromBytes:
    """A serialized engine given as bytes: nothing to rebuild it from."""

    def __init__(self, data, name="the engine given"):
        self.data, self.name = bytes(data), name

    def __call__(self, trt, gpu):
        return self.name, self.data


class EngineFromPath:
    """An engine file, read when called (one that cannot be read is one line naming its owner and the fix)."""

    def __init__(self, path):
        self.path = path

    def __call__(self, trt, gpu):
        return EngineFromBytes(engines.read(self.path), self.path)(trt, gpu)


class CachedEngine:
    """precision None: the device's default (fp16 where the GPU has fast FP16); build False: never build,
    a missing or unloadable engine is a one-line error naming the command that builds it. An INT8 engine built
    here without a kept calibration cache calibrates on the bundle's own samples, with a warning that they are
    few (`python -m runtime engine --calib-data` builds one from real frames, which runs then prefer).
    frame_size (width, height): the engine that takes the camera's frames of that size (frame_input.py)."""

    def __init__(self, bundle, precision=None, dla_core=None, build=True, log=sys.stderr, root="/", frame_size=None):
        self.bundle, self.precision, self.dla_core, self.build = bundle, precision, dla_core, build
        self.log, self.root, self.frame_size = log, root, frame_size

    def __call__(self, trt, gpu):
        return EngineFromPath(self.path(trt, gpu))(trt, gpu)

    def _options(self):
        return trt_build.BuildOptions(precision=self.precision, dla_core=self.dla_core, frame_size=self.frame_size)

    def path(self, trt, gpu) -> str:
        """The engine file for this device, built here first when there is none (and build allows)."""
        bundle = self.bundle
        plan = trt_build.make_plan(trt, gpu, bundle, self._options(), root=self.root)
        self.precision = plan.precision
        found = engines.find(bundle.path, plan.key, any_calibration=True)
        if found is not None:
            return found
        if not self.build:
            others = len(engines.listed(bundle.path, plan.key.model_sha256))
            raise UserError("no %s engine for this device (%s, TensorRT %s) in %s%s; build one with: python -m "
                            "runtime engine %s --precision %s (or run without --no-build)"
                            % (plan.precision, plan.key.device.gpu_name, trt.__version__, bundle.path,
                               " (%d for other devices, versions or settings)" % others if others else "",
                               bundle.path, plan.precision + ("" if self.frame_size is None
                                                              else " --frame-size %dx%d" % self.frame_size)))
        note = ("runtime: no %s engine%s for this device yet: building one now (once; it is kept for the next run)"
                % (plan.precision, "" if self.frame_size is None else " for %dx%d frames" % self.frame_size))
        return trt_build.build(bundle, self._options(), gpu, trt, self.log, self.root, note=note)

    def rebuild(self, trt, gpu, why):
        """A new engine in place of one that will not load (why says so), where build allows."""
        if not self.build:
            raise UserError(why + "; rebuild it with: python -m runtime engine %s" % self.bundle.path)
        print("warning: %s: rebuilding it" % why, file=self.log)
        path = trt_build.build(self.bundle, self._options(), gpu, trt, self.log, self.root)
        return EngineFromPath(path)(trt, gpu)
