"""The TensorRT backend, one package: what only it imports (tensorrt, pycuda), in a module per concern.

    api.py          the API generations (8.5-10 weak typing, 11 strongly typed), told apart by hasattr; the
                    logger, the device's fingerprint, the callback guard shared by logger/monitor/calibrator
    cuda.py         pycuda: a context current only inside `with gpu.current()`, page-locked and device memory
    engines.py      engine names (fingerprints) and places: the bundle's engines/ or the user cache
    build.py        the builder: ONNX -> serialized engine for this device (precision, workspace, DLA,
                    timing cache, progress)
    calibrator.py   INT8 calibration: representative frames through the runtime's preprocessing, and
                    TensorRT's entropy (classifiers) or min-max (regression) calibrator fed with them
    loader.py       CachedEngine: the bundle's engine for this device, found, built once, or rebuilt
    runner.py       TensorRTBackend: runs an engine (a path, bytes, or a loader) on pycuda buffers
    command.py      python -m runtime engine (and its alias python -m export engine)
"""

__all__ = ["CachedEngine", "TensorRTBackend"]


def __getattr__(name):  # imported when asked for: `python -m runtime run` needs only engines' names at start
    if name == "CachedEngine":
        from .loader import CachedEngine

        return CachedEngine
    if name == "TensorRTBackend":
        from .runner import TensorRTBackend

        return TensorRTBackend
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
