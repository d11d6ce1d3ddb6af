"""python -m runtime vehicle --listen udp://:PORT: the reference receiver of the control link, for bench tests
and as the pattern for the vehicle's own (runtime/mcu/receiver.py is the same for a microcontroller): it
judges every line by the rules below, acts on the ones it accepts, and runs its own fail-safe.

    python -m runtime vehicle --listen udp://:5005 --link-key link.key [--timeout-ms 300] [--jsonl FILE]

The rules (control.py has the format). A line is judged in this order, and a line that is not accepted never
acts and never counts as a sign of life; each is counted by its verdict:
  1. truncated: longer than MAX_LINE, or not ended by "\\n" (a datagram cut short); malformed: anything
     else that is not exactly the format (a byte that is not printable ASCII, 1e308, 1_000, an unknown kind).
  2. On a keyed link: unsigned (no ts and sig last), forged (a wrong sig), replayed (ts at or below the newest
     accepted, kept on disk across runs), clock (ts more than control.CLOCK_WINDOW_S from this machine's
     clock), stale (ts older than the silence since the last accepted line allows, by more than STALE_US:
     lines held back by a man in the middle and released later).
  3. foreign: no v=2 or no session (an old sender), or while the session followed is alive, another one.
  4. late: seq at or below the last accepted of the session; ahead: more than SEQ_WINDOW beyond it.
A session is alive until nothing has been accepted from it for the timeout; then the receiver fails safe
(steering 0, throttle 0), and the next line resynchronises it: another session's takes over, or the same
session's with any seq above the last (the resynchronisation after an outage). An accepted `cmd` is clamped
to the receiver's limits; `neutral` steers straight and stops.

Braking (runtime run --brake: the sender's braking policy). The brake in force is 0 (released) to brake_limit:
  - an accepted `cmd` with steering sets it to its `brake`, clamped to [0, brake_limit] (absent: 0, released);
    a `cmd` with brake > 0 applies throttle 0, whatever throttle it carries: the brake wins.
  - `neutral` and the fail-safe never release it: they centre the steering and cut the throttle, and the brake
    becomes the larger of the one in force and failsafe_brake (default 0: a car that was not braking coasts, as
    before; one that was braking for an obstacle when the link died, or when the sender's watchdog fired, goes
    on braking rather than rolling on towards it). Only an accepted `cmd` with steering releases a brake. Before
    the first line the receiver is in its fail-safe: brake failsafe_brake.
A brake held after a fail-safe is the vehicle's to release by a command: a car standing with its brake held is
safe; one rolling without a link towards the obstacle it was braking for is not.
"""

from __future__ import annotations

import collections
import sys
import time

from . import link as control

DEFAULT_TIMEOUT_MS = 300.0
TIMEOUT_MS_RANGE = (20.0, 10000.0)  # finite: `inf` silently turned the vehicle's fail-safe off
SEQ_WINDOW = 1024  # how far seq may jump ahead within a live session (a forged seq=2000000000 made all "late")
DEFAULT_MAX_INVERSE_RADIUS = 2.0  # 1/m: a 0.5 m turning radius, tighter than any car's
STALE_US = 500000  # how much older than the silence since the last accepted line a keyed line may be sent
VERDICTS = ("ok", "truncated", "malformed", "unsigned", "forged", "replayed", "clock", "stale", "foreign", "late",
            "ahead")
Heard = collections.namedtuple("Heard", "verdict kind fields")
_CLOCK = object()


class Receiver:
    """The vehicle's side: apply(line, now) for each line received, tick(now) between them; state is the command
    in force (steering, throttle, command) and whether the fail-safe holds. key: the link's key (None: unkeyed);
    newest: a control.Newest, the newest ts accepted (a keyed link's replay protection)."""

    def __init__(self, timeout_s, log=sys.stderr, key=None, newest=None, steering_limit=1.0, throttle_limit=1.0,
                 max_inverse_radius=DEFAULT_MAX_INVERSE_RADIUS, brake_limit=1.0, failsafe_brake=0.0):
        self.timeout_s, self.log, self.key = timeout_s, log, key
        self.newest = newest if newest is not None else control.Newest()
        self.limits = {"steering": steering_limit, "throttle": throttle_limit, "inverse_radius": max_inverse_radius}
        self.brake_limit = brake_limit
        self.failsafe_brake = max(0.0, min(failsafe_brake, brake_limit))  # neutral's and the fail-safe's least brake
        self.session, self.last_seq, self.last_heard = None, 0, None
        self.steering, self.throttle = 0.0, 0.0
        self.brake = self.failsafe_brake  # 0 (released) to brake_limit: the module docstring's braking rules
        self.command = {}  # the fields of the command in force ({} at neutral)
        self.failsafe = True  # until the first line: nothing is in control
        self.counts = dict.fromkeys(VERDICTS[1:] + ("cmd", "neutral", "hb", "lost", "clamped", "braking",
                                                    "failsafe"), 0)

    def apply(self, data, now, clock_us=_CLOCK):
        """Heard(verdict, kind, fields): verdict "ok" when the line was accepted (and acted on), else why not.
        clock_us: this machine's time in microseconds (default: now), None for a receiver without a clock."""
        if len(data) > control.MAX_LINE or not data.endswith(b"\n"):
            return self._drop("truncated")
        try:
            kind, fields = control.parse_line(data)
        except ValueError:
            return self._drop("malformed")
        if kind is None or "seq" not in fields:
            return self._drop("malformed", kind, fields)
        if self.key is not None:
            verdict, ts = control.authenticate(data, self.key, self.newest.value,
                                               time.time() * 1e6 if clock_us is _CLOCK else clock_us)
            if verdict is None and self.last_heard is not None:
                elapsed_us = round((now - self.last_heard) * 1e6)
                if ts - self.newest.value < elapsed_us - STALE_US:  # sent long before the silence allows
                    verdict = "stale"
            if verdict is not None:
                return self._drop(verdict, kind, fields)
        session, seq = fields.get("session"), fields["seq"]
        if fields.get("v") != control.VERSION or session is None:
            return self._drop("foreign", kind, fields)
        silent = self._silent(now)
        if session != self.session:
            if not silent:
                return self._drop("foreign", kind, fields)
            if self.session is not None:
                self._say("session %d took over from %d" % (session, self.session))
            self.session, self.last_seq = session, seq - 1
        elif seq <= self.last_seq:
            return self._drop("late", kind, fields)
        elif seq > self.last_seq + SEQ_WINDOW and not silent:
            return self._drop("ahead", kind, fields)
        if self.failsafe and self.last_heard is not None:
            self._say("link back after %.0f ms" % ((now - self.last_heard) * 1000))
        self.counts["lost"] += seq - self.last_seq - 1
        self.last_seq, self.last_heard, self.failsafe = seq, now, False
        if self.key is not None:
            self.newest.accept(ts)
        self.counts[kind] += 1
        if kind == "cmd" and "steering" in fields:
            fields = self._act(fields)
        elif kind == "neutral":
            self._stop()
        return Heard("ok", kind, fields)

    def _act(self, fields):
        """An accepted steering command put in force: clamped to the limits (brake to [0, brake_limit]), and with a
        brake on, throttle 0. The fields as acted on (throttle and brake filled in)."""
        fields = dict(fields, throttle=fields.get("throttle", 0.0), brake=fields.get("brake", 0.0))
        clamped = {name: max(-limit, min(limit, fields[name])) for name, limit in self.limits.items()
                   if name in fields and abs(fields[name]) > limit}
        fields["brake"] += 0.0  # -0 is 0 (as the MicroPython receiver's max(0.0, -0.0) has it)
        if not 0.0 <= fields["brake"] <= self.brake_limit:
            clamped["brake"] = max(0.0, min(self.brake_limit, fields["brake"]))
        if clamped:  # counted once a command, as runtime/mcu/receiver.py counts them
            fields.update(clamped)
            self.counts["clamped"] += 1
        if fields["brake"] > 0.0:  # the brake wins: never throttle against it
            fields["throttle"] = 0.0
            self.counts["braking"] += 1
        self.steering, self.throttle, self.brake, self.command = (fields["steering"], fields["throttle"],
                                                                   fields["brake"], fields)
        return fields

    def _stop(self):
        """neutral and the fail-safe: steering 0, throttle 0, and the brake in force kept (at least
        failsafe_brake): never released by them."""
        self.steering, self.throttle, self.command = 0.0, 0.0, {}
        self.brake = max(self.brake, self.failsafe_brake)

    def _drop(self, verdict, kind=None, fields=None):
        self.counts[verdict] += 1
        return Heard(verdict, kind, fields)

    def tick(self, now):
        """The vehicle's own fail-safe: True when it has just stopped the vehicle."""
        if not self.failsafe and self.last_heard is not None and self._silent(now):
            self.failsafe = True
            self._stop()
            self.counts["failsafe"] += 1
            self._say("FAILSAFE: nothing accepted for %.0f ms: stopped (steering 0, throttle 0, brake %g)"
                      % ((now - self.last_heard) * 1000, self.brake))
            return True
        return False

    def _silent(self, now):
        """Nothing accepted yet, or nothing for more than the timeout (by more than float rounding: 0.34 - 0.04 is
        not more than 0.3 here, as it is not for a receiver that counts integer milliseconds)."""
        return self.last_heard is None or now - self.last_heard > self.timeout_s + 1e-9

    def close(self):
        if self.key is not None:
            self.newest.close()

    def _say(self, text):
        if self.log is not None:
            print("vehicle: %s" % text, file=self.log, flush=True)

    def summary(self):
        c = self.counts
        dropped = ", ".join("%d %s" % (c[v], v) for v in VERDICTS[1:] if c[v])
        return ("%d commands (%d braking), %d neutral, %d heartbeats accepted; %d lost; discarded: %s; %d clamped; "
                "fail-safe %d time(s); brake %g in force at the end"
                % (c["cmd"], c["braking"], c["neutral"], c["hb"], c["lost"], dropped or "none", c["clamped"],
                   c["failsafe"], self.brake))
