"""The TensorRT backend, one package: what only it imports (tensorrt, pycuda), in a module per concern.

    api.py          the API generations (8.5-10 weak typing, 11 strongly typed), told apart by hasattr; the
                    logger, the device's fingerprint, the callback guard shared by logger/monitor/calibrator
    cuda.py         pycuda: a context current only inside `with gpu.current()`, page-locked and device memory
    engines.py      engine names (fingerprints) and places: the bundle's engines/ or the user cache
    build.py        the builder along Polygraphy's seams: network from ONNX, builder config (precision,
                    workspace, DLA, timing cache), engine from network (calibration included), save
    calibrator.py   INT8 calibration: the frames its caller chose (an iterable) through the runtime's
                    preprocessing, fed to TensorRT's entropy (classifiers) or min-max (regression) calibrator
    loader.py       where an engine comes from: EngineFromPath, EngineFromBytes, CachedEngine (the bundle's
                    engine for this device, found, built once, or rebuilt)
    runner.py       TensorRTBackend: runs the engine a loader gives on pycuda buffers
(`python -m runtime engine` is runtime/commands/engine.py: it chooses the calibration frames.)
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
