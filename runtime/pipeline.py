"""The loop from camera to result, in two threads so that throughput approaches the slowest side rather
than the sum of the stages:

    capture thread     source -> frames (decoding, rendering, waiting for the camera)
                         live: a one-frame slot, the newest frame wins (a frame that went stale while
                         inference ran is dropped and counted); files: a short queue, every frame in order
    calling thread     preprocess -> infer -> postprocess -> overlay -> outputs (video, stream, JSON lines,
                         window), live status, Ctrl-C

Frames held in memory can be read inline (capture_thread=False, as `runtime bench` does): there is nothing
to overlap, and a hand-off between threads costs more than reading them. With a capture thread the backend is
told that the cores are shared (ONNX Runtime's workers then stop spin-waiting between calls).

Preprocessing stays beside inference because the capture thread is usually the busier one (decoding a
1280x720 H.264 frame took 11-13 ms here, preprocessing it 0.2-3 ms); moving preprocessing into the capture
thread measured no faster on frames in memory.

    from runtime import Model, open_source, open_outputs, run, stream
    with Model("bundle") as model, open_source("synthetic://road") as source:
        for frame, result in stream(model, source, max_frames=300):   # the loop itself
            ...
        stats = run(model, source, open_outputs(["out.mp4"]), max_frames=300)   # with outputs and statistics
    print(stats.summary())

Every frame carries its capture time; latency is capture -> result. Inference stays in the calling thread,
which made the model (a TensorRT backend's CUDA context belongs to it), and so do the outputs, because a
window (OpenCV's highgui) must live in the main thread. A third thread for the outputs measured slower
here: each hand-off between Python threads costs more than it overlaps.
"""

from __future__ import annotations

import collections
import signal
import sys
import threading
import time

import numpy as np

from . import overlay
from .signals import StopRequest
from .systemd import Watchdog
from .uri import without_credentials
from .outputs.base import OutputStopped
from .quantiles import Histogram, Window
from .sources.base import sleep_unless

STAGES = ("capture", "preprocess", "infer", "postprocess", "output")
FILE_QUEUE = 2  # frames read ahead from a file
READER_WAIT_S = 2.0  # how long a loop that ends waits for its capture thread to leave the source
STOP_WAIT_S = 0.2  # the same after a stop request (Ctrl-C, SIGTERM), which is honoured within a second


class Stats:
    """Latency (capture -> result), per-stage time, drops and FPS over the run, in bounded memory: latency in a
    Histogram over the whole run (percentiles within 0.5%) and a Window of the last WINDOW frames (the status
    line's and the browser view's), 27 KB however long the run."""

    WINDOW = 1024
    RATE_S = 5.0  # the current rate: frames over the last this many seconds

    def __init__(self, backend=""):
        self.backend = backend
        self.latency = Histogram()
        self.recent = Window(self.WINDOW)
        self.times = Window(self.WINDOW)  # when each of the last WINDOW frames was counted (perf_counter)
        self.stage_s = dict.fromkeys(STAGES, 0.0)  # summed over the frames
        self.frames = 0
        self.dropped = 0
        self.reconnects = 0
        self.invalid = 0  # results flagged NaN or infinite
        self.skipped = 0  # frames from the source that were not usable images (sources.base.conformed)
        self.interrupted = False
        self.signal = None  # signal.SIGINT or SIGTERM when one stopped the run
        self.stopped = None  # why an output stopped the run (outputs.OutputStopped: a full disk)
        self.start = time.perf_counter()
        self.end = self.start
        self.last_frame = time.monotonic()  # when the last frame was counted (the start, before the first)

    def add(self, latency_ms, capture_s, model_times, output_s):
        """One frame: its latency, its capture and output seconds, and the model's stage seconds (Model.times)."""
        self.frames += 1
        self.latency.add(latency_ms)
        self.recent.add(latency_ms)
        s = self.stage_s
        s["capture"] += capture_s
        s["preprocess"] += model_times["preprocess"]
        s["infer"] += model_times["infer"]
        s["postprocess"] += model_times["postprocess"]
        s["output"] += output_s
        self.end = time.perf_counter()
        self.times.add(self.end)
        self.last_frame = time.monotonic()

    @property
    def fps(self):
        """Frames a second over the whole run (the summary's)."""
        elapsed = self.end - self.start
        return self.frames / elapsed if elapsed > 0 else 0.0

    def current_fps(self, now=None):
        """Frames a second over the last RATE_S seconds, up to now (the status line's, the overlay's and the
        browser view's): a camera that stalls shows its rate falling to 0, not the run's average. When the
        last WINDOW frames came within RATE_S, the rate over them."""
        now = time.perf_counter() if now is None else now
        times = self.times.last()
        if not times.size:
            return 0.0
        first = int(np.searchsorted(times, now - self.RATE_S, side="right"))
        if first == 0 and times.size == self.WINDOW:
            span = now - times[0]
        else:
            span = min(self.RATE_S, now - self.start)
        return (times.size - first) / span if span > 0 else 0.0

    def percentile(self, q, last=None):
        """Latency percentile q over the run (within 0.5%), or exactly over its `last` frames (at most WINDOW):
        another thread (the browser view's) may ask while the run adds."""
        return self.recent.percentile(q, last) if last else self.latency.percentile(q)

    @property
    def max_latency_ms(self):
        return self.latency.max if self.latency.count else 0.0

    def stages(self):
        per_frame_ms = 1000.0 / max(self.frames, 1)
        return {k: v * per_frame_ms for k, v in self.stage_s.items()}

    @property
    def slowest_stage_fps(self):
        slowest = max(self.stages().values())
        return 1000.0 / slowest if slowest > 0 else 0.0

    def as_dict(self):
        return {"backend": self.backend, "frames": self.frames, "dropped": self.dropped,
                "reconnects": self.reconnects, "invalid": self.invalid, "skipped": self.skipped,
                "fps": round(self.fps, 2),
                "latency_ms": {"p50": round(self.percentile(50), 3), "p95": round(self.percentile(95), 3),
                               "max": round(self.max_latency_ms, 3)},
                "stages_ms": {k: round(v, 3) for k, v in self.stages().items()},
                "slowest_stage_fps": round(self.slowest_stage_fps, 2)}

    def summary(self, recent=False):
        """The run in one line; recent: its latency percentiles over the last WINDOW frames (the status line)."""
        stages = " ".join("%s %.2f" % kv for kv in self.stages().items())
        extra = "".join([", dropped %d stale" % self.dropped if self.dropped else "",
                         ", reconnected %d time(s)" % self.reconnects if self.reconnects else "",
                         ", %d invalid output(s) (NaN/inf)" % self.invalid if self.invalid else "",
                         ", skipped %d unusable frame(s)" % self.skipped if self.skipped else ""])
        last = self.WINDOW if recent else None
        latency = "latency p50 %.1f ms p95 %.1f ms" % (self.percentile(50, last), self.percentile(95, last))
        if recent and self.frames > len(self.recent):
            latency += " over the last %d frames" % len(self.recent)
        rate = "%.1f FPS now" % self.current_fps(self.end) if recent else "%.1f FPS" % self.fps
        return ("%d frames, %s, %s max %.1f ms%s (%s; per frame ms: %s)"
                % (self.frames, rate, latency, self.max_latency_ms, extra, self.backend, stages))


class Prepare:
    """Preprocessing in the capture thread, for frames that all come in order: each frame's network input
    (frame.batch) is made there, into one of a ring of buffers (as many as frames can be in flight: the
    queue's, the one being read and the one in the model), while the model runs on the frame before. Not for
    the newest frame wins: a frame prepared there may go stale and be dropped, its preprocessing wasted, and
    the frame the model takes would be older than the newest (latency before throughput, for a car)."""

    def __init__(self, model):
        self.model, self.times = model, {}
        self.buffers = [model.new_buffer() for _ in range(FILE_QUEUE + 2)]
        self.next = 0

    def __call__(self, frame):
        out, self.next = self.buffers[self.next], (self.next + 1) % len(self.buffers)
        frame.batch = self.model.prepare(frame.image, out, self.times)
        frame.preprocess_s = self.times["preprocess"]


class Capture:
    """Reads a source in its own thread. newest_wins: a one-frame slot (a frame not yet taken when the next
    arrives is dropped and counted); otherwise a short queue (every frame, in order, reading paced by use),
    each frame prepared for the model there too when `prepare` (a Prepare) is given.
    realtime paces a file at its frame rate, as a camera would deliver it. stop: a callable that turns true
    when the reader of get() wants to end (a StopRequest's); get() then gives None within 0.1 s, even while
    the source gives nothing (paced slowly, or blocked in its own code: a FIFO, a stalled device)."""

    def __init__(self, source, newest_wins, realtime=False, stop=None, prepare=None):
        self.source, self.newest_wins, self.realtime, self.should_stop = source, newest_wins, realtime, stop
        self.prepare = prepare  # called on each frame in this thread once it is read (Prepare)
        self.frames = collections.deque()
        self.cond = threading.Condition()
        self.dropped = 0
        self.ended = False
        self.stopping = False
        self.error = None
        self.consumer_waiting = False  # wake the other thread only when it waits: every wake-up costs GIL hand-offs
        self.producer_waiting = False
        self.wake = threading.Event()  # set by stop(): ends the pacing of a realtime file at once
        self.thread = threading.Thread(target=self._read, name="capture", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _read(self):
        period = 1.0 / (self.source.fps or 30.0) if self.realtime else 0.0
        due = time.perf_counter()
        try:
            frames = iter(self.source)
            while not self.stopping:
                t = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                if period:
                    due += period
                    if sleep_unless(self.wake, due - time.perf_counter()):
                        break
                    frame.t0, frame.timestamp = time.perf_counter(), time.time()  # "captured" now
                frame.read_s = time.perf_counter() - t
                if self.prepare is not None:
                    self.prepare(frame)
                with self.cond:
                    if self.newest_wins:
                        if self.frames:
                            self.frames.popleft()
                            self.dropped += 1
                    else:
                        while len(self.frames) >= FILE_QUEUE and not self.stopping:
                            self.producer_waiting = True
                            self.cond.wait(0.1)
                        self.producer_waiting = False
                    self.frames.append(frame)
                    if self.consumer_waiting:
                        self.cond.notify_all()
        except BaseException as exc:  # handed to the reader of get()
            self.error = exc
        finally:
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def get(self):
        """The next frame (the newest, for live sources), or None when the source has ended or stop() (the
        callable given) turned true while waiting for one."""
        with self.cond:
            while not self.frames and not self.ended:
                if self.should_stop is not None and self.should_stop():
                    self.consumer_waiting = False
                    return None
                self.consumer_waiting = True
                self.cond.wait(0.1)
            self.consumer_waiting = False
            if self.frames:
                frame = self.frames.popleft()
                if self.producer_waiting and len(self.frames) <= FILE_QUEUE // 2:  # refill in bursts
                    self.cond.notify_all()
                return frame
        if self.error is not None:
            raise self.error
        return None

    def stop(self, timeout=READER_WAIT_S):
        """Stop reading: the source is interrupted (Source.interrupt: a pacer's sleep ends) and the thread
        waited for up to timeout. A thread still inside the source then is blocked in it, maybe for ever: it
        is left there (a daemon, gone with the process) and the source marked reader_stuck, so that closing
        it (`with source:`) waits a bounded time. Once stopped, stopping again waits for nothing."""
        if self.thread.ident is None:  # never started
            return
        with self.cond:
            again, self.stopping = self.stopping, True
            self.cond.notify_all()
        if again:
            return
        self.wake.set()
        interrupt = getattr(self.source, "interrupt", None)  # a Source has it; a duck-typed one may not
        if interrupt is not None and self.thread.is_alive():
            interrupt()
        self.thread.join(timeout)
        if self.thread.is_alive():
            try:
                self.source.reader_stuck = True
            except AttributeError:  # a source that takes no attributes: closing it is the caller's affair
                pass


class InlineCapture:
    """The same face as Capture, without a thread: for sources whose frames cost nothing to read (frames in
    memory), where handing each frame between threads costs more than it could overlap."""

    dropped = 0
    error = None

    def __init__(self, source):
        self.frames = iter(source)

    def start(self):
        return self

    def get(self):
        t = time.perf_counter()
        frame = next(self.frames, None)
        if frame is not None:
            frame.read_s = time.perf_counter() - t
        return frame

    def stop(self, timeout=0.0):
        pass


class Stream:
    """The loop as an iterable of (frame, result): what stream() returns (see there). dropped: the stale
    frames dropped so far."""

    def __init__(self, model, source, max_frames=None, realtime=False, capture_thread=True, stop=None):
        self.model, self.source, self.max_frames, self.realtime = model, source, max_frames, realtime
        self.capture_thread = capture_thread or realtime
        self.stop = stop
        self.capture = None

    @property
    def dropped(self):
        return self.capture.dropped if self.capture is not None else 0

    def __iter__(self):
        source, realtime = self.source, self.realtime
        if self.capture_thread:
            newest_wins = source.live or realtime
            ahead = self.model is not None and getattr(self.model, "prepares_ahead", True)
            prepare = Prepare(self.model) if ahead and not newest_wins else None
            capture = Capture(source, newest_wins, realtime=realtime and not source.live, stop=self.stop,
                              prepare=prepare)
        else:
            capture = InlineCapture(source)
        if self.model is not None:
            self.model.backend.prepare(self.capture_thread)  # loaded now, before the capture thread starts
        self.capture = capture.start()
        model, clock, count = self.model, time.perf_counter, 0
        on_frame = getattr(model, "on_frame", None)  # several networks (runtime/networks.py): the frame whole
        try:
            while self.max_frames is None or count < self.max_frames:
                if self.stop is not None and self.stop():
                    break
                frame = capture.get()  # raises what the capture thread raised, once its frames are used
                if frame is None:
                    break
                if model is None:
                    result = None
                elif on_frame is not None:
                    result = on_frame(frame)
                elif frame.batch is not None:  # prepared in the capture thread, while the model ran on the last
                    model.times["preprocess"] = frame.preprocess_s
                    result = model.infer(frame.batch, (frame.image.shape[1], frame.image.shape[0]))
                else:
                    result = model(frame.image)
                frame.latency_ms = (clock() - frame.t0) * 1000.0
                count += 1
                yield frame, result
        finally:
            capture.stop(STOP_WAIT_S if self.stop is not None and self.stop() else READER_WAIT_S)


def stream(model, source, max_frames=None, realtime=False, capture_thread=True, stop=None) -> Stream:
    """The threaded loop, newest frame wins, as an iterable of (frame, result):

        for frame, result in stream(model, camera):
            window.write(frame, result)

    The model's backend is prepared first (loaded, told whether a capture thread shares the cores). A
    capture thread reads the source (and, for frames that all come in order, preprocesses each while the
    model runs on the one before: Prepare); the model runs in the thread that iterates. From a live source the
    newest frame wins (a frame that went stale while the model ran is dropped and counted); from a file
    every frame comes, in order; realtime paces a file as a camera would. frame.latency_ms is capture ->
    result; model.times holds the last frame's preprocess, infer and postprocess seconds. It ends with the
    source or after max_frames; leaving the loop early (break, an exception) stops the capture thread.
    capture_thread=False reads the source inline instead, for frames that cost nothing to read (held in
    memory), where a hand-off between threads costs more than it overlaps. stop: a callable (e.g. a
    threading.Event's is_set) that ends the loop once it is true: before the next frame, and with a capture
    thread within 0.1 s even while the source gives no frame (paced slowly, or blocked in its own code); a
    capture thread still inside the source then is left there (a daemon) and the source, closed with `with`,
    closes in a bounded time (Source.__exit__). run() passes its StopRequest's. With model None the frames
    come as they are, each with the result None (a recording needs no network). With capture_thread=False
    the source is read only after the loop's body has handled the frame before: a simulator whose next
    frame follows the command it was given (`runtime drive`) runs in lockstep."""
    return Stream(model, source, max_frames, realtime, capture_thread, stop)


NO_MODEL_TIMES = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}
STARVED_S = 60.0  # no frame for this long, nor for twice the source's own read and reconnect timeouts: hung


def starved_after(source):
    """Seconds without a frame after which the loop stops feeding systemd's watchdog: a capture stuck inside its
    source (an opener blocked in native code) is then restarted, while a camera that reconnects, a slowly paced
    source or a model that loads is given its time."""
    own = (getattr(source, "read_timeout", None) or 0.0) + (getattr(source, "reconnect_timeout", None) or 0.0)
    fps = getattr(source, "fps", None) or 0.0
    return max(STARVED_S, 2.0 * own, 3.0 / fps if fps > 0 else 0.0)


def run(model, source, outputs=(), max_frames=None, status_every=5.0, log=sys.stderr, realtime=False,
        capture_thread=True, seconds=None) -> Stats:
    """Run model on source until it ends, max_frames, `seconds`, an output that is finished (a closed window,
    a recording complete), Ctrl-C or SIGTERM (honoured within a second, whatever the source does), or an
    output that cannot go on (a full disk: stats.stopped says why); every processed frame reaches every
    output (outputs.Output; the overlay is drawn once for all that show frames), and every output is closed
    at the end. stream() with outputs, statistics, a live status line and Ctrl-C handling around it. With
    model None the frames go to the outputs as they come, each with the result None (`runtime record`)."""
    stats = Stats("%s (%s)" % (model.backend.name, model.backend.detail) if model is not None else "no model")
    overlays = model is not None and any(o.wants_overlay for o in outputs)
    for out in outputs:
        out.bind(model, source, stats)
    end = None if seconds is None else time.monotonic() + seconds
    watchdog = Watchdog.from_env()  # under systemd (Type=notify, WatchdogSec=): a loop that hangs is restarted
    patience = starved_after(source)
    with StopRequest() as ctrl_c:
        def should_stop():  # asked before every frame, and every 0.1 s while none comes (a reconnecting camera)
            if time.monotonic() - stats.last_frame < patience:  # not a capture stuck inside its source for good
                watchdog.alive()
            return ctrl_c.requested or (end is not None and time.monotonic() >= end)

        frames = stream(model, source, max_frames, realtime, capture_thread, stop=should_stop)
        loop = iter(frames)
        what = model.bundle.path if model is not None else "recording"
        watchdog.ready("%s on %s" % (what, without_credentials(getattr(source, "uri", ""))))
        try:
            _loop(frames, loop, outputs, stats, overlays, model.times if model is not None else NO_MODEL_TIMES,
                  status_every, log, ctrl_c, watchdog)
        except OutputStopped as exc:  # a full disk: stop here, every output closed with what it has
            stats.stopped = str(exc)
        except KeyboardInterrupt:  # a second Ctrl-C: stop now; outputs are still closed below
            ctrl_c.requested = True
            ctrl_c.signum = ctrl_c.signum or signal.SIGINT
        finally:
            loop.close()  # stops the capture thread
            watchdog.stopping()
            try:
                _close_all(outputs)
            finally:
                watchdog.close()
    stats.dropped = frames.dropped
    stats.reconnects, stats.skipped = getattr(source, "reconnects", 0), getattr(source, "skipped", 0)
    stats.interrupted = ctrl_c.requested
    stats.signal = ctrl_c.signum if ctrl_c.requested else None
    return stats


def _close_all(outputs):
    """Every output closed, even after one that fails to; the first failure goes on once all are."""
    failed = None
    for out in outputs:
        try:
            out.close()
        except BaseException as exc:  # a full disk in one output leaves no other output unclosed
            failed = failed or exc
    if failed is not None:
        raise failed


def _loop(frames, loop, outputs, stats, overlays, times, status_every, log, ctrl_c, watchdog):
    """run()'s loop over stream() (frames, and its iterator loop): each frame and its result to every output,
    counted, with a status line every status_every seconds (to log, and to systemd's status)."""
    clock = time.perf_counter
    next_status = clock() + status_every
    for frame, result in loop:
        t3 = clock()
        annotated = None
        if overlays:
            truth = frame.truth.get("steering") if frame.truth else None
            annotated = overlay.draw(frame.image, result, stats.current_fps() or None, truth)  # on the frame itself
        for out in outputs:
            out.write(frame, result, annotated)
        stats.add(frame.latency_ms, frame.read_s, times, clock() - t3)
        if result is not None and "invalid" in result.primary:  # several networks: the first one's
            stats.invalid += 1
        if ctrl_c.requested or any(o.finished for o in outputs):
            break
        if stats.end >= next_status:
            stats.dropped = frames.dropped
            line = stats.summary(recent=True)
            if log is not None:
                print("... " + line, file=log)
            watchdog.status(line)
            next_status = stats.end + status_every
