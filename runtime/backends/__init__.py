"""Inference backends, one file each, one face (after Polygraphy's runners):

    with open_backend(name, bundle) as backend:
        outputs = backend.infer(batch)      # float32 input -> list of numpy arrays, one per output

`activate()` / `deactivate()` do what `with` does. Heavy packages are imported on activate, so a
machine without one still imports this module and hears about it only when it asks for that backend.
"""

from __future__ import annotations

import importlib.util

from ..errors import UserError
from .base import Backend
from .tensorrt.api import load as load_tensorrt
from .tensorrt.cuda import gpu_count, load_pycuda

__all__ = ["Backend", "NAMES", "choose", "open_backend", "tensorrt_installed"]

NAMES = ("auto", "onnxruntime", "tensorrt")


def tensorrt_installed() -> bool:
    """Whether `import tensorrt` would find a package (without paying for the import)."""
    return importlib.util.find_spec("tensorrt") is not None


def choose(name: str):
    """(backend name, why): 'auto' picks TensorRT when it imports and a GPU is there, and says why not."""
    if name == "onnxruntime":
        return name, "asked for"
    if name == "tensorrt":
        load_tensorrt()
        load_pycuda()
        if gpu_count() == 0:
            raise UserError("--backend tensorrt: no CUDA GPU is visible (is the NVIDIA driver loaded? on a Jetson, "
                            "is the user in the video and render groups?)")
        return name, "asked for"
    if name == "auto":
        if not tensorrt_installed():
            return "onnxruntime", "auto: TensorRT is not installed"
        try:
            load_tensorrt()
            load_pycuda()
        except UserError as exc:
            return "onnxruntime", "auto: %s" % str(exc).split(":")[0]
        if gpu_count() == 0:
            return "onnxruntime", "auto: TensorRT is installed but no CUDA GPU is visible"
        return "tensorrt", "auto: TensorRT and a CUDA GPU are here"
    raise UserError("unknown backend %r (choose from: %s)" % (name, ", ".join(NAMES)))


def open_backend(name: str, bundle, precision=None, dla_core=None, build=True) -> Backend:
    """A backend for the bundle, not yet activated; `.reason` says why it was chosen. precision picks the
    engine (TensorRT) or the ONNX variant (ONNX Runtime: fp32 = model.onnx, fp16/int8 = the bundle's variants)."""
    chosen, reason = choose(name)
    if chosen == "tensorrt":
        from .tensorrt import TensorRTBackend

        backend = TensorRTBackend(bundle, precision=precision, dla_core=dla_core, build=build)
    else:
        if dla_core is not None:
            raise UserError("--dla-core needs the TensorRT backend")
        from .onnxruntime import OnnxRuntimeBackend

        backend = OnnxRuntimeBackend(bundle.model_file(precision or "fp32"), input_shape=bundle.input["shape"])
    backend.reason = reason
    return backend
