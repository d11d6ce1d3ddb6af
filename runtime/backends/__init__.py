"""Inference backends, one file each, one face (after Polygraphy's runners):

    with open_backend(name, bundle) as backend:
        outputs = backend.infer(batch)      # float32 input -> list of numpy arrays, one per output

`activate()` / `deactivate()` do what `with` does. Heavy packages are imported on activate, so a
machine without one still imports this module and hears about it only when it asks for that backend.
"""

from __future__ import annotations

import importlib.util

from ..cli import UserError

NAMES = ("auto", "onnxruntime", "tensorrt")
TENSORRT_HOWTO = ("on a Jetson, JetPack's python3-libnvinfer seen through a venv made with "
                  "--system-site-packages; on a desktop with an NVIDIA GPU, pip install tensorrt")


class Backend:
    """The shared face. Subclasses set `name` and `detail` (what it runs on) when activated."""

    name = "?"
    detail = ""
    reason = ""

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


def tensorrt_installed() -> bool:
    """Whether `import tensorrt` would find a package (without paying for the import)."""
    return importlib.util.find_spec("tensorrt") is not None


def choose(name: str):
    """(backend name, why): 'auto' says which backend it picked and the reason."""
    if name == "onnxruntime":
        return name, "asked for"
    if name == "tensorrt":
        if not tensorrt_installed():
            raise UserError("--backend tensorrt: TensorRT is not installed (%s)" % TENSORRT_HOWTO)
        raise UserError("--backend tensorrt: the TensorRT backend is not in this version yet; "
                        "use --backend onnxruntime")
    if name == "auto":
        if not tensorrt_installed():
            return "onnxruntime", "auto: TensorRT is not installed"
        return "onnxruntime", "auto: TensorRT is installed but its backend is not in this version yet"
    raise UserError("unknown backend %r (choose from: %s)" % (name, ", ".join(NAMES)))


def open_backend(name: str, bundle) -> Backend:
    """A backend for the bundle, not yet activated; `.reason` says why it was chosen."""
    chosen, reason = choose(name)
    from .onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(bundle.model_path)
    backend.reason = reason
    return backend
