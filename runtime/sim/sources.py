"""synthetic://road: the simulator's car (simulator.py) as a camera (frames carry the true steering), in three
roles; and the lockstep camera of `runtime drive`'s judge.

    synthetic://road                      the car driven by its own simulated human (SyntheticRoad), rendered
                                          as fast as it is read (every frame), or paced like a camera with
                                          --input-rate
    synthetic://road?steering=udp://HOST:PORT
                                          the same, live at --input-rate (default 30), and the human's
                                          steering sent as readings (vehicle/link.py's line, t the frame's
                                          time), as a car's steering sensor would send them: what `runtime
                                          record --steering-from udp://:PORT` records
    synthetic://road?control=udp://:PORT[&timeout_ms=300][&seed=2016][&scenario=NAME][&report=FILE.json]
                                          the car as the vehicle at the far end of the control link
                                          (linked_car.LinkedCar; SimulatedVehicle is its camera): live at
                                          --input-rate (default 30, the simulator's own rate); before each
                                          frame the car moves 1/30 s with the newest command the link's
                                          receiver accepted (vehicle.receiver.Receiver: its rules, and its own
                                          fail-safe, which steers straight when nothing is accepted for
                                          timeout_ms), in scenario NAME (calm by default;
                                          docs/simulator.md), braking as the receiver's brake
                                          asks. When the source closes it says how the car was driven
                                          (autonomy, as `runtime drive` judges it) and writes that to
                                          report=FILE.json where asked.

Both links take the run's --link-key (and --link-state, --insecure-link): signed readings, a checked control
link. LockstepCamera has no URI: it is the judge's (judge.py) camera on a car that the loop itself moves.
"""

from __future__ import annotations

import sys
import threading
import time
from urllib.parse import parse_qs

from .linked_car import DATAGRAMS_PER_FRAME, LinkedCar
from .scenarios import SCENARIOS
from .simulator import DEFAULT_SEED, FPS, Simulator
from ..errors import UserError
from ..sources.base import Source, sleep_unless
from ..vehicle import link as control
from ..vehicle.receiver import DEFAULT_TIMEOUT_MS, TIMEOUT_MS_RANGE

__all__ = ["DATAGRAMS_PER_FRAME", "LockstepCamera", "SimulatedVehicle", "SyntheticRoad", "open_synthetic", "paced"]
PARAMS = ("control", "steering", "timeout_ms", "seed", "scenario", "report")


def paced(period, stop):
    """Yield every `period` seconds on a fixed schedule (a late tick does not delay the next), or at once for 0;
    end as soon as `stop` (a threading.Event) is set, a wait in progress included (Source.interrupt)."""
    next_t = time.perf_counter()
    while not stop.is_set():
        if period:
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0 and sleep_unless(stop, delay):
                return
        yield


class SyntheticRoad(Source):
    """synthetic://road: the simulator's car driven by its own simulated human (simulator.SimulatedHuman), seen by
    its camera. Rendered as fast as it is read (every frame); with a rate, paced like a camera (newest frame wins).
    steering_to: a control link the human's steering goes to, as readings."""

    def __init__(self, width=None, height=None, rate=None, seed=0, steering_to=None, link=None, log=sys.stderr):
        self.uri = "synthetic://road"
        if steering_to is not None:
            rate = rate or 30.0
        self.live = rate is not None
        self.width, self.height = width or 640, height or 360
        self.rate = rate
        self.fps = float(rate or 30.0)
        self.sim = Simulator(self.width, self.height, seed, fps=self.fps, driver="human")
        link = link or control.NO_SECURITY
        self.sensor = control.open_link(steering_to, security=link, log=log) if steering_to else None
        self.readings = control.Sender(link.key)
        self.stopping = threading.Event()

    def interrupt(self):
        self.stopping.set()

    def _images(self):
        self.stopping.clear()
        for _ in paced(1.0 / self.rate if self.rate else 0.0, self.stopping):
            stamp = time.time()
            frame, ideal = self.sim.view()
            self.sim.step()  # the human steers as it sees this frame
            if self.sensor is not None:  # what the human steered while this frame was seen
                self.sensor.send(self.readings.line(None, {"t": stamp, "steering": self.sim.human.steered}))
            yield frame, {"steering": ideal}

    def close(self):
        if self.sensor is not None:
            self.sensor.close()


class SimulatedVehicle(Source):
    """synthetic://road?control=: the camera of the car driven through the control link (linked_car.LinkedCar),
    live at its rate: before each frame the car hears the link and moves with the command in force."""

    live = True

    def __init__(self, uri, car):
        self.uri, self.car, self.fps = uri, car, car.fps
        self.stopping = threading.Event()

    @property
    def receiver(self):
        return self.car.receiver

    @property
    def link(self):
        return self.car.link

    def interrupt(self):
        self.stopping.set()

    def _images(self):
        self.car.start()
        self.stopping.clear()
        for _ in paced(1.0 / self.fps, self.stopping):
            image, ideal = self.car.next_view()
            yield image, {"steering": ideal}

    def report(self):
        return self.car.report()

    def close(self):
        self.car.close()


class LockstepCamera(Source):
    """The camera of a simulator driven from outside, for a loop that moves the car between frames (judge.py):
    `frames` frames, each rendered only once the car has moved since the one before (Simulator.step), so it is
    read inline (stream(..., capture_thread=False)); a reader that runs ahead is an error, not a wrong drive."""

    def __init__(self, sim, frames):
        self.sim, self.frames, self.fps = sim, frames, sim.fps
        self.uri = "synthetic://road (lockstep)"

    def _images(self):
        first = self.sim.frames
        for index in range(self.frames):
            if self.sim.frames != first + index:
                raise RuntimeError("LockstepCamera read ahead of the car: read it inline (capture_thread=False), "
                                   "one step a frame")
            image, ideal = self.sim.view()
            yield image, {"steering": ideal}


def _vehicle(uri, control_uri, width, height, rate, params, log, link):
    """SimulatedVehicle from synthetic://road?control='s parameters (timeout_ms, seed, scenario, report)."""
    fps = float(rate or FPS)
    try:
        timeout_ms = float(params.get("timeout_ms", DEFAULT_TIMEOUT_MS))
        seed = int(params.get("seed", DEFAULT_SEED))
        if not TIMEOUT_MS_RANGE[0] <= timeout_ms <= TIMEOUT_MS_RANGE[1]:  # NaN and inf fail too
            raise ValueError
    except ValueError:
        raise UserError("%s: timeout_ms is a number of milliseconds from %g to %g and seed an integer"
                        % ((uri,) + TIMEOUT_MS_RANGE)) from None
    name = params.get("scenario", "calm")
    if name not in SCENARIOS:
        raise UserError("%s: unknown scenario %r (choose from: %s)" % (uri, name, ", ".join(SCENARIOS)))
    car = LinkedCar(control_uri, width or 640, height or 360, fps, seed, timeout_ms / 1000.0, params.get("report"),
                    log, link, SCENARIOS[name])
    return SimulatedVehicle(uri, car)


ROAD_MAX_PIXELS = 3840 * 2160  # the renderer holds about 80 bytes a pixel while it draws: 0.7 GB at 4K


def open_synthetic(uri, width=None, height=None, rate=None, log=sys.stderr, link=None, **_):
    """The source for a synthetic:// URI (this module's docstring), or a one-line UserError."""
    if width and height and width * height > ROAD_MAX_PIXELS:  # the pixel budget for images is 10x that
        raise UserError("synthetic://road renders at most %d pixels a frame (3840x2160; it needs about 80 bytes a "
                        "pixel while it draws): --input-width %d --input-height %d is %d"
                        % (ROAD_MAX_PIXELS, width, height, width * height))

    parts = control.split(uri)
    if parts.netloc != "road" or parts.path.strip("/") or parts.fragment:
        raise UserError("unknown synthetic source %r (there is synthetic://road)" % uri)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(PARAMS))
    if unknown or any(len(v) > 1 or not v[0] for v in query.values()):
        raise UserError("%s: %s (synthetic://road takes ?control=udp://:PORT with timeout_ms, seed, scenario and "
                        "report, or "
                        "?steering=udp://HOST:PORT)" % (uri, "unknown parameter %s" % unknown[0] if unknown
                                                         else "give each parameter once, with a value"))
    params = {k: v[0] for k, v in query.items()}
    if "control" in params:
        if "steering" in params:
            raise UserError("%s: control= (the car driven through the link) and steering= (the car's own driver "
                            "reported) do not go together" % uri)
        return _vehicle(uri, params["control"], width, height, rate, params, log, link)
    if set(params) - {"steering"}:
        raise UserError("%s: timeout_ms, seed, scenario and report go with control=" % uri)
    return SyntheticRoad(width, height, rate, steering_to=params.get("steering"), link=link, log=log)
