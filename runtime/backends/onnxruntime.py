"""ONNX Runtime backend: CPU everywhere, CUDA or TensorRT execution providers where installed."""

from __future__ import annotations

from ..errors import UserError, require
from . import Backend

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, model_path: str, providers=None, threads: int = 0):
        self.model_path = model_path
        self.providers = providers
        self.threads = threads
        self.session = None

    def activate(self):
        ort = require("onnxruntime", "ort", "the onnxruntime backend")
        available = ort.get_available_providers()
        providers = [p for p in (self.providers or PREFERRED) if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        try:
            self.session = ort.InferenceSession(self.model_path, sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad models
            raise UserError("ONNX Runtime cannot load %s: %s" % (self.model_path, str(exc).splitlines()[0])) from None
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.detail = "%s %s" % (ort.__version__, ",".join(self.session.get_providers()))
        return self

    def infer(self, batch):
        return self.session.run(self.output_names, {self.input_name: batch})

    def deactivate(self):
        self.session = None
