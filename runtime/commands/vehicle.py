"""python -m runtime vehicle --listen URI: the reference receiver of the control link as a command (vehicle/
receiver.py judges the lines): it shows and logs what it hears, within a budget, and ends with a summary."""

from __future__ import annotations

import json
import sys
import time

from ..cli import fraction, milliseconds, number_in, positive_float
from ..errors import UserError, printable
from ..outputs.base import check_writable
from ..outputs.files import LineFile, add_rotation_options, rotation
from ..signals import StopRequest
from ..systemd import Watchdog
from ..vehicle import link as control
from ..vehicle.link import add_link_options, link_security
from ..vehicle.receiver import DEFAULT_MAX_INVERSE_RADIUS, DEFAULT_TIMEOUT_MS, TIMEOUT_MS_RANGE, Receiver


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
    """--jsonl FILE: one JSON object a line (a received line, or an event), each line whole (outputs/files.py's
    LineFile, rotated with --jsonl-max-mb). A file that cannot be opened is one line at the start (a folder, a FIFO
    nobody reads); a write that fails later (a full disk) ends the log, not the receiver, whose fail-safe must keep
    running; the file then ends in its last whole line."""

    def __init__(self, path, rotation=None):
        check_writable(path)
        self.path = path
        try:
            self.file = LineFile(path, rotation, wait_for_reader=False)
        except OSError as exc:
            raise UserError("--jsonl %s: %s" % (printable(path), exc.strerror or exc)) from None

    def write(self, record):
        if self.file is None:
            return
        try:
            self.file.write((json.dumps(record) + "\n").encode("utf-8"))
        except OSError as exc:
            self.close(exc)

    def close(self, failure=None):
        if self.file is None:
            return
        self.file.close()
        self.file = None
        if failure is not None:
            print("vehicle: --jsonl %s: %s: no longer logged (the receiver goes on)"
                  % (printable(self.path), getattr(failure, "strerror", None) or failure), file=sys.stderr, flush=True)


def shown(data, limit=160):
    """A received datagram as one printable line: every byte outside printable ASCII escaped, cut at limit."""
    text = printable(data.decode("latin-1").rstrip("\n").encode("ascii", "backslashreplace").decode("ascii"))
    return text if len(text) <= limit else text[:limit] + "...(%d bytes)" % len(data)


def add_parser(sub):
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
    p.add_argument("--brake-limit", type=fraction, default=1.0, metavar="B",
                   help="clamp a command's brake to [0, B] (default 1)")
    p.add_argument("--failsafe-brake", type=number_in(0.0, 1.0, "brake (0 to 1)"), default=0.0, metavar="B",
                   help="on neutral and on the fail-safe brake at least B (at most --brake-limit); neither ever "
                        "releases a brake in force (default 0: a car that was not braking coasts)")
    p.add_argument("--max-inverse-radius", type=number_in(0.01, 100.0, "1/m"), default=DEFAULT_MAX_INVERSE_RADIUS,
                   metavar="K",
                   help="clamp a command's inverse_radius to [-K, K] 1/m (default %g)" % DEFAULT_MAX_INVERSE_RADIUS)
    add_link_options(p, receiving=True)
    p.add_argument("--jsonl", metavar="FILE", help="write the lines received as JSON (with arrival time and verdict; "
                                                   "at most %d accepted and %d discarded a second) and each fail-safe "
                                                   "({\"event\": \"failsafe\", \"at\": UNIX_TIME, \"brake\": B}); "
                                                   "each accepted line with the brake in force after it "
                                                   "(brake_in_force)"
                                                   % (SHOWN_ACCEPTED, SHOWN_DISCARDED))
    add_rotation_options(p)
    p.add_argument("--seconds", type=positive_float, help="stop after S seconds (default: Ctrl-C or SIGTERM)")
    p.add_argument("--quiet", action="store_true", help="no line per command, only events and the summary")


def main(args):
    security = link_security(args)
    log = Log(args.jsonl, rotation(args.jsonl_max_mb, args.jsonl_keep)) if args.jsonl else None
    if log is None and (args.jsonl_max_mb, args.jsonl_keep) != (None, None):
        raise UserError("--jsonl-max-mb and --jsonl-keep rotate the --jsonl log: give --jsonl FILE too")
    link = control.open_link(args.listen, listen=True, security=security, log=sys.stderr)
    receiver = Receiver(args.timeout_ms / 1000.0, key=security.key, newest=security.newest(),
                        steering_limit=args.steering_limit, throttle_limit=args.throttle_limit,
                        max_inverse_radius=args.max_inverse_radius, brake_limit=args.brake_limit,
                        failsafe_brake=args.failsafe_brake)
    budgets = {True: Budget(SHOWN_ACCEPTED), False: Budget(SHOWN_DISCARDED)}
    listening = "listening on %s, %s (fail-safe after %.0f ms of silence)" % (args.listen, security.describe(),
                                                                              args.timeout_ms)
    print("vehicle: " + listening, file=sys.stderr, flush=True)
    watchdog = Watchdog.from_env()  # under systemd (Type=notify, WatchdogSec=): READY=1 now, WATCHDOG=1 each tick
    watchdog.ready(listening)
    try:
        with StopRequest() as stop:
            _receive(args, link, receiver, log, budgets, stop, watchdog)
    finally:
        watchdog.stopping()
        watchdog.close()
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


def _receive(args, link, receiver, log, budgets, stop, watchdog):
    """The receiver's loop until a stop or --seconds: each datagram judged, shown and logged within its budget, the
    fail-safe ticked every 50 ms at most, and systemd's watchdog fed."""
    end = time.monotonic() + args.seconds if args.seconds else None
    while not stop.requested and (end is None or time.monotonic() < end):
        watchdog.alive()
        data = link.receive(0.05)
        now = time.monotonic()
        if data is not None:
            heard = receiver.apply(data, now)
            accepted = heard.verdict == "ok"
            if budgets[accepted].allow(now):
                if log is not None:  # the line's own fields first: they cannot stand for the verdict
                    record = dict(heard.fields, kind=heard.kind) if accepted else {"line": shown(data)}
                    record.update(verdict=heard.verdict, received=time.time())
                    if accepted:
                        record["brake_in_force"] = receiver.brake
                    log.write(record)
                if not accepted:
                    print("discarded (%s): %s" % (heard.verdict, shown(data)), flush=True)
                elif heard.kind != "hb" and not args.quiet:
                    print(shown(data), flush=True)
        if receiver.tick(now) and log is not None:
            log.write({"event": "failsafe", "at": time.time(), "brake": receiver.brake})
