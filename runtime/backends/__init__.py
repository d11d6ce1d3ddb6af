"""Inference backends, one file each, one face (after Polygraphy's runners):

    with open_backend(name, bundle) as backend:
        outputs = backend.infer(batch)      # float32 input -> list of numpy arrays, one per output

`activate()` / `deactivate()` do what `with` does. Heavy packages are imported on activate, so a
machine without one still imports this module and hears about it only when it asks for that backend.
"""

from __future__ import annotations

from ..cli import UserError

NAMES = ("auto", "onnxruntime")


class Backend:
    """The shared face. Subclasses set `name` and `detail` (what it runs on) when activated."""

    name = "?"
    detail = ""

    def activate(self):
        return self

    def infer(self, batch):
        raise NotImplementedError

    def deactivate(self):
        pass

    def __enter__(self):
        return self.activate()

    def __exit__(self, *exc):
        self.deactivate()


def open_backend(name: str, bundle) -> Backend:
    """A backend for the bundle, not yet activated. 'auto' is ONNX Runtime until TensorRT lands."""
    if name in ("auto", "onnxruntime"):
        from .onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(bundle.model_path)
    raise UserError("unknown backend %r (choose from: %s)" % (name, ", ".join(NAMES)))
