"""Checks that need NVIDIA's REAL tensorrt module, in a process of its own (one generation per process):

    python -m tests.realtrt.launch REAL_VERSION tests.realtrt.probe FAKE_VERSION|- RECORDED_FILE|-

prints one JSON object:
- "surface": what the FAKE generation FAKE_VERSION offers that the real module lacks or has otherwise
  (names, enum members and values, parameter names from the pybind11 signatures in each __doc__);
- "recorded": names the project's code touched in the fake (RECORDED_FILE, "VERSION NAME" lines) that the
  real module lacks;
- "callbacks", "detection": the project's ILogger, IProgressMonitor and IInt8EntropyCalibrator2 subclasses
  called through the real trampolines (the base classes' methods dispatch to the Python overrides), and
  runtime/backends/tensorrt/api.py's generation detection, dtype mapping and start-up errors on the real module.
"""

import importlib.util
import inspect
import io
import json
import os
import re
import sys
import tempfile
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE = os.path.join(ROOT, "tests", "fakes", "site", "tensorrt", "__init__.py")


def load_fake(version):
    os.environ["FAKE_TENSORRT_VERSION"] = version
    os.environ.pop("FAKE_TRT_RECORD", None)
    spec = importlib.util.spec_from_file_location("fake_tensorrt", FAKE,
                                                  submodule_search_locations=[os.path.dirname(FAKE)])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public(name):
    return not (name.startswith("_") or name.startswith("FAKE") or name.startswith("fake_"))


def is_enum(value):
    return isinstance(value, type) and hasattr(value, "__members__")


def fake_params(function):
    params = list(inspect.signature(function).parameters.values())
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _split(params):
    depth, part, parts = 0, "", []
    for ch in params:
        if ch in "[(<{":
            depth += 1
        elif ch in "])>}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    if part.strip():
        parts.append(part)
    return parts


def real_overloads(obj, name):
    """[(parameter names, how many have defaults)] of each pybind11 overload, from the docstring."""
    if inspect.isfunction(obj):  # plain Python functions of the real package (volume)
        params = list(inspect.signature(obj).parameters.values())
        return [([p.name for p in params if p.name != "self"], sum(p.default is not p.empty for p in params))]
    found = []
    for match in re.finditer(r"^(?:\d+\. )?%s\((.*)\) ->" % re.escape(name), obj.__doc__ or "", re.M):
        names, defaults = [], 0
        for part in _split(match.group(1)):
            pname = part.split(":")[0].split("=")[0].strip()
            if pname in ("self", "*args", "**kwargs"):
                continue
            names.append(pname)
            defaults += "=" in part
        found.append((names, defaults))
    return found


def check_params(where, fake_fn, real_obj, name, problems):
    want = fake_params(fake_fn)
    overloads = real_overloads(real_obj, name)
    if not overloads:
        problems.append("%s: no signature in the real __doc__" % where)
        return
    for names, defaults in overloads:
        if names[:len(want)] == want and len(names) - len(want) <= defaults:
            return
    problems.append("%s%s: the real one takes %s" % (where, tuple(want), " or ".join(str(tuple(n)) for n, _ in
                                                                                    overloads)))


def check_enum(where, fake, real, exact, problems):
    if not is_enum(real):
        problems.append("%s: not an enum in the real module" % where)
        return
    fm = {k: int(v) for k, v in fake.__members__.items()}
    rm = {k: int(v) for k, v in real.__members__.items()}
    for k, v in fm.items():
        if rm.get(k) != v:
            problems.append("%s.%s = %d; real: %s" % (where, k, v, rm.get(k, "missing")))
    if exact and set(rm) - set(fm):
        problems.append("%s: the fake lacks %s" % (where, sorted(set(rm) - set(fm))))


def check_surface(fake, trt, exact):
    problems, checked = [], 0
    for name in sorted(n for n in vars(fake) if public(n)):
        value, real = getattr(fake, name), getattr(trt, name, None)
        checked += 1
        if real is None and name != "__version__":
            problems.append("%s: not in the real module" % name)
        elif is_enum(value):
            check_enum(name, value, real, exact, problems)
        elif isinstance(value, type):
            for klass in value.__mro__:
                if klass.__module__ != fake.__name__:
                    continue
                for attr, member in vars(klass).items():
                    if not public(attr) and attr != "__init__":
                        continue
                    if attr == "__init__" and klass.__name__.startswith("_"):
                        continue
                    where = "%s.%s" % (name, attr)
                    checked += 1
                    real_member = getattr(real, attr, None)
                    if real_member is None:
                        problems.append("%s: not in the real module" % where)
                    elif is_enum(member):
                        check_enum(where, member, real_member, exact, problems)
                    elif attr == "__init__" and not real_overloads(real_member, attr):
                        continue  # made by TensorRT, not by Python (no constructor): the fake's is its own
                    elif inspect.isfunction(member):
                        check_params(where, member, real_member, attr, problems)
        elif inspect.isfunction(value):
            check_params(name, value, real, name, problems)
        elif isinstance(value, type(sys)):
            problems.append("%s: a module the fake imports under a public name" % name)
    return problems, checked


def check_recorded(path, trt):
    missing, names = [], []
    with open(path) as f:
        names = sorted({line.split()[1] for line in f if line.strip()})
    for name in names:
        obj = trt
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                missing.append(name)
                break
    return missing, names


class HostGpu:
    """What the calibrator needs of runtime/cuda.Gpu, in host memory (TensorRT only sees the pointers)."""

    def __init__(self):
        self.kept = []

    def pagelocked(self, shape, dtype):
        return np.zeros(shape, dtype)

    def alloc(self, nbytes):
        buf = np.zeros(nbytes, np.uint8)
        self.kept.append(buf)
        return buf

    @staticmethod
    def pointer(buf):
        return int(buf.ctypes.data)

    def copy_in(self, dev, host):
        dev[:] = host.view(np.uint8).ravel()

    def synchronize(self):
        pass

    def free(self, buf):
        pass


def check_callbacks(trt):
    from runtime.backends.tensorrt import api as trtlib, build as trt_build, calibrator
    from runtime.errors import UserError

    out = {}
    log = trtlib.logger(trt, echo=False)
    trt.ILogger.log(log, trt.ILogger.Severity.ERROR, "an error through the real trampoline")
    trt.ILogger.log(log, trt.ILogger.Severity.INFO, "info")
    out["logger_errors"] = log.errors

    class Broken:  # a stderr that fails (a closed pipe; a Ctrl-C arrives the same way, inside log())
        def write(self, text):
            raise BrokenPipeError("stderr is gone")

    broken = trtlib.logger(trt, echo=True, out=Broken())
    trt.ILogger.log(broken, trt.ILogger.Severity.ERROR, "through the real trampoline, printed nowhere")
    out["logger_caught"] = repr(broken.caught.exception)
    if hasattr(trt, "IProgressMonitor"):
        shown = []

        class Ticker:
            def show(self, detail=""):
                if detail.startswith("boom"):
                    raise ValueError("the ticker failed")
                shown.append(detail)

        monitor = trt_build._progress_monitor(trt, Ticker(), trtlib.Caught())
        trt.IProgressMonitor.phase_start(monitor, "Building", None, 2)
        out["step_ok"] = trt.IProgressMonitor.step_complete(monitor, "Building", 0)
        trt.IProgressMonitor.phase_start(monitor, "boom", None, 1)
        out["step_after_error"] = trt.IProgressMonitor.step_complete(monitor, "Building", 1)
        trt.IProgressMonitor.phase_finish(monitor, "Building")
        try:
            monitor.caught.raise_it()
            out["progress_reraised"] = None
        except ValueError as exc:
            out["progress_reraised"] = str(exc)
        out["progress_shown"] = shown
    if hasattr(trt, "IInt8EntropyCalibrator2"):
        cache = os.path.join(tempfile.mkdtemp(), "calibration.cache")
        batches = [np.full((1, 4), i, np.float32) for i in range(2)]
        classifier, regression = types.SimpleNamespace(task="classification"), types.SimpleNamespace(task="steering")
        cal = calibrator.make(trt, HostGpu(), regression, None, cache, 1, batches, (-1, 4), io.StringIO())
        out["minmax_batch_size"] = trt.IInt8MinMaxCalibrator.get_batch_size(cal)  # the other base class
        cal = calibrator.make(trt, HostGpu(), classifier, None, cache, 1, batches, (-1, 4), io.StringIO())
        Base = trt.IInt8EntropyCalibrator2
        out["batch_size"] = Base.get_batch_size(cal)  # C++ getBatchSize -> trampoline -> the override
        # get_batch and the cache methods are called directly: their base-class wrappers convert pointers and
        # buffers in ways that need the library
        out["batches"] = [len(cal.get_batch(["input"]) or []) for _ in range(3)]
        cal.write_calibration_cache(b"calibration table")
        with open(cache) as f:
            out["cache_after"] = f.read()

        def failing():
            raise UserError("the camera went away during calibration")
            yield

        cal = calibrator.make(trt, HostGpu(), classifier, None, cache, 1, failing(), (-1, 4), io.StringIO())
        out["batch_after_error"] = cal.get_batch(["input"])
        try:
            cal.caught.raise_it()
            out["calibration_reraised"] = None
        except UserError as exc:
            out["calibration_reraised"] = str(exc)
    return out


def check_detection(trt):
    from runtime.backends.tensorrt import api as trtlib
    from runtime.errors import UserError

    out = {"tensor_api": trtlib.has_tensor_api(trt), "weak_typing": trtlib.has_weak_typing(trt),
           "describe": trtlib.describe(trt), "dtypes": {}}
    for name, member in trt.DataType.__members__.items():
        try:
            out["dtypes"][name] = trtlib.numpy_dtype(member).name
        except UserError:
            out["dtypes"][name] = None
    for factory in (trtlib.builder, trtlib.runtime):
        try:
            factory(trt, trtlib.logger(trt, echo=False))
            out[factory.__name__] = "started"
        except UserError as exc:
            out[factory.__name__] = str(exc)
    return out


def main():
    fake_version, recorded = sys.argv[1], sys.argv[2]
    import tensorrt as trt

    assert "FAKE" not in (trt.__doc__ or ""), "the fake was imported instead of the real module"
    report = {"version": trt.__version__, "file": trt.__file__}
    if fake_version != "-":
        exact = not fake_version.startswith("8.")  # 8.5 stands for 8.5.2, a subset of the real 8.6.1
        report["surface"], report["checked"] = check_surface(load_fake(fake_version), trt, exact)
    if recorded != "-":
        report["recorded_missing"], report["recorded"] = check_recorded(recorded, trt)
    report["callbacks"] = check_callbacks(trt)
    report["detection"] = check_detection(trt)
    print("PROBE " + json.dumps(report))


if __name__ == "__main__":
    main()
