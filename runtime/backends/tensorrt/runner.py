"""TensorRT backend: an engine run with pycuda. The engine comes from a loader (loader.py, as Polygraphy's
TrtRunner takes one): EngineFromPath, EngineFromBytes (a path or bytes given are wrapped in them), or CachedEngine,
the default: the bundle's engine for this GPU, board, TensorRT version, precision, batch and DLA core, built once
when missing unless build=False, and rebuilt when the file will not deserialize.

On activate: a CUDA context (cuda.py; current only while the backend works, so any thread may call it and
several models may share a thread), then the engine, deserialized. Per batch size it
allocates page-locked host buffers and device buffers once and reuses them: copy in, execute, copy out
and synchronize on one stream. Both TensorRT API generations through api.py. An engine built with a frame size
(frame_input.py) has a uint8 1 x H x W x 3 input: its host buffer is uint8 and the frame is copied to the device
as it is (frame_size says the size it takes).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ...errors import UserError
from ..base import Backend
from . import api as trtlib
from .cuda import Gpu
from .loader import CachedEngine, as_loader


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle, precision=None, dla_core=None, build=True, engine=None, log=sys.stderr, root="/",
                 frame_size=None):
        """engine: a path, bytes, or a loader (loader.py); default the bundle's CachedEngine for precision,
        dla_core, build and frame_size (width, height: the engine that takes the camera's uint8 frames of that size
        and preprocesses them itself). precision names an engine given directly. Once active, frame_size is the
        frame size the engine takes (an engine given directly says so by its uint8 1 x H x W x 3 input), or None."""
        self.bundle, self.precision, self.dla_core, self.log = bundle, precision, dla_core, log
        self.frame_size = frame_size
        self.loader = as_loader(engine) if engine is not None else CachedEngine(bundle, precision, dla_core, build,
                                                                                log, root, frame_size)
        self.gpu = self.context = self.engine = self.runtime = None
        self._buffers = {}
        self._batch_set = None

    # -- opening ---------------------------------------------------------------------------------------
    def activate(self):
        self.trt = trtlib.load()
        self.gpu = Gpu()
        try:
            with self.gpu.current():
                self._open()
        except BaseException:
            self.deactivate()
            raise
        return self

    def _deserialize(self, data, log_trt):
        self.runtime, self.engine = trtlib.deserialize(self.trt, log_trt, data, self.dla_core)
        log_trt.caught.raise_it()  # what the logger caught meanwhile (a Ctrl-C, most often): TensorRT dropped it

    def _open(self):
        trt, loader = self.trt, self.loader
        log_trt = trtlib.logger(trt, echo=False, out=self.log)
        path, data = loader(trt, self.gpu)
        self.precision = getattr(loader, "precision", self.precision)
        self._deserialize(data, log_trt)
        if self.engine is None:
            path = self._rebuild(path, log_trt)
        self.path = path
        self.context = self.engine.create_execution_context()
        self.io = trtlib.TensorAPI(trt, self.engine, log_trt)
        inputs = [t for t in self.io.tensors if t.is_input]
        if len(inputs) != 1:
            raise UserError("%s has %d inputs; the runtime feeds one image input" % (path, len(inputs)))
        self.input = inputs[0]
        self.outputs = [t for t in self.io.tensors if not t.is_input]
        self.max_batch = self.input.max_shape[0]
        self._check_frames(path)
        self.detail = "TensorRT %s tensor API, %s engine %s" % (trt.__version__, self.precision,
                                                                os.path.basename(path))

    def _check_frames(self, path):
        """frame_size from the engine's input: a uint8 1 x H x W x 3 input takes frames (and a frame_size asked
        for must be the engine's), else None."""
        shape, takes = self.input.shape, self.input.dtype == np.uint8
        size = (shape[2], shape[1]) if takes and len(shape) == 4 and shape[3] == 3 else None
        if self.frame_size is not None and size != tuple(self.frame_size):
            raise UserError("%s takes %s, not %dx%d frames" % (path, "%dx%d frames" % size if size else "the "
                                                               "network's input", self.frame_size[0],
                                                               self.frame_size[1]))
        self.frame_size = size

    def _rebuild(self, path, log_trt):
        """The path of an engine made by the loader in place of path, which will not deserialize; a loader that
        cannot make one (a path or bytes given) leaves that in one line."""
        trt, loader = self.trt, self.loader
        why = "%s will not deserialize with TensorRT %s (built by another version, or corrupt: %s)" % (
            path, trt.__version__, log_trt.last_error("no reason given"))
        if not hasattr(loader, "rebuild"):
            raise UserError(why + "; rebuild it with: python -m runtime engine %s" % self.bundle.path)
        # TensorRT keeps the first logger while any runtime or builder lives: let this runtime go, so that
        # the build's errors reach the build's own logger (and its one-line message)
        self.engine = self.runtime = None
        path, data = loader.rebuild(trt, self.gpu, why)
        self._deserialize(data, log_trt)
        if self.engine is None:
            raise UserError("TensorRT %s cannot load the engine it has just built (%s)" % (trt.__version__, path))
        return path

    # -- running ---------------------------------------------------------------------------------------
    def _buffers_for(self, n):
        """(host buffers, device buffers, device pointers) for batch size n, made once and kept."""
        if self._batch_set != n:
            self.io.set_input_shape(self.context, self.input, (n,) + self.input.shape[1:])
            self._batch_set = n
        if n not in self._buffers:
            hosts, devices = [], []
            for t in self.io.tensors:
                shape = (n,) + self.input.shape[1:] if t.is_input else self.io.shape(self.context, t)
                host = self.gpu.pagelocked(shape, t.dtype)
                hosts.append(host)
                devices.append(self.gpu.alloc(host.nbytes))
            self._buffers[n] = (hosts, devices, [self.gpu.pointer(d) for d in devices])
        return self._buffers[n]

    def _infer(self, batch):
        hosts, devices, pointers = self._buffers_for(batch.shape[0])
        gpu, order = self.gpu, self.io.tensors
        for t, host, dev in zip(order, hosts, devices):
            if t.is_input:
                np.copyto(host, batch, casting="same_kind")
                gpu.copy_in(dev, host)
        if self.io.execute(self.context, pointers, gpu.stream_handle) is False:
            raise RuntimeError("TensorRT failed to enqueue the engine %s" % self.path)
        for t, host, dev in zip(order, hosts, devices):
            if not t.is_input:
                gpu.copy_out(host, dev)
        gpu.synchronize()
        return [np.array(host, dtype=np.float32) for t, host in zip(order, hosts) if not t.is_input]

    def infer(self, batch):
        batch = np.asarray(batch)
        with self.gpu.current():
            if batch.shape[0] <= self.max_batch:
                return self._infer(batch)
            parts = [self._infer(batch[i:i + self.max_batch]) for i in range(0, batch.shape[0], self.max_batch)]
        return [np.concatenate(outs, axis=0) for outs in zip(*parts)]

    def deactivate(self):
        if self.gpu is None:
            return
        with self.gpu.current():
            for _, devices, _ in self._buffers.values():
                for d in devices:
                    self.gpu.free(d)
            self._buffers.clear()
            self.context = self.engine = self.runtime = None
        self.gpu.close()
        self.gpu = None
