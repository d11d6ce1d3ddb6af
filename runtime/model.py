"""A bundle ready to run: preprocessing, a backend and postprocessing behind one call.

    model = Model("bundles/pilotnet")
    result = model(frame)          # uint8 BGR image -> Result (a dict); model.times: its stages' seconds
"""

from __future__ import annotations

import time

import numpy as np

from . import bundle as bundle_format
from .backends import open_backend
from .postprocess import Postprocessor
from .preprocess import Preprocessor


class Model:
    def __init__(self, path_or_bundle, backend: str = "auto", precision=None, dla_core=None, build=True):
        if isinstance(path_or_bundle, bundle_format.Bundle):
            self.bundle = path_or_bundle
        else:
            self.bundle = bundle_format.load(path_or_bundle)
        b = self.bundle
        self.preprocess = Preprocessor(b.preprocess, b.input)
        self.postprocess = Postprocessor(b.task, b.labels, b.outputs, b.curvature_per_unit)
        self.backend = open_backend(backend, b, precision, dla_core, build).activate()
        self.times = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}  # the last call's, in seconds

    def __call__(self, image: np.ndarray):
        return self.infer(self.prepare(image))

    def prepare(self, image: np.ndarray, out=None, times=None) -> np.ndarray:
        """The network's input for a frame: preprocessed into `out` (from new_buffer(); else the one reused
        buffer). Its seconds go to times["preprocess"] (self.times unless another dict is given). It may run
        in another thread than infer() (pipeline's Stream does so for frames that all come in order), each
        frame in a buffer of its own and with a times of its own."""
        t0 = time.perf_counter()
        batch = self.preprocess(image, out)
        (self.times if times is None else times)["preprocess"] = time.perf_counter() - t0
        return batch

    def new_buffer(self) -> np.ndarray:
        """A buffer for prepare()'s out: one per frame in flight."""
        return self.preprocess.new_buffer()

    def infer(self, batch: np.ndarray):
        """prepare()'s input -> the Result (the backend, then postprocessing); their seconds go to times."""
        clock, times = time.perf_counter, self.times
        t1 = clock()
        raw = self.backend.infer(batch)
        t2 = clock()
        result = self.postprocess(raw)
        times["infer"], times["postprocess"] = t2 - t1, clock() - t2
        return result

    def paths(self) -> dict:
        """Where each preprocessing step runs: {"crop", "resize", "colour"} -> "cpu", "gstreamer" or "gpu"."""
        return self.preprocess.paths()

    def predict(self, images) -> list:
        """Raw network outputs for several frames: a list with one (N, ...) array per output."""
        return self.backend.infer(self.preprocess.batch(images))

    def close(self):
        self.backend.deactivate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
