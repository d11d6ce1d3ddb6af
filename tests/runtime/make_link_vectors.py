"""Writes tests/runtime/data/link_vectors.json: control link lines (format v2, runtime/vehicle/link.py) with the
verdict and the vehicle state both receivers must reach, the Python one (runtime/vehicle/receiver.py) and the
MicroPython one (runtime/vehicle/mcu/receiver.py). Tests read the JSON and never import this script; rerun it by hand
after changing a case:  .venv/bin/python tests/runtime/make_link_vectors.py

Signatures come from CPython's hmac module, independent of both receivers. Verdicts and states are written
here by hand from the spec's rules; the small model below only carries the state from step to step (a dropped
line changes nothing, an accepted one ends the fail-safe, a tick after the timeout zeroes steering and throttle).
"""

import hashlib
import hmac
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "link_vectors.json")
KEY = hashlib.sha256(b"control link v2 test vectors: never a real key").digest()
OTHER_KEY = hashlib.sha256(b"someone else's key").digest()
CLOCK = 1764201234000000  # the receiver's wall clock at now_ms=0, in microseconds since 1970
TIMEOUT_MS = 300


def line(kind, seq, fields="", session=7, v=2, ts=None, key=None, sig=None, now_ms=0):
    """One line as the sender writes it: kind seq t fields v session [ts sig]. key: sign it (ts defaults to the
    clock at now_ms); sig: this tag instead of the right one."""
    ts = CLOCK + now_ms * 1000 if ts is None and (key or sig) else ts
    t = (ts if ts is not None else CLOCK + now_ms * 1000) / 1e6
    words = [kind, "seq=%d" % seq, "t=%.6f" % t] + (fields.split() if fields else [])
    words += ["v=%s" % v] if v is not None else []
    words += ["session=%s" % session] if session is not None else []
    words += ["ts=%d" % ts] if ts is not None else []
    text = " ".join(words)
    if key is not None or sig is not None:
        text += " sig=" + (sig or hmac.new(key, text.encode("ascii"), hashlib.sha256).hexdigest()[:32])
    return text + "\n"


def flip(signed):
    """The same line with the tag's last hex digit changed."""
    last = signed[-2]
    return signed[:-2] + ("0" if last != "0" else "1") + "\n"


class Case:
    def __init__(self, name, keyed, newest=0):
        self.case = {"name": name, "keyed": keyed, "newest": newest, "steps": []}
        self.steering, self.throttle, self.failsafe = 0.0, 0.0, True

    def apply(self, now_ms, text, verdict, steering=None, throttle=None, clock=True):
        """steering/throttle: the state after an accepted line (None: unchanged). clock: the receiver's clock
        follows now_ms; False: a receiver without one (clock_us null)."""
        if verdict == "ok":
            self.failsafe = False
            self.steering = self.steering if steering is None else steering
            self.throttle = self.throttle if throttle is None else throttle
        else:
            assert steering is None and throttle is None, "a dropped line changes nothing"
        self.case["steps"].append(
            {
                "now_ms": now_ms,
                "clock_us": CLOCK + now_ms * 1000 if clock else None,
                "line": text,
                "verdict": verdict,
                "steering": self.steering,
                "throttle": self.throttle,
                "failsafe": self.failsafe,
            }
        )

    def tick(self, now_ms, failsafe):
        """failsafe: the receiver's state after tick(now_ms) (it stays failed safe once it is)."""
        assert failsafe or not self.failsafe, "tick() never ends a fail-safe"
        if failsafe:
            self.steering, self.throttle, self.failsafe = 0.0, 0.0, True
        self.case["steps"].append({"now_ms": now_ms, "tick": True, "failsafe": failsafe})


def padded(length, **kw):
    """A cmd line of exactly `length` bytes ("\n" included): number fields, then a label of the right length."""
    pads = []
    while length - len(line("cmd", 2, " ".join(["steering=0.25 throttle=0"] + pads), **kw)) > 71:
        pads.append("pad_%s=%s" % ("abcdefghijklmnopqrstuvwxyz"[len(pads)], "1" * 20))
    if length - len(line("cmd", 2, " ".join(["steering=0.25 throttle=0"] + pads), **kw)) < 8:
        pads.pop()
    room = length - len(line("cmd", 2, " ".join(["steering=0.25 throttle=0"] + pads), **kw)) - len(" label=")
    text = line("cmd", 2, " ".join(["steering=0.25 throttle=0"] + pads + ["label=" + "x" * room]), **kw)
    assert len(text) == length and 1 <= room <= 64
    return text


def unkeyed_cases():
    cases = []

    c = Case("a genuine session flows, loses a line, then fails safe after the timeout", False)
    c.apply(0, line("neutral", 1, "steering=0 throttle=0 reason=start"), "ok", 0.0, 0.0)
    c.apply(20, line("cmd", 2, "steering=0.125 inverse_radius=0.0125 throttle=0.25", now_ms=20), "ok", 0.125, 0.25)
    c.apply(40, line("hb", 3, "state=ok", now_ms=40), "ok")
    c.apply(60, line("cmd", 4, "class=3 label=cat confidence=0.971", now_ms=60), "ok")  # a classifier's: no effect
    c.apply(80, line("cmd", 6, "steering=-0.5", now_ms=80), "ok", -0.5, 0.0)  # seq 5 lost; no throttle: 0
    c.apply(100, line("cmd", 5, "steering=0.75", now_ms=100), "late")
    c.apply(120, line("cmd", 7, "steering=0.25 ts=1 sig=" + "0" * 32, now_ms=120), "ok", 0.25, 0.0)  # ts, sig ignored
    c.tick(419, False)
    c.tick(420, False)  # exactly the timeout: not yet
    c.tick(421, True)
    c.tick(500, True)  # already failed safe: stays so
    c.apply(520, line("neutral", 8, "steering=0 throttle=0 reason=stop", now_ms=520), "ok", 0.0, 0.0)
    cases.append(c)

    c = Case("forged high seq: foreign without a session, ahead with the live one", False)
    c.apply(0, line("neutral", 1, "reason=start"), "ok", 0.0, 0.0)
    c.apply(20, line("cmd", 2, "steering=0.125 throttle=0.125", now_ms=20), "ok", 0.125, 0.125)
    c.apply(30, "cmd seq=2000000000 steering=1 throttle=1\n", "foreign")
    c.apply(31, line("cmd", 2000000000, "steering=1 throttle=1", v=None, now_ms=31), "foreign")  # session, no v
    c.apply(32, line("cmd", 2000000000, "steering=1 throttle=1", v=1, now_ms=32), "foreign")
    c.apply(33, line("cmd", 2000000000, "steering=1 throttle=1", session=None, now_ms=33), "foreign")
    c.apply(34, "cmd seq=2000000000 steering=1 throttle=1 v=2 session=7\n", "ahead")
    c.apply(35, line("cmd", 1027, "steering=1 throttle=1", now_ms=35), "ahead")  # last 2: 1026 is the most
    c.apply(40, line("cmd", 3, "steering=0.25 throttle=0.125", now_ms=40), "ok", 0.25, 0.125)
    c.apply(60, line("cmd", 3 + 1024, "steering=-0.25 throttle=0", now_ms=60), "ok", -0.25, 0.0)  # 1023 lost
    cases.append(c)

    c = Case("a forged neutral start and cmd from another session while the genuine one is live", False)
    c.apply(0, line("neutral", 1, "reason=start"), "ok", 0.0, 0.0)
    c.apply(20, line("cmd", 2, "steering=0.25 throttle=0.5", now_ms=20), "ok", 0.25, 0.5)
    c.apply(30, line("neutral", 1, "steering=0 throttle=0 reason=start", session=99, now_ms=30), "foreign")
    c.apply(35, line("cmd", 2, "steering=1 throttle=1", session=99, now_ms=35), "foreign")
    c.apply(40, line("cmd", 3, "steering=0.5 throttle=0.5", now_ms=40), "ok", 0.5, 0.5)
    c.apply(340, line("cmd", 3, "steering=1 throttle=1", session=99, now_ms=340), "foreign")  # 300 ms: not silent
    cases.append(c)

    c = Case("another session takes over only after the timeout of silence", False)
    c.apply(0, line("neutral", 1, "reason=start"), "ok", 0.0, 0.0)
    c.apply(100, line("cmd", 2, "steering=0.25 throttle=0.25", now_ms=100), "ok", 0.25, 0.25)
    c.apply(300, line("neutral", 1, "reason=start", session=8, now_ms=300), "foreign")
    c.apply(400, line("neutral", 2, "reason=start", session=8, now_ms=400), "foreign")  # exactly the timeout
    c.apply(401, line("neutral", 5, "reason=start", session=8, now_ms=401), "ok", 0.0, 0.0)  # any seq
    c.apply(420, line("cmd", 3, "steering=1 throttle=1", now_ms=420), "foreign")  # the old one, now beaten
    c.apply(440, line("cmd", 5, "steering=0.5 throttle=0.5", session=8, now_ms=440), "late")
    c.apply(460, line("cmd", 6, "steering=-0.75 throttle=0.5", session=8, now_ms=460), "ok", -0.75, 0.5)
    c.tick(761, True)
    c.apply(800, line("cmd", 3, "steering=0.125 throttle=0", session=4294967295, now_ms=800), "ok", 0.125, 0.0)
    cases.append(c)

    c = Case("replay after silence: the same session's old lines are late and it stays failed safe", False)
    old_hb = line("hb", 3, "state=ok", now_ms=40)
    old_cmd = line("cmd", 2, "steering=0.25 throttle=0.5", now_ms=20)
    c.apply(0, line("neutral", 1, "reason=start"), "ok", 0.0, 0.0)
    c.apply(20, old_cmd, "ok", 0.25, 0.5)
    c.apply(40, old_hb, "ok")
    c.tick(341, True)
    c.apply(500, old_hb, "late")
    c.tick(510, True)
    c.apply(520, old_cmd, "late")
    c.apply(540, line("hb", 4, "state=failsafe", now_ms=540), "ok")  # liveness back; steering stays 0
    c.apply(560, line("cmd", 5, "steering=0.125 throttle=0.25", now_ms=560), "ok", 0.125, 0.25)
    cases.append(c)

    c = Case("resync after a 5 s outage: a seq jump of more than 1024 in the same session", False)
    c.apply(0, line("neutral", 1, "reason=start"), "ok", 0.0, 0.0)
    c.apply(20, line("cmd", 2, "steering=0.25 throttle=0.25", now_ms=20), "ok", 0.25, 0.25)
    c.tick(321, True)
    c.apply(5020, line("cmd", 2000, "steering=-0.25 throttle=0.125", now_ms=5020), "ok", -0.25, 0.125)
    c.apply(5040, line("cmd", 3025, "steering=1 throttle=1", now_ms=5040), "ahead")
    c.apply(5060, line("cmd", 3024, "steering=0.5 throttle=0.125", now_ms=5060), "ok", 0.5, 0.125)
    cases.append(c)

    c = Case("truncated datagrams", False)
    c.apply(0, line("cmd", 1, "steering=0.25 throttle=0.25"), "ok", 0.25, 0.25)
    big = line(
        "cmd",
        2,
        "steering=1 throttle=1 label="
        + "x" * 64
        + " "
        + " ".join("pad_%s=%s" % ("abcdefghijklmnopqrstuvwxyz"[i % 26] * (i // 26 + 1), "9" * 20) for i in range(200)),
        now_ms=10,
    )
    big = big[:5019] + "\n"
    assert len(big) == 5020
    c.apply(10, big[:4096], "truncated")  # filled a 4096-byte receive buffer
    c.apply(11, big, "truncated")  # complete, but longer than 512 bytes
    c.apply(12, padded(513, now_ms=12), "truncated")
    c.apply(13, line("cmd", 2, "steering=1 throttle=1", now_ms=13)[:-1], "truncated")  # no "\n"
    c.apply(14, "", "truncated")  # an empty datagram has no "\n" either
    c.apply(20, padded(512, now_ms=20), "ok", 0.25, 0.0)  # 512 bytes, "\n" included: the longest line
    cases.append(c)

    c = Case("malformed: numbers and fields that break the grammar", False)
    c.apply(0, line("cmd", 1, "steering=0.25 throttle=0.25"), "ok", 0.25, 0.25)
    bad = [
        "steering=1e308",
        "steering=1_000",
        "steering=+0.5",
        "steering=inf",
        "steering=nan",
        "steering=.5",
        "steering=5.",
        "steering=0x1",
        "steering=1,5",
        "steering=--1",
        "steering=",
        "steering=0.5 steering=0.5",
        "Steering=0.5",
        "steer1ng=0.5",
        "=0.5",
        "steering",
        "steering=-0.0000000000000000000001",  # 25 chars
        "steering=" + "1" * 25,
        "steering=1.5.5",
        "steering=-",
        "steering=\u00bd",
        "label=" + "x" * 65,
        "label=",
        "sig=" + "A" * 32,
        "sig=" + "0" * 31,
        "ts=-1",
        "ts=1.5",
        "abcdefghijklmnopqrstuvwxyz_abcdef=1",  # a key of 33 characters (32 at most)
    ]
    for i, fields in enumerate(bad):
        c.apply(10 + i, line("cmd", 2, fields, now_ms=10 + i), "malformed")
    now = 40
    for text in [
        line("cmd", 0, "steering=0.5"),
        line("cmd", 2, "steering=0.5", session=0),
        line("cmd", 2, "steering=0.5", session=4294967296),
        line("cmd", 2, "steering=0.5", v="2.0"),
        "cmd seq=1" + "0" * 20 + " steering=0.5 v=2 session=7\n",
        line("cmd", 2**64, "steering=0.5"),  # seq < 2**64
        line("cmd", 10**20 - 1, "steering=0.5"),  # 20 digits, above 2**64
        "cmd t=1 steering=0.5 v=2 session=7\n",
        line("stop", 2, "steering=0"),
        "seq=2 steering=0.5 v=2 session=7\n",
        "\n",
        " \n",
        line("cmd", 2, "steering=0.5").replace(" ", "  ", 1),
        line("cmd", 2, "steering=0.5")[:-1] + " \n",
        " " + line("cmd", 2, "steering=0.5"),
    ]:
        c.apply(now, text, "malformed")
        now += 1
    c.apply(now, line("cmd", 2, "steering=-0.000000000000000000001 throttle=-7", now_ms=now), "ok", -1e-21, -1.0)
    c.apply(now + 1, line("cmd", 3, "steering=1.5 throttle=0.75 label=a=b", now_ms=now + 1), "ok", 1.0, 0.75)
    c.apply(now + 2, line("cmd", 4, "steering=-99999999999999999999999", now_ms=now + 2), "ok", -1.0, 0.0)
    c.apply(now + 3, line("cmd", 5, "steering=-0 throttle=00.5 label=" + "x" * 64, now_ms=now + 3), "ok", 0.0, 0.5)
    c.apply(now + 4, line("hb", 6, "state=ok steering=0.75", now_ms=now + 4), "ok")  # hb: liveness only
    c.apply(now + 5, line("cmd", 7, "throttle=0.75", now_ms=now + 5), "ok")  # no steering: changes nothing
    c.apply(
        now + 6,
        line("cmd", 8, "steering=0.5 throttle=0.5 abcdefghijklmnopqrstuvwxyz_abcde=1", now_ms=now + 6),
        "ok",
        0.5,
        0.5,
    )  # a key of 32 characters, the longest
    cases.append(c)

    c = Case("seq at the top of its range: 2**64 - 1 is a seq, 2**64 is malformed", False)
    c.apply(0, line("neutral", 2**64 - 3, "reason=start"), "ok", 0.0, 0.0)
    c.apply(10, line("cmd", 2**64, "steering=1 throttle=1", now_ms=10), "malformed")
    c.apply(20, line("cmd", 2**64 - 1, "steering=0.25 throttle=0.25", now_ms=20), "ok", 0.25, 0.25)  # 1 lost
    c.apply(30, line("cmd", 2**64 - 1, "steering=1 throttle=1", now_ms=30), "late")
    cases.append(c)

    c = Case("control characters and bytes outside printable ASCII", False)
    c.apply(0, line("cmd", 1, "steering=0.25 throttle=0.25"), "ok", 0.25, 0.25)
    good = line("cmd", 2, "steering=0.5 throttle=0.5", now_ms=10)
    for i, text in enumerate(
        [
            good.replace(" ", "\t", 1),
            good[:-1] + "\r\n",
            good.replace("cmd", "cmd\x00", 1),
            good.replace("steering=0.5", "steering=0.5\x7f"),
            good.replace("throttle=0.5", "label=caf\xe9 throttle=0.5"),
            good.replace("throttle=0.5", "label=caf\xc3\xa9 throttle=0.5"),
            good + line("cmd", 3, "steering=1 throttle=1", now_ms=10),
            "\x00\n",
            "\x1b[2J\n",
        ]
    ):
        c.apply(10 + i, text, "malformed")
    c.apply(30, good, "ok", 0.5, 0.5)
    cases.append(c)
    return cases


def keyed_cases():
    k = dict(key=KEY)
    cases = []

    c = Case("keyed: a genuine session flows and fails safe after the timeout", True)
    c.apply(0, line("neutral", 1, "steering=0 throttle=0 reason=start", **k), "ok", 0.0, 0.0)
    c.apply(20, line("cmd", 2, "steering=0.125 throttle=0.25", now_ms=20, **k), "ok", 0.125, 0.25)
    c.apply(40, line("hb", 3, "state=ok", now_ms=40, **k), "ok")
    c.apply(60, line("cmd", 5, "steering=-0.5 throttle=-7", now_ms=60, **k), "ok", -0.5, -1.0)  # 1 lost, clamped
    c.tick(361, True)
    c.apply(380, line("cmd", 6, "steering=0.25 throttle=0.25", now_ms=380, **k), "ok", 0.25, 0.25)
    cases.append(c)

    c = Case("keyed: unsigned lines", True)
    c.apply(0, line("neutral", 1, "reason=start", **k), "ok", 0.0, 0.0)
    c.apply(10, line("cmd", 2, "steering=1 throttle=1", now_ms=10), "unsigned")
    c.apply(11, "cmd seq=2000000000 steering=1 throttle=1\n", "unsigned")
    c.apply(12, line("cmd", 2, "steering=1 throttle=1 ts=%d" % (CLOCK + 12000), now_ms=12), "unsigned")  # no sig
    signed = line("cmd", 2, "steering=1 throttle=1", now_ms=13, **k)
    head, tag = signed[:-1].rsplit(" sig=", 1)
    ts = head.rsplit(" ", 1)[1]
    c.apply(13, head.rsplit(" ", 1)[0] + " sig=" + tag + " " + ts + "\n", "unsigned")  # sig before ts
    no_ts = line("cmd", 2, "steering=1 throttle=1", now_ms=14)
    c.apply(
        14,
        no_ts[:-1] + " sig=" + hmac.new(KEY, no_ts[:-1].encode(), hashlib.sha256).hexdigest()[:32] + "\n",
        "unsigned",
    )  # a right tag, but no ts before it
    c.apply(
        15, signed.replace(" steering=1", " sig=%s steering=1" % tag, 1).replace(" sig=" + tag + "\n", "\n"), "unsigned"
    )  # sig not last
    c.apply(16, signed[:-1] + " brake=1\n", "unsigned")  # a field after a genuine sig
    body = head.rsplit(" ", 1)[0] + " " + ts + " label=x"
    c.apply(
        17, body + " sig=" + hmac.new(KEY, body.encode(), hashlib.sha256).hexdigest()[:32] + "\n", "unsigned"
    )  # a right tag, but ts is not the field right before sig
    c.apply(20, line("cmd", 2, "steering=0.5 throttle=0.5", now_ms=20, **k), "ok", 0.5, 0.5)
    cases.append(c)

    c = Case("keyed: forged lines", True)
    c.apply(0, line("neutral", 1, "reason=start", **k), "ok", 0.0, 0.0)
    genuine = line("cmd", 2, "steering=0.25 throttle=0.25", now_ms=10, **k)
    c.apply(10, flip(genuine), "forged")  # one tag digit flipped
    c.apply(11, genuine.replace("steering=0.25", "steering=1.00"), "forged")  # a field changed, the old tag
    c.apply(12, genuine.replace("seq=2 ", "seq=2000000000 "), "forged")  # a forged high seq, the old tag
    c.apply(13, line("cmd", 2, "steering=1 throttle=1", now_ms=13, key=OTHER_KEY), "forged")
    c.apply(14, line("cmd", 2, "steering=1 throttle=1", now_ms=14, sig="0" * 32), "forged")
    c.apply(20, genuine, "ok", 0.25, 0.25)
    c.apply(30, flip(line("cmd", 3, "steering=1 throttle=1", ts=CLOCK - 10**9, now_ms=30, **k)), "forged")
    cases.append(c)

    c = Case("keyed: replayed lines (the same line twice; an older ts from a new session)", True)
    first = line("neutral", 1, "reason=start", **k)
    c.apply(0, first, "ok", 0.0, 0.0)
    second = line("cmd", 2, "steering=0.25 throttle=0.5", now_ms=20, **k)
    c.apply(20, second, "ok", 0.25, 0.5)
    c.apply(21, second, "replayed")
    c.apply(22, line("cmd", 3, "steering=1 throttle=1", ts=CLOCK + 20000, now_ms=22, **k), "replayed")  # equal ts
    c.tick(321, True)
    c.apply(400, first, "replayed")
    c.apply(410, line("neutral", 1, "reason=start", session=9, ts=CLOCK + 19999, now_ms=410, **k), "replayed")
    c.apply(420, line("neutral", 1, "reason=start", session=9, now_ms=420, **k), "ok", 0.0, 0.0)
    cases.append(c)

    c = Case("keyed: ts more than 60 s from the receiver's clock", True)
    c.apply(0, line("neutral", 1, "reason=start", ts=CLOCK - 120000000, **k), "clock")  # 2 minutes behind
    c.apply(1, line("neutral", 1, "reason=start", now_ms=1, **k), "ok", 0.0, 0.0)
    c.apply(10, line("cmd", 2, "steering=1 throttle=1", ts=CLOCK + 10000 + 120000000, now_ms=10, **k), "clock")
    c.apply(11, line("cmd", 2, "steering=1 throttle=1", ts=CLOCK + 11000 + 60000001, now_ms=11, **k), "clock")
    c.apply(
        12, line("cmd", 2, "steering=0.5 throttle=0.5", ts=CLOCK + 12000 + 60000000, now_ms=12, **k), "ok", 0.5, 0.5
    )  # 60 s exactly
    c.apply(30, line("cmd", 3, "steering=1 throttle=1", ts=CLOCK + 30000 + 60000001, now_ms=30, **k), "clock")
    c.apply(
        31,
        line("cmd", 3, "steering=-0.5 throttle=0", ts=CLOCK + 12000 + 60000001, now_ms=31, **k),
        "ok",
        -0.5,
        0.0,
        clock=False,
    )  # without a clock: no clock check
    c.apply(
        40,
        line("cmd", 4, "steering=0.25 throttle=0", ts=CLOCK + 40000 + 120000000, now_ms=40, **k),
        "ok",
        0.25,
        0.0,
        clock=False,
    )
    c.apply(50, line("cmd", 5, "steering=1 throttle=1", ts=CLOCK + 40000 + 120000001, now_ms=50, **k), "clock")
    cases.append(c)

    c = Case("keyed, without a clock: a ts two minutes from any clock is accepted", True)
    c.apply(0, line("neutral", 1, "reason=start", ts=CLOCK + 120000000, **k), "ok", 0.0, 0.0, clock=False)
    c.apply(20, line("cmd", 2, "steering=0.75 throttle=0.25", ts=CLOCK + 120020000, **k), "ok", 0.75, 0.25, clock=False)
    cases.append(c)

    newest = CLOCK + 5000000
    c = Case("keyed: the initial newest (stored + 1 s) refuses a line at or below it", True, newest=newest)
    c.apply(0, line("neutral", 1, "reason=start", ts=newest - 1, **k), "replayed")
    c.apply(1, line("neutral", 1, "reason=start", ts=newest, **k), "replayed")
    c.tick(2, True)  # failed safe from the start
    c.apply(3, line("neutral", 2, "reason=start", ts=newest + 1, **k), "ok", 0.0, 0.0)
    cases.append(c)

    held = line("neutral", 1, "reason=start", ts=CLOCK - 3600000000, **k)
    c = Case(
        "keyed, after a restart: a line held an hour is refused by the wall clock only", True, newest=CLOCK - 3700000000
    )
    c.apply(0, held, "clock")
    c.apply(1, held, "ok", 0.0, 0.0, clock=False)  # no line accepted since the restart: stale cannot tell
    cases.append(c)

    c = Case(
        "keyed: lines a man in the middle held back 8 s and released are stale (the clock window lets them in)", True
    )
    c.apply(0, line("neutral", 1, "reason=start", **k), "ok", 0.0, 0.0)
    c.apply(250, line("cmd", 2, "steering=0.25 throttle=0.25", now_ms=250, **k), "ok", 0.25, 0.25)
    held = [line("cmd", seq, "steering=1 throttle=1", now_ms=250 + 20 * (seq - 2), **k) for seq in (3, 4, 5)]
    c.tick(551, True)  # from 270 ms on, the man in the middle holds every line
    c.apply(8270, held[0], "stale")  # sent at 270 ms: 8 s old, within the 60 s of the clock
    c.apply(8271, held[1], "stale", clock=False)  # no wall clock needed
    c.apply(8272, line("neutral", 1, "reason=start", session=9, now_ms=260, **k), "stale")  # else: takes over
    c.apply(8290, line("cmd", 403, "steering=-0.25 throttle=0.5", now_ms=8290, **k), "ok", -0.25, 0.5)  # sent now
    c.apply(8310, held[2], "replayed")  # older than the fresh line
    cases.append(c)

    c = Case("keyed: stale at its bound (equal is accepted), and after clock", True)
    c.apply(0, line("neutral", 1, "reason=start", **k), "ok", 0.0, 0.0)
    c.tick(301, True)
    c.apply(8500, line("cmd", 2, "steering=1 throttle=1", ts=CLOCK + 7999999, now_ms=8500, **k), "stale")
    c.apply(8500, line("cmd", 2, "steering=0.5 throttle=0.5", ts=CLOCK + 8000000, now_ms=8500, **k), "ok", 0.5, 0.5)
    c.tick(8801, True)
    old = line("cmd", 3, "steering=1 throttle=1", ts=CLOCK + 8000001, now_ms=78500, **k)
    c.apply(78500, old, "clock")  # 70 s from the wall clock: clock comes first
    c.apply(78500, old, "stale", clock=False)
    c.apply(78500, line("cmd", 3, "steering=0.25 throttle=0", ts=CLOCK + 77500000, now_ms=78500, **k), "ok", 0.25, 0.0)
    cases.append(c)

    c = Case("keyed: signed lines judged by format, session and seq", True)
    c.apply(0, line("neutral", 1, "reason=start", **k), "ok", 0.0, 0.0)
    c.apply(10, line("cmd", 2, "steering=1 throttle=1", v=1, now_ms=10, **k), "foreign")
    c.apply(11, line("cmd", 2, "steering=1 throttle=1", session=None, now_ms=11, **k), "foreign")
    c.apply(12, line("cmd", 2, "steering=1 throttle=1", session=8, now_ms=12, **k), "foreign")
    c.apply(13, line("cmd", 1, "steering=1 throttle=1", now_ms=13, **k), "late")
    c.apply(14, line("cmd", 1026, "steering=1 throttle=1", now_ms=14, **k), "ahead")
    c.apply(15, line("cmd", 2, "steering=1 throttle=1", now_ms=15, **k)[:-1], "truncated")
    c.apply(16, line("cmd", 2, "steering=1e3 throttle=1", now_ms=16, **k), "malformed")
    c.apply(17, line("cmd", 2, "steering=1 throttle=1", now_ms=17, **k)[:-2] + "\n", "malformed")  # 31 digits
    c.apply(18, line("cmd", 2, "steering=1 throttle=1", now_ms=18, **k).replace("\n", "\r\n"), "malformed")
    c.apply(19, line("cmd", 2**64, "steering=1 throttle=1", now_ms=19, **k), "malformed")  # signed, seq too big
    c.apply(20, line("cmd", 1025, "steering=0.125 throttle=0.125", now_ms=20, **k), "ok", 0.125, 0.125)
    cases.append(c)
    return cases


def dump(vectors):
    """JSON with one step a line, so a change to a case reads as a small diff."""
    cases = []
    for case in vectors["cases"]:
        head = json.dumps({k: case[k] for k in ("name", "keyed", "newest")})[:-1]
        cases.append('  %s, "steps": [\n    %s]}' % (head, ",\n    ".join(json.dumps(s) for s in case["steps"])))
    head = json.dumps({k: v for k, v in vectors.items() if k != "cases"})[:-1]
    text = '%s,\n "cases": [\n%s]}\n' % (head, ",\n".join(cases))
    assert json.loads(text) == vectors
    return text


def main():
    vectors = {
        "spec": "control link line format v2 (runtime/vehicle/link.py)",
        "key": KEY.hex(),
        "timeout_ms": TIMEOUT_MS,
        "steering_limit": 1.0,
        "throttle_limit": 1.0,
        "cases": [c.case for c in unkeyed_cases() + keyed_cases()],
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii") as f:  # json escapes every byte above 0x7e: the file stays ASCII
        f.write(dump(vectors))
    print("%s: %d cases, %d steps" % (OUT, len(vectors["cases"]), sum(len(c["steps"]) for c in vectors["cases"])))


if __name__ == "__main__":
    main()
