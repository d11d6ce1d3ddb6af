"""Build a TensorRT engine from a bundle on the device that will run it. Needs tensorrt and pycuda only.

    path = build(bundle, BuildOptions(precision="fp16"), gpu)      # -> BUNDLE/engines/fp16-b1-gpu-....engine

Along Polygraphy's seams, one function each: the plan (make_plan: precision, engine key, which ONNX), the network
from ONNX (network_from_onnx), the builder config (builder_config: workspace, precision flags, batch profile, DLA,
timing cache), the engine from the network (engine_from_network, with INT8 calibration: int8_calibrator), saved
(save_engine). By TensorRT generation (told apart by hasattr, see api.py):
- 8.5-10.x: parse model.onnx (explicit-batch flag where it exists), FP16 by BuilderFlag.FP16, INT8 by
  BuilderFlag.INT8 and a calibrator (entropy for classifiers, min-max for steering and regression) fed with the
  frames its caller chose (BuildOptions.calibration; the bundle's samples when none) through the runtime's own
  preprocessing (its cache kept beside the engines and reused);
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
from . import api as trtlib, calibrator, engines, frame_input

class BuildOptions:
    """What to build. INT8 by calibration: calibration, the frames to calibrate on as its caller chose them (an
    iterable of BGR images, read only when TensorRT calibrates; None: the bundle's samples), calib_data what they
    are called and calib_frames how many were asked for (both name the calibration cache). frame_size (width,
    height): the engine takes the camera's uint8 frame of that size and preprocesses it itself (frame_input.py;
    batch 1, on the GPU)."""

    def __init__(self, precision=None, workspace_mib=None, max_batch=1, dla_core=None, calib_data=None,
                 calib_frames=calibrator.DEFAULT_FRAMES, timing_cache=None, calibration=None, frame_size=None):
        if calib_data is not None and calibration is None:
            raise ValueError("calib_data names calibration frames: give them as calibration (an iterable)")
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
        if frame_size is not None and (int(max_batch) != 1 or dla_core is not None):
            raise UserError("--frame-size builds a GPU engine for one camera frame at a time: leave out %s"
                            % ("--max-batch" if int(max_batch) != 1 else "--dla-core"))
        self.frame_size = None if frame_size is None else (int(frame_size[0]), int(frame_size[1]))
        self.precision, self.workspace_mib, self.max_batch = precision, workspace_mib, int(max_batch)
        self.dla_core, self.calib_data, self.calib_frames = dla_core, calib_data, int(calib_frames)
        self.timing_cache, self.calibration = timing_cache, calibration


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
    check_frame(trt, bundle, opts.frame_size, precision)
    device = trtlib.this_device(trt, gpu, root)
    key = engines.EngineKey(device, precision, opts.max_batch, opts.dla_core, sha, frame=opts.frame_size)
    cache = None
    if weak and precision == "int8":
        cache = engines.calibration_cache_path(bundle.path, key, _calibration_spec(bundle, opts))
        key.calibration = file_digest(cache) if engines.own_file(cache) else "pending"
    return Plan(key, onnx_path, reason, cache)


def check_frame(trt, bundle, frame_size, precision):
    """An engine that takes frames of frame_size (width, height; None: the network's input) can be built for this
    bundle and precision, or a one-line error: the contract must be one the layers do exactly
    (frame_input.unsupported), and INT8 by calibration is not done (its calibrator feeds the network's float input;
    TensorRT 11's int8 variant, quantized in the ONNX, is fine)."""
    if frame_size is None:
        return
    why = frame_input.unsupported(bundle.preprocess, frame_size)
    if why:
        raise UserError("--frame-size %dx%d: %s" % (frame_size + (why,)))
    if precision == "int8" and trtlib.has_weak_typing(trt):
        raise UserError("--frame-size %dx%d: an INT8 engine calibrated by TensorRT %s takes the network's input, not "
                        "frames; build fp16 or fp32 with --frame-size" % (frame_size + (trt.__version__,)))


def build(bundle, opts: BuildOptions, gpu, trt=None, log=sys.stderr, root="/", note=None) -> str:
    """Build, save (atomically) and return the engine's path. note: printed once TensorRT has started.
    Everything happens with gpu's context current (cuda.py), and what TensorRT made is gone before
    it stops being current, also when the build fails."""
    with gpu.current():
        return _build(bundle, opts, gpu, trt or trtlib.load(), log, root, note)


def _build(bundle, opts, gpu, trt, log, root, note):
    log_trt = trtlib.logger(trt, echo=False, out=log, caught=trtlib.Caught())  # a callback's exception: raised after
    plan = make_plan(trt, gpu, bundle, opts, root)
    timing_path = opts.timing_cache or engines.timing_cache_path(bundle.path, plan.key)
    check_targets(bundle, plan, timing_path)
    builder = trtlib.builder(trt, log_trt)
    if note:
        print(note, file=log)
    if opts.dla_core is not None and opts.dla_core >= builder.num_DLA_cores:
        raise UserError("--dla-core %d: this device has %d DLA core(s) (Xavier, AGX Orin and Orin NX have them; "
                        "Orin Nano has none)" % (opts.dla_core, builder.num_DLA_cores))
    network, parser = network_from_onnx(trt, builder, log_trt, plan.onnx_path, log)  # parser: kept until built
    weights = []  # the frame layers' arrays: held here until the engine is built (add_frame_input)
    if opts.frame_size is not None:  # the engine takes the frame: its input is static, so no batch profile
        width, height = opts.frame_size
        frame_input.add_frame_input(trt, network, frame_input.frame_weights(bundle.preprocess, bundle.input,
                                                                            (height, width)), weights)
    workspace = opts.workspace_mib or default_workspace_mib(gpu.info()["memory"])
    if opts.dla_core is not None:
        log_trt.quiet = DLA_FALLBACK_WARNINGS
    config, profile = builder_config(trt, builder, network, plan, opts, workspace, timing_path, log, bundle.task)
    int8 = int8_calibrator(trt, gpu, bundle, opts, plan, tuple(network.get_input(0).shape), log, log_trt.caught)
    print("building a TensorRT engine, %s, for %s (%s; %s; workspace %d MiB, %s%s): this takes a while"
          % (plan.precision, plan.key.device.gpu_name, trtlib.describe(trt), plan.reason, workspace,
             ("batch 1..%d" % opts.max_batch if opts.dla_core is None else "batch %d (static)" % opts.max_batch)
             if opts.frame_size is None else "%dx%d uint8 frames, preprocessed in the engine" % opts.frame_size,
             "" if opts.dla_core is None else ", DLA core %d" % opts.dla_core), file=log)
    ticker = Ticker("building engine", log)
    serialized = engine_from_network(trt, builder, network, config, log_trt, log, ticker, int8, profile)
    del weights  # built: TensorRT has copied them into the engine
    path = save_engine(bundle, plan, config, serialized, timing_path, log_trt)
    ticker.done("wrote %s" % path)
    return path


def check_targets(bundle, plan, timing_path):
    """Where it all goes, checked before minutes of building: a folder in the way is one line now, not a
    traceback after."""
    engine_path = engines.target(bundle.path, plan.key)
    for path, what in ((engine_path, "engine"), (engine_path[:-len(".engine")] + ".json", "engine's description"),
                       (timing_path, "timing cache"), (plan.calibration_cache, "INT8 calibration cache")):
        if path is not None:
            engines.check_target(path, what)


def network_from_onnx(trt, builder, log_trt, onnx_path, log):
    """(network, parser) parsed from the ONNX file; the parser holds the weights: it must live until the build
    is done. A model the parser rejects is its errors, one line each with the node, then one line."""
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
    return network, parser


def builder_config(trt, builder, network, plan, opts, workspace_mib, timing_path, log, task=None):
    """(TensorRT's builder config, the batch's optimization profile or None): the workspace limit, the precision
    flags, the batch profile, the DLA with GPU fallback on request, and the timing cache."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    precision_flags(trt, config, plan)
    profile = batch_profile(builder, config, network, opts)
    if opts.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(opts.dla_core)
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        say_gpu_fallback(network, config, opts.dla_core, log, task)
    read_timing_cache(config, timing_path, opts.timing_cache is not None, log)
    return config, profile


# What TensorRT logs for each layer the DLA cannot run (8.x, then 10+): kept, not printed; say_gpu_fallback
# has said it in one line.
DLA_FALLBACK_WARNINGS = ("not supported on DLA, falling back to GPU", "Unsupported on DLA. Switching this layer")


def gpu_fallback(network, config):
    """{layer type: how many} of the network's layers the DLA cannot run (IBuilderConfig.can_run_on_DLA, asked
    with the DLA set as the default device): TopK (the detector's decoding), NMS, Gather, Shape, Cast and
    integer arithmetic among them; they run on the GPU under BuilderFlag.GPU_FALLBACK."""
    kinds = {}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if not config.can_run_on_DLA(layer):
            kind = getattr(layer.type, "name", None) or str(layer.type).split(".")[-1]
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def say_gpu_fallback(network, config, dla_core, log, task=None):
    """One line naming the layers that fall back from the DLA to the GPU (nothing when all run on it); for a
    segmentation network, that its class map (ONNX ArgMax, a TopK layer in TensorRT) is among them."""
    kinds = gpu_fallback(network, config)
    if kinds:
        first = sorted(kinds, key=lambda k: (k not in ("TOPK", "NMS"), -kinds[k], k))
        why = ("; the class map is one: ArgMax is a TopK layer in TensorRT, which the DLA cannot run"
               if task == "segmentation" and "TOPK" in kinds else "")
        print("DLA core %d: %d layer(s) fall back to the GPU (GPU_FALLBACK; the DLA cannot run them): %s%s"
              % (dla_core, sum(kinds.values()), ", ".join("%s x%d" % (k, kinds[k]) for k in first), why), file=log)


def precision_flags(trt, config, plan):
    """FP32 means FP32 (TF32 cleared). Where precision is a flag (8.5-10.x), FP16 by its flag, and INT8 by its
    flag with FP16 for the layers INT8 cannot take where the GPU has fast FP16; TensorRT 11 reads the ONNX's."""
    if plan.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if not trtlib.has_weak_typing(trt):
        return
    if plan.precision == "fp16" or (plan.precision == "int8"
                                    and trtlib.fast_fp16(plan.key.device.compute_capability)):
        config.set_flag(trt.BuilderFlag.FP16)
        if plan.key.frame is not None:  # the frame layers pinned to FP32 (frame_input.py) stay so
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    if plan.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)


def batch_profile(builder, config, network, opts):
    """An optimization profile over a dynamic batch, 1..max batch (the DLA takes static shapes: min = opt =
    max), added to config and returned; None for a fixed batch, which must then be the one asked for."""
    inp = network.get_input(0)
    shape = tuple(inp.shape)
    if shape and shape[0] == -1:
        profile = builder.create_optimization_profile()
        rest = shape[1:]
        low = 1 if opts.dla_core is None else opts.max_batch
        profile.set_shape(inp.name, (low,) + rest, (low,) + rest, (opts.max_batch,) + rest)
        config.add_optimization_profile(profile)
        return profile
    if opts.max_batch != 1 and shape and shape[0] != opts.max_batch:
        raise UserError("the model's batch dimension is fixed at %d; --max-batch needs a dynamic batch" % shape[0])
    return None


def read_timing_cache(config, path, named, log):
    """The timing cache at path (named by the user, or the device's own beside the engines) read into config;
    a file that is not one, or one from another device or version, starts a new one with a warning."""
    saved = b""
    if os.path.isfile(path) and (named or engines.own_file(path)):
        saved = engines.read(path, "timing cache")
    try:
        timing = config.create_timing_cache(saved)
    except Exception:  # noqa: BLE001 (not a timing cache at all: versions differ in whether they raise)
        print("warning: %s is not a TensorRT timing cache; starting a new one" % path, file=log)
        timing = config.create_timing_cache(b"")
    if not config.set_timing_cache(timing, False):  # a cache from another device or version: start afresh
        print("warning: timing cache %s does not fit this device; starting a new one" % path, file=log)
        config.set_timing_cache(config.create_timing_cache(b""), False)


def int8_calibrator(trt, gpu, bundle, opts, plan, input_shape, log, caught):
    """The INT8 calibrator where TensorRT calibrates (8.5-10.x, int8), else None. It is fed with the frames the
    caller chose (opts.calibration; the bundle's samples when none), read and prepared now unless the calibration
    cache is kept (then only if TensorRT rejects it)."""
    if plan.calibration_cache is None:
        if plan.precision == "int8" and opts.calib_data is not None:
            print("note: TensorRT %s builds the int8 variant as `export variants` calibrated it; --calib-data is "
                  "not used here" % trt.__version__, file=log)
        return None
    frames = opts.calibration
    if frames is None:
        frames = calibrator.bundle_frames(bundle, opts.calib_frames, log)

    def read_batches():
        return calibrator.calibration_batches(bundle, frames, input_shape, log, opts.calib_data)

    batches = None if engines.own_file(plan.calibration_cache) else read_batches()
    # batch 1: TensorRT calibrates dynamic shapes at the calibration profile's opt shape, which is 1 here
    return calibrator.make(trt, gpu, bundle, read_batches, plan.calibration_cache, 1, batches, input_shape, log,
                           caught)


def engine_from_network(trt, builder, network, config, log_trt, log, ticker, int8=None, profile=None) -> bytes:
    """The serialized engine built from network and config, calibrated by int8 (on profile) where given, with
    progress on ticker. What a callback raised inside TensorRT (a Ctrl-C too) is raised once it returns, and
    build_serialized_network's None is one line with TensorRT's reason."""
    caught = log_trt.caught
    if int8 is not None:
        config.int8_calibrator = int8
        if profile is not None:
            config.set_calibration_profile(profile)
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
        if int8 is not None:
            int8.release()
    caught.raise_it()  # what TensorRT's trampolines swallowed (a Ctrl-C too), raised here
    if serialized is None:
        raise UserError("TensorRT could not build the engine (%s); on a board short of memory try a smaller "
                        "--workspace, or add swap: jetson_setup.sh --swap 8G" % log_trt.last_error("no reason given"))
    return bytes(serialized)


def save_engine(bundle, plan, config, serialized, timing_path, log_trt) -> str:
    """Write the timing cache, then the engine with its fields as JSON beside it, an INT8 engine named by the
    calibration cache it was calibrated with; returns the engine's path."""
    write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
    if plan.calibration_cache is not None:
        if not os.path.isfile(plan.calibration_cache):
            raise UserError("TensorRT built an INT8 engine but wrote no calibration cache (%s)"
                            % log_trt.last_error("no reason given"))
        plan.key.calibration = file_digest(plan.calibration_cache)  # the engine is named by what calibrated it
    return engines.save(bundle.path, plan.key, serialized)


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
