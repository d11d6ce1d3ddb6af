"""The control link between the runtime and a vehicle: its line format, the links that carry it (UDP, a serial
port), and the safety limits a command passes before it is sent. `runtime run --output udp://|serial://`
sends on it (outputs/control.py), `runtime vehicle` receives it (vehicle.py), `runtime record` reads the
human's steering in the same format (record.py), and synthetic://road?control=... drives the simulated car
from it.

One message is one line of ASCII: a kind, then `key=value` fields separated by spaces, ended by "\\n"; over
UDP one datagram carries one line. Numbers are decimal; t is Unix time in seconds (time.time()).

    cmd seq=41 t=1764201234.567890 steering=-0.125000 inverse_radius=-0.012500 throttle=0.300000
        a steering bundle's result: t is the frame's capture time, steering the bundle's normalised steering
        (right positive, after the clamp and the rate limit), inverse_radius the same in 1/m where the bundle
        says what its unit means, throttle where --throttle configures one
    cmd seq=42 t=1764201234.601234 class=3 label=cat confidence=0.971000
        a classifier's result (label: its name, spaces replaced by _)
    neutral seq=43 t=1764201234.900000 steering=0.000000 throttle=0.000000 reason=watchdog
        the safe command: steering straight, throttle 0; reason is start, watchdog or stop
    hb seq=44 t=1764201235.000000 state=ok
        the heartbeat, every --heartbeat-ms whatever else is sent; state is ok, or failsafe while the
        watchdog holds the vehicle at neutral. A receiver that hears nothing (no line of any kind) for
        its own timeout (3 heartbeats is a sound choice) should stop the vehicle itself: the link is dead.

seq increases by one with every line sent, so a receiver sees a lost or reordered datagram. A reading for
`runtime record` (the human's steering, from a UDP sender or a serial line) is the same format with no kind:

    t=1764201234.567 steering=-0.12 throttle=0.30          (t optional: the time it arrives)
"""

from __future__ import annotations

import math
import socket
import time
from urllib.parse import parse_qs, urlsplit

from .errors import UserError, require

KINDS = ("cmd", "neutral", "hb")
DEFAULT_BAUD = 115200


# -- the line format: one place that writes it and one that reads it -------------------------------------------
def format_line(kind, fields):
    """One line, kind first, then the fields in their order; floats with six decimals (t: to the microsecond)."""
    parts = [kind] if kind else []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = "%.6f" % value
        parts.append("%s=%s" % (key, str(value).replace(" ", "_")))
    return (" ".join(parts) + "\n").encode("ascii", "replace")


def parse_line(data):
    """(kind or None, {key: value}) of one line; numbers become float (seq int). ValueError for anything else."""
    text = data.decode("ascii").strip() if isinstance(data, bytes) else data.strip()
    if not text:
        raise ValueError("an empty line")
    words = text.split()
    kind = None
    if "=" not in words[0]:
        kind = words.pop(0)
        if kind not in KINDS:
            raise ValueError("unknown kind %r" % kind)
    fields = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError("%r is not key=value" % word)
        if key == "seq":
            fields[key] = int(value)
        elif key in ("state", "reason", "label"):
            fields[key] = value
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError("%s is not a finite number" % key)
            fields[key] = number
    return kind, fields


def parse_reading(data, received=None):
    """(t, steering, throttle or None) of a reading line; t defaults to when it was received."""
    kind, fields = parse_line(data)
    if "steering" not in fields:
        raise ValueError("no steering=")
    t = fields.get("t", received if received is not None else time.time())
    return t, fields["steering"], fields.get("throttle")


# -- links ------------------------------------------------------------------------------------------------------
def split(uri):
    """urlsplit, with a URI it cannot read (an unclosed [ of an IPv6 address) as a one-line UserError."""
    try:
        return urlsplit(uri)
    except ValueError as exc:
        raise UserError("%s: %s" % (uri, exc)) from None


def port_number(text):
    """A port as a URI gives it, 1 to 65535 in ASCII digits; None for anything else. The one parser of ports
    (udp://, http://, rtp://, rtsp://): int() takes '²'-like digits of other scripts (or raises on them), '+80' and
    ' 80', and urlsplit's .port does what the Python version does."""
    if not isinstance(text, str) or not 0 < len(text) <= 5 or any(c not in "0123456789" for c in text):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def port_text(netloc):
    """The port part of a URI's netloc (user@host:port, [v6]:port), '' when there is none."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        rest = hostport.partition("]")[2]
        return rest[1:] if rest.startswith(":") else ""
    return hostport.rpartition(":")[2] if ":" in hostport else ""


def split_uri(uri, listen):
    """(scheme, host, port or device, baud) of udp://HOST:PORT, udp://:PORT (to listen) or
    serial:///dev/ttyX?baud=N; UserError in one line otherwise."""
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme == "udp":
        parts = split(uri)
        port = port_number(port_text(parts.netloc))
        host = parts.hostname or ""
        if not port:
            raise UserError("%s: give udp://HOST:PORT%s" % (uri, " (or udp://:PORT to listen on every address)"
                                                           if listen else ", as in udp://192.168.1.20:5005"))
        if not listen and not host:
            raise UserError("%s: give the vehicle's address, as in udp://192.168.1.20:%d" % (uri, port))
        return "udp", host or ("0.0.0.0" if listen else ""), port, None
    if scheme == "serial":
        parts = split(uri)
        query = parse_qs(parts.query)
        baud = query.get("baud", [str(DEFAULT_BAUD)])[0]
        if (not parts.path or not (baud.isascii() and baud.isdigit()) or len(baud) > 8 or int(baud) <= 0
                or set(query) - {"baud"}):  # ASCII digits: '²'.isdigit() is True, and int('٨٠') is 80
            raise UserError("%s: give serial:///dev/ttyX?baud=N (N: the baud rate, default %d)" % (uri, DEFAULT_BAUD))
        return "serial", None, parts.path, int(baud)
    raise UserError("%s: a control link is udp://HOST:PORT or serial:///dev/ttyX?baud=N" % uri)


class LinkDown(UserError):
    """The link cannot carry anything any more (a serial adapter unplugged)."""


class UdpLink:
    """Lines as UDP datagrams: sent to HOST:PORT, or received on :PORT (listen=True). HOST is resolved once, here:
    a send never waits on a name lookup. Anyone who can reach the port can send on it (it is a bench and LAN
    link, not an authenticated one)."""

    def __init__(self, host, port, listen):
        try:
            family, _, _, _, self.address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise UserError("udp://%s:%d: cannot resolve %s (%s)" % (host, port, host, exc)) from None
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        if listen:
            try:
                self.sock.bind(self.address)
            except OSError as exc:
                self.sock.close()
                raise UserError("cannot listen on udp://%s:%d: %s" % (host, port, exc.strerror or exc)) from None

    def send(self, line):
        try:
            self.sock.sendto(line, self.address)
        except OSError:  # nobody listening, the network down: a datagram link loses it, as UDP does
            return False
        return True

    def receive(self, timeout):
        """One line, or None after timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(4096)
        except (socket.timeout, BlockingIOError):
            return None
        return data

    def close(self):
        self.sock.close()


class SerialLink:
    """Lines over a serial port (pyserial). A send never waits: when the port has not yet sent what was written
    before (a baud rate too low for the lines), that stale backlog is dropped first, so the vehicle gets the newest
    command, not one from seconds ago; a write that cannot go out within 50 ms is dropped. A port that is gone
    (unplugged) raises LinkDown."""

    WRITE_TIMEOUT = 0.05
    STALE_BYTES = 256  # more than this still waiting to go out: the lines in it are stale
    MAX_LINE = 4096

    def __init__(self, device, baud):
        serial = require("serial", "vehicle", "serial:// (pyserial)")
        try:
            self.port = serial.Serial(device, baud, timeout=0.1, write_timeout=self.WRITE_TIMEOUT)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise UserError("cannot open serial://%s: %s" % (device, exc)) from None
        self.device, self.serial = device, serial
        self.buffer = b""
        self.stale = 0  # backlogs dropped

    def send(self, line):
        try:
            if self.port.out_waiting > self.STALE_BYTES:
                self.port.reset_output_buffer()
                self.stale += 1
            self.port.write(line)
        except self.serial.SerialTimeoutException:
            return False
        except (self.serial.SerialException, OSError) as exc:
            raise LinkDown("serial://%s stopped: %s" % (self.device, exc)) from None
        return True

    def receive(self, timeout):
        """One line (a partial one waits for its end), or None after timeout seconds (0: what has come)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            try:
                waiting = self.port.in_waiting
                if waiting:
                    self.buffer += self.port.read(waiting)
                elif deadline > time.monotonic():
                    self.port.timeout = min(deadline - time.monotonic(), 0.1)
                    self.buffer += self.port.read(1)
                else:
                    return None
            except (self.serial.SerialException, OSError) as exc:
                raise LinkDown("serial://%s stopped: %s" % (self.device, exc)) from None
            if len(self.buffer) > self.MAX_LINE and b"\n" not in self.buffer:
                self.buffer = b""  # no line ends: noise, not a line
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def close(self):
        self.port.close()


def open_link(uri, listen=False):
    scheme, host, where, baud = split_uri(uri, listen)
    return UdpLink(host, where, listen) if scheme == "udp" else SerialLink(where, baud)


# -- the safety limits -------------------------------------------------------------------------------------------
class Limits:
    """Steering clamped to [-limit, limit] and changed by at most `rate` a second. It starts from neutral (0) at
    reset(now) (the neutral sent at the start, and the watchdog's), so control ramps in; the first call
    without a reset before it stays at neutral."""

    def __init__(self, limit=1.0, rate=None):
        if not limit > 0:
            raise UserError("--steering-limit must be more than 0")
        if rate is not None and not rate > 0:
            raise UserError("--steering-rate must be more than 0")
        self.limit, self.rate = limit, rate
        self.last, self.when = 0.0, None

    def __call__(self, steering, now):
        wanted = max(-self.limit, min(self.limit, steering))
        if self.rate is not None:
            step = self.rate * max(0.0, now - self.when) if self.when is not None else 0.0
            wanted = max(self.last - step, min(self.last + step, wanted))
        self.last, self.when = wanted, now
        return wanted

    def reset(self, now):
        self.last, self.when = 0.0, now
