"""The control link under attack (issue 27): sessions, the seq window, the strict line grammar, keys and replays,
first judged line by line, then with real processes on loopback: the simulated car keeps its lane through forged
and cut datagrams; the vehicle fails safe after its sender dies whatever is replayed; keyed links never act on
forged, replayed or foreign lines; and a 5 s outage resynchronises. Every wait is bounded; timings in assertions
are generous bounds, never measurements."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from runtime.vehicle import link as control
from runtime.errors import UserError
from runtime.vehicle.sender import ControlOutput, ControlSettings
from runtime.vehicle.receiver import Receiver
from tests.conftest import ROOT, cli, free_udp_port, one_line_error
from tests.runtime.vehicle.test_vehicle import Listener

RUNTIME_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/runtime: bundles/, data/
BUNDLE = os.path.join(RUNTIME_TESTS, "bundles", "pilotnet")
VECTORS = os.path.join(RUNTIME_TESTS, "data", "link_vectors.json")
RUN = ["--backend", "onnxruntime", "--input-width", "200", "--input-height", "110", "--no-display", "--quiet"]


def v2(kind, seq, session=7, **fields):
    return control.format_line(kind, dict({"seq": seq, "t": 1.0}, **fields, v=2, session=session))


def key_file(path, key=None):
    path.write_text((key or os.urandom(32)).hex() + "\n")
    path.chmod(0o600)
    return path


# -- the grammar ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    b"cmd seq=1 steering=1e308 v=2 session=7\n",  # an exponent: 1e308 was stored
    b"cmd seq=1 steering=1_000 v=2 session=7\n",  # float() reads 1_000
    b"cmd seq=1 steering=+1 v=2 session=7\n",
    b"cmd seq=1 steering=inf v=2 session=7\n",
    b"cmd seq=1 steering=0.1 steering=0.9 v=2 session=7\n",  # a key twice
    b"cmd seq=1 steering=0.1 label=\x1b[2J v=2 session=7\n",  # a terminal's escape
    b"cmd seq=1  steering=0.1 v=2 session=7\n",  # two spaces
    b"cmd seq=\xd9\xa8 v=2 session=7\n",  # a digit of another script
    b"cmd seq=-1 v=2 session=7\n",
    b"cmd seq=1 v=2 session=7\ncmd seq=2 v=2 session=7\n",  # two lines in one datagram
    b"cmd seq=" + b"9" * 30 + b" v=2 session=7\n",
])
def test_anything_but_the_format_is_malformed(line):
    assert Receiver(0.3, log=None).apply(line, 0.0).verdict == "malformed"


def test_a_cut_or_overlong_datagram_is_truncated_and_a_sender_writes_only_printable_short_text():
    r = Receiver(0.3, log=None)
    cut = (b"cmd seq=" + b"1" * 5000 + b" steering=1 throttle=1 v=2 session=7\n")[:control.MAX_LINE + 1]
    assert r.apply(cut, 0.0).verdict == "truncated"  # what recvfrom(MAX_LINE + 1) makes of the 5,020 bytes
    assert r.apply(b"cmd seq=1 v=2 session=7", 0.0).verdict == "truncated"  # no end of line
    assert r.apply(b"hb seq=1 state=" + b"x" * 600 + b" v=2 session=7\n", 0.0).verdict == "truncated"
    line = control.format_line("cmd", {"seq": 1, "label": "caf\u00e9 \x1b[0m" + "x" * 100})
    assert line.startswith(b"cmd seq=1 label=caf__") and len(line) < 90
    assert control.parse_line(line)[1]["label"] == line[16:-1].decode()


def test_an_old_receiver_still_reads_an_unkeyed_line():
    """A receiver written to version 1's README: kind, then key=value, text for seq/state/reason/label, float() for
    the rest. The version 2 fields are numbers to it."""
    def version1(data):
        words = data.decode("ascii").split()
        fields = {}
        for word in words[1:]:
            key, _, value = word.partition("=")
            fields[key] = int(value) if key == "seq" else value if key in ("state", "reason", "label") else float(value)
        return words[0], fields

    sender = control.Sender()
    kind, fields = version1(sender.line("cmd", {"t": 1.5, "steering": -0.25, "throttle": 0.3}))
    assert (kind, fields["seq"], fields["steering"], fields["throttle"], fields["v"]) == ("cmd", 1, -0.25, 0.3, 2.0)
    assert version1(sender.line("neutral", {"steering": 0.0, "throttle": 0.0, "reason": "stop"}))[1]["reason"] == "stop"


# -- sessions and order ------------------------------------------------------------------------------------------
def test_a_forged_line_never_acts_while_the_session_lives_and_replays_never_revive_it():
    r = Receiver(0.3, log=None)
    assert r.apply(v2("cmd", 1, steering=0.1), 0.0).verdict == "ok"
    assert r.apply(b"cmd seq=2000000000 steering=1 throttle=1\n", 0.01).verdict == "foreign"  # the issue's datagram
    assert r.apply(v2("cmd", 2000000000, steering=1.0, throttle=1.0), 0.02).verdict == "ahead"  # with the session
    assert r.apply(v2("neutral", 1, session=99, reason="start"), 0.03).verdict == "foreign"  # a forged new run
    assert r.apply(v2("cmd", 2, session=99, steering=1.0), 0.04).verdict == "foreign"
    assert r.apply(v2("cmd", 2, steering=0.2), 0.05).verdict == "ok"  # the genuine sender is not locked out
    assert (r.steering, r.throttle) == (0.2, 0.0)
    # the sender dies; an old heartbeat replayed every 100 ms never refreshes liveness
    for i in range(30):
        now = 0.1 + 0.1 * i
        assert r.apply(v2("hb", 2, state="ok"), now).verdict == "late"
        r.tick(now)
    assert r.failsafe and r.counts["failsafe"] == 1 and r.counts["late"] == 30


def test_another_session_takes_over_only_after_the_timeout_and_an_outage_resynchronises():
    r = Receiver(0.3, log=None)
    r.apply(v2("cmd", 10, steering=0.1), 0.0)
    assert r.apply(v2("cmd", 10 + 1025, steering=0.3), 0.1).verdict == "ahead"
    assert r.apply(v2("cmd", 11, steering=0.2), 0.25).verdict == "ok"
    assert r.apply(v2("cmd", 1, session=8, steering=-0.5), 0.5).verdict == "foreign"  # 250 ms of silence: not yet
    # a 5 s outage of the same session, whose seq moved on by more than the window: accepted once silent
    r.tick(0.6)
    assert r.failsafe
    assert r.apply(v2("cmd", 11 + 5000, steering=0.4), 5.25).verdict == "ok" and not r.failsafe
    assert r.apply(v2("cmd", 11 + 5001, steering=0.5), 5.28).verdict == "ok" and r.steering == 0.5
    assert r.apply(v2("cmd", 1, session=8), 5.7).verdict == "ok" and r.session == 8  # silent again: takeover


def test_the_receiver_clamps_to_its_limits():
    r = Receiver(0.3, log=None, steering_limit=0.5, throttle_limit=0.2, max_inverse_radius=0.05)
    r.apply(v2("cmd", 1, steering=3.0, inverse_radius=0.3, throttle=-7.0), 0.0)
    assert (r.steering, r.throttle, r.command["inverse_radius"], r.counts["clamped"]) == (0.5, -0.2, 0.05, 1)


# -- keys -----------------------------------------------------------------------------------------------------------
def test_signed_lines_are_checked_and_replays_refused_across_restarts(tmp_path):
    key, other = os.urandom(32), os.urandom(32)
    state = str(tmp_path / "newest")
    sender = control.Sender(key)
    lines = [sender.line("cmd", {"t": 1.0, "steering": 0.1 * i}) for i in range(1, 4)]
    r = Receiver(0.3, log=None, key=key, newest=control.Newest(state))
    assert r.apply(lines[0], 0.0).verdict == "ok"
    assert r.apply(lines[0], 0.01).verdict == "replayed"
    forged = lines[1].replace(b"steering=0.200000", b"steering=0.900000")
    assert r.apply(forged, 0.02).verdict == "forged"
    assert r.apply(v2("cmd", 2, session=sender.session, steering=1.0), 0.03).verdict == "unsigned"
    assert r.apply(control.Sender(other).line("cmd", {"steering": 1.0}), 0.04).verdict == "forged"  # another key
    assert r.apply(lines[1], 0.05).verdict == "ok" and r.steering == pytest.approx(0.2)
    r.close()
    # a new receiver (the vehicle restarted) refuses what was sent before, whatever its session
    again = Receiver(0.3, log=None, key=key, newest=control.Newest(state))
    assert again.apply(lines[2], 0.0).verdict == "replayed"
    assert again.apply(control.Sender(key).line("hb", {"state": "ok"}), 0.0).verdict == "replayed"  # < 1 s later
    time.sleep(1.05)
    fresh = control.Sender(key).line("hb", {"state": "ok"})
    assert again.apply(fresh, 0.0).verdict == "ok"  # and written at once: a crash now must not let it act again
    again.newest.release()
    assert Receiver(0.3, log=None, key=key, newest=control.Newest(state)).apply(fresh, 0.0).verdict == "replayed"
    # a receiver that crashes (no close) loses nothing either: what it accepted after its last write is refused
    crash_state = str(tmp_path / "crashed")
    crashed, sender = Receiver(0.3, log=None, key=key, newest=control.Newest(crash_state)), control.Sender(key)
    first, second = sender.line("hb", {"state": "ok"}), sender.line("hb", {"state": "ok"})
    assert crashed.apply(first, 0.0).verdict == crashed.apply(second, 0.01).verdict == "ok"
    assert int(open(crash_state).read()) < control.parse_line(second)[1]["ts"]  # the second was not written yet
    crashed.newest.release()  # as a crash leaves it: unlocked, not written
    assert Receiver(0.3, log=None, key=key, newest=control.Newest(crash_state)).apply(second, 0.0).verdict == "replayed"
    late = control.Sender(key)
    late.ts = int((time.time() + 120) * 1e6)  # a clock two minutes ahead
    assert again.apply(late.line("hb", {"state": "ok"}), 1.0).verdict == "clock"


def test_lines_held_back_and_released_later_are_stale():
    """A man in the middle holds signed lines and releases them later: the 60 s clock window let an 8 s hold act.
    A line may be sent at most STALE_US earlier than the silence since the last accepted line allows."""
    key = os.urandom(32)
    sender, r = control.Sender(key), Receiver(0.3, log=None, key=key)
    assert r.apply(sender.line("cmd", {"steering": 0.1}), time.monotonic()).verdict == "ok"
    held = [sender.line("cmd", {"steering": 0.9}) for _ in range(3)]  # sent now, delivered 1.2 s later
    time.sleep(1.2)
    assert [r.apply(line, time.monotonic()).verdict for line in held] == ["stale"] * 3
    assert r.apply(sender.line("cmd", {"steering": 0.3}), time.monotonic()).verdict == "ok"  # sent just now
    assert r.steering == 0.3 and r.counts["stale"] == 3


def test_the_state_file_is_one_receivers_and_written_safely(tmp_path):
    state = str(tmp_path / "link.newest")
    first = control.Newest(state)
    with pytest.raises(UserError, match="in use by another receiver"):
        control.Newest(state)
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    os.symlink(victim, state + ".tmp")  # a link planted where a fixed temporary name was written through
    first.accept(int(time.time() * 1e6))
    first.close()
    assert victim.read_text() == "mine\n" and not os.path.islink(state) and int(open(state).read()) > 0
    assert sorted(os.listdir(tmp_path)) == ["link.newest", "link.newest.lock", "link.newest.tmp", "victim"]
    control.Newest(state).close()  # free again once closed


def test_the_simulated_vehicle_reads_a_bounded_number_of_datagrams_a_frame(tmp_path):
    from runtime.sim.sources import DATAGRAMS_PER_FRAME, open_synthetic

    port = free_udp_port()
    source = open_synthetic("synthetic://road?control=udp://127.0.0.1:%d" % port, 160, 90)
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    for seq in range(1, 501):
        flood.sendto(v2("hb", seq), ("127.0.0.1", port))
    time.sleep(0.2)
    frames = source._images()
    next(frames)
    assert source.receiver.counts["hb"] == DATAGRAMS_PER_FRAME  # the rest waits for the next frames
    next(frames)
    assert source.receiver.counts["hb"] == 2 * DATAGRAMS_PER_FRAME
    frames.close()
    flood.close()
    source.link.close()


def test_key_files_and_their_refusals(tmp_path):
    path = tmp_path / "link.key"
    proc = cli("runtime", "keygen", path)
    assert proc.returncode == 0 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert len(control.read_key(str(path))) == 32
    assert one_line_error(cli("runtime", "keygen", path))  # never over a key both ends hold
    path.chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        control.read_key(str(path))
    bad = key_file(tmp_path / "bad.key")
    for text in ("not hex\n", " ".join(os.urandom(32).hex()[i:i + 2] for i in range(0, 64, 2)),
                 os.urandom(32).hex() + "00"):
        bad.write_text(text)
        with pytest.raises(UserError, match="not a key"):
            control.read_key(str(bad))
    with pytest.raises(UserError, match="do not go together"):
        control.Security(str(path), insecure=True)


@pytest.mark.parametrize("args, message", [
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "udp://192.0.2.1:5005"], "beyond the loopback"),
    (["vehicle", "--listen", "udp://:5005"], "beyond the loopback"),
    (["record", "--source", "synthetic://road", "--steering-from", "udp://:6000", "--out", "T"], "beyond the loopback"),
    (["run", BUNDLE, "--source", "synthetic://road?control=udp://:5005"], "beyond the loopback"),
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "ros2://cmd_vel", "--speed", "1", "--wheelbase", "1",
      "--link-key", "K"], "SROS 2"),
    (["vehicle", "--listen", "udp://127.0.0.1:0", "--steering-limit", "inf"], "--steering-limit"),
    (["vehicle", "--listen", "udp://127.0.0.1:0", "--max-inverse-radius", "inf"], "1/m from"),
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "udp://127.0.0.1:9", "--steering-limit", "inf"],
     "--steering-limit"),
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "udp://127.0.0.1:9", "--steering-rate", "inf"],
     "--steering-rate"),
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "ros2://cmd_vel", "--speed", "inf"], "--speed"),
    (["run", BUNDLE, "--source", "synthetic://road", "--output", "ros2://cmd_vel", "--speed", "1", "--wheelbase",
      "nan"], "--wheelbase"),
    (["vehicle", "--listen", "udp://127.0.0.1:0", "--link-key", ""], "--link-key: give a file"),
    (["vehicle", "--listen", "udp://127.0.0.1:0", "--link-key", "K", "--link-state", ""], "--link-state: give a file"),
    (["vehicle", "--listen", "udp://127.0.0.1:9", "--jsonl", "T"], "--jsonl"),
])
def test_links_beyond_the_loopback_need_a_key(tmp_path, args, message):
    key = str(key_file(tmp_path / "k.key"))
    (tmp_path / "tub").mkdir(exist_ok="--jsonl" in args)  # a folder where --jsonl wants a file
    proc = cli("runtime", *[str(tmp_path / "tub") if a == "T" else key if a == "K" else a for a in args])
    assert one_line_error(proc) and message in proc.stderr, proc.stderr


def test_a_unit_from_before_keys_is_not_restarted_for_ever(tmp_path):
    """systemd restarts on failure: a refusal a restart cannot fix exits 0 there, saying so, not every 2 s."""
    env = dict(os.environ, INVOCATION_ID="0123456789abcdef0123456789abcdef")
    proc = subprocess.run([sys.executable, "-m", "runtime", "run", BUNDLE, "--source", "synthetic://road",
                           "--output", "udp://192.0.2.1:5005", "--headless"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "beyond the loopback" in proc.stderr and "not restarted" in proc.stderr


def test_insecure_links_say_so(tmp_path):
    out = ControlOutput("udp://192.0.2.1:5005", ControlSettings(security=control.Security(insecure=True)),
                        log=open(os.devnull, "w"))
    assert "NOT authenticated" in out.summary()
    out.close()


# -- the shared test vectors (runtime/vehicle/mcu/receiver.py reads the same file) -----------------------------------
def test_the_python_receiver_judges_the_shared_vectors_as_the_spec_says():
    if not os.path.exists(VECTORS):
        pytest.fail("%s is missing" % VECTORS)
    vectors = json.load(open(VECTORS))
    key = bytes.fromhex(vectors["key"])
    for case in vectors["cases"]:
        r = Receiver(vectors["timeout_ms"] / 1000.0, log=None, key=key if case["keyed"] else None,
                     steering_limit=vectors["steering_limit"], throttle_limit=vectors["throttle_limit"])
        r.newest.value = case.get("newest", 0)
        for i, step in enumerate(case["steps"]):
            where = "%s, step %d" % (case["name"], i)
            if step.get("tick"):
                r.tick(step["now_ms"] / 1000.0)
            else:
                heard = r.apply(step["line"].encode("latin-1"), step["now_ms"] / 1000.0, step["clock_us"])
                assert heard.verdict == step["verdict"], where
                assert (r.steering, r.throttle) == (pytest.approx(step["steering"]), pytest.approx(step["throttle"])), \
                    where
            assert r.failsafe == step["failsafe"], where


# -- real processes on loopback ----------------------------------------------------------------------------------------
def _attack(port, stop, datagrams):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    while not stop.wait(0.05):
        for datagram in datagrams():
            sock.sendto(datagram, ("127.0.0.1", port))
    sock.close()


def _issues_datagrams():
    """The issue's datagrams: a forged high seq, a forged start and command (old format, and a made-up session),
    and 5,020 bytes that recvfrom(4096) cut to a seq that parsed."""
    return (b"cmd seq=2000000000 steering=1 throttle=1\n", b"neutral seq=1 t=1 steering=0 throttle=0 reason=start\n",
            b"cmd seq=2 steering=1 throttle=1\n", v2("neutral", 1, session=12345, reason="start"),
            v2("cmd", 2, session=12345, steering=1.0), b"cmd seq=" + b"9" * 4988 + b" steering=1 throttle=1\n")


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_the_simulated_car_keeps_its_lane_through_forged_and_cut_datagrams(tmp_path, keyed):
    port, report = free_udp_port(), tmp_path / "drive.json"
    keys, datagrams = [], _issues_datagrams
    if keyed:  # and lines signed with another key, fresh each time
        keys = ["--link-key", str(key_file(tmp_path / "link.key"))]
        strange = control.Sender(os.urandom(32))
        datagrams = lambda: _issues_datagrams() + (strange.line("cmd", {"steering": 1.0, "throttle": 1.0}),)  # noqa
    stop = threading.Event()
    attacker = threading.Thread(target=_attack, args=(port, stop, datagrams), daemon=True)
    attacker.start()
    try:
        proc = cli("runtime", "run", BUNDLE, "--source",
                   "synthetic://road?control=udp://127.0.0.1:%d&report=%s" % (port, report),
                   "--output", "udp://127.0.0.1:%d" % port, "--max-frames", "240" if not keyed else "150", *RUN, *keys)
    finally:
        stop.set()
        attacker.join()
    assert proc.returncode == 0, proc.stderr
    drive = json.load(open(report))
    assert drive["interventions"] == 0 and drive["autonomy"] == 100.0, drive
    received = drive["received"]
    assert received["truncated"] > 20 and received["ahead"] == 0, received  # (a stall under load may fail safe)
    if keyed:
        assert received["unsigned"] > 100 and received["forged"] > 20 and received["cmd"] >= 120
        assert "signed (HMAC-SHA256" in proc.stderr
    else:
        assert received["foreign"] > 100 and received["cmd"] >= 200


def test_a_keyed_recording_keeps_only_signed_readings(tmp_path):
    port = free_udp_port()
    stop = threading.Event()
    forger = threading.Thread(target=_attack, daemon=True, args=(port, stop, lambda: (
        b"t=%f steering=1.0\n" % time.time(), control.Sender(os.urandom(32)).line(None, {"steering": 1.0}))))
    forger.start()
    try:
        proc = cli("runtime", "record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d" % port,
                   "--steering-from", "udp://127.0.0.1:%d" % port, "--out", tmp_path / "tub", "--max-frames", "30",
                   "--input-width", "160", "--input-height", "90", "--link-key", key_file(tmp_path / "link.key"))
    finally:
        stop.set()
        forger.join()
    assert proc.returncode == 0, proc.stderr
    assert "recorded 30 frames" in proc.stdout and "refused (unsigned, forged or replayed)" in proc.stdout
    records = [json.loads(line) for line in open(tmp_path / "tub" / "catalog_0.catalog")]
    assert len(records) == 30 and all(r["user/angle"] != 1.0 for r in records)
    assert (tmp_path / "link.key.newest").is_file()


class Relay(Listener):
    """Between the runtime and the vehicle: forwards what the runtime sends (keeping a copy), drops it during an
    outage, and sends what a test injects; the genuine lines are kept in order."""

    def __init__(self, vehicle_port):
        self.vehicle, self.genuine, self.forwarding = ("127.0.0.1", vehicle_port), [], True
        super().__init__()

    def received(self, data):
        self.genuine.append(data)
        if self.forwarding:
            self.sock.sendto(data, self.vehicle)

    def inject(self, data):
        self.sock.sendto(data, self.vehicle)


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_outage_resync_replay_after_death_and_forgeries_on_real_processes(tmp_path, keyed):
    vehicle_port, jsonl = free_udp_port(), tmp_path / "heard.jsonl"
    keys = ["--link-key", str(key_file(tmp_path / "link.key"))] if keyed else []
    vehicle = subprocess.Popen([sys.executable, "-m", "runtime", "vehicle", "--listen",
                                "udp://127.0.0.1:%d" % vehicle_port, "--timeout-ms", "300", "--jsonl", str(jsonl),
                                "--quiet", *keys], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    relay = Relay(vehicle_port)
    runtime = None
    try:
        assert "listening" in vehicle.stderr.readline()
        runtime = subprocess.Popen([sys.executable, "-m", "runtime", "run", BUNDLE, "--source", "synthetic://road",
                                    "--input-rate", "30", "--output", relay.uri, *RUN, *keys], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _wait_for(lambda: len(relay.genuine) > 45, 60), "the runtime sent nothing"
        # while it lives: forgeries with its session, a replay, and (keyed) a line signed with another key
        first = relay.genuine[5]
        session = control.parse_line(first)[1]["session"]
        forged = [first, v2("cmd", 10 ** 6, session=session, steering=1.0, throttle=1.0)]
        if keyed:
            seq = control.parse_line(relay.genuine[-1])[1]["seq"]
            forged += [first.replace(b"state=ok", b"state=xx") if b"state=ok" in first else first[:-2] + b"0\n",
                       control.Sender(os.urandom(32)).line("cmd", {"steering": 1.0, "throttle": 1.0}),
                       v2("cmd", seq + 3, session=session, steering=1.0, throttle=1.0)]
        for data in forged:
            relay.inject(data)
        time.sleep(0.5)
        relay.forwarding = False  # a 5 s outage
        outage, start = time.time(), len(relay.genuine)
        time.sleep(5.0)
        held = relay.genuine[start:start + 40]  # sent in the outage's first second or so
        if keyed:  # held back by a man in the middle and released: stale
            for data in held:
                relay.inject(data)
        relay.forwarding = True
        back = time.time()
        time.sleep(1.5)
        runtime.send_signal(signal.SIGKILL)  # the sender dies; its old lines are replayed every 100 ms
        runtime.wait(10)
        died = time.time()
        replays = relay.genuine[-40:-10:3]
        for data in replays:
            relay.inject(data)
            time.sleep(0.1)
        vehicle.send_signal(signal.SIGTERM)
        out, err = vehicle.communicate(timeout=20)
    finally:
        relay.close()
        for proc in (runtime, vehicle):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert vehicle.returncode == 128 + signal.SIGTERM, err
    heard = [json.loads(line) for line in open(jsonl)]
    accepted = [h for h in heard if h.get("verdict") == "ok"]
    # nothing forged ever acted: every command accepted is one the runtime sent, none at full lock
    assert all(h["session"] == session for h in accepted)
    assert not [h for h in accepted if h.get("throttle") == 1.0 or h.get("steering") == 1.0]
    verdicts = [h["verdict"] for h in heard if h.get("verdict", "ok") != "ok"]
    assert "ahead" in verdicts or (keyed and "forged" in verdicts)
    if keyed:
        stale = re.search(r"(\d+) stale", err)  # the held lines, and any a stall under load kept back as long
        assert {"replayed", "forged", "stale"} <= set(verdicts) and int(stale.group(1)) >= len(held) == 40
    # the outage: fail-safe within the timeout, then lines accepted again (resynchronised)
    failsafes = [h["at"] for h in heard if h.get("event") == "failsafe"]  # (a stall under load may add one)
    assert any(outage < f < outage + 1.5 for f in failsafes), (outage, failsafes)
    assert any(back < h["received"] < died - 0.5 for h in accepted)
    # after the sender's death: fail-safe within the timeout whatever is replayed, and nothing accepted after it
    last = max(h["received"] for h in accepted)
    assert last < died + 0.1 and any(last < f < last + 0.3 + 0.2 for f in failsafes), (last, failsafes)
    after = [h.get("verdict") for h in heard if h.get("received", 0) > died]  # (the log shows 10 discarded a second)
    assert after and set(after) <= {"late", "replayed", None} and len(after) <= len(replays) + 1
    assert "link back" in err and err.count("FAILSAFE") == len(failsafes) >= 2
