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
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time

from . import control
from .cli import fraction, milliseconds, number_in, positive_float
from .errors import UserError, printable

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
                 max_inverse_radius=DEFAULT_MAX_INVERSE_RADIUS):
        self.timeout_s, self.log, self.key = timeout_s, log, key
        self.newest = newest if newest is not None else control.Newest()
        self.limits = {"steering": steering_limit, "throttle": throttle_limit, "inverse_radius": max_inverse_radius}
        self.session, self.last_seq, self.last_heard = None, 0, None
        self.steering, self.throttle = 0.0, 0.0
        self.command = {}  # the fields of the command in force ({} at neutral)
        self.failsafe = True  # until the first line: nothing is in control
        self.counts = dict.fromkeys(VERDICTS[1:] + ("cmd", "neutral", "hb", "lost", "clamped", "failsafe"), 0)

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
            fields = dict(fields, throttle=fields.get("throttle", 0.0))
            clamped = {name: max(-limit, min(limit, fields[name])) for name, limit in self.limits.items()
                       if name in fields and abs(fields[name]) > limit}
            if clamped:  # counted once a command, as runtime/mcu/receiver.py counts them
                fields.update(clamped)
                self.counts["clamped"] += 1
            self.steering, self.throttle, self.command = fields["steering"], fields["throttle"], fields
        elif kind == "neutral":
            self.steering, self.throttle, self.command = 0.0, 0.0, {}
        return Heard("ok", kind, fields)

    def _drop(self, verdict, kind=None, fields=None):
        self.counts[verdict] += 1
        return Heard(verdict, kind, fields)

    def tick(self, now):
        """The vehicle's own fail-safe: True when it has just stopped the vehicle."""
        if not self.failsafe and self.last_heard is not None and self._silent(now):
            self.failsafe = True
            self.steering, self.throttle, self.command = 0.0, 0.0, {}
            self.counts["failsafe"] += 1
            self._say("FAILSAFE: nothing accepted for %.0f ms: stopped (steering 0, throttle 0)"
                      % ((now - self.last_heard) * 1000))
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
        return ("%d commands, %d neutral, %d heartbeats accepted; %d lost; discarded: %s; %d clamped; fail-safe "
                "%d time(s)" % (c["cmd"], c["neutral"], c["hb"], c["lost"], dropped or "none", c["clamped"],
                                c["failsafe"]))


class Budget:
    """Lines shown (and logged) at most per_second a second: a flood of datagrams, forged or from a sender that
    took over an unkeyed link, must not become a flood of output and a full disk; the counts have them all."""

    def __init__(self, per_second):
        self.per_second = per_second
        self.second, self.shown, self.hidden = None, 0, 0

    def allow(self, now):
        second = int(now)
        if second != self.second:
            self.second, self.shown = second, 0
        self.shown += 1
        if self.shown > self.per_second:
            self.hidden += 1
            return False
        return True


SHOWN_ACCEPTED, SHOWN_DISCARDED = 200, 10  # a second; a sender sends about 40 lines a second


class Log:
    """--jsonl FILE: one JSON object a line (a received line, or an event). A file that cannot be opened is one
    line at the start (a folder, a FIFO nobody reads); a write that fails later (a full disk) ends the log, not the
    receiver, whose fail-safe must keep running."""

    def __init__(self, path):
        from .outputs.base import check_writable

        check_writable(path)
        self.path = path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK, 0o644)
            os.set_blocking(fd, True)
        except OSError as exc:
            raise UserError("--jsonl %s: %s" % (printable(path), exc.strerror or exc)) from None
        self.file = os.fdopen(fd, "w", encoding="utf-8")

    def write(self, record):
        if self.file is None:
            return
        try:
            self.file.write(json.dumps(record) + "\n")
        except (OSError, ValueError) as exc:
            self.close(exc)

    def close(self, failure=None):
        if self.file is None:
            return
        try:
            self.file.close()
        except OSError as exc:
            failure = failure or exc
        self.file = None
        if failure is not None:
            print("vehicle: --jsonl %s: %s: no longer logged (the receiver goes on)"
                  % (printable(self.path), getattr(failure, "strerror", None) or failure), file=sys.stderr, flush=True)


def shown(data, limit=160):
    """A received datagram as one printable line: every byte outside printable ASCII escaped, cut at limit."""
    text = printable(data.decode("latin-1").rstrip("\n").encode("ascii", "backslashreplace").decode("ascii"))
    return text if len(text) <= limit else text[:limit] + "...(%d bytes)" % len(data)


def add_parser(sub):
    from .cli import add_link_options

    p = sub.add_parser("vehicle", help="the reference receiver of the control link: log commands, enforce the "
                                       "heartbeat (bench tests)")
    p.prog = "python -m runtime vehicle"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--listen", required=True, metavar="URI",
                   help="udp://:PORT (every address), udp://HOST:PORT or serial:///dev/ttyX?baud=N")
    p.add_argument("--timeout-ms", type=milliseconds(*TIMEOUT_MS_RANGE), default=DEFAULT_TIMEOUT_MS,
                   help="stop the vehicle when nothing has been accepted for this long (default %g: 3 heartbeats; "
                        "%g to %g)" % ((DEFAULT_TIMEOUT_MS,) + TIMEOUT_MS_RANGE))
    p.add_argument("--steering-limit", type=fraction, default=1.0, metavar="S",
                   help="clamp a command's steering to [-S, S], S up to 1 (default 1)")
    p.add_argument("--throttle-limit", type=fraction, default=1.0, metavar="T",
                   help="clamp a command's throttle to [-T, T] (default 1)")
    p.add_argument("--max-inverse-radius", type=number_in(0.01, 100.0, "1/m"), default=DEFAULT_MAX_INVERSE_RADIUS,
                   metavar="K",
                   help="clamp a command's inverse_radius to [-K, K] 1/m (default %g)" % DEFAULT_MAX_INVERSE_RADIUS)
    add_link_options(p, receiving=True)
    p.add_argument("--jsonl", metavar="FILE", help="write the lines received as JSON (with arrival time and verdict; "
                                                   "at most %d accepted and %d discarded a second) and each fail-safe "
                                                   "({\"event\": \"failsafe\", \"at\": UNIX_TIME})"
                                                   % (SHOWN_ACCEPTED, SHOWN_DISCARDED))
    p.add_argument("--seconds", type=positive_float, help="stop after S seconds (default: Ctrl-C or SIGTERM)")
    p.add_argument("--quiet", action="store_true", help="no line per command, only events and the summary")


def main(args):
    from .cli import link_security
    from .signals import StopRequest

    security = link_security(args)
    log = Log(args.jsonl) if args.jsonl else None
    link = control.open_link(args.listen, listen=True, security=security, log=sys.stderr)
    receiver = Receiver(args.timeout_ms / 1000.0, key=security.key, newest=security.newest(),
                        steering_limit=args.steering_limit, throttle_limit=args.throttle_limit,
                        max_inverse_radius=args.max_inverse_radius)
    budgets = {True: Budget(SHOWN_ACCEPTED), False: Budget(SHOWN_DISCARDED)}
    print("vehicle: listening on %s, %s (fail-safe after %.0f ms of silence)"
          % (args.listen, security.describe(), args.timeout_ms), file=sys.stderr, flush=True)
    end = time.monotonic() + args.seconds if args.seconds else None
    try:
        with StopRequest() as stop:
            while not stop.requested and (end is None or time.monotonic() < end):
                data = link.receive(0.05)
                now = time.monotonic()
                if data is not None:
                    heard = receiver.apply(data, now)
                    accepted = heard.verdict == "ok"
                    if budgets[accepted].allow(now):
                        if log is not None:  # the line's own fields first: they cannot stand for the verdict
                            record = dict(heard.fields, kind=heard.kind) if accepted else {"line": shown(data)}
                            record.update(verdict=heard.verdict, received=time.time())
                            log.write(record)
                        if not accepted:
                            print("discarded (%s): %s" % (heard.verdict, shown(data)), flush=True)
                        elif heard.kind != "hb" and not args.quiet:
                            print(shown(data), flush=True)
                if receiver.tick(now) and log is not None:
                    log.write({"event": "failsafe", "at": time.time()})
    finally:
        link.close()
        receiver.close()
        if log is not None:
            log.close()
    hidden = sum(b.hidden for b in budgets.values())
    hidden = " (%d lines over the output's budget not shown)" % hidden if hidden else ""
    print("vehicle: %s%s; the link was %s" % (receiver.summary(), hidden, security.describe()), file=sys.stderr)
    if stop.requested:
        return 128 + int(stop.signum or 2)
    if receiver.session is None:
        raise UserError("nothing was accepted on %s" % args.listen)
    return 0
