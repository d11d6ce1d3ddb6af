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
        self.spinning = True  # ONNX Runtime's own default
        self.session = None

    def activate(self):
        ort = require("onnxruntime", "ort", "the onnxruntime backend")
        available = ort.get_available_providers()
        providers = [p for p in (self.providers or PREFERRED) if p in available] or ["CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        if not self.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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

    def share_cores(self, shared: bool):
        """ONNX Runtime's worker threads spin-wait between calls by default: fastest when nothing else
        needs the cores, but beside a capture thread they take its core (1280x720 H.264 on 2 cores: 74 FPS
        spinning, 94 without; frames in memory, read inline: 1,575 spinning, 1,215 without). The session is
        reopened when the setting changes (once per stream, milliseconds for these networks)."""
        if self.spinning == shared:
            self.spinning = not shared
            if self.session is not None:
                self.session = None  # freed before its successor is made: never two sessions' memory at once
                self.activate()

    def deactivate(self):
        self.session = None
