"""runtime/vehicle/mcu/receiver.py, the MicroPython receiver of the control link, run here under CPython on the shared
vectors (data/link_vectors.json, made by make_link_vectors.py), and under a real MicroPython where one is found:
`micropython` on PATH or MICROPYTHON=/path/to/micropython (Debian 13 packages it as `micropython`)."""

import ast
import hashlib
import hmac
import importlib.util
import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/runtime: data/
SOURCE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "runtime", "vehicle", "mcu", "receiver.py")
VECTORS = os.path.join(HERE, "data", "link_vectors.json")
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

# Runs one vector case on a receiver module; the same text runs under CPython (below) and MicroPython (a
# subprocess), so it keeps to what both have: no latin-1 codec in MicroPython, hence bytes(ord(c) ...).
CHECK = """
def check(mod, vectors, case):
    key = mod.read_key(vectors["key"]) if case["keyed"] else None
    rx = mod.Receiver(key=key, timeout_ms=vectors["timeout_ms"], steering_limit=vectors["steering_limit"],
                      throttle_limit=vectors["throttle_limit"], newest=case["newest"])
    failures = []
    for i, step in enumerate(case["steps"]):
        if step.get("tick"):
            rx.tick(step["now_ms"])
            got, want = [rx.failsafe], [step["failsafe"]]
        else:
            verdict = rx.apply(bytes([ord(c) for c in step["line"]]), step["now_ms"], step["clock_us"])
            got = [verdict, rx.steering, rx.throttle, rx.failsafe]
            want = [step["verdict"], step["steering"], step["throttle"], step["failsafe"]]
        same = len(got) == len(want)
        for a, b in zip(got, want):
            same = same and (abs(a - b) <= 1e-9 if isinstance(b, float) else a == b)
        if not same:
            failures.append("%s: step %d (%r): got %r, want %r" % (case["name"], i, step.get("line"), got, want))
    return failures
"""
MICROPYTHON_MAIN = """
import json, sys
sys.path.insert(0, sys.argv[1])
import receiver
with open(sys.argv[2]) as f:
    vectors = json.load(f)
failures = []
for case in vectors["cases"]:
    failures += check(receiver, vectors, case)
for failure in failures:
    print(failure)
print("implementation %s, %d cases, %d failures" % (sys.implementation.name, len(vectors["cases"]), len(failures)))
"""
namespace = {}
exec(CHECK, namespace)
check = namespace["check"]


def load_receiver():
    spec = importlib.util.spec_from_file_location("mcu_receiver", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rx_module = load_receiver()
with open(VECTORS, encoding="ascii") as f:
    vectors = json.load(f)


@pytest.mark.parametrize("case", vectors["cases"], ids=[c["name"] for c in vectors["cases"]])
def test_the_receiver_judges_every_vector_as_the_spec_says(case):
    assert check(rx_module, vectors, case) == []


def test_the_vectors_cover_every_verdict_keyed_and_unkeyed():
    keyed_only = {"unsigned", "forged", "replayed", "clock", "stale"}
    for keyed, wanted in ((False, set(VERDICTS) - keyed_only), (True, set(VERDICTS))):
        seen = {s["verdict"] for c in vectors["cases"] if c["keyed"] == keyed for s in c["steps"] if "verdict" in s}
        assert seen == wanted, (keyed, wanted - seen)
    assert {s["clock_us"] is None for c in vectors["cases"] for s in c["steps"] if "line" in s} == {True, False}


def test_the_verdicts_are_the_spec_s_in_its_order():
    assert rx_module.VERDICTS == VERDICTS


def test_each_vector_signature_checks_with_cpythons_hmac():
    key = bytes.fromhex(vectors["key"])
    checked = 0
    for case in (c for c in vectors["cases"] if c["keyed"]):
        for step in (s for s in case["steps"] if s.get("verdict") not in (None, "truncated", "malformed", "unsigned")):
            text = step["line"].encode("latin-1")
            signed, _, tag = text[:-1].rpartition(b" sig=")
            right = hmac.new(key, signed, hashlib.sha256).hexdigest()[:32].encode()
            assert hmac.compare_digest(right, tag) == (step["verdict"] != "forged"), (case["name"], step["line"])
            checked += 1
    assert checked > 40


def test_hmac_sha256_matches_rfc_4231_and_cpython():
    mac = rx_module.hmac_sha256
    assert mac(b"\x0b" * 20, b"Hi There").hex() == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )  # test case 1
    assert mac(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )  # test case 2
    assert mac(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First").hex() == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )  # test case 6: a key over 64 bytes
    for n in (0, 1, 31, 32, 63, 64, 65, 200):
        key, msg = bytes(range(n % 256)) * (1 + n // 256), b"cmd seq=%d v=2" % n
        assert mac(key[:n], msg) == hmac.new(key[:n], msg, hashlib.sha256).digest()


def test_read_key():
    assert rx_module.read_key(" \n" + "0aF1" * 16 + "\n") == bytes.fromhex("0af1" * 16)
    assert rx_module.read_key(b"\t" + b"0a" * 32 + b"\r\n\x0b\x0c ") == bytes.fromhex("0a" * 32)
    for bad in (
        "",
        "0a" * 31,
        "0a" * 33,
        "0a" * 31 + "0g",
        "0a" * 15 + " " + "0a" * 17,
        "0x" + "0a" * 31,
        "0a" * 32 + "\x1c",  # CPython's str.strip() drops it, MicroPython's does not: refused by both
        "\u00a0" + "0a" * 32,
        "0a" * 32 + "\n0a",
    ):
        with pytest.raises(ValueError):
            rx_module.read_key(bad)


def signed(seq, ts, key, kind=b"hb", fields=b"state=ok"):
    text = b"%s seq=%d t=1.0 %s v=2 session=7 ts=%d" % (kind, seq, fields, ts)
    return text + b" sig=" + hmac.new(key, text, hashlib.sha256).hexdigest()[:32].encode() + b"\n"


def test_the_newest_ts_is_kept_on_disk_within_one_second(tmp_path):
    path, key = str(tmp_path / "link.newest"), b"k" * 32
    assert rx_module.load_newest(path) == 0  # no file yet
    rx = rx_module.Receiver(key=key, newest=rx_module.load_newest(path))
    rx.persist(path, force=True)
    assert not os.path.exists(path)  # nothing accepted: nothing to keep
    t0 = 1764201234000000
    assert rx.apply(signed(1, t0, key), 0) == "ok"
    rx.persist(path)
    assert open(path).read().strip() == str(t0)  # the first accepted ts is written at once
    assert rx.apply(signed(2, t0 + 999999, key), 10) == "ok"
    rx.persist(path)
    assert open(path).read().strip() == str(t0)  # grown by less than 1 s: not yet
    assert rx.apply(signed(3, t0 + 1000000, key), 20) == "ok"
    rx.persist(path)
    assert open(path).read().strip() == str(t0 + 1000000)
    assert rx.apply(signed(4, t0 + 1000001, key), 30) == "ok"
    rx.persist(path, force=True)  # at exit
    assert open(path).read().strip() == str(t0 + 1000001)
    assert sorted(os.listdir(str(tmp_path))) == ["link.newest"]  # the .tmp was renamed over it

    newest = rx_module.load_newest(path)
    assert newest == t0 + 1000001 + 1000000  # + 1 s: what may have come after the last write is refused too
    again = rx_module.Receiver(key=key, newest=newest)
    assert again.apply(signed(5, newest, key), 0) == "replayed"
    again.persist(path, force=True)  # restarts alone never move it
    assert rx_module.load_newest(path) == newest
    assert again.apply(signed(5, newest + 1, key), 0) == "ok"
    again.persist(path)
    assert open(path).read().strip() == str(newest + 1)

    unkeyed = rx_module.Receiver()
    assert unkeyed.apply(signed(1, t0 + 10**9, key), 0) == "ok"
    unkeyed.persist(str(tmp_path / "unkeyed"), force=True)
    assert not os.path.exists(str(tmp_path / "unkeyed"))
    (tmp_path / "bad").write_text("12x\n")
    with pytest.raises(ValueError):
        rx_module.load_newest(str(tmp_path / "bad"))


def test_stale_needs_no_wall_clock_and_is_counted():
    key, t0 = b"k" * 32, 1764201234000000
    rx = rx_module.Receiver(key=key)
    assert rx.apply(signed(1, t0, key), 0) == "ok"
    assert rx.apply(signed(2, t0 + 1, key), 8000) == "stale"  # sent 1 us after the last, arrived 8 s after it
    assert rx.apply(signed(2, t0 + 7499999, key), 8000) == "stale"
    assert rx.apply(signed(2, t0 + 7500000, key), 8000) == "ok"  # 0.5 s earlier than the silence: the bound
    assert (rx.counts["stale"], rx.counts["ok"]) == (2, 2)
    unkeyed = rx_module.Receiver()
    assert unkeyed.apply(signed(1, t0, key), 0) == "ok"
    assert unkeyed.apply(signed(2, t0 + 1, key), 8000) == "ok"  # unkeyed: ts is not read


def test_counts():
    rx = rx_module.Receiver()
    rx.apply(b"neutral seq=1 v=2 session=3\n", 0)
    rx.apply(b"cmd seq=4 steering=2 throttle=0.5 v=2 session=3\n", 10)
    rx.apply(b"hb seq=4 v=2 session=3\n", 20)
    rx.apply(b"hb\n", 20)
    rx.tick(400)
    assert rx.counts == {
        "ok": 2,
        "truncated": 0,
        "malformed": 1,
        "unsigned": 0,
        "forged": 0,
        "replayed": 0,
        "clock": 0,
        "stale": 0,
        "foreign": 0,
        "late": 1,
        "ahead": 0,
        "cmd": 1,
        "neutral": 1,
        "hb": 0,
        "lost": 2,
        "failsafe": 1,
        "clamped": 1,
    }


def test_the_source_keeps_to_what_micropython_has():
    """No f-strings, and only modules MicroPython ports have, so the file runs unchanged on a board."""
    with open(SOURCE, encoding="ascii") as f:
        tree = ast.parse(f.read())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"binascii", "errno", "hashlib", "os", "sys", "socket", "time"}
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.JoinedStr, ast.NamedExpr))]
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & {"hex", "fromhex", "compare_digest", "to_bytes", "from_bytes"}


def micropython():
    path = os.environ.get("MICROPYTHON") or shutil.which("micropython")
    if not path:
        pytest.skip(
            "no MicroPython here: put `micropython` on PATH (Debian 13: apt-get install micropython) or "
            "set MICROPYTHON=/path/to/micropython to run the vectors under it"
        )
    return path


def test_the_vectors_pass_under_a_real_micropython(tmp_path):
    script = tmp_path / "vectors.py"
    script.write_text(CHECK + MICROPYTHON_MAIN)
    proc = subprocess.run(
        [micropython(), str(script), os.path.dirname(SOURCE), VECTORS], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "implementation micropython, %d cases, 0 failures" % len(vectors["cases"]), (
        proc.stdout
    )


def free_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_main(tmp_path, port, key, seconds, prelude=""):
    """main() under a real MicroPython, as a board runs it, with a key file (key None: unkeyed); prelude: statements
    run on the module first (a wall clock, ALLOW_NO_CLOCK)."""
    key_file = None
    if key is not None:
        key_file = str(tmp_path / "link.key")
        (tmp_path / "link.key").write_text(key.hex() + "\n")
    code = "import sys, time; sys.path.insert(0, %r); import receiver; %s; receiver.main(%d, %r, %r, seconds=%r)" % (
        os.path.dirname(SOURCE),
        prelude or "pass",
        port,
        key_file,
        str(tmp_path / "link.newest"),
        seconds,
    )
    return subprocess.Popen([micropython(), "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def flipped(line):
    """The same signed line with its tag's last digit changed."""
    return line[:-2] + (b"0" if line[-2:-1] != b"0" else b"1") + b"\n"


def test_main_drives_from_udp_under_a_real_micropython(tmp_path):
    """main() as a board runs it: a UDP socket, a key file, a wall clock, the newest ts kept on disk, the
    fail-safe."""
    import socket
    import time

    key, port = bytes(range(32)), free_port()
    proc = start_main(tmp_path, port, key, 1.5, "receiver.wall_clock_us = lambda: int(time.time() * 1000000)")
    sent = []

    def fresh():  # a sender's ts: its clock, growing with every line
        sent.append(max(int(time.time() * 1e6), sent[-1] + 1 if sent else 0))
        return sent[-1]

    try:
        assert proc.stdout.readline() == "receiver: udp port %d, keyed\n" % port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for line in (
                lambda: signed(1, fresh(), key),
                lambda: flipped(signed(2, fresh(), key)),
                lambda: b"x" * 600 + b"\n",
                lambda: signed(2, fresh() + 3600000000, key),  # an hour ahead of the wall clock
                lambda: signed(2, fresh(), key, b"cmd", b"steering=0.25 throttle=0.5"),
            ):
                s.sendto(line(), ("127.0.0.1", port))
                time.sleep(0.05)
        out = proc.stdout.read()  # (not communicate(): it would miss what readline() buffered)
        assert proc.wait(timeout=10) == 0, out
    finally:
        proc.kill()
        proc.stdout.close()
    assert out.splitlines() == [
        "steering 0.000 throttle 0.000 brake 0.000",
        "dropped: forged",
        "dropped: truncated",
        "dropped: clock",
        "steering 0.250 throttle 0.500 brake 0.000",
        "FAILSAFE: link silent",
        "steering 0.000 throttle 0.000 brake 0.000",
    ], out
    assert open(str(tmp_path / "link.newest")).read() == "%d\n" % sent[-1]


def test_main_refuses_to_start_keyed_without_a_wall_clock_under_a_real_micropython(tmp_path):
    """As shipped, wall_clock_us() is None: a keyed main() stops before it opens the socket."""
    proc = start_main(tmp_path, free_port(), bytes(range(32)), 0.2)
    out = proc.communicate(timeout=10)[0]
    assert proc.returncode != 0, out
    assert "a keyed receiver needs a wall clock" in out and "ALLOW_NO_CLOCK = True" in out, out
    assert "receiver: udp port" not in out and "steering" not in out, out


def test_main_starts_keyed_without_a_wall_clock_only_when_allowed_under_a_real_micropython(tmp_path):
    """ALLOW_NO_CLOCK = True: it starts and says so; the clock check is skipped (a line an hour ahead acts), and
    only the stored newest ts and the stale rule are left. Unkeyed, no clock is needed."""
    import socket
    import time

    key, port = bytes(range(32)), free_port()
    proc = start_main(tmp_path, port, key, 0.5, "receiver.ALLOW_NO_CLOCK = True")
    try:
        assert proc.stdout.readline() == "receiver: udp port %d, keyed, NO WALL CLOCK (ALLOW_NO_CLOCK)\n" % port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(
                signed(1, int(time.time() * 1e6) + 3600000000, key, b"cmd", b"steering=0.25 throttle=0.5"),
                ("127.0.0.1", port),
            )
        out = proc.stdout.read()
        assert proc.wait(timeout=10) == 0, out
    finally:
        proc.kill()
        proc.stdout.close()
    assert "steering 0.250 throttle 0.500 brake 0.000" in out.splitlines(), out

    port = free_port()
    proc = start_main(tmp_path, port, None, 0.2)
    out = proc.communicate(timeout=10)[0]
    assert proc.returncode == 0 and out.splitlines()[0] == "receiver: udp port %d, UNKEYED" % port, out
