"""Reference receiver of the control link (line format v2) for a microcontroller, in MicroPython.

SAFETY: this receiver stops the vehicle when the link goes quiet or lies, but it is software on a radio link.
A physical emergency stop, or an RC override that cuts the motor without this board, stays necessary.

The line format and the rules are those of runtime/control.py (issue 27): one ASCII line per UDP datagram,

    cmd seq=41 t=1764201234.567890 steering=-0.125000 throttle=0.300000 v=2 session=7 ts=1764201234567890 sig=<32 hex>

ts and sig only on a keyed link (sig: the first 16 bytes of HMAC-SHA256 over the line up to " sig=").
tests/runtime/data/link_vectors.json holds lines that this file and the runtime's Python receiver judge alike.

A datagram is judged in this order; one that is not "ok" never acts and never counts as a sign of life:
  truncated   longer than MAX_LINE bytes, or not ended by "\\n"
  malformed   anything else that is not exactly the format: a byte outside printable ASCII, an unknown kind, a
              key that is not 1 to 32 of [a-z_] or comes twice, a number spelled otherwise (1e3, +1, inf), no
              seq, seq not 1 <= seq < 2**64, session not 1 <= session < 2**32
  keyed links only:
  unsigned    the last two fields are not ts then sig (no sig, a field after sig, ts not right before it)
  forged      a wrong sig
  replayed    ts at or below the newest accepted ts (kept on flash across restarts)
  clock       ts more than 60 s from the wall clock (skipped without one: see wall_clock_us())
  stale       once a line has been accepted: ts - newest < elapsed_us - 500000, elapsed_us the receiver's own
              time since that line (ticks, no wall clock needed). The sender's ts grows as fast as time, so
              a line sent more than 0.5 s earlier than the silence allows was held back and released later
              (a man in the middle); exactly at the bound is accepted
  all links:
  foreign     no v=2 or no session, or another session while the one followed is alive
  late        seq at or below the session's last accepted; ahead: more than 1024 beyond it while alive
The receiver fails safe (steering 0, throttle 0) after timeout_ms without an accepted line; then the next line
resynchronises it (another session may take over, or the same one with any higher seq).

Braking (runtime run --brake), as runtime/vehicle/receiver.py: an accepted cmd sets the brake to its `brake`,
clamped to [0, brake_limit] (absent: 0, released), and a cmd with brake > 0 applies throttle 0 (the brake wins).
neutral and the fail-safe never release a brake: steering 0, throttle 0, brake the larger of the one in force and
failsafe_brake (default 0: a car that was not braking coasts; one braking for an obstacle when the link died goes
on braking). Only an accepted cmd with steering releases it; before the first line, and so after a reset, the
brake is failsafe_brake: set it above 0 on a vehicle that must not roll after a brown-out while it was braking.

The file is written in the part of Python that MicroPython and CPython 3.8+ share, so the tests run it on a
desktop: no hmac or re module (HMAC-SHA256 is done here over hashlib.sha256), no f-strings, no typing.
Numbers: ts needs integers beyond 32 bits (every MicroPython port with long integers: ESP32, RP2040, STM32).

A keyed receiver needs a wall clock (wall_clock_us(): NTP), or a signed line captured long ago and never
delivered is accepted at boot; main() refuses to start keyed without one unless ALLOW_NO_CLOCK = True. Without a
clock (clock_us=None) the check of ts against the clock is skipped, and only the newest accepted ts, kept on
flash (persist(); refused on start: anything up to stored + 1 s), and the stale rule protect the link.

On a board: copy this file as main.py (with link.key, 64 hex digits, for a keyed link: see KEY_FILE), bring up
the network in boot.py, and fill in actuate() for your servo, ESC and brake.
"""

import binascii
import errno
import hashlib
import os
import sys

PORT = 5005  # UDP port the runtime sends to (runtime run --output udp://BOARD:5005)
KEY_FILE = None  # "link.key" for a keyed link (the runtime's key file); None: unkeyed
NEWEST_FILE = "link.newest"  # the newest accepted ts, kept across restarts (keyed links)
ALLOW_NO_CLOCK = False  # True: start keyed without a wall clock (see wall_clock_us() and the docstring above)
MAX_LINE = 512  # bytes, "\n" included; the socket reads MAX_LINE + 1 to see a longer one
CLOCK_WINDOW_US = 60000000  # a keyed line's ts against the wall clock, either way
STALE_US = 500000  # how much earlier than the silence since the last accepted line a keyed line may have been sent
KINDS = ("cmd", "neutral", "hb")
TEXT_KEYS = ("reason", "state", "label")
UINT_KEYS = ("seq", "v", "session", "ts")
VERDICTS = (
    "ok",
    "truncated",
    "malformed",
    "unsigned",
    "forged",
    "replayed",
    "clock",
    "stale",
    "foreign",
    "late",
    "ahead",
)


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104) over hashlib.sha256, 64-byte block."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (64 - len(key))
    inner = hashlib.sha256(bytes([b ^ 0x36 for b in key]) + msg).digest()
    return hashlib.sha256(bytes([b ^ 0x5C for b in key]) + inner).digest()


def read_key(text):
    """The 32 key bytes from a key file's text: exactly 64 hex digits, surrounding ASCII whitespace ignored (the
    same set under MicroPython and CPython, whose str.strip() would also drop \\x1c to \\x1f)."""
    if isinstance(text, bytes):
        text = text.decode()
    text = text.strip(" \t\n\r\x0b\x0c")
    if len(text) != 64 or not _only(text, "0123456789abcdefABCDEF"):
        raise ValueError("a key is 64 hex digits")
    return binascii.unhexlify(text)


def load_newest(path):
    """The first ts a keyed receiver may accept after a restart: the stored one + 1 s (0 without a file)."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError as e:
        if e.args[0] == errno.ENOENT:
            return 0
        raise
    if not _only(text, "0123456789") or not text:
        raise ValueError("%s: not a timestamp" % path)
    return int(text) + 1000000


def save_newest(path, value):
    """Write through a temporary file and a rename, so a reset mid-write leaves the old value, not half a number."""
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % value)
    os.rename(path + ".tmp", path)


def _only(text, allowed):
    for c in text:
        if c not in allowed:
            return False
    return True


def _number(text):
    """-?DIGITS(.DIGITS)?, at most 24 characters: a float, or None."""
    body = text[1:] if text[:1] == "-" else text
    dot = body.find(".")
    whole, frac = (body, "0") if dot < 0 else (body[:dot], body[dot + 1 :])
    if len(text) > 24 or not whole or not frac or not _only(whole + frac, "0123456789"):
        return None
    return float(text)


def parse(data):
    """(kind, {key: value}, [keys in order]) of one datagram, or the verdict "truncated" or "malformed"."""
    if len(data) > MAX_LINE or data[-1:] != b"\n":
        return "truncated"
    for b in data[:-1]:  # one line of printable ASCII: this also refuses a second "\n", "\r" and tabs
        if b < 0x20 or b > 0x7E:
            return "malformed"
    words = data[:-1].decode().split(" ")
    if words[0] not in KINDS:  # empty, no kind ("seq=1 ..."), or an unknown one
        return "malformed"
    fields, order = {}, []
    for word in words[1:]:
        i = word.find("=")
        key, value = word[:i], word[i + 1 :]
        if not 1 <= i <= 32 or key in fields or not _only(key, "abcdefghijklmnopqrstuvwxyz_"):
            return "malformed"
        if key in TEXT_KEYS:
            ok = 1 <= len(value) <= 64
        elif key in UINT_KEYS:
            ok = 1 <= len(value) <= 20 and _only(value, "0123456789")
            value = int(value) if ok else 0
        elif key == "sig":
            ok = len(value) == 32 and _only(value, "0123456789abcdef")
        else:
            value = _number(value)
            ok = value is not None
        if not ok:
            return "malformed"
        fields[key] = value
        order.append(key)
    if not 1 <= fields.get("seq", 0) <= 0xFFFFFFFFFFFFFFFF or not 1 <= fields.get("session", 1) <= 0xFFFFFFFF:
        return "malformed"
    return words[0], fields, order


def _clamp(value, limit):
    return max(-limit, min(limit, value))


class Receiver:
    """Judges each datagram (apply) and fails safe on silence (tick); steering, throttle and brake are what to
    drive."""

    def __init__(self, key=None, timeout_ms=300, steering_limit=1.0, throttle_limit=1.0, newest=0, brake_limit=1.0,
                 failsafe_brake=0.0):
        self.key = key
        self.timeout_ms = timeout_ms
        self.steering_limit = steering_limit
        self.throttle_limit = throttle_limit
        self.brake_limit = brake_limit
        self.failsafe_brake = max(0.0, min(failsafe_brake, brake_limit))
        self.newest = newest  # the newest accepted ts (keyed), or what load_newest() gave
        self.loaded = newest
        self.saved = newest - 1000000  # what is on disk: persist() writes when newest has grown 1 s past it
        self.steering = 0.0
        self.throttle = 0.0
        self.brake = self.failsafe_brake  # 0 (released) to brake_limit (the docstring's braking rules)
        self.failsafe = True  # until a line is accepted
        self.session = None  # the session followed, its last seq, and when its last line was accepted
        self.seq = 0
        self.last_ms = None
        self.counts = {}
        for name in VERDICTS + ("cmd", "neutral", "hb", "lost", "failsafe", "clamped"):
            self.counts[name] = 0

    def apply(self, datagram, now_ms, clock_us=None):
        """The verdict on one datagram ("ok" or why it was dropped); an accepted one acts at once."""
        verdict = self._judge(datagram, now_ms, clock_us)
        self.counts[verdict] += 1
        return verdict

    def _judge(self, data, now_ms, clock_us):
        parsed = parse(data)
        if isinstance(parsed, str):
            return parsed
        kind, fields, order = parsed
        if self.key is not None:  # keyed: the last two fields are ts then sig, and the tag must match
            if order[-2:] != ["ts", "sig"]:
                return "unsigned"
            tag = binascii.hexlify(hmac_sha256(self.key, data[:-38])[:16])  # data[:-38]: before " sig=<32>\n"
            diff = 0
            for a, b in zip(tag, data[-33:-1]):  # constant time: every digit is compared
                diff |= a ^ b
            if diff:
                return "forged"
            if fields["ts"] <= self.newest:
                return "replayed"
            if clock_us is not None and abs(fields["ts"] - clock_us) > CLOCK_WINDOW_US:
                return "clock"
            if self.last_ms is not None and fields["ts"] - self.newest < (now_ms - self.last_ms) * 1000 - STALE_US:
                return "stale"  # held back and released later: the 60 s clock window alone let an 8 s hold in
        if fields.get("v") != 2 or "session" not in fields:
            return "foreign"
        seq, session = fields["seq"], fields["session"]
        silent = self.last_ms is None or now_ms - self.last_ms > self.timeout_ms
        if session != self.session:
            if not silent:
                return "foreign"
            self.session, self.seq = session, seq - 1  # a new session takes over a silent link
        elif seq <= self.seq:
            return "late"
        elif seq > self.seq + 1024 and not silent:
            return "ahead"
        self.counts["lost"] += seq - self.seq - 1
        self.seq, self.last_ms, self.failsafe = seq, now_ms, False
        if self.key is not None:
            self.newest = fields["ts"]
        self.counts[kind] += 1
        if kind == "neutral":
            self._stop()
        elif kind == "cmd" and "steering" in fields:
            steering, throttle, brake = fields["steering"], fields.get("throttle", 0.0), fields.get("brake", 0.0)
            self.steering = _clamp(steering, self.steering_limit)
            self.throttle = _clamp(throttle, self.throttle_limit)
            self.brake = max(0.0, min(self.brake_limit, brake))
            if self.steering != steering or self.throttle != throttle or self.brake != brake:
                self.counts["clamped"] += 1
            if self.brake > 0.0:  # the brake wins: never throttle against it
                self.throttle = 0.0
        return "ok"

    def _stop(self):
        """neutral and the fail-safe: steering 0, throttle 0, the brake in force kept (at least failsafe_brake)."""
        self.steering, self.throttle = 0.0, 0.0
        self.brake = max(self.brake, self.failsafe_brake)

    def tick(self, now_ms):
        """Fail safe (steering 0, throttle 0, the brake kept) after timeout_ms without an accepted line; True when it
        just did."""
        if self.failsafe or (self.last_ms is not None and now_ms - self.last_ms <= self.timeout_ms):
            return False
        self.failsafe = True
        self._stop()
        self.counts["failsafe"] += 1
        return True

    def persist(self, path, force=False):
        """Keep the newest accepted ts on disk once it has grown 1 s since the last write (force: at exit). Only
        an accepted ts is written: restarts alone never move it (a boot loop would push it past the real time)."""
        grown = self.newest - self.saved >= 1000000 or (force and self.newest > self.saved)
        if self.key is not None and self.newest > self.loaded and grown:
            save_newest(path, self.newest)
            self.saved = self.newest


_driven = [None, None, None]  # what actuate() last printed


def actuate(steering, throttle, brake):
    """Drive the vehicle: steering and throttle are in -1..1 (right and forward positive), brake in 0..1 (0:
    released; throttle is 0 whenever brake is above 0). Fill this in, e.g.
    servo = machine.PWM(machine.Pin(15), freq=50); servo.duty_ns(int(1500000 + 500000 * steering)), and the
    same for the ESC with throttle. A brake: a servo on a mechanical brake,
    brake_servo.duty_ns(int(1000000 + 1000000 * brake)) (1 ms released, 2 ms full), or an ESC with a brake mode,
    esc.duty_ns(int(1500000 - 500000 * brake)) when throttle is 0 (check your ESC's manual: many need a neutral
    pause before they brake instead of reversing). Called every loop; it must be quick. The default only prints
    changes."""
    if [steering, throttle, brake] != _driven:
        _driven[0], _driven[1], _driven[2] = steering, throttle, brake
        print("steering %.3f throttle %.3f brake %.3f" % (steering, throttle, brake))


def wall_clock_us():
    """Microseconds since 1970 (UTC) from a set real-time clock, or None without one. As shipped it returns None,
    and main() refuses to start a keyed receiver (a signed line captured an hour ago and never delivered would be
    accepted at boot) unless ALLOW_NO_CLOCK = True. On a board with a network, set the clock from NTP once the
    network is up (boot.py) and return it here:

        import ntptime
        ntptime.settime()  # the RTC from NTP, in UTC; raises OSError when no NTP server answers

        def wall_clock_us():
            import time
            epoch = 946684800 if time.gmtime(0)[0] == 2000 else 0  # many ports count from 2000-01-01, not 1970
            return int(time.time() + epoch) * 1000000

    time.time() is whole seconds on most boards: enough for the 60 s window. A clock left at its power-on value
    (NTP failed) makes every line "clock": the vehicle stays stopped, it is not driven by old lines."""
    return None


def main(port=PORT, key_file=KEY_FILE, newest_file=NEWEST_FILE, seconds=None):
    """Receive, judge and drive until reset (seconds: stop after that long, for tests)."""
    import socket
    import time

    key = None
    if key_file:
        with open(key_file) as f:
            key = read_key(f.read())
    no_clock = key is not None and wall_clock_us() is None
    if no_clock and not ALLOW_NO_CLOCK:
        raise RuntimeError(
            "a keyed receiver needs a wall clock: wall_clock_us() returns None, so a signed line captured long ago "
            "would be accepted at boot. Set the clock from NTP and return it in wall_clock_us(), or set "
            "ALLOW_NO_CLOCK = True to rely only on the stored newest ts and the stale rule"
        )
    rx = Receiver(key=key, newest=load_newest(newest_file) if key else 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(socket.getaddrinfo("0.0.0.0", port)[0][-1])
    sock.setblocking(False)
    mode = ("keyed, NO WALL CLOCK (ALLOW_NO_CLOCK)" if no_clock else "keyed") if key else "UNKEYED"
    print("receiver: udp port %d, %s" % (port, mode))
    now, before = 0, time.ticks_ms()
    try:
        while seconds is None or now < seconds * 1000:
            ticks = time.ticks_ms()
            now, before = now + time.ticks_diff(ticks, before), ticks  # ticks_ms wraps; now does not
            for _ in range(16):  # at most 16 a turn: a flood must not hold off tick()
                try:
                    data = sock.recv(MAX_LINE + 1)
                except OSError:  # EAGAIN: nothing waiting
                    break
                verdict = rx.apply(data, now, wall_clock_us())
                if verdict != "ok":
                    print("dropped:", verdict)
                rx.persist(newest_file)  # before actuate(): a reset cannot let it in twice
            if rx.tick(now):
                print("FAILSAFE: link silent")
            actuate(rx.steering, rx.throttle, rx.brake)
            time.sleep_ms(5)
    finally:
        actuate(0.0, 0.0, rx.brake)
        rx.persist(newest_file, force=True)
        sock.close()


if sys.implementation.name == "micropython" and __name__ == "__main__":
    main()
