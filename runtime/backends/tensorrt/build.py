"""Build a TensorRT engine from a bundle on the device that will run it. Needs tensorrt and pycuda only.

    path = build(bundle, BuildOptions(precision="fp16"), gpu)      # -> BUNDLE/engines/fp16-b1-gpu-....engine

What it does, by TensorRT generation (told apart by hasattr, see api.py):
- 8.5-10.x: parse model.onnx (explicit-batch flag where it exists), FP16 by BuilderFlag.FP16, INT8 by
  BuilderFlag.INT8 and a calibrator (entropy for classifiers, min-max for steering and regression) fed with
  representative frames through the runtime's own preprocessing (its cache kept beside the engines and reused);
- 11.x: no precision flags and no calibrators: it parses the bundle's fp16 or int8 variant (strongly typed
  ONNX, made by `python -m export variants`) as it is.
Always: the memory-pool workspace limit, TF32 cleared for FP32 (FP32 means FP32), an optimization profile
over the dynamic batch (1..max batch; static batch 1 on the DLA), DLA with GPU fallback on request, a timing
cache saved and reused, progress while it builds, and build_serialized_network's None reported instead of
crashing. TensorRT's trampolines swallow what a Python callback raises (they print "Exception caught in
get_batch()" and go on with None/False), so fallible work (reading and checking calibration frames) is done
before building, and what a callback still raises is kept and raised again after the build.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import sys
import threading
import time

from ...bundle import write_atomic
from ...errors import UserError
from . import api as trtlib, calibrator, engines



class BuildOptions:
    def __init__(self, precision=None, workspace_mib=None, max_batch=1, dla_core=None, calib_data=None,
                 calib_frames=calibrator.DEFAULT_FRAMES, timing_cache=None):
        if precision is not None and precision not in engines.PRECISIONS:
            raise UserError("precision %r is not one of %s" % (precision, ", ".join(engines.PRECISIONS)))
        if precision == "fp32" and dla_core is not None:
            raise UserError("the DLA runs FP16 or INT8 only: use --precision fp16 or int8 with --dla-core")
        if dla_core is not None and int(max_batch) != 1:
            # The DLA takes static shapes only (a dynamic profile sends every layer to the GPU). A static batch
            # of N would make each camera frame, which comes alone, pay for N: DLA engines are batch 1.
            raise UserError("--dla-core builds for batch 1 only: the DLA takes static shapes, and a static batch of %d "
                            "would make every single camera frame pay for %d; leave out --max-batch, or build a GPU "
                            "engine for batches" % (int(max_batch), int(max_batch)))
        self.precision, self.workspace_mib, self.max_batch = precision, workspace_mib, int(max_batch)
        self.dla_core, self.calib_data, self.calib_frames = dla_core, calib_data, int(calib_frames)
        self.timing_cache = timing_cache


def default_workspace_mib(total_memory: int) -> int:
    """Small on Nano-class boards (the GPU shares 4-8 GB with everything else), generous elsewhere."""
    gib = total_memory / float(1 << 30)
    return 256 if gib <= 4.5 else 1024 if gib <= 8.5 else 4096


class Plan:
    """What will be built, decided before building: the engine key, the ONNX file, why this precision, and
    (INT8 by calibration) the calibration cache it comes from."""

    def __init__(self, key, onnx_path, reason, calibration_cache=None):
        self.key, self.onnx_path, self.reason = key, onnx_path, reason
        self.calibration_cache = calibration_cache

    @property
    def precision(self):
        return self.key.precision


def _calibration_spec(bundle, opts):
    return "%s|%d|%s" % (opts.calib_data, opts.calib_frames, calibrator.kind(bundle.task))


def file_digest(path):
    """What names an INT8 engine by its calibration: the calibration cache's sha256 (a prefix)."""
    return hashlib.sha256(engines.read(path, "INT8 calibration cache")).hexdigest()[:16]


def make_plan(trt, gpu, bundle, opts, root="/") -> Plan:
    """The default precision comes from the GPU's compute capability (trtlib.fast_fp16), not from a
    trt.Builder, so deciding costs nothing. An INT8 key by calibration names the calibration cache it was
    built from (its sha256), so other calibration data makes another engine."""
    weak = trtlib.has_weak_typing(trt)
    info = gpu.info()
    precision, reason = opts.precision, "asked for"
    if precision is None:
        if opts.dla_core is not None:
            precision, reason = "fp16", "the DLA runs FP16 or INT8"
        elif weak:
            fast = trtlib.fast_fp16(info["compute_capability"])
            cc = "sm %d.%d" % tuple(info["compute_capability"])
            precision, reason = (("fp16", "this GPU (%s) has fast FP16" % cc) if fast
                                 else ("fp32", "no fast FP16 on this GPU (%s)" % cc))
        elif "fp16" in bundle.variants:
            precision, reason = "fp16", "TensorRT %s builds the bundle's fp16 variant" % trt.__version__
        else:
            precision, reason = "fp32", ("TensorRT %s takes precision from the ONNX and this bundle has no fp16 "
                                         "variant (python -m export variants %s --precision fp16)"
                                         % (trt.__version__, bundle.path))
    if weak:
        onnx_path, sha = bundle.model_path, bundle.model_sha256("fp32")
        if precision == "int8" and not hasattr(trt, "IInt8EntropyCalibrator2"):
            raise UserError("TensorRT %s has no INT8 calibrator; make the int8 variant (python -m export variants "
                            "%s --precision int8)" % (trt.__version__, bundle.path))
    else:
        onnx_path, sha = bundle.model_file(precision), bundle.model_sha256(precision)
    device = trtlib.this_device(trt, gpu, root)
    key = engines.EngineKey(device, precision, opts.max_batch, opts.dla_core, sha)
    cache = None
    if weak and precision == "int8":
        cache = engines.calibration_cache_path(bundle.path, key, _calibration_spec(bundle, opts))
        key.calibration = file_digest(cache) if engines.own_file(cache) else "pending"
    return Plan(key, onnx_path, reason, cache)


class Ticker:
    """One status line while something slow runs: rewritten in place on a terminal, every 10 s otherwise."""

    def __init__(self, label, out=sys.stderr):
        self.label, self.out = label, out
        self.t0 = self._last = time.perf_counter()
        self.tty = hasattr(out, "isatty") and out.isatty()
        self.lock = threading.Lock()

    def show(self, detail=""):
        now = time.perf_counter()
        with self.lock:
            if self.tty and now - self._last >= 0.2:
                self.out.write("\r%s [%3.0f s] %-60.60s" % (self.label, now - self.t0, detail))
                self.out.flush()
                self._last = now
            elif not self.tty and now - self._last >= 10:
                print("%s [%3.0f s] %s" % (self.label, now - self.t0, detail), file=self.out)
                self._last = now

    def done(self, message):
        if self.tty:
            self.out.write("\r" + " " * 80 + "\r")
        print("%s: %s in %.1f s" % (self.label, message, time.perf_counter() - self.t0), file=self.out)


def _progress_monitor(trt, ticker, caught):
    """TensorRT's IProgressMonitor (9.0+) showing the innermost phase and its step; it cancels the build once
    any callback has caught an exception (a Ctrl-C, most often in the logger)."""

    class Progress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.phases = {}
            self.caught = caught

        @trtlib.guarded(None)
        def phase_start(self, phase_name, parent_phase, num_steps):
            self.phases[phase_name] = [0, num_steps]
            ticker.show(phase_name)

        @trtlib.guarded(False)
        def step_complete(self, phase_name, step):
            if phase_name in self.phases:
                self.phases[phase_name][0] = step + 1
                ticker.show("%s %d/%d" % (phase_name, step + 1, self.phases[phase_name][1]))
            return self.caught.exception is None  # False cancels the build

        @trtlib.guarded(None)
        def phase_finish(self, phase_name):
            self.phases.pop(phase_name, None)

    return Progress()


class Uncancellable:
    """Elapsed time and Ctrl-C where TensorRT has no IProgressMonitor (before 9.0: JetPack 5 and 6.0).

    Nothing can cancel such a build: build_serialized_network runs in C++ for minutes, and Python runs a signal
    handler only when the main thread next runs Python, which is inside TensorRT's callbacks, whose trampolines
    swallow the KeyboardInterrupt. So the signal is read here, from the wakeup file descriptor that the C-level
    handler writes at once: the first Ctrl-C or SIGTERM is said at once and marks the build as stopped (the
    calibrator feeds no more frames, which ends an INT8 calibration at its next batch, and nothing of the build is
    kept when TensorRT returns); the second ends the process at once (exit 130 or 143), before anything is written.
    Only the main thread may set the wakeup descriptor; elsewhere only the time is shown."""

    def __init__(self, trt, ticker, caught, log, exit=os._exit):
        self.version, self.ticker, self.caught, self.log, self.exit = trt.__version__, ticker, caught, log, exit
        self.stopping = threading.Event()
        self.signals = 0
        self.read_fd = self.write_fd = self.previous_fd = None
        self.thread = threading.Thread(target=self._watch, name="build-ticker", daemon=True)

    def start(self):
        if threading.current_thread() is threading.main_thread():
            self.read_fd, self.write_fd = os.pipe()
            for fd in (self.read_fd, self.write_fd):
                os.set_blocking(fd, False)
            self.previous_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.thread.start()
        return self

    def _watch(self):
        while not self.stopping.is_set():
            if self.read_fd is None:
                self.stopping.wait(0.5)
            elif select.select([self.read_fd], [], [], 0.5)[0]:
                try:
                    data = os.read(self.read_fd, 64)
                except OSError:
                    data = b""
                for signum in data:
                    if signum in (signal.SIGINT, signal.SIGTERM):
                        self._signal(signum)
            self.ticker.show("(TensorRT before 9.0 reports no progress)")

    def _signal(self, signum):
        self.signals += 1
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        if self.signals == 1:
            self.caught.keep(KeyboardInterrupt())
            print("\n%s: TensorRT %s cannot cancel a build once it runs (that came with 9.0), so it stops when "
                  "TensorRT returns, keeping nothing of it; %s again to quit at once" % (name, self.version, name),
                  file=self.log)
        else:
            print("\n%s again: quitting at once; nothing of this build was kept" % name, file=self.log)
            try:
                self.log.flush()
            finally:
                self.exit(128 + int(signum))

    def stop(self):
        self.stopping.set()
        self.thread.join()
        if self.write_fd is not None:
            signal.set_wakeup_fd(self.previous_fd)
            os.close(self.read_fd)
            os.close(self.write_fd)
            self.read_fd = self.write_fd = None


def _parse(trt, builder, log_trt, onnx_path, log):
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # 8.x needs it; 11 has none
    network = builder.create_network(1 << int(flag) if flag is not None else 0)
    parser = trt.OnnxParser(network, log_trt)
    with open(onnx_path, "rb") as f:
        ok = parser.parse(f.read())
    if not ok:
        for i in range(parser.num_errors):
            e = parser.get_error(i)
            where = "node %s" % e.node()
            if hasattr(e, "node_name") and e.node_name():
                where += " (%s %s)" % (e.node_operator(), e.node_name())
            print("  ONNX parser: %s: %s" % (where, e.desc()), file=log)
        hint = ("; TensorRT 8.x reads ONNX opsets up to %d (export with --opset %d)"
                % (trtlib.TRT8_MAX_OPSET, trtlib.TRT8_MAX_OPSET) if trt.__version__.startswith("8.") else "")
        raise UserError("TensorRT %s's ONNX parser rejected %s (%d error(s), above)%s"
                        % (trt.__version__, onnx_path, parser.num_errors, hint))
    return network, parser  # the parser holds the weights: it must live until the build is done


def build(bundle, opts: BuildOptions, gpu, trt=None, log=sys.stderr, root="/", note=None) -> str:
    """Build, save (atomically) and return the engine's path. note: printed once TensorRT has started.
    Everything happens with gpu's context current (cuda.py), and what TensorRT made is gone before
    it stops being current, also when the build fails."""
    with gpu.current():
        return _build(bundle, opts, gpu, trt, log, root, note)


def _build(bundle, opts, gpu, trt, log, root, note):
    trt = trt or trtlib.load()
    caught = trtlib.Caught()  # what a Python callback raises inside TensorRT: raised after the build
    log_trt = trtlib.logger(trt, echo=False, out=log, caught=caught)
    plan = make_plan(trt, gpu, bundle, opts, root)
    key, weak = plan.key, trtlib.has_weak_typing(trt)
    # where it all goes, checked before minutes of building: a folder in the way is one line now, not a traceback after
    cache_path = opts.timing_cache or engines.timing_cache_path(bundle.path, key)
    engine_path = engines.target(bundle.path, key)
    for path, what in ((engine_path, "engine"), (engine_path[:-len(".engine")] + ".json", "engine's description"),
                       (cache_path, "timing cache"), (plan.calibration_cache, "INT8 calibration cache")):
        if path is not None:
            engines.check_target(path, what)
    builder = trtlib.builder(trt, log_trt)
    if note:
        print(note, file=log)
    if opts.dla_core is not None and opts.dla_core >= builder.num_DLA_cores:
        raise UserError("--dla-core %d: this device has %d DLA core(s) (Xavier, AGX Orin and Orin NX have them; "
                        "Orin Nano has none)" % (opts.dla_core, builder.num_DLA_cores))
    network, parser = _parse(trt, builder, log_trt, plan.onnx_path, log)

    config = builder.create_builder_config()
    workspace = opts.workspace_mib or default_workspace_mib(gpu.info()["memory"])
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace) << 20)
    if plan.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if weak and (plan.precision == "fp16" or (plan.precision == "int8"
                                              and trtlib.fast_fp16(key.device.compute_capability))):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 builds keep FP16 for the layers INT8 cannot take

    inp = network.get_input(0)
    shape = tuple(inp.shape)
    profile = None
    if shape and shape[0] == -1:
        profile = builder.create_optimization_profile()
        rest = shape[1:]
        low = 1 if opts.dla_core is None else opts.max_batch  # the DLA takes static shapes: min = opt = max
        profile.set_shape(inp.name, (low,) + rest, (low,) + rest, (opts.max_batch,) + rest)
        config.add_optimization_profile(profile)
    elif opts.max_batch != 1 and shape and shape[0] != opts.max_batch:
        raise UserError("the model's batch dimension is fixed at %d; --max-batch needs a dynamic batch" % shape[0])

    int8_calibrator = None
    if weak and plan.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        batches = None
        if not engines.own_file(plan.calibration_cache):
            batches = calibrator.calibration_batches(bundle, opts, shape, log)
        # batch 1: TensorRT calibrates dynamic shapes at the calibration profile's opt shape, which is 1 here
        int8_calibrator = calibrator.make(trt, gpu, bundle, opts, plan.calibration_cache, 1, batches, shape, log,
                                          caught)
        config.int8_calibrator = int8_calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
    elif plan.precision == "int8" and opts.calib_data is not None:
        print("note: TensorRT %s builds the int8 variant as `export variants` calibrated it; --calib-data is not "
              "used here" % trt.__version__, file=log)
    if opts.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)

    saved = b""
    if os.path.isfile(cache_path) and (opts.timing_cache or engines.own_file(cache_path)):  # named, or its own
        saved = engines.read(cache_path, "timing cache")
    try:
        timing = config.create_timing_cache(saved)
    except Exception:  # noqa: BLE001 (not a timing cache at all: versions differ in whether they raise)
        print("warning: %s is not a TensorRT timing cache; starting a new one" % cache_path, file=log)
        timing = config.create_timing_cache(b"")
    if not config.set_timing_cache(timing, False):  # a cache from another device or version: start afresh
        print("warning: timing cache %s does not fit this device; starting a new one" % cache_path, file=log)
        config.set_timing_cache(config.create_timing_cache(b""), False)

    print("building a TensorRT engine, %s, for %s (%s; %s; workspace %d MiB, batch %s%s): this takes a while"
          % (plan.precision, key.device.gpu_name, trtlib.describe(trt), plan.reason, workspace,
             "1..%d" % opts.max_batch if opts.dla_core is None else "%d (static)" % opts.max_batch,
             "" if opts.dla_core is None else ", DLA core %d" % opts.dla_core), file=log)
    ticker = Ticker("building engine", log)
    monitor = waiter = None
    if hasattr(trt, "IProgressMonitor"):
        monitor = _progress_monitor(trt, ticker, caught)
        config.progress_monitor = monitor
    else:
        print("note: TensorRT %s cannot cancel a build once it runs: a first Ctrl-C stops when it ends, keeping "
              "nothing; a second quits at once" % trt.__version__, file=log)
    caught.raise_it()  # a Ctrl-C that came while this was prepared (parsing, calibration frames): stop here
    if monitor is None:
        waiter = Uncancellable(trt, ticker, caught, log).start()
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if waiter is not None:
            waiter.stop()
        if int8_calibrator is not None:
            int8_calibrator.release()
    caught.raise_it()  # what TensorRT's trampolines swallowed (a Ctrl-C too), raised here
    if serialized is None:
        raise UserError("TensorRT could not build the engine (%s); on a board short of memory try a smaller "
                        "--workspace, or add swap: jetson_setup.sh --swap 8G" % log_trt.last_error("no reason given"))
    write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    if int8_calibrator is not None:
        if not os.path.isfile(plan.calibration_cache):
            raise UserError("TensorRT built an INT8 engine but wrote no calibration cache (%s)"
                            % log_trt.last_error("no reason given"))
        key.calibration = file_digest(plan.calibration_cache)  # the engine is named by what calibrated it
    path = engines.save(bundle.path, key, bytes(serialized))
    ticker.done("wrote %s" % path)
    return path
