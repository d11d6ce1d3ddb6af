"""python -m runtime vehicle --listen udp://:PORT: the reference receiver of the control link, for bench tests
and as the pattern for the vehicle's own: it logs every line it gets and runs its own fail-safe on the
heartbeat.

    python -m runtime vehicle --listen udp://:5005 [--timeout-ms 300] [--jsonl FILE] [--seconds S]

What a vehicle must do with the link (control.py has the format):
  - act on `cmd` lines whose seq is newer than the last one acted on (UDP may reorder and lose datagrams); a
    `neutral` with reason=start begins a new run (the runtime restarted), whose seq starts again;
  - on `neutral`, steer straight and stop;
  - when no line of any kind has come for its timeout (default 3 heartbeats, 300 ms), stop by itself: the
    link or the runtime has died, and nobody else can stop the vehicle. Act again on the next `cmd`.
This receiver prints `FAILSAFE` when that happens and `link back` when lines return, counts lost and
reordered datagrams by seq, and ends with a summary on Ctrl-C, SIGTERM or after --seconds.
"""

from __future__ import annotations

import json
import sys
import time

from . import control
from .cli import milliseconds, positive_float
from .errors import UserError

DEFAULT_TIMEOUT_MS = 300.0
TIMEOUT_MS_RANGE = (20.0, 10000.0)  # finite: `inf` silently turned the vehicle's fail-safe off


class Receiver:
    """The vehicle's side: apply(line) for each line received, tick(now) between them; state is the command
    in force (steering, throttle) and whether the fail-safe holds."""

    def __init__(self, timeout_s, log=sys.stderr):
        self.timeout_s, self.log = timeout_s, log
        self.last_seq, self.last_heard = 0, None
        self.steering, self.throttle = 0.0, 0.0
        self.command = {}  # the fields of the command in force ({} at neutral)
        self.failsafe = True  # until the first line: nothing is in control
        self.counts = {"cmd": 0, "neutral": 0, "hb": 0, "malformed": 0, "lost": 0, "late": 0, "failsafe": 0}

    def apply(self, data, now):
        try:
            kind, fields = control.parse_line(data)
        except (ValueError, UnicodeDecodeError):
            self.counts["malformed"] += 1
            return None
        if kind is None:
            self.counts["malformed"] += 1
            return None
        seq = fields.get("seq", 0)
        if kind == "neutral" and fields.get("reason") == "start":  # a runtime (re)started: its seq starts again
            if self.last_seq:
                self._say("a new run began (seq from %d)" % seq)
            self.last_seq = seq - 1
        if self.failsafe and self.last_heard is not None:
            self._say("link back after %.0f ms" % ((now - self.last_heard) * 1000))
        self.last_heard, self.failsafe = now, False  # any line proves the link alive
        if seq <= self.last_seq:  # older than one already acted on: reordered or repeated, not acted on
            self.counts["late"] += 1
            return kind, fields
        if self.last_seq and seq > self.last_seq + 1:
            self.counts["lost"] += seq - self.last_seq - 1
        self.last_seq = seq
        self.counts[kind] += 1
        if kind == "cmd" and "steering" in fields:
            self.steering, self.throttle, self.command = fields["steering"], fields.get("throttle", 0.0), fields
        elif kind == "neutral":
            self.steering, self.throttle, self.command = 0.0, 0.0, {}
        return kind, fields

    def tick(self, now):
        """The vehicle's own fail-safe: True when it has just stopped the vehicle."""
        if not self.failsafe and self.last_heard is not None and now - self.last_heard > self.timeout_s:
            self.failsafe = True
            self.steering, self.throttle, self.command = 0.0, 0.0, {}
            self.counts["failsafe"] += 1
            self._say("FAILSAFE: nothing heard for %.0f ms: stopped (steering 0, throttle 0)"
                      % ((now - self.last_heard) * 1000))
            return True
        return False

    def _say(self, text):
        if self.log is not None:
            print("vehicle: %s" % text, file=self.log, flush=True)

    def summary(self):
        c = self.counts
        return ("%d commands, %d neutral, %d heartbeats; %d lost, %d late, %d malformed; fail-safe %d time(s)"
                % (c["cmd"], c["neutral"], c["hb"], c["lost"], c["late"], c["malformed"], c["failsafe"]))


def add_parser(sub):
    p = sub.add_parser("vehicle", help="the reference receiver of the control link: log commands, enforce the "
                                       "heartbeat (bench tests)")
    p.prog = "python -m runtime vehicle"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--listen", required=True, metavar="URI",
                   help="udp://:PORT (every address), udp://HOST:PORT or serial:///dev/ttyX?baud=N")
    p.add_argument("--timeout-ms", type=milliseconds(*TIMEOUT_MS_RANGE), default=DEFAULT_TIMEOUT_MS,
                   help="stop the vehicle when nothing has come for this long (default %g: 3 heartbeats)"
                        % DEFAULT_TIMEOUT_MS)
    p.add_argument("--jsonl", metavar="FILE", help="write every line received as JSON (with its arrival time)")
    p.add_argument("--seconds", type=positive_float, help="stop after S seconds (default: Ctrl-C or SIGTERM)")
    p.add_argument("--quiet", action="store_true", help="no line per command, only events and the summary")


def main(args):
    from .outputs.base import check_writable
    from .signals import StopRequest

    if args.jsonl:
        check_writable(args.jsonl)
    link = control.open_link(args.listen, listen=True)
    receiver = Receiver(args.timeout_ms / 1000.0)
    out = open(args.jsonl, "w", encoding="utf-8") if args.jsonl else None
    print("vehicle: listening on %s (fail-safe after %.0f ms of silence)" % (args.listen, args.timeout_ms),
          file=sys.stderr, flush=True)
    end = time.monotonic() + args.seconds if args.seconds else None
    try:
        with StopRequest() as stop:
            while not stop.requested and (end is None or time.monotonic() < end):
                data = link.receive(0.05)
                now = time.monotonic()
                if data is not None:
                    got = receiver.apply(data, now)
                    if got is not None and out is not None:
                        out.write(json.dumps(dict(got[1], kind=got[0], received=time.time())) + "\n")
                    if got is not None and got[0] != "hb" and not args.quiet:
                        print(data.decode("ascii", "replace").rstrip(), flush=True)
                receiver.tick(now)
    finally:
        link.close()
        if out is not None:
            out.close()
    print("vehicle: %s" % receiver.summary(), file=sys.stderr)
    if stop.requested:
        return 128 + int(stop.signum or 2)
    if not receiver.last_seq:
        raise UserError("nothing was received on %s" % args.listen)
    return 0
