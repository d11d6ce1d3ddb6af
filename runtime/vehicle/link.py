"""The control link between the runtime and a vehicle: its line format, the links that carry it (UDP, a serial
port), how a line is signed and checked, and the safety limits a command passes before it is sent.
`runtime run --output udp://|serial://` sends on it (outputs/control.py), `runtime vehicle` receives it
(vehicle.py), `runtime record` reads the human's steering in the same format (record.py), and
synthetic://road?control=... drives the simulated car from it. runtime/mcu/receiver.py is the same receiver
for a microcontroller, and tests/runtime/data/link_vectors.json holds lines both must judge alike.

One message is one line of printable ASCII: a kind, then `key=value` fields separated by single spaces, ended
by "\\n"; over UDP one datagram carries one line, at most MAX_LINE bytes. Numbers are decimal (`-12.5`: no
exponent); t is Unix time in seconds. Version 2 of the format (v=2) adds fields a version 1 receiver reads
as numbers, so it still reads an unkeyed line:

    cmd seq=41 t=1764201234.567890 steering=-0.125000 inverse_radius=-0.012500 throttle=0.300000 v=2 session=2841913007
        a steering bundle's result: t is the frame's capture time, steering the bundle's normalised steering
        (right positive, after the clamp and the rate limit), inverse_radius the same in 1/m where the bundle
        says what its unit means, throttle where --throttle configures one
    cmd seq=42 t=1764201234.601234 class=3 label=cat confidence=0.971000 v=2 session=2841913007
        a classifier's result (label: its name, spaces replaced by _, at most 64 characters)
    neutral seq=43 t=1764201234.900000 steering=0.000000 throttle=0.000000 reason=watchdog v=2 session=2841913007
        the safe command: steering straight, throttle 0; reason is start (the run's first line), waiting (no
        result yet), watchdog (no fresh result for --watchdog-ms), invalid (the network's outputs are NaN or
        infinite) or stop (the run's last line)
    hb seq=44 t=1764201235.000000 state=ok v=2 session=2841913007
        the heartbeat, every --heartbeat-ms whatever else is sent; state is ok, or failsafe while the
        watchdog holds the vehicle at neutral

session is drawn at random for each run, and seq grows by one with every line of the session. On a keyed link
(--link-key FILE, the same 32-byte key at both ends) every line ends with two more fields:

    ... v=2 session=2841913007 ts=1764201234901532 sig=5d8e3c0a6b41f2e79a0d3c6e1b2f4a58
        ts: when it was sent, in microseconds since 1970, growing with every line the sender sends;
        sig: the first 16 bytes, in hex, of HMAC-SHA256(key, the line's bytes before " sig=")

as MAVLink 2 signs its messages. A receiver follows one session at a time, acts only on lines newer in seq (and
on a keyed link in ts) than the last it accepted, and keeps the newest ts across runs on disk: Receiver in
vehicle.py has the rules. A reading for `runtime record` (the human's steering, from a UDP sender or a serial
line) is the same format with no kind, and on a keyed link the same v, session, seq, ts and sig:

    t=1764201234.567 steering=-0.12 throttle=0.30          (t optional: the time it arrives)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import socket
import stat
import tempfile
import time
from urllib.parse import parse_qs

from ..errors import UserError, printable, require
from ..images import open_regular
from ..uri import port_number, port_text, split

KINDS = ("cmd", "neutral", "hb")
VERSION = 2
DEFAULT_BAUD = 115200
MAX_LINE = 512  # bytes, "\n" included: a datagram longer than this (or cut short by the buffer) is not a line
TEXT_KEYS = ("reason", "state", "label", "sig")
INTEGER_KEYS = ("seq", "v", "session", "ts")
MAX_TEXT = 64
_KEY = re.compile(r"[a-z_]{1,32}\Z")
_INTEGER = re.compile(r"[0-9]{1,20}\Z")
_NUMBER = re.compile(r"(?=.{1,24}\Z)-?[0-9]+(\.[0-9]+)?\Z")  # 24 characters at most; no exponent, _, +, inf, nan
_TEXT = re.compile(r"[!-~]{1,%d}\Z" % MAX_TEXT)
_SIG = re.compile(r"[0-9a-f]{32}\Z")
_HEX_KEY = re.compile(rb"[0-9a-fA-F]{64}\Z")
KEY_BYTES = 32
TAG_BYTES = 16
CLOCK_WINDOW_S = 60.0  # a keyed line's ts against the receiver's clock, either way (MAVLink 2 allows a minute)


# -- the line format: one place that writes it and one that reads it -------------------------------------------
def format_line(kind, fields):
    """One line, kind first, then the fields in their order; floats with six decimals (t: to the microsecond);
    text as printable ASCII without spaces, at most MAX_TEXT characters."""
    parts = [kind] if kind else []
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = "%.6f" % value
        elif not isinstance(value, int):
            value = "".join(c if "!" <= c <= "~" else "_" for c in str(value))[:MAX_TEXT] or "_"
        parts.append("%s=%s" % (key, value))
    return (" ".join(parts) + "\n").encode("ascii")


def parse_line(data):
    """(kind or None, {key: value}) of one line (bytes, "\\n" at its end optional); numbers become float,
    seq, v, session and ts int, reason, state, label and sig stay text. ValueError for anything that is not
    exactly the format: a line too long, a byte that is not printable ASCII, an unknown kind, a key twice, a
    number spelled any other way (1e308, 1_000, +1, inf)."""
    if isinstance(data, str):
        data = data.encode("ascii")
    if len(data) > MAX_LINE:
        raise ValueError("longer than %d bytes" % MAX_LINE)
    body = data[:-1] if data.endswith(b"\n") else data
    if not body:
        raise ValueError("an empty line")
    if any(not 0x20 <= byte <= 0x7E for byte in body):
        raise ValueError("a byte that is not printable ASCII")
    words = body.decode("ascii").split(" ")
    kind = None
    if words and "=" not in words[0]:
        kind = words.pop(0)
        if kind not in KINDS:
            raise ValueError("unknown kind %r" % kind)
    if not words:
        raise ValueError("a kind and no fields")
    fields = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not _KEY.match(key) or key in fields:
            raise ValueError("%r is not key=value (or its key came before)" % word[:40])
        if key in INTEGER_KEYS:
            if not _INTEGER.match(value):
                raise ValueError("%s is not a whole number" % key)
            fields[key] = int(value)
            if key in ("seq", "session") and not 0 < fields[key] < 2 ** (32 if key == "session" else 64):
                raise ValueError("%s is out of its range" % key)
        elif key in TEXT_KEYS:
            if not (_SIG if key == "sig" else _TEXT).match(value):
                raise ValueError("%s is not %s" % (key, "32 hex digits" if key == "sig" else "short text"))
            fields[key] = value
        else:
            if not _NUMBER.match(value):
                raise ValueError("%s is not a decimal number" % key)
            fields[key] = float(value)
    return kind, fields


def parse_reading(data, received=None):
    """(t, steering, throttle or None) of a reading line; t defaults to when it was received."""
    kind, fields = parse_line(data)
    if kind is not None or "steering" not in fields:
        raise ValueError("no steering=")
    t = fields.get("t", received if received is not None else time.time())
    return t, fields["steering"], fields.get("throttle")


# -- keys and signatures -----------------------------------------------------------------------------------------
class LinkNeedsKey(UserError):
    """A UDP link beyond the loopback without --link-key or --insecure-link. Restarting cannot fix it, so a
    systemd unit (installed before links were keyed) is not restarted for it: cli.main exits 0 there."""

    restart_cannot_fix = True


def read_key(path):
    """The 32-byte key of a key file: 64 hex digits (`python -m runtime keygen FILE` writes one). The file must
    be the user's own secret: no access for the group or others (chmod 600), as ssh asks of its keys."""
    name = printable(path)
    try:
        with open_regular(path) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read(4 * KEY_BYTES + 2)
    except OSError as exc:
        raise UserError("--link-key %s: %s" % (name, exc.strerror or exc)) from None
    if stat.S_IMODE(mode) & 0o077:
        raise UserError("--link-key %s: others can read it (mode %03o): chmod 600 %s" % (name, stat.S_IMODE(mode),
                                                                                         name))
    text = text.strip()
    key = bytes.fromhex(text.decode("ascii")) if _HEX_KEY.match(text) else b""  # exactly the digits, as mcu/ reads
    if len(key) != KEY_BYTES:
        raise UserError("--link-key %s: not a key (a key file holds %d hex digits: python -m runtime keygen FILE "
                        "makes one)" % (name, 2 * KEY_BYTES))
    return key


def write_key(path):
    """A new key file (mode 0600, never over an existing file); its path."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError("%s exists: a key is not replaced (both ends of the link hold it); remove it first"
                        % printable(path)) from None
    except OSError as exc:
        raise UserError("cannot write %s: %s" % (printable(path), exc.strerror or exc)) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def tag(key, body):
    """The sig field: the first TAG_BYTES of HMAC-SHA256(key, body), in lowercase hex."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:2 * TAG_BYTES]


def signature(data, key):
    """(verdict, ts) of a line on a keyed link: verdict None when its tag is right, else "unsigned" (no ts and
    sig at its end) or "forged"."""
    body, sep, rest = data.rstrip(b"\n").rpartition(b" sig=")
    stamp = body.rpartition(b" ")[2]
    if not sep or b" " in rest or not stamp.startswith(b"ts="):  # ts, then sig, last
        return "unsigned", None
    if not hmac.compare_digest(tag(key, body).encode("ascii"), rest):
        return "forged", None
    return None, int(stamp[3:])


def authenticate(data, key, newest, clock_us):
    """(verdict, ts) of a line on a keyed link: verdict None when it may be accepted, else "unsigned", "forged",
    "replayed" (ts at or below newest, the newest ts accepted) or "clock" (ts more than CLOCK_WINDOW_S from
    clock_us, this machine's time in microseconds; None for a receiver without a clock)."""
    verdict, ts = signature(data, key)
    if verdict is None and ts <= newest:
        verdict = "replayed"
    if verdict is None and clock_us is not None and abs(ts - clock_us) > CLOCK_WINDOW_S * 1e6:
        verdict = "clock"
    return verdict, ts


class Sender:
    """What every line a run sends carries: v=2, the run's random session and its seq; on a keyed link, ts
    (microseconds, growing with every line) and sig last. ts is the wall clock at the run's start carried on by
    the monotonic clock, so a clock stepped back during the run (NTP correcting it) does not make the receiver
    see old lines (`stale`, vehicle.py)."""

    def __init__(self, key=None):
        self.key = key
        self.session = secrets.randbelow(2 ** 32 - 1) + 1
        self.seq = 0
        self.ts = 0
        self.anchor_us = time.time() * 1e6 - time.monotonic() * 1e6

    def line(self, kind, fields):
        if kind is None and self.key is None:  # an unkeyed reading stays as any sensor sends it
            return format_line(None, fields)
        self.seq += 1
        text = format_line(kind, dict({"seq": self.seq}, **fields, v=VERSION, session=self.session))
        if self.key is None:
            return text
        self.ts = max(self.ts + 1, int(self.anchor_us + time.monotonic() * 1e6))
        body = text[:-1] + b" ts=%d" % self.ts
        return body + b" sig=" + tag(self.key, body).encode("ascii") + b"\n"


class Newest:
    """The newest ts a keyed receiver has accepted, kept on disk across runs so that nothing at or below it acts
    again (a replay after a restart). Written when it has grown by PERSIST_US since the last write, and at
    close; so on start, what may have been accepted after the last write is refused too (stored + PERSIST_US)."""

    PERSIST_US = 1000000

    def __init__(self, path=None):
        self.path = path  # None: kept in memory only
        self.value = self.saved = 0
        if path is None:
            return

        try:
            with open_regular(path) as handle:
                text = handle.read(32).decode("ascii").strip()
        except FileNotFoundError:
            text = None
        except (OSError, UnicodeDecodeError) as exc:  # a FIFO, a folder, no permission
            raise UserError("--link-state %s: %s" % (printable(path), getattr(exc, "strerror", None) or exc)) from None
        if text is not None:
            if not _INTEGER.match(text):
                raise UserError("--link-state %s: not a timestamp (remove it to start again, which lets lines of the "
                                "last minute be replayed once)" % printable(path))
            # what was accepted after the last write (less than PERSIST_US past it) is refused too; the first line
            # accepted is written at once, since it is more than PERSIST_US past what the disk holds
            self.saved = int(text)
            self.value = self.saved + self.PERSIST_US
        self.folder = os.path.dirname(os.path.abspath(path))
        if not os.access(self.folder, os.W_OK):  # an error at the start, not after the first line
            raise UserError("--link-state %s: cannot write in %s" % (printable(path), printable(self.folder)))
        self.lock = self._lock(path)
        # nothing is written until a line is accepted: a receiver restarted in a loop must not push the stored
        # value past the senders' clocks by PERSIST_US a start

    @staticmethod
    def _lock(path):
        """One receiver per state file: two would each refuse what the other accepted, and write over each other."""
        import fcntl

        try:
            fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise UserError("--link-state %s: %s" % (printable(path), exc.strerror or exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError("--link-state %s is in use by another receiver: give each receiver its own "
                            "(--link-state FILE)" % printable(path)) from None
        return fd

    def accept(self, ts):
        self.value = ts
        if ts - self.saved >= self.PERSIST_US:
            self.save()

    def save(self):
        if self.path is None or self.value == self.saved:
            return

        try:  # a new file of its own (never one planted or left there), then renamed over the state in one step
            fd, temporary = tempfile.mkstemp(prefix=".newest-", dir=self.folder)
            with os.fdopen(fd, "w") as handle:
                handle.write("%d\n" % self.value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            if "temporary" in locals() and os.path.exists(temporary):
                os.unlink(temporary)
            raise UserError("--link-state %s: %s" % (printable(self.path), exc.strerror or exc)) from None
        self.saved = self.value

    def close(self):
        """Written, and the state file left to the next receiver."""
        try:
            self.save()
        finally:
            self.release()

    def __del__(self):
        self.release()

    def release(self):
        """The state file left to the next receiver, without a write (as a crash leaves it)."""
        if getattr(self, "lock", None) is not None:
            os.close(self.lock)
            self.lock = None


class Security:
    """A link's keying, from --link-key FILE, --link-state FILE (default FILE.newest beside the key: where a
    receiver keeps the newest ts) and --insecure-link."""

    def __init__(self, key_path=None, state_path=None, insecure=False):
        for option, path in (("--link-key", key_path), ("--link-state", state_path)):
            if path is not None and not path.strip():  # an unset variable: `--link-key "$KEY"` must not mean none
                raise UserError("%s: give a file (it is empty)" % option)
        if key_path is not None and insecure:
            raise UserError("--link-key and --insecure-link do not go together")
        if state_path is not None and key_path is None:
            raise UserError("--link-state goes with --link-key")
        self.key_path, self.insecure = key_path, insecure
        self.key = read_key(key_path) if key_path is not None else None
        self.state_path = state_path or ("%s.newest" % key_path if key_path is not None else None)
        self._newest = None

    def newest(self):
        """The receiver's Newest (one per Security: the link's receiving end opens it once)."""
        if self._newest is None and self.key is not None:
            self._newest = Newest(self.state_path)
        return self._newest

    def describe(self):
        if self.key is not None:
            return "signed (HMAC-SHA256, key %s)" % printable(self.key_path)
        return "NOT authenticated (--insecure-link)" if self.insecure else "not signed"


NO_SECURITY = Security()


def add_link_options(parser, receiving=False):
    """--link-key, --link-state (receivers) and --insecure-link: a control link's keying (control.Security)."""
    parser.add_argument("--link-key", metavar="FILE",
                        help="sign%s the control link's lines with this key (64 hex digits, mode 600; python -m "
                             "runtime keygen FILE makes one; both ends need it)" % ("/check" if receiving else ""))
    if receiving:
        parser.add_argument("--link-state", metavar="FILE",
                            help="where the newest accepted timestamp is kept across runs (default: the key file's "
                                 "name + .newest)")
    parser.add_argument("--insecure-link", action="store_true",
                        help="a UDP link beyond the loopback without a key: anyone who can reach it can forge lines")


def link_security(args):
    """The Security the link options of args say."""
    return Security(getattr(args, "link_key", None), getattr(args, "link_state", None),
                    getattr(args, "insecure_link", False))


def is_loopback(address):
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


# -- links ------------------------------------------------------------------------------------------------------
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
    a send never waits on a name lookup. Beyond the loopback (a vehicle's address, or listening on every address)
    the link needs a key (--link-key) unless --insecure-link says otherwise: anyone who can reach the port can
    send on it."""

    def __init__(self, host, port, listen, security=NO_SECURITY, log=None):
        try:
            family, _, _, _, self.address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise UserError("udp://%s:%d: cannot resolve %s (%s)" % (host, port, host, exc)) from None
        self.where = "udp://%s:%d" % (host or "", port)
        if security.key is None and not is_loopback(self.address[0]):
            if not security.insecure:
                raise LinkNeedsKey("%s is beyond the loopback: give both ends --link-key FILE (python -m runtime "
                                   "keygen FILE makes one), or --insecure-link for a link nobody else can reach"
                                   % self.where)
            if log is not None:
                print("control: %s is NOT authenticated (--insecure-link): anyone who can reach it can %s"
                      % (self.where, "steer this vehicle" if listen else "read and forge these lines"),
                      file=log, flush=True)
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
        """One datagram, or None after timeout seconds. One longer than MAX_LINE comes back cut to MAX_LINE + 1
        bytes, which no line is (parse_line refuses it; it was 4,088 digits of seq that still parsed)."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(MAX_LINE + 1)
        except (socket.timeout, BlockingIOError, ConnectionRefusedError):
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
            if len(self.buffer) > MAX_LINE and b"\n" not in self.buffer:
                self.buffer = b""  # no line ends: noise, not a line
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def close(self):
        self.port.close()


def open_link(uri, listen=False, security=NO_SECURITY, log=None):
    """The link a URI names; security: its Security (a UDP link beyond the loopback needs a key or insecure)."""
    scheme, host, where, baud = split_uri(uri, listen)
    return UdpLink(host, where, listen, security, log) if scheme == "udp" else SerialLink(where, baud)


# -- the safety limits -------------------------------------------------------------------------------------------
class Limits:
    """Steering clamped to [-limit, limit] and changed by at most `rate` a second. It starts from neutral (0) at
    reset(now) (the neutral sent at the start, and the watchdog's), so control ramps in; the first call
    without a reset before it stays at neutral."""

    def __init__(self, limit=1.0, rate=None):
        if not 0 < limit < float("inf"):
            raise UserError("--steering-limit must be a finite number more than 0")
        if rate is not None and not 0 < rate < float("inf"):
            raise UserError("--steering-rate must be a finite number more than 0")
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
