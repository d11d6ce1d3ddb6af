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
import sys
import threading
import time

from ..errors import UserError
from ..outputs.base import Output, OutputStopped, free_bytes
from . import link as control
from . import tub
from .joystick import Joystick

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
            if self.writer.closed or self.limit is not None and self.writer.written >= self.limit:
                self.pending.clear()  # a write failed (the tub is whole up to it), or --max-frames are stored
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


class TubOutput(Output):
    """The tub as one of run()'s outputs, fed by the human's readings: each frame is held until its reading may
    have come (Recorder), then stored with it. The recording stops, every record up to there complete, when
    the disk holding the tub has less than min_free_mb left or the readings' link is lost (OutputStopped:
    run() closes every output and says why); it is finished once `limit` records are stored. Closing waits
    briefly for a last reading, matches what is pending and closes the tub."""

    def __init__(self, folder, readings, match_s, quality, limit=None, min_free_mb=DEFAULT_MIN_FREE_MB, shown=None):
        self.folder, self.shown, self.readings, self.match_s = folder, shown or folder, readings, match_s
        self.min_free, self.min_free_mb, self.limit = min_free_mb * (1 << 20), min_free_mb, limit
        self.writer = tub.TubWriter(folder)
        self.recorder = Recorder(self.writer, readings, match_s, quality, limit)
        self.closed = False

    def write(self, frame, result=None, annotated=None):
        if free_bytes(self.folder) < self.min_free:
            raise OutputStopped("the disk holding %s has less than %g MB left: stopped, every record up to here is "
                                "complete" % (self.shown, self.min_free_mb))
        self.recorder.add(frame)
        self.writer.flush_if_due()  # records wait at most FLUSH_S in memory, even when none are added
        if self.readings.error is not None:
            raise OutputStopped("%s: stopped, every record up to here is complete" % self.readings.error)

    @property
    def finished(self):
        return self.limit is not None and self.writer.written >= self.limit

    def close(self):
        """Settle what is pending and close the tub (while a second Ctrl-C or SIGTERM still stops it cleanly:
        tub.py); nothing when closed already. A write that fails raises OSError, with the tub whole."""
        if self.closed:
            return
        self.closed = True
        time.sleep(min(self.match_s, 0.2) if self.recorder.pending else 0.0)  # a last reading may come
        try:
            self.recorder.settle(final=True)
        finally:
            self.writer.close()
