"""Several networks on one stream, scheduled as a car needs them: steering never waits for the others.

    calling thread       the first network (steering first: a steering bundle goes first, else the order given;
                           `priority` names another order)
                           runs on every frame the loop takes, as a single network does
    one thread each      every other network takes the newest frame when it is free, at its own rate; a frame
                           that came while it was busy replaces the one waiting (dropped for it, counted)

Each network's result carries its frame's index (`frame`) and how old that frame was when this frame's result
was made (`age_ms`: 0 for the first network). The combined result has a key per network (its bundle's name) with
its latest result, None until its first. The other networks' threads run at a lower CPU priority (nice +10 on
Linux, inherited by the threads their backends start, ONNX Runtime's workers among them), so on a loaded board
the scheduler serves steering first. Each network's backend is made in the thread that runs it (a TensorRT
engine's CUDA context and stream belong to that thread: each engine has its own), and each can have a DLA core
of its own (dla_placement: `--dla-core NAME=N`, checked against the board's facts).

    from runtime import Networks, open_source, run
    with Networks(["bundles/pilotnet", "bundles/detector", "bundles/freespace"]) as nets, \\
            open_source("synthetic://road") as camera:
        run(nets, camera)                 # one JSON line a frame: {"pilotnet": ..., "detector": ..., ...}
"""

from __future__ import annotations

import os
import sys
import threading
import time

from . import platform
from .errors import UserError
from .model import Model
from .postprocess import Result

BACKGROUND_NICE = 10  # the other networks' threads: below the calling thread's priority
STOP_WAIT_S = 5.0  # closing: how long the threads together are waited for
START_TIMEOUT_S = 600.0  # a network's thread loads its backend (an engine may build): at most this long


def background(rank=1):
    """The calling thread (and the threads it starts later, ONNX Runtime's workers among them) below the rest on
    Linux: nice +10 for the second network, +15 for the third, and so on up to 19 (rank 1, 2, 3...). Each still has a
    share of the cores (about a tenth against a busy thread at nice 0), so that a detector is never starved.
    SCHED_IDLE, which would starve it, measured no better for steering (benchmarks/networks.py; docs/runtime.md).
    Whether it was permitted."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE
                                                     + 5 * (rank - 1)))
            return True
        except OSError:  # not permitted here: the same priority as the rest, still its own thread
            pass
    return False


def priority_order(bundles, names, priority=None):
    """The networks' order, highest priority first: those `priority` names (in its order), then a steering bundle,
    then the rest as given. A one-line error for a name that is none of them, or given twice."""
    priority = list(priority or [])
    for name in priority:
        if name not in names:
            raise UserError("--priority %s: no network is called %r (they are %s)"
                            % (",".join(priority), name, ", ".join(names)))
    if len(set(priority)) != len(priority):
        raise UserError("--priority %s: a network is named twice" % ",".join(priority))
    rank = {name: i for i, name in enumerate(priority)}
    return sorted(range(len(bundles)), key=lambda i: (rank.get(names[i], len(priority)),
                                                      bundles[i].task != "steering"))


class Combined(Result):
    """One frame's results, a key per network (its latest result with `frame` and `age_ms`, or None), the first
    network's first; `parts` gives (name, result) for the overlay, `primary` the first network's result (what a
    control link sends: steering first)."""

    @property
    def text(self) -> str:
        return " | ".join("%s: %s" % (name, r.text if r is not None else "-") for name, r in self.parts)

    @property
    def parts(self):
        return list(self.items())

    @property
    def primary(self):
        return next(iter(self.values()))


class _Offered:
    """A frame as the other networks' threads get it: the frame's index, capture time and size, and its image
    copied once, by whichever asks first (take): a network's thread that is free copies it while steering runs in
    the calling thread, on another core; the calling thread asks after steering, so that nothing reads the loop's
    frame once on_frame returns (the overlay draws on it, a source may reuse its buffer)."""

    __slots__ = ("source", "image", "index", "t0", "size", "lock")

    def __init__(self, source, index, t0, size):
        self.source, self.image, self.index, self.t0, self.size = source, None, index, t0, size
        self.lock = threading.Lock()

    def take(self):
        """The frame's own copy (made now if nobody has made it yet)."""
        with self.lock:
            if self.image is None:
                self.image, self.source = self.source.copy(), None
            return self.image


class _Worker:
    """A network in a thread of its own: offer() hands it the newest frame; latest() is its newest result. rank:
    its place after the first network (1, 2, ...), for its CPU priority."""

    def __init__(self, name, make, rank=1):
        self.name, self.make, self.rank = name, make, rank
        self.cond = threading.Condition()
        self.pending = self.result = self.model = self.error = None
        self.stopping, self.busy, self.ready = False, False, threading.Event()
        self.done = self.dropped = 0
        self.thread = threading.Thread(target=self._run, name="network " + name, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            background(self.rank)
            self.model = self.make()
            self.model.backend.prepare(True)
        except BaseException as exc:  # reported by the calling thread, in one line where it is a UserError
            self.error = exc
            if self.model is not None:
                self.model.close()
            self.ready.set()
            return
        self.ready.set()
        try:
            while True:
                with self.cond:
                    while self.pending is None and not self.stopping:
                        self.cond.wait()
                    if self.stopping:
                        return
                    frame, self.pending, self.busy = self.pending, None, True
                result = self.model(frame.take())
                result.frame_size = frame.size  # the frame it was made on: the overlay draws it on that size only
                with self.cond:
                    self.result, self.done, self.busy = (frame, result), self.done + 1, False
                    self.cond.notify_all()
        except BaseException as exc:
            self.error = exc
        finally:
            with self.cond:
                self.busy = False
                self.cond.notify_all()
            self.model.close()

    def offer(self, frame):
        with self.cond:
            if self.pending is not None:
                self.dropped += 1
            self.pending = frame
            self.cond.notify_all()

    def settle(self, timeout):
        """Waits until the frames offered so far are done (or it failed); whether they are."""
        with self.cond:
            return self.cond.wait_for(lambda: self.error is not None or not (self.pending or self.busy), timeout)

    def latest(self):
        with self.cond:
            return self.result

    def ask_to_stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()


def names_of(bundles):
    """Each bundle's key in the combined result: its name, made unique with #2, #3 ... where names repeat."""
    names, seen = [], {}
    for b in bundles:
        seen[b.name] = seen.get(b.name, 0) + 1
        names.append(b.name if seen[b.name] == 1 else "%s#%d" % (b.name, seen[b.name]))
    return names


def dla_placement(values, names, root="/"):
    """{name: DLA core} from --dla-core's values: N for one network, NAME=N for any (NAME: its key in the
    combined result, names). One network per core, each core on this board (platform.dla_problem); a one-line
    error otherwise."""
    placement = {}
    for value in values or ():
        name, _, core = value.rpartition("=")
        if not name:
            if len(names) > 1:
                raise UserError("--dla-core %s: with several networks say which goes on the DLA, --dla-core NAME=N "
                                "(NAME one of %s)" % (value, ", ".join(names)))
            name = names[0]
        if name not in names:
            raise UserError("--dla-core %s: no network is called %r (they are %s)" % (value, name, ", ".join(names)))
        if not core.isdigit():
            raise UserError("--dla-core %s: the DLA core is a number, 0 or more" % value)
        if name in placement:
            raise UserError("--dla-core: %s is given twice" % name)
        if int(core) in placement.values():
            raise UserError("--dla-core %s: DLA core %s already runs %s; a DLA core runs one network at a time: "
                            "give another core or leave one on the GPU"
                            % (value, core, next(n for n, c in placement.items() if c == int(core))))
        placement[name] = int(core)
    problem = platform.dla_problem({(n if len(names) > 1 else None): c for n, c in placement.items()}, root)
    if problem:
        raise UserError(problem)
    return placement


class Networks:
    """Several bundles on one stream (the module docstring); what run() and stream() take in place of a Model.
    paths: bundle folders; options: Model's keyword options, for every network (a detection bundle's threshold,
    classes and track go to the detection bundles only)."""

    prepares_ahead = False  # each network preprocesses its own input: no Prepare in the capture thread

    def __init__(self, paths, dla_cores=None, priority=None, **options):
        """dla_cores: --dla-core's values (dla_placement): NAME=N puts that network's TensorRT engine on DLA core
        N. priority: names, highest first (priority_order; default: steering first, then the order given); the
        first runs in the calling thread on every frame."""
        from . import bundle as bundle_format

        if len(paths) < 2:
            raise UserError("several networks need at least two bundles")
        bundles = [bundle_format.load(p) for p in paths]
        detection = {k: options.pop(k) for k in ("threshold", "classes", "track") if k in options}
        if any(v not in (None, False) for v in detection.values()) and not any(b.task == "detection"
                                                                                for b in bundles):
            raise UserError("--threshold, --classes and --track are for detection bundles, and none is given")
        names = names_of(bundles)
        order = priority_order(bundles, names, priority)
        self.names = [names[i] for i in order]
        dla = dla_placement(dla_cores, names)

        def make(b, name):
            return lambda: Model(b, dla_core=dla.get(name), **dict(options, **(detection if b.task == "detection"
                                                                               else {})))

        first = bundles[order[0]]
        self.bundles = [bundles[i] for i in order]
        self.first = make(first, self.names[0])()
        self.bundle, self.backend, self.times = first, self.first.backend, self.first.times
        self.workers = []
        try:
            for rank, i in enumerate(order[1:], 1):
                self.workers.append(_Worker(names[i], make(bundles[i], names[i]), rank))
            for w in self.workers:
                if not w.ready.wait(START_TIMEOUT_S):
                    raise UserError("network %s did not load within %d s" % (w.name, START_TIMEOUT_S))
                self._raise_from(w)
        except BaseException:
            self.close()
            raise

    def _raise_from(self, worker):
        """A network's thread failed: its error, once, naming the network where it is a one-line error."""
        exc, worker.error = worker.error, None
        if exc is None:
            return
        self.failed = True
        if isinstance(exc, UserError):
            raise UserError("network %s: %s" % (worker.name, exc)) from None
        raise exc

    def __call__(self, image):
        raise UserError("Networks run on frames from a stream (run() or stream()), which carry their index")

    def on_frame(self, frame):
        """The combined result for a frame: the first network on it now, every other network offered it (a copy
        of its own, _Offered: the source may reuse the frame's buffer, and the overlay draws on it) and its latest
        result taken."""
        own = _Offered(frame.image, frame.index, frame.t0, frame.image.shape[1::-1])
        for w in self.workers:
            self._raise_from(w)
            w.offer(own)
        now = time.perf_counter()
        try:
            mine = self.first(frame.image)
        finally:
            own.take()  # copied by now, by a network's thread or here: the loop's frame is the loop's again
        mine.update(frame=frame.index, age_ms=0.0)
        results = {self.names[0]: mine}
        for w in self.workers:
            latest = w.latest()
            if latest is None:
                results[w.name] = None
                continue
            their, result = latest
            kept = result
            result = Result(kept)  # a copy per frame: its age is this frame's view of it
            for attr in ("mask", "region", "frame_size"):  # a segmentation's map, for the overlay and --masks
                if hasattr(kept, attr):
                    setattr(result, attr, getattr(kept, attr))
            result.update(frame=their.index, age_ms=round((now - their.t0) * 1000.0, 3))
            results[w.name] = result
        return Combined((name, results[name]) for name in self.names)

    def settle(self, timeout=30.0):
        """Waits until every other network has done the frames offered so far: their next results are of the
        newest frame. For tests and measurements that need that, not for the loop (which never waits)."""
        for w in self.workers:
            if not w.settle(timeout):
                raise UserError("network %s did not finish its frame within %g s" % (w.name, timeout))
            self._raise_from(w)

    def backends(self):
        """[(name, backend)] of every network, the first first (each other one's made in its thread, loaded)."""
        return [(self.names[0], self.backend)] + [(w.name, w.model.backend) for w in self.workers]

    def counts(self):
        """{name: (results, frames passed over)} of every other network so far."""
        return {w.name: (w.done, w.dropped) for w in self.workers}

    def rates(self, seconds, since=None):
        """Results a second of each other network over `seconds` (since: an earlier counts(), else from the start)
        and the frames each passed over: {name: (rate, passed over)}; the first network's rate is the loop's."""
        since = since or {}
        out = {}
        for name, (done, dropped) in self.counts().items():
            done0, dropped0 = since.get(name, (0, 0))
            out[name] = ((done - done0) / seconds if seconds > 0 else 0.0, dropped - dropped0)
        return out

    def close(self):
        """Every thread asked to stop, then waited for (STOP_WAIT_S in all; one still busy is named), the first
        network closed; a network's failure not yet reported is raised now (a run that ended just after it)."""
        for w in self.workers:
            w.ask_to_stop()
        deadline = time.monotonic() + STOP_WAIT_S
        for w in self.workers:
            w.thread.join(max(0.0, deadline - time.monotonic()))
            if w.thread.is_alive():
                print("warning: network %s did not stop within %g s (inside its backend); it is left to the "
                      "process's end" % (w.name, STOP_WAIT_S), file=sys.stderr)
        if getattr(self, "first", None) is not None:
            self.first.close()
            self.first = None
        if not getattr(self, "failed", False):
            for w in self.workers:
                self._raise_from(w)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
