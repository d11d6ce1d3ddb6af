"""python -m runtime record: record driving for training: camera frames with the human's steering (and
throttle), as a DonkeyCar tub v2 (tub.py) that `python -m train --data drivelog:DIR` reads as it is.

    python -m runtime record --source csi://0 --steering-from udp://:6000 --out tubs/monday
    python -m runtime record --source /dev/video0 --steering-from serial:///dev/ttyACM0?baud=115200 --out tubs/m
    python -m runtime record --source csi://0 --steering-from joystick:///dev/input/event2 --out tubs/m

Where the steering comes from:
    udp://:PORT                   one datagram per reading: `t=UNIX_SECONDS steering=S throttle=T` (control.py;
                                  t in the sender's clock, so keep the clocks in step (chrony), or leave t
                                  out and the arrival time is used; throttle optional)
    serial:///dev/ttyX?baud=N     the same line, one per reading (pyserial: the `vehicle` extra)
    joystick:///dev/input/eventN[?steering=ABS_X&throttle=ABS_RY]
                                  a gamepad through evdev (Linux; the `joystick` extra): steering from the
                                  left stick's x axis, throttle from the right stick's y axis (up is forward)
                                  by default; any absolute axis by its evdev name. A stick held still sends
                                  nothing, so its position is read out as a reading every 10 ms
Each frame keeps its capture time and is stored with the reading nearest to it in time when that is within
--match-ms (default 50); a frame with none is counted, not stored. A frame waits --match-ms for a later
reading before it is matched. Ctrl-C or SIGTERM stops it with everything written; it stops by itself, and
says so, when the disk has less than --min-free-mb left. Recording into a folder that holds a tub resumes it.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from urllib.parse import parse_qs

from . import control
from .cli import add_link_options, add_max_image_pixels, link_security, lost_for_good, milliseconds, positive_float, \
    positive_int
from .errors import UserError, require

DEFAULT_MATCH_MS = 50.0
MATCH_MS_RANGE = (1.0, 1000.0)  # finite: `inf` kept every frame (391 MB in 2.5 s), matched to any old reading
DEFAULT_MIN_FREE_MB = 64.0
KEEP_S = 10.0  # readings kept for matching
MAX_READINGS = 10000  # and at most this many (a sender whose clock runs ahead must not grow them)
JOYSTICK_EVERY_S = 0.01


class Readings:
    """The human's readings, received in a thread of their own: (t, steering, throttle) of the last KEEP_S."""

    def __init__(self, spec, security=control.NO_SECURITY):
        self.spec = spec
        self.items = collections.deque(maxlen=MAX_READINGS)
        self.lock = threading.Lock()
        self.count, self.malformed, self.refused = 0, 0, 0  # refused: unsigned, forged or replayed (--link-key)
        self.key, self.newest_ts = security.key, security.newest()
        self.stopping = False
        self.error = None
        scheme = spec.partition("://")[0].lower() if "://" in spec else ""
        if scheme == "joystick":
            self.link, self.joystick = None, Joystick(spec)
        else:
            if scheme not in ("udp", "serial"):
                raise UserError("--steering-from %s: give udp://:PORT, serial:///dev/ttyX?baud=N or "
                                "joystick:///dev/input/eventN" % spec)
            self.link, self.joystick = control.open_link(spec, listen=True, security=security, log=sys.stderr), None
        self.thread = threading.Thread(target=self._receive, name="readings", daemon=True)
        self.thread.start()

    def _receive(self):
        try:
            if self.joystick is not None:
                while not self.stopping:
                    self._add(self.joystick.read(JOYSTICK_EVERY_S))
                return
            while not self.stopping:
                data = self.link.receive(0.1)
                if data is None:
                    continue
                try:
                    reading = control.parse_reading(data, received=time.time())
                except ValueError:
                    self.malformed += 1
                    continue
                if self.key is not None:
                    verdict, ts = control.authenticate(data, self.key, self.newest_ts.value, time.time() * 1e6)
                    if verdict is not None:
                        self.refused += 1
                        continue
                    self.newest_ts.accept(ts)
                self._add(reading)
        except UserError as exc:  # the port or the device gone: the recording stops, saying why
            self.error = exc

    def _add(self, reading):
        with self.lock:
            self.items.append(reading)
            self.count += 1
            while self.items and self.items[0][0] < time.time() - KEEP_S:
                self.items.popleft()

    def newest(self):
        with self.lock:
            return self.items[-1][0] if self.items else None

    def nearest(self, t, tolerance):
        """The reading nearest in time to t, if within tolerance seconds; else None."""
        best = None
        with self.lock:
            for reading in reversed(self.items):
                if reading[0] < t - tolerance:
                    break
                if abs(reading[0] - t) <= tolerance and (best is None or abs(reading[0] - t) < abs(best[0] - t)):
                    best = reading
        return best

    def close(self):
        self.stopping = True
        self.thread.join(1.0)
        if self.link is not None:
            self.link.close()
        if self.newest_ts is not None:
            self.newest_ts.close()
        if self.joystick is not None:
            self.joystick.close()


class Joystick:
    """A gamepad's absolute axes through evdev, each scaled to -1..1 by the range the device reports; read()
    gives the sticks' position now (a stick held still sends no event)."""

    def __init__(self, spec):
        parts = control.split(spec)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        evdev = require("evdev", "joystick", "joystick:// (evdev)")
        codes = evdev.ecodes.ecodes
        self.names = {"steering": query.pop("steering", "ABS_X"), "throttle": query.pop("throttle", "ABS_RY")}
        if query or not parts.path:
            raise UserError("--steering-from %s: give joystick:///dev/input/eventN[?steering=ABS_X&throttle=ABS_RY]"
                            % spec)
        for name in self.names.values():
            if not name.startswith("ABS_") or name not in codes:
                raise UserError("--steering-from %s: %s is not an evdev axis name (ABS_X, ABS_Y, ABS_RX, ABS_RY, "
                                "ABS_Z, ABS_RZ, ...)" % (spec, name))
        if self.names["steering"] == self.names["throttle"]:
            raise UserError("--steering-from %s: steering and throttle need two axes" % spec)
        try:
            self.device = evdev.InputDevice(parts.path)
            self.axes, self.values = {}, {}  # evdev code -> (role, minimum, maximum); role -> -1..1
            for role, name in self.names.items():
                info = self.device.absinfo(codes[name])
                self.axes[codes[name]] = (role, info.min, info.max)
                self.values[role] = self._scaled(role, info.value, info.min, info.max)
        except OSError as exc:
            raise UserError("cannot read %s: %s (is the user in the input group? does it have %s?)"
                            % (parts.path, exc.strerror or exc, " and ".join(self.names.values()))) from None
        self.evdev, self.path = evdev, parts.path

    @staticmethod
    def _scaled(role, value, low, high):
        scaled = 2.0 * (value - low) / float(high - low) - 1.0 if high > low else 0.0
        return -scaled if role == "throttle" else scaled  # throttle: up is forward

    def read(self, wait):
        """(now, steering, throttle) after up to `wait` seconds of the device's events."""
        import select

        try:
            if select.select([self.device.fd], [], [], wait)[0]:
                for event in self.device.read():
                    if event.type == self.evdev.ecodes.EV_ABS and event.code in self.axes:
                        role, low, high = self.axes[event.code]
                        self.values[role] = self._scaled(role, event.value, low, high)
        except BlockingIOError:
            pass
        except OSError as exc:  # unplugged, or a wireless pad gone to sleep
            raise UserError("the joystick %s stopped: %s" % (self.path, exc.strerror or exc)) from None
        return time.time(), self.values["steering"], self.values["throttle"]

    def close(self):
        self.device.close()


def add_parser(sub):
    from .sources import DEFAULT_RECONNECT_TIMEOUT

    p = sub.add_parser("record", help="record camera frames with the human's steering as a DonkeyCar tub, for "
                                      "python -m train --data drivelog:DIR")
    p.prog = "python -m runtime record"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--source", "--input", dest="source", required=True,
                   help="a camera URI, as runtime run takes (csi://0, /dev/video0, rtsp://..., synthetic://road)")
    p.add_argument("--steering-from", required=True, metavar="SPEC",
                   help="udp://:PORT, serial:///dev/ttyX?baud=N or joystick:///dev/input/eventN")
    p.add_argument("--out", required=True, metavar="DIR", help="the tub (a new folder, or a tub to add to)")
    add_link_options(p, receiving=True)
    p.add_argument("--match-ms", type=milliseconds(*MATCH_MS_RANGE), default=DEFAULT_MATCH_MS,
                   help="store a frame with the reading nearest in time within this (default %g; %g to %g)"
                        % ((DEFAULT_MATCH_MS,) + MATCH_MS_RANGE))
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames stored")
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after S seconds")
    p.add_argument("--min-free-mb", type=positive_float, default=DEFAULT_MIN_FREE_MB,
                   help="stop when the disk has less than this left (default %g)" % DEFAULT_MIN_FREE_MB)
    p.add_argument("--quality", type=positive_int, default=90, help="JPEG quality (default 90)")
    p.add_argument("--input-width", type=positive_int, metavar="W")
    p.add_argument("--input-height", type=positive_int, metavar="H")
    p.add_argument("--input-rate", type=positive_float, metavar="FPS", help="frame rate of synthetic://road")
    add_max_image_pixels(p)  # a folder or glob of images as the source
    p.add_argument("--reconnect-timeout", type=positive_float, default=DEFAULT_RECONNECT_TIMEOUT, metavar="S")


class Recorder:
    """Frames in, matched records out: add(frame) holds a frame until a reading after it may have come."""

    def __init__(self, writer, readings, match_s, quality, limit=None):
        import cv2

        self.cv2, self.writer, self.readings = cv2, writer, readings
        self.match_s, self.quality, self.limit = match_s, quality, limit
        self.pending = collections.deque()
        self.unmatched = 0

    def add(self, frame):
        self.pending.append(frame)
        self.settle()

    def settle(self, final=False):
        """Match the frames whose window has closed: a reading after it came, or match_s (and a little) passed."""
        newest, now = self.readings.newest(), time.time()
        while self.pending:
            if self.limit is not None and self.writer.written >= self.limit:
                self.pending.clear()  # --max-frames stored: the rest are not wanted
                return
            t = self.pending[0].timestamp
            if not (final or now > t + self.match_s * 1.5 or (newest is not None and newest >= t + self.match_s)):
                break
            frame = self.pending.popleft()
            reading = self.readings.nearest(t, self.match_s)
            if reading is None:
                self.unmatched += 1
                continue
            ok, jpeg = self.cv2.imencode(".jpg", frame.image, [self.cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise UserError("cannot encode frame %d as JPEG" % frame.index)
            self.writer.add(jpeg.tobytes(), reading[1], reading[2], t * 1000.0)


def main(args):
    from .outputs.base import free_bytes
    from .pipeline import READER_WAIT_S, STOP_WAIT_S, Capture
    from .signals import StopRequest
    from .sources import open_source
    from . import tub

    if not 1 <= args.quality <= 100:
        raise UserError("--quality must be 1 to 100")
    if (args.input_width is None) != (args.input_height is None):
        raise UserError("give --input-width and --input-height together")
    folder = os.path.abspath(args.out)
    tub.check(folder)
    min_free = args.min_free_mb * (1 << 20)
    if free_bytes(os.path.dirname(folder)) < min_free:
        raise UserError("the disk holding %s has less than %g MB left (--min-free-mb)" % (args.out, args.min_free_mb))
    security = link_security(args)
    readings, source = Readings(args.steering_from, security), None
    try:
        source = open_source(args.source, args.input_width, args.input_height, args.input_rate,
                             reconnect_timeout=args.reconnect_timeout, link=security)
        writer = tub.TubWriter(folder)
    except BaseException:
        readings.close()
        if source is not None:
            source.close()
        raise
    if writer.resumed_at:
        print("record: adding to the tub in %s after its %d records" % (args.out, writer.resumed_at), file=sys.stderr)
    recorder = Recorder(writer, readings, args.match_ms / 1000.0, args.quality, args.max_frames)
    print("record: %s with steering from %s into %s (Ctrl-C stops)" % (source.uri, args.steering_from, args.out),
          file=sys.stderr, flush=True)
    stop, stopped = StopRequest(), None
    end = time.monotonic() + args.seconds if args.seconds else None

    def should_stop():  # Ctrl-C, SIGTERM or --seconds: honoured within a second, whatever the source does
        return stop.requested or (end is not None and time.monotonic() >= end)

    capture = Capture(source, newest_wins=source.live, stop=should_stop)
    try:
        with source, stop:
            capture.start()
            while not should_stop():
                if args.max_frames and writer.written >= args.max_frames:
                    break
                if free_bytes(folder) < min_free:
                    stopped = ("the disk holding %s has less than %g MB left: stopped, every record up to here is "
                               "complete" % (args.out, args.min_free_mb))
                    break
                frame = capture.get()
                if frame is None:
                    break
                recorder.add(frame)
                writer.flush_if_due()  # records wait at most FLUSH_S in memory, even when none are added
                if readings.error is not None:
                    stopped = "%s: stopped, every record up to here is complete" % readings.error
                    break
            capture.stop(STOP_WAIT_S if stop.requested else READER_WAIT_S)
            time.sleep(min(args.match_ms / 1000.0, 0.2) if recorder.pending else 0.0)  # a last reading may come
            recorder.settle(final=True)
            writer.close()  # while a second Ctrl-C or SIGTERM still stops it cleanly (tub.py)
    except OSError as exc:  # the disk filled between the check and a write: the tub is whole, as tub.py leaves it
        stopped = "cannot write %s: %s: stopped, every flushed record is complete" % (args.out, exc.strerror or exc)
    finally:
        capture.stop(STOP_WAIT_S)  # nothing to wait for when stopped above
        readings.close()
        try:
            writer.close()  # closed already, unless an error is on its way: then what it holds goes to the disk
        except OSError:
            pass
    print("recorded %d frames into %s (%d records in all); %d frame(s) had no reading within %g ms; %d reading(s)%s%s%s"
          % (writer.written, args.out, writer.index, recorder.unmatched, args.match_ms, readings.count,
             ", %d malformed" % readings.malformed if readings.malformed else "",
             ", %d refused (unsigned, forged or replayed)" % readings.refused if readings.refused else "",
             ", %d stale frame(s) dropped" % capture.dropped if capture.dropped else ""))
    if stopped:
        raise UserError(stopped)
    if stop.requested:
        return 128 + int(stop.signum or 2)
    if source.lost:
        return lost_for_good("python -m runtime record", source.lost, "every record is complete")
    if readings.count == 0:
        raise UserError("no steering reading came from %s: is the sender pointed at this machine?" % args.steering_from)
    return 0
