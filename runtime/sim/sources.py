"""synthetic://road: the procedural road as a camera (frames carry the true steering), in three roles.

    synthetic://road                      a car driven by its own simulated driver, rendered as fast as it is
                                          read (every frame), or paced like a camera with --input-rate
    synthetic://road?steering=udp://HOST:PORT
                                          the same, live at --input-rate (default 30), and its driver's
                                          steering sent as readings (control.py's line, t the frame's time),
                                          as a car's steering sensor would send them: what `runtime record
                                          --steering-from udp://:PORT` records
    synthetic://road?control=udp://:PORT[&timeout_ms=300][&seed=2016][&report=FILE.json]
                                          the closed-loop simulator (drive.Simulator) as the vehicle: live at
                                          --input-rate (default 30, the simulator's own rate); before each
                                          frame the car moves 1/30 s with the newest command the control
                                          link's receiver accepted (vehicle.Receiver: its rules, and its own
                                          fail-safe, which steers straight when nothing is accepted for
                                          timeout_ms). When the source closes it says how the car was driven
                                          (autonomy, as `runtime drive` judges it) and writes that to
                                          report=FILE.json where asked.

Both links take the run's --link-key (and --link-state, --insecure-link): signed readings, a checked control
link.
"""

from __future__ import annotations

import sys
import threading
import time
from urllib.parse import parse_qs

from ..errors import UserError
from .road import STEERING_RADIUS_M
from ..sources.base import Source, sleep_unless

PARAMS = ("control", "steering", "timeout_ms", "seed", "report")
DATAGRAMS_PER_FRAME = 64  # a sender sends about 2 lines a frame


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
    """Rendered as fast as it is read (every frame); with a rate, paced like a camera (newest frame wins).
    steering_to: a control link the driver's steering goes to, as readings."""

    def __init__(self, width=None, height=None, rate=None, seed=0, steering_to=None, link=None, log=sys.stderr):
        from ..vehicle import link as control
        from .road import RoadDrive

        self.uri = "synthetic://road"
        if steering_to is not None:
            rate = rate or 30.0
        self.live = rate is not None
        self.width, self.height = width or 640, height or 360
        self.rate = rate
        self.fps = float(rate or 30.0)
        try:
            self.drive = RoadDrive(self.width, self.height, seed=seed, fps=self.fps)
        except ValueError as exc:
            raise UserError(str(exc)) from None
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
            frame, label = self.drive.next()
            if self.sensor is not None:  # what the driver steered while this frame was seen
                self.sensor.send(self.readings.line(None, {"t": stamp, "steering": self.drive.steered}))
            yield frame, {"steering": label}

    def close(self):
        if self.sensor is not None:
            self.sensor.close()


class SimulatedVehicle(Source):
    """The closed-loop simulator driven through the control link (this module's docstring)."""

    live = True

    def __init__(self, uri, control_uri, width=None, height=None, rate=None, params=None, log=sys.stderr, link=None):
        from ..vehicle import link as control
        from . import drive
        from ..vehicle.receiver import DEFAULT_TIMEOUT_MS, TIMEOUT_MS_RANGE, Receiver

        params = params or {}
        self.uri, self.log = uri, log
        self.fps = float(rate or drive.FPS)
        try:
            timeout_ms = float(params.get("timeout_ms", DEFAULT_TIMEOUT_MS))
            seed = int(params.get("seed", drive.DEFAULT_SEED))
            if not TIMEOUT_MS_RANGE[0] <= timeout_ms <= TIMEOUT_MS_RANGE[1]:  # NaN and inf fail too
                raise ValueError
        except ValueError:
            raise UserError("%s: timeout_ms is a number of milliseconds from %g to %g and seed an integer"
                            % ((uri,) + TIMEOUT_MS_RANGE)) from None
        self.report_path = params.get("report")
        if self.report_path:
            from ..outputs.base import check_writable

            check_writable(self.report_path)
        self.sim = drive.Simulator(width or 640, height or 360, seed, delay_frames=0, fps=self.fps)
        self.record = drive.Drive("control link", "-", seed, 0)
        link = link or control.NO_SECURITY
        self.link = control.open_link(control_uri, listen=True, security=link, log=log)
        self.receiver = Receiver(timeout_ms / 1000.0, log=log, key=link.key, newest=link.newest())
        self.started = None
        self.stopping = threading.Event()

    def interrupt(self):
        self.stopping.set()

    def _steering(self):
        """The command in force as the road's normalised steering (1/r = steering / 10 m): its inverse_radius
        where it has one, else its steering; straight while the fail-safe holds."""
        command = self.receiver.command
        if self.receiver.failsafe or not command:
            return 0.0
        if "inverse_radius" in command:
            return command["inverse_radius"] * STEERING_RADIUS_M
        return command.get("steering", 0.0)

    def _images(self):
        sim, record, seen, ideal = self.sim, self.record, False, 0.0
        self.started = time.perf_counter()
        self.stopping.clear()
        for _ in paced(1.0 / self.fps, self.stopping):
            for _ in range(DATAGRAMS_PER_FRAME):  # what came since the last frame (the newest is in force), at most
                data = self.link.receive(0.0)  # so many: a flood must not stop the car's clock
                if data is None:
                    break
                self.receiver.apply(data, time.monotonic())
            self.receiver.tick(time.monotonic())
            if seen:  # the car moves with the command in force, then is seen again
                record.step(sim, self._steering(), 1.0 / STEERING_RADIUS_M, ideal)
            image, ideal = sim.view()
            seen = True
            yield image, {"steering": ideal}

    def report(self):
        report = self.record.report(self.fps)
        report.update(controller="control link", received=dict(self.receiver.counts),
                      wall_seconds=round(time.perf_counter() - self.started, 2) if self.started else 0.0)
        report.pop("realtime_factor", None)
        return report

    def close(self):
        self.link.close()
        self.receiver.close()
        report = self.report()
        if self.log is not None:
            print("vehicle: autonomy %.1f%% (%d intervention(s) in %.0f simulated s, mean |offset| %.2f m); %s"
                  % (report["autonomy"], report["interventions"], report["sim_seconds"], report["mean_abs_offset_m"],
                     self.receiver.summary()), file=self.log, flush=True)
        if self.report_path:
            from ..bundle import write_json

            write_json(self.report_path, report)


ROAD_MAX_PIXELS = 3840 * 2160  # the renderer holds about 80 bytes a pixel while it draws: 0.7 GB at 4K


def open_synthetic(uri, width=None, height=None, rate=None, log=sys.stderr, link=None, **_):
    from ..vehicle import link as control

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
        raise UserError("%s: %s (synthetic://road takes ?control=udp://:PORT with timeout_ms, seed and report, or "
                        "?steering=udp://HOST:PORT)" % (uri, "unknown parameter %s" % unknown[0] if unknown
                                                         else "give each parameter once, with a value"))
    params = {k: v[0] for k, v in query.items()}
    if "control" in params:
        if "steering" in params:
            raise UserError("%s: control= (the car driven through the link) and steering= (the car's own driver "
                            "reported) do not go together" % uri)
        return SimulatedVehicle(uri, params["control"], width, height, rate, params, log, link)
    if set(params) - {"steering"}:
        raise UserError("%s: timeout_ms, seed and report go with control=" % uri)
    return SyntheticRoad(width, height, rate, steering_to=params.get("steering"), link=link, log=log)
