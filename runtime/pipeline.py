"""The loop from camera to result: capture -> preprocess -> infer -> postprocess -> overlay -> outputs,
with per-stage timing, live status and a summary at the end.

    from runtime import Model, open_source, open_outputs, run
    with Model("bundle") as model, open_source("synthetic://road") as source:
        stats = run(model, source, open_outputs(video="out.mp4"), max_frames=300)
    print(stats.summary())
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import numpy as np

from . import overlay

STAGES = ("capture", "preprocess", "infer", "postprocess", "output")


class Stats:
    """Latency (capture -> result written) and per-stage time of every frame; FPS over the run."""

    def __init__(self, backend=""):
        self.backend = backend
        self.latency_ms = []
        self.stage_ms = {s: 0.0 for s in STAGES}
        self.frames = 0
        self.interrupted = False
        self.start = time.perf_counter()
        self.end = self.start

    def add(self, latency_ms, stage_times):
        self.frames += 1
        self.latency_ms.append(latency_ms)
        for name, seconds in stage_times.items():
            self.stage_ms[name] += seconds * 1000.0
        self.end = time.perf_counter()

    @property
    def fps(self):
        elapsed = self.end - self.start
        return self.frames / elapsed if elapsed > 0 else 0.0

    def percentile(self, q):
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else 0.0

    def as_dict(self):
        n = max(self.frames, 1)
        return {"backend": self.backend, "frames": self.frames, "fps": round(self.fps, 2),
                "latency_ms": {"p50": round(self.percentile(50), 3), "p95": round(self.percentile(95), 3),
                               "max": round(max(self.latency_ms or [0.0]), 3)},
                "stages_ms": {k: round(v / n, 3) for k, v in self.stage_ms.items()}}

    def summary(self):
        n = max(self.frames, 1)
        stages = " ".join("%s %.2f" % (k, v / n) for k, v in self.stage_ms.items())
        return ("%d frames, %.1f FPS, latency p50 %.1f ms p95 %.1f ms (%s; per frame ms: %s)"
                % (self.frames, self.fps, self.percentile(50), self.percentile(95), self.backend, stages))


class StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop after the frame in hand (so every output gets every frame);
    a second one interrupts at once. Only the main thread can receive signals; elsewhere this is inert."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def run(model, source, outputs=(), max_frames=None, status_every=5.0, log=sys.stderr) -> Stats:
    """Run model on every frame of source until it ends, max_frames, or a window is closed."""
    stats = Stats("%s (%s)" % (model.backend.name, model.backend.detail))
    overlays = any(getattr(o, "wants_overlay", False) for o in outputs)
    next_status = time.perf_counter() + status_every
    clock = time.perf_counter
    frames = iter(source)
    with StopOnCtrlC() as ctrl_c:
        try:
            while (max_frames is None or stats.frames < max_frames) and not ctrl_c.requested:
                t = clock()
                frame = next(frames, None)
                if frame is None:
                    break
                t_capture = clock()
                batch = model.preprocess(frame.image)
                t_pre = clock()
                raw = model.backend.infer(batch)
                t_infer = clock()
                result = model.postprocess(raw)
                t_post = clock()
                annotated = None
                if overlays:
                    truth = frame.truth.get("steering") if frame.truth else None
                    annotated = overlay.draw(frame.image.copy(), result, stats.fps or None, truth)
                latency_ms = (clock() - frame.t0) * 1000.0
                for out in outputs:
                    out.write(frame, result, annotated, latency_ms)
                t_out = clock()
                stats.add(latency_ms, {"capture": t_capture - t, "preprocess": t_pre - t_capture,
                                       "infer": t_infer - t_pre, "postprocess": t_post - t_infer,
                                       "output": t_out - t_post})
                if any(getattr(o, "closed_by_user", False) for o in outputs):
                    break
                if log is not None and t_out >= next_status:
                    print("... " + stats.summary(), file=log)
                    next_status = t_out + status_every
        except KeyboardInterrupt:  # a second Ctrl-C: stop now; outputs are still closed below
            ctrl_c.requested = True
        finally:
            for out in outputs:
                out.close()
    stats.interrupted = ctrl_c.requested
    return stats
