"""The vehicle loop (control.py, outputs/control.py, vehicle.py, record.py, tub.py, synthetic://road's two
vehicle roles): commands over UDP and a serial pseudo-terminal, the clamp and the rate limit, the watchdog on a
stalled backend, a lost camera and NaN outputs, the reference receiver's fail-safe, recording a tub (resumed,
torn, on a full disk), and the simulator driven through the link. Assertions are on order and counts; the
timings in them are generous bounds, never measurements."""

import json
import os
import socket
import threading
import time

import pytest

from runtime import Model, run
from runtime.vehicle import link as control
from runtime.errors import UserError
from runtime.outputs.base import OutputStopped
from runtime.vehicle.sender import ControlOutput, ControlSettings
from runtime.postprocess import Result
from runtime.sources.base import Frame, Source
from runtime.sim.sources import SyntheticRoad
from runtime.vehicle.receiver import Receiver
from tests.conftest import cli, free_udp_port, one_line_error


def stopped_with(proc, message):
    """Exit status 2, no traceback, and the message on the last line of stderr (after the command's own)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return proc.returncode == 2 and "Traceback" not in proc.stderr and lines and message in lines[-1]


class Listener:
    """A UDP socket on loopback that collects every line it gets, parsed, in a thread (received() takes each)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.uri = "udp://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lines, self.stopping = [], False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopping:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.received(data)

    def received(self, data):
        self.lines.append(control.parse_line(data) + (time.monotonic(),))

    def close(self):
        time.sleep(0.2)
        self.stopping = True
        self.thread.join()
        self.sock.close()
        return self.lines


def kinds(lines, *wanted):
    return [(k, f) for k, f, _ in lines if k in wanted]


# -- the line format and the limits ----------------------------------------------------------------------
def test_a_line_reads_back_as_it_was_written():
    line = control.format_line("cmd", {"seq": 7, "t": 1764201234.5678901, "steering": -0.125, "throttle": None,
                                       "label": "traffic light"})
    assert line == b"cmd seq=7 t=1764201234.567890 steering=-0.125000 label=traffic_light\n"
    assert control.parse_line(line) == ("cmd", {"seq": 7, "t": 1764201234.56789, "steering": -0.125,
                                                "label": "traffic_light"})
    assert control.parse_reading(b"steering=0.5\n", received=12.0) == (12.0, 0.5, None)
    assert control.parse_reading("t=3 steering=-0.5 throttle=0.2") == (3.0, -0.5, 0.2)
    for bad in (b"", b"go seq=1", b"cmd seq", b"cmd steering=nan", b"t=1 throttle=0.3"):
        with pytest.raises(ValueError):
            control.parse_reading(bad) if bad.startswith(b"t=") else control.parse_line(bad)


def test_the_clamp_and_the_rate_limit_hold():
    limits = control.Limits(limit=0.5, rate=2.0)  # at most 0.5, changing by at most 2 a second
    limits.reset(0.0)  # neutral sent at 0 s
    sent, t = [], 0.0
    for wanted in [1.0] * 20 + [-1.0] * 30:
        t += 0.05
        sent.append(limits(wanted, t))
    assert max(abs(s) for s in sent) == 0.5
    steps = [abs(b - a) for a, b in zip([0.0] + sent, sent)]
    assert max(steps) <= 2.0 * 0.05 + 1e-9
    assert sent[4] == pytest.approx(0.5) and sent[-1] == pytest.approx(-0.5)  # it gets there, ramped
    limits.reset(t)
    assert limits(1.0, t + 0.05) == pytest.approx(0.1)  # after a neutral it ramps in again from 0
    assert control.Limits(rate=2.0)(0.7, 5.0) == 0.0  # no neutral before it: it stays there
    unlimited = control.Limits()
    assert unlimited(0.9, 0.0) == 0.9 and unlimited(-3.0, 0.001) == -1.0


# -- commands over the links -------------------------------------------------------------------------------
def test_every_command_arrives_over_udp_in_order(pilot_bundle):
    listener = Listener()
    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        out = ControlOutput(listener.uri, ControlSettings(steering_limit=0.05, throttle=0.3), log=None)
        with SyntheticRoad(200, 110) as source:
            stats = run(model, source, [out], max_frames=40, log=None)
    lines = listener.close()
    assert stats.frames == 40
    seqs = [f["seq"] for _, f, _ in lines]
    assert seqs == list(range(1, len(lines) + 1))  # every line, in order, none lost on loopback
    assert (lines[0][0], lines[0][1]["reason"]) == ("neutral", "start")
    assert (lines[-1][0], lines[-1][1]["reason"]) == ("neutral", "stop")
    commands = kinds(lines, "cmd")
    assert len(commands) == 40
    assert all(abs(f["steering"]) <= 0.05 and f["throttle"] == 0.3 for _, f in commands)
    assert all(f["inverse_radius"] == pytest.approx(f["steering"] / 10.0, abs=1e-6) for _, f in commands)
    stamps = [f["t"] for _, f in commands]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time()) < 60
    assert out.sent == len(lines) and len(out.latency_ms) == 40


def test_a_classifier_sends_its_class(digits_bundle):
    from runtime.bundle import bundle_samples
    from runtime.commands.bench import MemoryFrames

    listener = Listener()
    with Model(str(digits_bundle), backend="onnxruntime") as model:
        out = ControlOutput(listener.uri, log=None)
        run(model, MemoryFrames(bundle_samples(model.bundle)[:3]), [out], max_frames=3, log=None)
    commands = kinds(listener.close(), "cmd")
    assert len(commands) == 3
    assert all(0 <= f["class"] <= 9 and 0.0 < f["confidence"] <= 1.0 and "label" in f for _, f in commands)


def test_commands_and_readings_go_through_a_serial_pseudo_terminal():
    pytest.importorskip("serial")
    master, slave = os.openpty()
    path = os.ttyname(slave)
    out = ControlOutput("serial://%s?baud=115200" % path, log=None)
    out.write(Frame(None, 0), Result(steering=0.25))
    out.close()
    data = b""
    while data.count(b"\n") < 3:
        data += os.read(master, 4096)
    lines = [control.parse_line(x) for x in data.splitlines()]
    assert [k for k, _ in lines][:3] == ["neutral", "cmd", "neutral"]
    assert lines[1][1]["steering"] == 0.25
    link = control.open_link("serial://%s?baud=115200" % path, listen=True)  # the other way: readings in
    os.write(master, b"t=5.5 steering=-0.3 thr")
    os.write(master, b"ottle=0.1\n")
    assert control.parse_reading(link.receive(2.0)) == (5.5, -0.3, 0.1)
    assert link.receive(0.2) is None
    os.write(master, b"t=6 steering=0.1\n")
    deadline, line = time.monotonic() + 5, None
    while line is None and time.monotonic() < deadline:  # the pty hands bytes over a moment later
        line = link.receive(0.0)  # what has come, without waiting
    assert control.parse_reading(line) == (6.0, 0.1, None)
    link.close()
    out = ControlOutput("serial://%s?baud=115200" % path, log=None)
    os.close(master)  # the adapter unplugged: the port answers EIO
    os.close(slave)
    with pytest.raises(OutputStopped, match="stopped"):
        for i in range(20):
            out.write(Frame(None, i), Result(steering=0.1))
            time.sleep(0.01)
    out.close()


def test_the_line_steers_right_positive_whatever_the_bundle_says():
    from types import SimpleNamespace

    listener = Listener()
    out = ControlOutput(listener.uri, log=None)
    from runtime.bundle import Bundle

    bundle = Bundle.__new__(Bundle)  # only what bind() reads: the task and what the steering means
    bundle.task, bundle.path, bundle.steering = "steering", "b", {"inverse_radius_per_unit": 0.2, "positive": "left"}
    out.bind(SimpleNamespace(bundle=bundle), SimpleNamespace(live=True), None)
    out.write(Frame(None, 0), Result(steering=0.5))  # half left, in this bundle's units
    out.close()
    (_, command), = kinds(listener.close(), "cmd")
    assert command["steering"] == -0.5 and command["inverse_radius"] == pytest.approx(-0.1)
    detector = ControlOutput(Listener().uri, log=None)
    with pytest.raises(UserError, match="sends steering or a class"):
        detector.bind(SimpleNamespace(bundle=SimpleNamespace(task="regression", path="b", steering=None)), None, None)


# -- the watchdog ------------------------------------------------------------------------------------------
class StallingRoad(Source):
    """The road as a live 30 FPS camera that stops giving frames for `gap` seconds after frame 15."""

    live, fps, uri = True, 30.0, "test://stalling-road"

    def __init__(self, gap):
        self.road, self.gap = SyntheticRoad(200, 110), gap

    def _images(self):
        for i, (image, truth) in enumerate(self.road._images()):
            time.sleep(1 / 30.0)
            if i == 15:
                time.sleep(self.gap)
            yield image, truth


@pytest.mark.parametrize("stall", ["backend", "camera"])
def test_the_watchdog_sends_neutral_when_results_stop_and_hands_back_when_they_return(pilot_bundle, stall):
    listener = Listener()
    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        if stall == "backend":  # inference stalls on purpose for one frame
            infer, calls = model.backend.infer, []

            def stalling(batch):
                calls.append(1)
                if len(calls) == 20:
                    time.sleep(1.5)
                return infer(batch)

            model.backend.infer = stalling
            source = StallingRoad(0.0)
        else:  # the camera gives nothing for a second
            source = StallingRoad(1.5)
        out = ControlOutput(listener.uri, ControlSettings(watchdog_ms=400, heartbeat_ms=100), log=None)
        run(model, source, [out], max_frames=40, log=None)
    lines = listener.close()
    events = [text for _, text in out.events]
    assert len(events) == 2 and events[0].startswith("no fresh result") and events[1].startswith("control resumed")
    assert out.neutral_events == 1
    order = [(k, f.get("reason")) for k, f, _ in lines if k != "hb"]
    fired = order.index(("neutral", "watchdog"))
    assert order[fired - 1][0] == "cmd" and ("cmd", None) in order[fired:]  # commands, neutral, commands again
    held = [f["state"] for k, f, _ in lines[fired:] if k == "hb"]
    assert "failsafe" in held and held[-1] == "ok"  # the heartbeat says the vehicle is held, then free again
    assert len(kinds(lines, "cmd")) == 40


def test_the_default_watchdog_is_three_frame_periods_at_least_100_ms():
    listener = Listener()
    out = ControlOutput(listener.uri, log=None)
    assert out.watchdog_s == 0.5  # nothing measured yet
    for i, stamp in enumerate([10.0, 10.04, 10.08, 10.12, 10.16]):  # results from a 25 FPS camera
        frame = Frame(None, i)
        frame.timestamp = stamp
        out.write(frame, Result(steering=0.0))
    assert out.watchdog_s == pytest.approx(0.12)
    out.periods.extend([0.01] * 15)  # 100 FPS: the floor
    assert out.watchdog_s == 0.1
    out.live = False  # a file read as fast as it decodes
    assert out.watchdog_s == 0.5
    out.settings.watchdog_s = 0.25  # --watchdog-ms 250
    assert out.watchdog_s == 0.25
    out.close()
    listener.close()


def test_nan_outputs_are_not_fresh_so_the_watchdog_fires():
    listener = Listener()
    out = ControlOutput(listener.uri, ControlSettings(watchdog_ms=150), log=None)
    out.write(Frame(None, 0), Result(steering=0.1))
    for i in range(15):  # half a second of NaN results
        out.write(Frame(None, i + 1), Result(steering=None, inverse_radius=None, invalid="NaN"))
        time.sleep(1 / 30.0)
    out.close()
    order = [(k, f.get("reason")) for k, f, _ in listener.close() if k != "hb"]
    assert order[:2] == [("neutral", "start"), ("cmd", None)]
    assert order[-1] == ("neutral", "stop") and [k for k, _ in order].count("cmd") == 1
    # the neutral says why, and is repeated at every heartbeat as reason=invalid, never as a new run's start
    assert order[2:-1] and set(order[2:-1]) == {("neutral", "invalid")} and len(order[2:-1]) >= 3
    out = ControlOutput(Listener().uri, ControlSettings(watchdog_ms=150), log=None)
    out.write(Frame(None, 0), Result(steering=None, inverse_radius=None, invalid="NaN"))  # NaN from the first frame
    assert out.failsafe == "invalid"
    out.close()


# -- the reference receiver ------------------------------------------------------------------------------
def v2(kind, seq, session=7, **fields):
    """A version 2 line of a session, as a sender writes it."""
    return control.format_line(kind, dict({"seq": seq, "t": 1.0}, **fields, v=2, session=session))


def test_the_receiver_stops_the_vehicle_when_the_link_goes_silent_and_counts_lost_lines():
    r = Receiver(0.3, log=None)
    r.apply(v2("cmd", 1, steering=0.4, throttle=0.2), 0.0)
    r.apply(v2("cmd", 4, steering=0.5), 0.1)  # 2 and 3 lost
    assert r.apply(v2("cmd", 3, steering=0.9), 0.15).verdict == "late"  # not acted on
    assert (r.steering, r.counts["lost"], r.counts["late"]) == (0.5, 2, 1)
    assert not r.tick(0.39) and r.tick(0.41)  # 300 ms after the last line accepted (a late one is no sign of life)
    assert (r.steering, r.throttle, r.failsafe) == (0.0, 0.0, True)
    r.apply(v2("hb", 5, state="failsafe"), 0.6)
    assert not r.failsafe and r.steering == 0.0
    r.apply(v2("neutral", 6, steering=0.0, throttle=0.0, reason="watchdog"), 0.7)
    assert r.apply(b"rubbish\n", 0.7).verdict == "malformed"
    assert r.counts["neutral"] == 1 and r.counts["malformed"] == 1 and r.counts["failsafe"] == 1
    # the runtime restarted: its new session takes over once the old one has been silent for the timeout
    assert r.apply(v2("neutral", 1, session=8, steering=0.0, throttle=0.0, reason="start"), 0.8).verdict == "foreign"
    assert r.apply(v2("neutral", 1, session=8, steering=0.0, throttle=0.0, reason="start"), 1.01).verdict == "ok"
    r.apply(v2("cmd", 2, session=8, steering=-0.3), 1.05)
    assert r.steering == -0.3 and r.counts["late"] == 1 and r.counts["lost"] == 2 and r.session == 8


def test_the_vehicle_command_logs_what_it_hears_and_its_failsafe(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "vehicle", "--listen", "udp://127.0.0.1:%d" % port,
                             "--timeout-ms", "200", "--jsonl", str(tmp_path / "heard.jsonl"), "--seconds", "3"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert "listening" in proc.stderr.readline()  # bound: from here nothing sent is missed
    for seq in range(1, 4):  # the third brakes: the fail-safe after it keeps the brake (receiver.py's rules)
        brake = dict(throttle=0.2, brake=0.4) if seq == 3 else {}
        sender.sendto(v2("cmd", seq, steering=0.1, **brake), ("127.0.0.1", port))
    sender.sendto(b"cmd seq=2000000000 steering=1 throttle=1\n", ("127.0.0.1", port))  # foreign: no session
    time.sleep(0.6)  # silence: its fail-safe
    sender.sendto(v2("cmd", 5, steering=0.2), ("127.0.0.1", port))
    out, err = proc.communicate(timeout=20)
    sender.close()
    assert proc.returncode == 0, err
    assert "FAILSAFE" in err and "link back" in err and err.index("FAILSAFE") < err.index("link back")
    # two fail-safes: the silence after seq 3, and the one after seq 5 until --seconds ends it
    assert "4 commands" in err and "1 lost" in err and "discarded: 1 foreign" in err and "fail-safe 2 time(s)" in err
    assert out.splitlines()[3] == "discarded (foreign): cmd seq=2000000000 steering=1 throttle=1"
    assert len(out.splitlines()) == 5
    records = [json.loads(line) for line in open(tmp_path / "heard.jsonl")]
    heard = [h for h in records if "verdict" in h]
    assert [h.get("seq") for h in heard] == [1, 2, 3, None, 5] and heard[-1]["steering"] == 0.2
    assert [(h["event"], h["brake"]) for h in records if "event" in h] == [("failsafe", 0.4), ("failsafe", 0.0)]
    assert [(h["throttle"], h["brake"], h["brake_in_force"]) for h in heard if h["verdict"] == "ok"] == [
        (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.4, 0.4), (0.0, 0.0, 0.0)]  # brake and throttle 0.2: the brake wins
    assert [h["verdict"] for h in heard] == ["ok"] * 3 + ["foreign", "ok"]


# -- the simulator as the vehicle ---------------------------------------------------------------------------
def test_the_simulator_is_driven_through_the_control_link(pilot_bundle, tmp_path):
    port = free_udp_port()
    report = tmp_path / "drive.json"
    proc = cli("runtime", "run", pilot_bundle, "--source",
               "synthetic://road?control=udp://127.0.0.1:%d&report=%s" % (port, report),
               "--output", "udp://127.0.0.1:%d" % port, "--input-width", "200", "--input-height", "110",
               "--max-frames", "150", "--no-display", "--quiet", "--backend", "onnxruntime")
    assert proc.returncode == 0, proc.stderr
    drive = json.load(open(report))
    assert drive["controller"] == "control link" and drive["sim_seconds"] == pytest.approx(149 / 30.0, abs=0.1)
    assert drive["received"]["cmd"] >= 140 and drive["received"]["lost"] == 0
    assert drive["autonomy"] > 0 and "vehicle: autonomy" in proc.stderr
    assert "control: udp://127.0.0.1:%d" % port in proc.stderr and "capture -> sent p50" in proc.stderr


# -- recording ---------------------------------------------------------------------------------------------
def _record(tmp_path, out, frames, *extra):
    port = free_udp_port()
    return cli("runtime", "record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d" % port,
               "--steering-from", "udp://127.0.0.1:%d" % port, "--out", out, "--max-frames", str(frames),
               "--input-width", "160", "--input-height", "90", *extra)


def _catalog(tub):
    records = []
    for name in json.loads(open(tub / "manifest.json").read().splitlines()[4])["paths"]:
        for line in open(tub / name):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass  # a malformed line: DonkeyCar and train skip it too
    return records


def test_a_recording_is_a_tub_resumed_after_a_torn_line(tmp_path):
    tub = tmp_path / "tub"
    proc = _record(tmp_path, tub, 30)
    assert proc.returncode == 0, proc.stderr
    assert "recorded 30 frames" in proc.stdout
    records = _catalog(tub)
    assert [r["_index"] for r in records] == list(range(30))
    assert all((tub / "images" / r["cam/image_array"]).is_file() and -1 <= r["user/angle"] <= 1 for r in records)
    stamps = [r["_timestamp_ms"] for r in records]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 29 * 1000 / 30 * 0.9  # 30 FPS, as captured
    with open(tub / "catalog_0.catalog", "a") as f:  # a power cut in the middle of a record
        f.write('{"_index": 30, "cam/ima')
    proc = _record(tmp_path, tub, 20)
    assert proc.returncode == 0, proc.stderr
    assert "adding to the tub" in proc.stderr
    records = _catalog(tub)
    assert [r["_index"] for r in records] == list(range(50))
    manifest = [json.loads(line) for line in open(tub / "manifest.json")]
    assert manifest[4]["current_index"] == 50 and len(manifest[3]["sessions"]["all_full_ids"]) == 2
    meta = json.load(open(tub / "catalog_1.catalog_manifest"))
    assert meta["start_index"] == 30 and len(meta["line_lengths"]) == 20


def test_a_tub_resumes_after_a_torn_line_keeps_its_metadata_and_refuses_other_records(tmp_path):
    from runtime.vehicle.tub import TubWriter

    tub = TubWriter(str(tmp_path / "tub"))
    for i in range(3):
        tub.add(b"\xff\xd8jpeg", 0.1 * i, None, 1000.0 + i)
    tub.close()
    with open(tmp_path / "tub" / "catalog_0.catalog", "a") as f:
        f.write('not json\n{"_index": 3, "cam/ima')  # a bad line in the middle, and a torn one at the end
    manifest = (tmp_path / "tub" / "manifest.json").read_text().splitlines()
    manifest[2] = json.dumps({"car": "donkey-1"})  # the user's metadata
    (tmp_path / "tub" / "manifest.json").write_text("\n".join(manifest) + "\n")
    again = TubWriter(str(tmp_path / "tub"))
    again.add(b"\xff\xd8jpeg", 0.5, 0.2, 2000.0)
    again.close()
    assert open(tmp_path / "tub" / "catalog_0.catalog").read().endswith("not json\n")  # kept: readers skip it
    assert [r["_index"] for r in _catalog(tmp_path / "tub")] == [0, 1, 2, 3]
    lines = [json.loads(line) for line in open(tmp_path / "tub" / "manifest.json")]
    assert lines[2] == {"car": "donkey-1"} and lines[4]["current_index"] == 4
    lines[0] = ["cam/image_array", "user/angle"]
    (tmp_path / "tub" / "manifest.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(UserError, match="a tub of other records"):
        TubWriter(str(tmp_path / "tub"))


def test_a_disk_that_fills_stops_the_recording_cleanly(tmp_path, monkeypatch, capsys):
    from runtime.__main__ import _main
    from runtime.cli import main

    statvfs, calls = os.statvfs, []

    class Full:
        f_bavail, f_frsize = 10, 4096

    def filling(path):  # the disk fills after 12 frames
        calls.append(path)
        return Full() if len(calls) > 12 else statvfs(path)

    monkeypatch.setattr(os, "statvfs", filling)
    port = free_udp_port()
    tub = tmp_path / "tub"
    status = main("python -m runtime", _main, ["record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d"
                                                % port, "--steering-from", "udp://127.0.0.1:%d" % port,
                                                "--out", str(tub), "--input-width", "160", "--input-height", "90"])
    out, err = capsys.readouterr()
    assert status == 2 and "less than 64 MB left: stopped, every record up to here is complete" in err
    records = _catalog(tub)
    assert 8 <= len(records) <= 11 and "recorded %d frames" % len(records) in out  # the frames matched by then
    assert json.loads(open(tub / "manifest.json").read().splitlines()[4])["current_index"] == len(records)


def test_frames_without_a_reading_are_counted_not_stored(tmp_path):
    port = free_udp_port()
    proc = cli("runtime", "record", "--source", "synthetic://road", "--input-rate", "30", "--steering-from",
               "udp://127.0.0.1:%d" % port, "--out", tmp_path / "tub", "--seconds", "1")
    assert stopped_with(proc, "no steering reading came")
    assert "recorded 0 frames" in proc.stdout and "had no reading within 50 ms" in proc.stdout


# -- refusals ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["run", "B", "--source", "synthetic://road", "--output", "udp://:5005"], "vehicle's address"),
    (["run", "B", "--source", "synthetic://road", "--output", "udp://host"], "udp://HOST:PORT"),
    (["run", "B", "--source", "synthetic://road", "--output", "serial://?baud=x"], "serial:///dev/ttyX"),
    (["run", "B", "--source", "synthetic://road", "--output", "serial:///dev/nonexistent-tty"], "cannot open"),
    (["run", "B", "--source", "synthetic://road", "--output", "serial:///dev/ttyS0?baud=\u00b2"], "serial:///dev/ttyX"),
    (["run", "B", "--source", "synthetic://road", "--output", "serial:///dev/ttyS0?baud=" + "9" * 23],
     "serial:///dev/ttyX"),
    (["vehicle", "--listen", "serial:///dev/ttyS0?baud=\u0668\u0660"], "serial:///dev/ttyX"),  # Arabic-Indic 80
    (["run", "B", "--source", "synthetic://road", "--output", "udp://127.0.0.1:5005", "--throttle", "2"],
     "--throttle"),
    (["run", "B", "--source", "synthetic://road?control=tcp://:1"], "control link is udp"),
    (["run", "B", "--source", "synthetic://road?speed=3"], "unknown parameter"),
    (["run", "B", "--source", "synthetic://road?control=udp://[::1"], "Invalid IPv6 URL"),
    (["run", "B", "--source", "synthetic://road", "--output", "udp://[::1:5005"], "Invalid IPv6 URL"),
    (["run", "B", "--source", "synthetic://road?control=udp://:0&steering=udp://h:1"], "do not go together"),
    (["run", "B", "--source", "synthetic://road?control=udp://:0&timeout_ms=-1"], "timeout_ms"),
    (["run", "B", "--source", "synthetic://road?control=udp://:0&scenario=fog"], "unknown scenario 'fog'"),
    (["run", "B", "--source", "synthetic://road?scenario=traffic"], "scenario and report go with control="),
    # safety settings are finite and in range (issue 27): `inf` turned a fail-safe off, 1e-6 ms flooded the link
    (["run", "B", "--source", "synthetic://road?control=udp://:0&timeout_ms=inf"], "milliseconds from 20 to 10000"),
    (["run", "B", "--source", "synthetic://road", "--output", "udp://127.0.0.1:5005", "--watchdog-ms", "inf"],
     "milliseconds from 10 to 10000"),
    (["run", "B", "--source", "synthetic://road", "--output", "udp://127.0.0.1:5005", "--watchdog-ms", "nan"],
     "milliseconds from 10 to 10000"),
    (["run", "B", "--source", "synthetic://road", "--output", "udp://127.0.0.1:5005", "--heartbeat-ms", "1e-6"],
     "milliseconds from 10 to 1000"),
    (["vehicle", "--listen", "udp://127.0.0.1:0", "--timeout-ms", "inf"], "milliseconds from 20 to 10000"),
    (["record", "--source", "synthetic://road", "--steering-from", "udp://:6000", "--out", "T", "--match-ms", "inf"],
     "milliseconds from 1 to 1000"),
    (["vehicle", "--listen", "udp://:99999"], "udp://HOST:PORT"),
    (["record", "--source", "synthetic://road", "--steering-from", "tcp://:1", "--out", "T"], "--steering-from"),
    (["record", "--source", "synthetic://road", "--steering-from", "udp://:6000", "--out", "/nonexistent/x"],
     "does not exist"),
])
def test_bad_vehicle_options_are_one_line(pilot_bundle, tmp_path, args, message):
    if "serial:///dev/nonexistent-tty" in args:
        pytest.importorskip("serial")  # opening a port needs pyserial (the vehicle extra); without it, that line
    args = [str(pilot_bundle) if a == "B" else str(tmp_path / a) if a == "T" else a for a in args]
    proc = cli("runtime", *args)
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_recording_into_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "tub").mkdir()
    (tmp_path / "tub" / "notes.txt").write_text("mine")
    proc = cli("runtime", "record", "--source", "synthetic://road", "--steering-from", "udp://127.0.0.1:6000",
               "--out", tmp_path / "tub")
    assert one_line_error(proc) and "no tub" in proc.stderr
    assert os.listdir(tmp_path / "tub") == ["notes.txt"]


# -- ROS 2 (against FAKE rclpy and message packages: tests/fakes/ros2) ----------------------------------------
FAKE_ROS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fakes", "ros2")


@pytest.fixture
def fake_ros(monkeypatch):
    import sys

    monkeypatch.syspath_prepend(FAKE_ROS)
    yield __import__("rclpy")
    for name in [m for m in sys.modules if m.split(".")[0] in ("rclpy", "ackermann_msgs", "geometry_msgs",
                                                                   "std_msgs", "builtin_interfaces")]:
        del sys.modules[name]


@pytest.mark.parametrize("msg", ["ackermann", "twist"])
def test_ros2_publishes_drive_messages_in_ros_units(fake_ros, pilot_bundle, msg):
    import math
    from types import SimpleNamespace

    from runtime import bundle as bundle_format

    out = ControlOutput("ros2:///car/drive", ControlSettings(ros2_msg=msg, wheelbase=0.3, speed=2.0), log=None)
    out.bind(SimpleNamespace(bundle=bundle_format.load(str(pilot_bundle))), SimpleNamespace(live=True), None)
    frame = Frame(None, 0)
    frame.timestamp = 1764201234.25
    out.write(frame, Result(steering=0.5))  # half right: 1/r = 0.05 1/m
    out.close()
    published = fake_ros.PUBLISHED
    assert [topic for topic, _ in published] == ["/car/drive"] * 3  # neutral (start), the command, neutral (stop)
    (_, start), (_, command), (_, stop) = published
    if msg == "ackermann":
        assert command.drive.steering_angle == pytest.approx(math.atan(0.3 * -0.05))  # REP 103: left positive
        assert command.drive.speed == 2.0 and (command.header.stamp.sec, command.header.stamp.nanosec) == (
            1764201234, 250000000)
        assert (start.drive.speed, start.drive.steering_angle, stop.drive.speed) == (0.0, 0.0, 0.0)
    else:
        assert (command.linear.x, command.angular.z) == (2.0, pytest.approx(2.0 * -0.05))
        assert (stop.linear.x, stop.angular.z) == (0.0, 0.0)
    assert fake_ros.NODES[-1].destroyed and not fake_ros.ok()  # the node and the context it made are gone
    del published[:]


def test_ros2_refusals(fake_ros, digits_bundle):
    from types import SimpleNamespace

    from runtime import bundle as bundle_format

    for settings, message in ((ControlSettings(speed=None, wheelbase=0.3), "needs --speed"),
                              (ControlSettings(speed=1.0), "needs --wheelbase"),
                              (ControlSettings(ros2_msg="boat", speed=1.0, wheelbase=0.3), "--ros2-msg boat")):
        with pytest.raises(UserError, match=message):
            ControlOutput("ros2://cmd_vel", settings, log=None)
    out = ControlOutput("ros2://cmd_vel", ControlSettings(ros2_msg="twist", speed=1.0), log=None)
    with pytest.raises(UserError, match="needs a steering bundle whose manifest says what its output means"):
        out.bind(SimpleNamespace(bundle=bundle_format.load(str(digits_bundle))), SimpleNamespace(live=True), None)
    del fake_ros.PUBLISHED[:]


class _Brakes:
    """A braking policy (sender.py's ControlSettings(policy=)) that asks 2.45 m/s^2, half its 4.9 limit, for any
    box, and nothing without one."""

    decel_limit = 4.9

    def distances(self, boxes, size, curvature):
        return [10.0 for _ in boxes]

    def decide(self, targets):
        return 2.45 if targets else 0.0


@pytest.mark.parametrize("msg", ["ackermann", "twist"])
def test_ros2_brakes_with_speed_0_and_the_deceleration_asked(fake_ros, pilot_bundle, msg):
    import math
    from types import SimpleNamespace

    import numpy as np

    from runtime import bundle as bundle_format
    from runtime.networks import Combined

    settings = ControlSettings(ros2_msg=msg, wheelbase=0.3, speed=2.0, brake=0.5, policy=_Brakes())
    out = ControlOutput("ros2://cmd_vel", settings, log=None)
    pilot = bundle_format.load(str(pilot_bundle))
    out.bind(SimpleNamespace(bundle=pilot, names=["pilotnet", "detector"],
                             bundles=[pilot, SimpleNamespace(task="detection")]), SimpleNamespace(live=True), None)
    box = [{"box": [100.0, 80.0, 140.0, 120.0], "score": 0.9, "class_id": 2, "label": "car"}]
    for detections in (box, []):  # an obstacle in the path (brake 0.5 x 2.45 / 4.9 = 0.25), then none (brake 0)
        out.write(Frame(np.zeros((180, 320, 3), np.uint8), 0),
                  Combined(pilotnet=Result(steering=0.5), detector=Result(detections=detections)))
    out.close()
    published = [m for _, m in fake_ros.PUBLISHED]
    del fake_ros.PUBLISHED[:]
    assert len(published) == 4  # neutral (start), braking, not braking, neutral (stop)
    braking, cruising = published[1:3]
    if msg == "ackermann":
        # ackermann_msgs' AckermannDrive.msg: a positive acceleration is the magnitude, deceleration included
        assert (braking.drive.speed, braking.drive.acceleration) == (0.0, pytest.approx(2.45))
        assert braking.drive.steering_angle == pytest.approx(math.atan(0.3 * -0.05))  # it still steers
        assert (cruising.drive.speed, cruising.drive.acceleration) == (2.0, 0.0)  # brake=0: as without --brake
        assert cruising.drive.steering_angle == pytest.approx(math.atan(0.3 * -0.05))
    else:
        assert (braking.linear.x, braking.angular.z) == (0.0, 0.0)  # no speed, no yaw rate
        assert (cruising.linear.x, cruising.angular.z) == (2.0, pytest.approx(2.0 * -0.05))


def test_ros2_braking_needs_the_policys_limit(fake_ros):
    settings = ControlSettings(ros2_msg="twist", speed=2.0, brake=0.5, policy=object())  # no decel_limit
    with pytest.raises(UserError, match="the policy's deceleration limit"):
        ControlOutput("ros2://cmd_vel", settings, log=None)
    del fake_ros.PUBLISHED[:]


def test_ros2_without_rclpy_is_one_line(pilot_bundle):
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "1", "--no-display",
               "--output", "ros2://cmd_vel", "--speed", "1", "--wheelbase", "0.3")
    assert one_line_error(proc) and "needs ROS 2's Python bindings" in proc.stderr, proc.stderr


# -- a joystick (against FAKE evdev: tests/fakes/evdev) --------------------------------------------------------
@pytest.fixture
def fake_evdev(monkeypatch):
    import sys

    monkeypatch.syspath_prepend(os.path.join(os.path.dirname(FAKE_ROS), "evdev"))
    yield __import__("evdev")
    for name in [m for m in sys.modules if m.split(".")[0] == "evdev"]:
        del sys.modules[name]


def test_a_joystick_is_read_out_even_while_the_stick_is_still(fake_evdev):
    from runtime.vehicle.record import Readings

    codes = fake_evdev.ecodes.ecodes
    fake_evdev.plug("/dev/input/event9", {codes["ABS_X"]: fake_evdev.AbsInfo(128, 0, 256, 0, 0, 0),
                                          codes["ABS_RY"]: fake_evdev.AbsInfo(0, 0, 256, 0, 0, 0)})
    readings = Readings("joystick:///dev/input/event9")
    deadline = time.monotonic() + 10
    while readings.count < 5 and time.monotonic() < deadline:  # no event yet: the still sticks, read out
        time.sleep(0.01)
    assert readings.count >= 5 and readings.items[-1][1:] == (0.0, 1.0)  # centred; throttle's stick pushed up
    fake_evdev.move("/dev/input/event9", codes["ABS_X"], 256)  # full right
    while readings.items[-1][1] != 1.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert readings.nearest(time.time(), 0.05)[1:] == (1.0, 1.0)
    fake_evdev.unplug("/dev/input/event9")
    while readings.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "the joystick /dev/input/event9 stopped" in str(readings.error)
    readings.close()


@pytest.mark.parametrize("spec, message", [
    ("joystick:///dev/input/event9?steering=KEY_A", "not an evdev axis name"),
    ("joystick:///dev/input/event9?steering=ABS_RY", "two axes"),
    ("joystick:///dev/input/event9?speed=ABS_Y", "give joystick:///dev/input/eventN"),
    ("joystick:///dev/input/event7", "cannot read /dev/input/event7"),
    ("joystick:///dev/input/event9?steering=ABS_Z", "does it have ABS_Z"),
])
def test_joystick_refusals(fake_evdev, spec, message):
    from runtime.vehicle.joystick import Joystick

    codes = fake_evdev.ecodes.ecodes
    fake_evdev.plug("/dev/input/event9", {codes["ABS_X"]: fake_evdev.AbsInfo(0, -32768, 32767, 0, 0, 0),
                                          codes["ABS_RY"]: fake_evdev.AbsInfo(0, -32768, 32767, 0, 0, 0)})
    with pytest.raises(UserError, match=message):
        Joystick(spec)


def test_the_apis_safety_settings_are_finite_and_in_range():
    from runtime.errors import UserError
    from runtime.vehicle.sender import ControlSettings

    for kwargs in ({"watchdog_ms": float("inf")}, {"watchdog_ms": float("nan")}, {"heartbeat_ms": 1e-6},
                   {"heartbeat_ms": 5000}):
        with pytest.raises(UserError, match="milliseconds"):
            ControlSettings(**kwargs)
    assert ControlSettings(watchdog_ms=400, heartbeat_ms=10).heartbeat_s == 0.01
