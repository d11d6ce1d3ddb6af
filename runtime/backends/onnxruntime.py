"""ONNX Runtime backend: CPU everywhere, CUDA or TensorRT execution providers where installed.

The session is made on first use, not on activate, so that the loop that uses it decides first whether its
worker threads spin between calls (see share_cores): a session made, freed and made again for that left up
to 17-25 MB of the first one's heap behind (binary_cnn, a 14 MB model), 1.11x the tutorial loop's peak.

A model whose path is not UTF-8 (a bundle in a folder so named), which ONNX Runtime's binding refuses, is opened
through a link to its folder with a plain name (runtime/images.py's PlainName), so that external data beside it
is found too; the link is gone once the session is made.
"""

from __future__ import annotations

from .. import images
from ..errors import UserError, require
from .base import Backend

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, model_path: str, providers=None, threads: int = 0, input_shape=None):
        self.model_path = model_path
        self.input_shape = input_shape  # the manifest's, checked against the model's own when it loads
        self.providers = providers
        self.threads = threads
        self.spinning = True  # ONNX Runtime's own default
        self._session = None

    def activate(self):
        self.ort = require("onnxruntime", "ort", "the onnxruntime backend")
        available = self.ort.get_available_providers()
        self.use = [p for p in (self.providers or PREFERRED) if p in available] or ["CPUExecutionProvider"]
        self.detail = "%s %s" % (self.ort.__version__, ",".join(self.use))
        return self

    @property
    def session(self):
        """The InferenceSession, made now if this is its first use."""
        return self.load()

    def load(self):
        """Make the session if there is none yet (a model ONNX Runtime cannot load is one line); returns it."""
        if self._session is None:
            options = self.ort.SessionOptions()
            options.log_severity_level = 3
            if self.threads:
                options.intra_op_num_threads = self.threads
            if not self.spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                with images.PlainName(self.model_path, folder=True, who="ONNX Runtime") as name:
                    session = self.ort.InferenceSession(name, sess_options=options, providers=self.use)
            except UserError:
                raise
            except Exception as exc:  # ORT raises its own exception types for bad models
                raise UserError("ONNX Runtime cannot load %s: %s"
                                % (images.shown(self.model_path), (str(exc).splitlines() or [""])[0])) from None
            declared = session.get_inputs()[0].shape
            if self.input_shape is not None and not _fits(declared, self.input_shape):
                raise UserError("%s takes input %s, but the bundle's manifest says %s: the bundle is inconsistent; "
                                "export it again" % (images.shown(self.model_path), declared, self.input_shape))
            self.input_name = session.get_inputs()[0].name
            self.output_names = [o.name for o in session.get_outputs()]
            self.detail = "%s %s" % (self.ort.__version__, ",".join(session.get_providers()))
            self._session = session
        return self._session

    def infer(self, batch):
        return self.load().run(self.output_names, {self.input_name: batch})  # load first: it sets the names

    def share_cores(self, shared: bool):
        """ONNX Runtime's worker threads spin-wait between calls by default: fastest when nothing else
        needs the cores, but beside a capture thread they take its core (1280x720 H.264 on 2 cores: 85-87 FPS
        spinning, 114-128 without; frames in memory, read inline: spinning is 3-20% faster). Told before
        the first frame, the session is made with the right setting; told later, it is made again."""
        if self.spinning == shared:
            self.spinning = not shared
            self._session = None  # freed before its successor is made: never two sessions' memory at once

    def prepare(self, shared_cores: bool):
        super().prepare(shared_cores)
        self.load()

    def deactivate(self):
        self._session = None


def _fits(declared, manifest_shape) -> bool:
    """Whether the model's input shape (ints, or names/None for dynamic dimensions) takes the manifest's."""
    return len(declared) == len(manifest_shape) and all(
        not isinstance(d, int) or m is None or d == m for d, m in zip(declared, manifest_shape))
