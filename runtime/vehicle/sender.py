"""udp://HOST:PORT, serial:///dev/ttyX?baud=N and ros2://TOPIC: each result sent to a vehicle as a command line
(the format is in control.py; ros2.py turns lines into ROS 2 messages), through the safety limits, with a
watchdog and a heartbeat.

    result -> clamp (--steering-limit) -> rate limit (--steering-rate) -> `cmd` line -> the link

With ControlSettings(brake=B, speed=V, policy=P) a detector's boxes among several networks' results
(runtime/networks.py) brake the vehicle by a braking policy P that the command above both wings hands in: the
simulator's (runtime/sim/braking.py's, as `runtime drive --detector` judges it, at the car's speed dead-reckoned
from the decelerations it asked: DeadReckoned, V the speed the car drives at when not braking, for the link has no
speedometer; this wing does not import the simulator's). An obstacle in the path ahead sends throttle 0 and
`brake` = B x the deceleration asked / the policy's limit (B itself at the limit), and `brake=0` otherwise
(`runtime run --brake B` builds P). Without a detector's result younger than DETECTOR_STALE_S (none yet, or its
thread stalled) the car is blind: the policy stops it gently (P.blind). The reference receivers act on `brake`
(receiver.py's rules: the brake wins over throttle; neutral and their fail-safe never release it).

The watchdog is a thread of its own. When no fresh result has come for --watchdog-ms (inference stalled, the
camera lost, a NaN or infinite output: none of those is fresh), it sends `neutral` (steering 0, throttle 0;
reason=invalid when the network's outputs were NaN or infinite, else reason=watchdog) and says so on stderr,
sends it again at every heartbeat while it holds, and hands control back, from neutral and through the rate
limit, when fresh results return. Its default is three times the measured period between results' frames (the
camera's frame period while inference keeps up), at least 100 ms, and UNPACED_WATCHDOG_S for a source that is
not live (a file read as fast as it decodes). Every --heartbeat-ms a `hb` line goes out whatever else does, so
the vehicle can stop itself when the link dies. The link opens with a `neutral` (reason=start; repeated as
reason=waiting until the first fresh result) and closes with one (reason=stop). Every line carries the run's
random session (control.Sender), and with --link-key its ts and sig. A send never waits: a UDP datagram nobody
takes is lost, as UDP's are; a serial write that cannot go out within 50 ms is dropped and counted.
"""

from __future__ import annotations

import collections
import math
import statistics
import sys
import threading
import time

from ..errors import UserError
from ..outputs.base import Output, OutputStopped
from ..quantiles import Histogram
from . import link as control
from .ros2 import Ros2Link

MIN_WATCHDOG_S = 0.1
UNPACED_WATCHDOG_S = 0.5
DEFAULT_HEARTBEAT_S = 0.1
# the safety settings' ranges (ms): finite, so that a fail-safe cannot be turned off by `inf`, and a heartbeat
# no faster than 100 a second (1e-6 ms sent 34,681 heartbeats in 5 s) nor slower than the receiver's timeout allows
WATCHDOG_MS_RANGE = (10.0, 10000.0)
HEARTBEAT_MS_RANGE = (10.0, 1000.0)
PERIODS = 15  # results whose frame spacing gives the measured period
EVENTS = 256  # the watchdog's events kept (each is also printed as it happens): a service runs for months
TASKS = ("steering", "classification", "binary")
MIN_BRAKE = 0.01  # --brake below this is no brake: the values sent would round to 0
DETECTOR_STALE_S = 0.5  # braking: a detector's newest result older than this is none (the car is blind)


class ControlSettings:
    """What `runtime run`'s control flags say; None: the default above."""

    def __init__(self, watchdog_ms=None, heartbeat_ms=None, steering_limit=1.0, steering_rate=None, throttle=None,
                 ros2_msg="ackermann", wheelbase=None, speed=None, security=None, brake=None, policy=None):
        for name, value, (low, high) in (("--watchdog-ms", watchdog_ms, WATCHDOG_MS_RANGE),
                                         ("--heartbeat-ms", heartbeat_ms, HEARTBEAT_MS_RANGE)):
            if value is not None and not low <= value <= high:  # NaN and inf fail too
                raise UserError("%s must be from %g to %g (milliseconds)" % (name, low, high))
        if throttle is not None and not -1.0 <= throttle <= 1.0:
            raise UserError("--throttle must be between -1 and 1")
        if brake is not None and not MIN_BRAKE <= brake <= 1.0:  # NaN fails too
            raise UserError("--brake must be %g to 1 (the brake sent at the deceleration limit)" % MIN_BRAKE)
        if brake is not None and not (speed is not None and 0.0 < speed <= 70.0):
            raise UserError("braking needs the vehicle's speed (--speed M/S, up to 70): the link has no speedometer")
        if brake is not None and policy is None:
            raise UserError("braking on the link needs a braking policy: ControlSettings(policy=...)")
        # braking (the module docstring); policy: distances(boxes, frame size, curvature), decide(targets), blind()
        # and decel_limit, as runtime/sim/braking.py's DeadReckoned(camera, fps, cruise) has them
        self.brake, self.policy = brake, policy
        self.watchdog_s = watchdog_ms / 1000.0 if watchdog_ms else None
        self.heartbeat_s = heartbeat_ms / 1000.0 if heartbeat_ms else DEFAULT_HEARTBEAT_S
        self.steering_limit, self.steering_rate, self.throttle = steering_limit, steering_rate, throttle
        self.ros2_msg, self.wheelbase, self.speed = ros2_msg, wheelbase, speed  # ros2:// (ros2.py)
        self.security = security or control.NO_SECURITY  # --link-key, --insecure-link


class ControlOutput(Output):
    def __init__(self, uri, settings=None, log=sys.stderr):
        self.uri, self.log = uri, log
        self.settings = settings or ControlSettings()
        self.limits = control.Limits(self.settings.steering_limit, self.settings.steering_rate)
        security = self.settings.security
        if uri.lower().startswith("ros2://"):
            if security.key is not None:
                raise UserError("--output %s: ROS 2 topics are secured by ROS 2 itself (SROS 2: ros2 security, "
                                "ROS_SECURITY_ENABLE), not by --link-key" % uri)
            s = self.settings
            self.link = Ros2Link(uri, s.ros2_msg, s.wheelbase, s.speed, s.brake,
                                 getattr(s.policy, "decel_limit", None) if s.brake is not None else None)
        else:
            self.link = control.open_link(uri, security=security, log=log)
        self.sender = control.Sender(security.key)
        self.security = security
        self.lock = threading.Lock()  # one sender at a time: the pipeline's thread and the watchdog's
        self.per_unit = None  # curvature (1/m, right positive) per unit of steering, where the bundle says
        self.sign = 1.0  # -1 for a bundle whose steering is positive to the left: the line's is to the right
        self.live = True
        self.periods = collections.deque(maxlen=PERIODS)
        self.last_capture = None
        self.last_fresh = time.monotonic()
        self.failsafe = "waiting"  # why the vehicle is held at neutral (the neutral's reason), None while results flow
        self.sent = 0
        self.lost = 0  # sends the link refused (a serial write that timed out)
        self.neutral_events = 0
        self.latency_ms = Histogram()  # capture -> command sent, over the whole run in bounded memory
        self.down = None  # why the link stopped (LinkDown), once it has
        self.events = collections.deque(maxlen=EVENTS)  # (monotonic time, what happened): the watchdog's last
        self.invalid = False  # the last result's outputs were NaN or infinite
        self.closing = threading.Event()
        self.braking = self.settings.policy if self.settings.brake is not None else None
        self.detectors = set()  # the detection networks' names among several (bind)
        self._neutral("start")
        self.watchdog = threading.Thread(target=self._watch, name="control-watchdog", daemon=True)
        self.watchdog.start()

    def bind(self, model, source, stats):
        self.live = bool(getattr(source, "live", True))
        bundle = model.bundle
        self.detectors = {name for name, b in zip(getattr(model, "names", []), getattr(model, "bundles", []))
                          if b.task == "detection"}
        if bundle.task not in TASKS:
            self.close()
            raise UserError("--output %s sends steering or a class, and %s is a %s bundle" % (self.uri, bundle.path,
                                                                                              bundle.task))
        if getattr(self.link, "needs_units", False) and bundle.curvature_per_unit is None:
            self.close()
            raise UserError("--output %s needs a steering bundle whose manifest says what its output means "
                            "(steering.inverse_radius_per_unit; train --steering-radius M for a driving log)"
                            % self.uri)
        self.sign = bundle.steering_sign
        if bundle.curvature_per_unit is not None:
            self.per_unit = bundle.curvature_per_unit * self.sign  # per unit of the line's (right-positive) steering

    @property
    def watchdog_s(self):
        """--watchdog-ms, or three measured result periods (at least MIN_WATCHDOG_S), or UNPACED_WATCHDOG_S."""
        if self.settings.watchdog_s:
            return self.settings.watchdog_s
        if not self.live or len(self.periods) < 3:
            return UNPACED_WATCHDOG_S
        return max(MIN_WATCHDOG_S, 3.0 * statistics.median(self.periods))

    # -- the pipeline's side ------------------------------------------------------------------------------------
    def write(self, frame, result, annotated=None):
        if self.down is not None:
            raise OutputStopped(self.down)
        whole, result = result, result.primary  # several networks: the first (steering first) commands
        stamp = getattr(frame, "timestamp", None)
        fields = {"t": float(stamp if stamp is not None else time.time())}
        with self.lock:
            if stamp is not None and self.last_capture is not None and stamp > self.last_capture:
                self.periods.append(stamp - self.last_capture)
            self.last_capture = stamp
            steering = result.get("steering")
            if "invalid" in result or ("steering" in result and (steering is None or not math.isfinite(steering))):
                self.invalid = True  # NaN or infinite: not fresh; the watchdog decides, and says why
                if self.failsafe is not None:
                    self.failsafe = "invalid"
                return
            self.invalid = False
            now = time.monotonic()
            if "steering" in result:
                steering = self.limits(float(steering) * self.sign, now)
                fields["steering"] = steering
                if self.per_unit is not None:
                    fields["inverse_radius"] = steering * self.per_unit
                fields["throttle"] = self.settings.throttle
                if self.braking is not None:
                    fields.update(self._brake(frame, whole, fields.get("inverse_radius", 0.0)))
            elif "class_id" in result:
                fields.update({"class": int(result["class_id"]), "label": result.get("label"),
                               "confidence": float(result.get("confidence", 0.0))})
            else:
                return
            if self.failsafe in ("watchdog", "invalid"):
                self._event("control resumed (fresh results again)")
            self.failsafe = None
            self.last_fresh = now
            self._send("cmd", **fields)
        if getattr(frame, "t0", None) is not None:
            self.latency_ms.add((time.perf_counter() - frame.t0) * 1000.0)

    def _brake(self, frame, whole, curvature):
        """{"brake"} and, while braking, {"throttle": 0}: the braking policy on the boxes of every detector among
        the results (in the frame's pixels), on the path of the steered curvature. Blind (no detector's result,
        or none younger than DETECTOR_STALE_S: its thread stalled or has not answered yet), the policy's blind()
        stops the car gently."""
        image = getattr(frame, "image", None)
        parts = [part for name, part in whole.parts if name in self.detectors]
        fresh = [p for p in parts if p is not None and "units" not in p
                 and p.get("age_ms", 0.0) <= DETECTOR_STALE_S * 1000.0]
        boxes = [d["box"] for part in fresh for d in (part.get("detections") or [])]
        targets = []
        if boxes and image is not None:
            targets = self.braking.distances(boxes, (image.shape[1], image.shape[0]), curvature)
        if fresh:
            decel = self.braking.decide(targets)
        else:
            decel = self.braking.blind()
        if not decel > 0.0:  # NaN too
            return {"brake": 0.0}
        return {"throttle": 0.0, "brake": round(self.settings.brake * min(1.0, decel / self.braking.decel_limit), 6)}

    def _send(self, kind, **fields):
        """One line with the next sequence number (the caller holds the lock, or nobody else runs yet)."""
        line = self.sender.line(kind, dict({"t": fields.pop("t", time.time())}, **fields))
        if self.down is not None:
            return
        try:
            sent = self.link.send(line)
        except control.LinkDown as exc:  # the pipeline's next write stops the run, saying why
            self.down = str(exc)
            self._event(self.down)
            return
        if sent:
            self.sent += 1
        else:
            self.lost += 1

    def _neutral(self, reason):
        """The safe command (steering 0, throttle 0); the rate limit then ramps control in from it."""
        self._send("neutral", steering=0.0, throttle=0.0, reason=reason)
        self.limits.reset(time.monotonic())

    def _event(self, text):
        self.events.append((time.monotonic(), text))
        if self.log is not None:
            print("control: %s" % text, file=self.log, flush=True)

    # -- the watchdog's thread ----------------------------------------------------------------------------------
    def _watch(self):
        beat = self.settings.heartbeat_s
        next_beat = time.monotonic() + beat
        while not self.closing.wait(min(beat, MIN_WATCHDOG_S, self.settings.watchdog_s or MIN_WATCHDOG_S) / 2):
            with self.lock:
                now = time.monotonic()
                silent = now - self.last_fresh
                if self.failsafe is None and silent > self.watchdog_s:
                    self.failsafe = "invalid" if self.invalid else "watchdog"
                    self.neutral_events += 1
                    self._event("no fresh result for %.0f ms (watchdog %.0f ms%s): neutral sent"
                                % (silent * 1000, self.watchdog_s * 1000,
                                   "; the network's outputs are NaN or infinite" if self.invalid else ""))
                    self._neutral(self.failsafe)
                if now >= next_beat:
                    next_beat = max(next_beat + beat, now)
                    if self.failsafe is not None:  # repeated, for a link that loses datagrams
                        self._neutral(self.failsafe)
                    self._send("hb", state="ok" if self.failsafe is None else "failsafe")

    def close(self):
        if self.closing.is_set():
            return
        self.closing.set()
        self.watchdog.join(2.0)
        with self.lock:
            self._neutral("stop")
        self.link.close()
        if self.log is not None:
            print("control: %s" % self.summary(), file=self.log, flush=True)

    def summary(self):
        latency = ""
        if self.latency_ms.count:
            latency = ", capture -> sent p50 %.1f ms p95 %.1f ms" % (self.latency_ms.percentile(50),
                                                                     self.latency_ms.percentile(95))
        return "%s: %d lines sent%s, %d watchdog neutral(s)%s; session %d, %s" % (
            self.uri, self.sent, ", %d dropped by the link" % self.lost if self.lost else "",
            self.neutral_events, latency, self.sender.session, self.security.describe())


def open_control(uri, settings=None, **_):
    return ControlOutput(uri, settings)
