"""A bundle ready to run: preprocessing, a backend and postprocessing behind one call.

    model = Model("bundles/pilotnet")
    result = model(frame)          # uint8 BGR image -> Result (a dict); model.times: its stages' seconds

With gpu_preprocess "on" or "auto" and the frame size known (frame_size=(width, height)), the TensorRT backend
runs an engine that takes the camera's uint8 frame and does crop, resize and colour itself
(runtime/backends/tensorrt/frame_input.py): prepare() then only hands the frame over (copied into the buffer, or
as it is), and paths() says "gpu". gpu_note says why auto left it on the CPU.
"""

from __future__ import annotations

import time

import numpy as np

from . import bundle as bundle_format
from .backends import choose, open_backend
from .errors import UserError
from .postprocess import Postprocessor
from .preprocess import GPU_MODES, Preprocessor



def gpu_frames(mode, chosen, preprocess, frame_size, dla_core=None, precision=None):
    """(the frame size the engine takes, or None; why not, for auto) for --gpu-preprocess MODE with the backend
    chosen: "on" is a one-line error where it cannot be, "auto" is on only where it can."""
    if mode not in GPU_MODES:
        raise UserError("--gpu-preprocess %r is not one of %s" % (mode, ", ".join(GPU_MODES)))
    if mode == "off":
        return None, ""
    from .backends.tensorrt.frame_input import unsupported

    why = None
    if chosen != "tensorrt":
        why = "the %s backend preprocesses on the CPU (GPU preprocessing is TensorRT's)" % chosen
    elif frame_size is None:
        why = ("the frame size is not known before the first frame: give --input-width and --input-height "
               "(frames of another size are then an error)")
    elif dla_core is not None:
        why = "a DLA engine takes the network's input"
    else:
        why = unsupported(preprocess, frame_size)
        if why is None and mode == "auto" and precision == "int8":
            why = "an INT8 engine calibrated by TensorRT takes the network's input"
    if why and mode == "on":
        raise UserError("--gpu-preprocess on: %s" % why)
    return (None, "preprocessing on the CPU: %s" % why) if why else (tuple(frame_size), "")


class Model:
    def __init__(self, path_or_bundle, backend: str = "auto", precision=None, dla_core=None, build=True,
                 gpu_preprocess="off", frame_size=None, threshold=None, classes=None, track=False):
        """gpu_preprocess: "off" (the default), "on" or "auto" with frame_size (width, height): the module
        docstring. threshold, classes, track: a detection bundle's options (Postprocessor.for_bundle)."""
        if isinstance(path_or_bundle, bundle_format.Bundle):
            self.bundle = path_or_bundle
        else:
            self.bundle = bundle_format.load(path_or_bundle)
        b = self.bundle
        self.preprocess = Preprocessor(b.preprocess, b.input)
        self.postprocess = Postprocessor.for_bundle(b, threshold, classes, track)
        self.frame_size, self.gpu_note = None, ""
        if gpu_preprocess != "off":
            chosen, reason = choose(backend)
            self.frame_size, self.gpu_note = gpu_frames(gpu_preprocess, chosen, b.preprocess, frame_size, dla_core,
                                                        precision)
        self.backend = None
        if self.frame_size is not None:
            self.backend = self._frame_backend(gpu_preprocess, precision, dla_core, build, reason)
        if self.backend is None:
            self.backend = open_backend(backend, b, precision, dla_core, build).activate()
        self.frame_buffer = None if self.frame_size is None else self.new_buffer()
        self.times = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}  # the last call's, in seconds

    def _frame_backend(self, mode, precision, dla_core, build, reason):
        """The TensorRT backend on the engine that takes frames, activated; None where auto with --no-build finds
        no such engine here (the plain engine then runs, and gpu_note says why)."""
        from .backends.tensorrt import TensorRTBackend

        backend = TensorRTBackend(self.bundle, precision, dla_core, build, frame_size=self.frame_size)
        backend.reason = reason
        try:
            return backend.activate()
        except UserError as exc:
            if mode != "auto" or build:
                raise
            self.gpu_note = "preprocessing on the CPU: %s" % exc
            self.frame_size = None
            return None

    def __call__(self, image: np.ndarray):
        return self.infer(self.prepare(image), (image.shape[1], image.shape[0]))

    def prepare(self, image: np.ndarray, out=None, times=None) -> np.ndarray:
        """The network's input for a frame: preprocessed into `out` (from new_buffer(); else the one reused
        buffer). Its seconds go to times["preprocess"] (self.times unless another dict is given). It may run
        in another thread than infer() (pipeline's Stream does so for frames that all come in order), each
        frame in a buffer of its own and with a times of its own."""
        t0 = time.perf_counter()
        batch = self.preprocess(image, out) if self.frame_size is None else self._frame(image, out)
        (self.times if times is None else times)["preprocess"] = time.perf_counter() - t0
        return batch

    def new_buffer(self) -> np.ndarray:
        """A buffer for prepare()'s out: one per frame in flight (a uint8 1 x H x W x 3 frame where the engine
        takes frames)."""
        if self.frame_size is not None:
            return np.empty((1, self.frame_size[1], self.frame_size[0], 3), np.uint8)
        return self.preprocess.new_buffer()

    def _frame(self, image, out):
        """The frame as the engine takes it: checked, then copied into out, or as it is (a view) where no out is
        given and it is contiguous."""
        width, height = self.frame_size
        if image.dtype != np.uint8 or image.shape != (height, width, 3):
            got = "%dx%d" % (image.shape[1], image.shape[0]) if image.ndim == 3 else str(image.shape)
            raise UserError("a %s %s frame came, and the TensorRT engine takes %dx%d uint8 BGR frames (it was built "
                            "for that size: --gpu-preprocess off, or give the source's size as --input-width and "
                            "--input-height)" % (got, image.dtype, width, height))
        if out is None:
            if image.flags.c_contiguous:
                return image[None]
            out = self.frame_buffer
        np.copyto(out[0], image)
        return out

    def infer(self, batch: np.ndarray, frame_size=None):
        """prepare()'s input -> the Result (the backend, then postprocessing); their seconds go to times.
        frame_size (width, height): the frame's, for results in its pixels (a detector's boxes)."""
        clock, times = time.perf_counter, self.times
        t1 = clock()
        raw = self.backend.infer(batch)
        t2 = clock()
        result = self.postprocess(raw, frame_size=frame_size)
        times["infer"], times["postprocess"] = t2 - t1, clock() - t2
        return result

    def paths(self) -> dict:
        """Where each preprocessing step runs: {"crop", "resize", "colour"} -> "cpu", "gstreamer" or "gpu"."""
        if self.frame_size is not None:
            return {"crop": "gpu", "resize": "gpu", "colour": "gpu"}
        return self.preprocess.paths()

    def predict(self, images) -> list:
        """Raw network outputs for several frames: a list with one (N, ...) array per output."""
        if self.frame_size is not None:
            return self.backend.infer(np.concatenate([self._frame(im, None).copy() for im in images]))
        return self.backend.infer(self.preprocess.batch(images))

    def close(self):
        self.backend.deactivate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
