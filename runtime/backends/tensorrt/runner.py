"""TensorRT backend: the bundle's engine for this device (built here when there is none), run with pycuda.

On activate: a CUDA context (cuda.py; current only while the backend works, so any thread may
call it and several models may share a thread), the engine that
matches this GPU, board, TensorRT version, precision, batch and DLA core (engines.py), built once
when missing unless build=False, and rebuilt when an engine file will not deserialize. Per batch size it
allocates page-locked host buffers and device buffers once and reuses them: copy in, execute, copy out
and synchronize on one stream. Both TensorRT API generations through api.py.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ...errors import UserError
from .. import Backend
from . import api as trtlib, build as trt_build, engines
from .cuda import Gpu


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, bundle, precision=None, dla_core=None, build=True, engine_path=None, log=sys.stderr,
                 root="/"):
        self.bundle, self.precision, self.dla_core, self.build = bundle, precision, dla_core, build
        self.engine_path, self.log, self.root = engine_path, log, root
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

    def _find_or_build(self, opts):
        trt, bundle = self.trt, self.bundle
        plan = trt_build.make_plan(trt, self.gpu, bundle, opts, root=self.root)
        self.precision = plan.precision
        path = engines.find(bundle.path, plan.key, any_calibration=True)
        if path is not None:
            return path
        if not self.build:
            others = len(engines.listed(bundle.path, plan.key.model_sha256))
            raise UserError("no %s engine for this device (%s, TensorRT %s) in %s%s; build one with: python -m "
                            "runtime engine %s --precision %s (or run without --no-build)"
                            % (plan.precision, plan.key.device.gpu_name, trt.__version__, bundle.path,
                               " (%d for other devices, versions or settings)" % others if others else "",
                               bundle.path, plan.precision))
        note = ("runtime: no %s engine for this device yet: building one now (once; it is kept for the next run)"
                % plan.precision)
        return trt_build.build(bundle, opts, self.gpu, trt, self.log, self.root, note=note)

    def _deserialize(self, path, log_trt):
        with open(path, "rb") as f:
            self.runtime, self.engine = trtlib.deserialize(self.trt, log_trt, f.read(), self.dla_core)

    def _open(self):
        trt = self.trt
        opts = trt_build.BuildOptions(precision=self.precision, dla_core=self.dla_core)
        path = self.engine_path or self._find_or_build(opts)
        log_trt = trtlib.logger(trt, echo=False, out=self.log)
        self._deserialize(path, log_trt)
        if self.engine is None:
            why = "%s will not deserialize with TensorRT %s (built by another version, or corrupt: %s)" % (
                path, trt.__version__, log_trt.last_error("no reason given"))
            if self.engine_path or not self.build:
                raise UserError(why + "; rebuild it with: python -m runtime engine %s" % self.bundle.path)
            print("warning: %s: rebuilding it" % why, file=self.log)
            # TensorRT keeps the first logger while any runtime or builder lives: let this runtime go, so that
            # the build's errors reach the build's own logger (and its one-line message)
            self.engine = self.runtime = None
            path = trt_build.build(self.bundle, opts, self.gpu, trt, self.log, self.root)
            self._deserialize(path, log_trt)
            if self.engine is None:
                raise UserError("TensorRT %s cannot load the engine it has just built (%s)" % (trt.__version__, path))
        self.path = path
        self.context = self.engine.create_execution_context()
        self.io = trtlib.TensorAPI(trt, self.engine, log_trt)
        inputs = [t for t in self.io.tensors if t.is_input]
        if len(inputs) != 1:
            raise UserError("%s has %d inputs; the runtime feeds one image input" % (path, len(inputs)))
        self.input = inputs[0]
        self.outputs = [t for t in self.io.tensors if not t.is_input]
        self.max_batch = self.input.max_shape[0]
        self.detail = "TensorRT %s tensor API, %s engine %s" % (trt.__version__, self.precision,
                                                                os.path.basename(path))

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
