"""The braking policy on the control link (runtime/vehicle/sender.py with ControlSettings(brake=, speed=)): a
detector's box in the path among several networks' results sends throttle 0 and a brake value; none sends brake=0;
the lines, keyed or not, are accepted by the Python receiver and the MicroPython one; bad settings are refused.
Both receivers act on `brake` by the same rules (the brake wins over throttle; neutral and the fail-safe never
release it); `runtime run --brake` refuses bad inputs in one line, and on a real source sends the brake that a
receiver acts on."""

import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.networks import Combined
from runtime.postprocess import Result
from runtime.sim.braking import Camera, DeadReckoned
from runtime.sources.base import Frame
from runtime.vehicle import link as control
from runtime.vehicle.receiver import Receiver
from runtime.vehicle.sender import ControlOutput, ControlSettings
from tests.conftest import ROOT, free_udp_port

HERE = os.path.dirname(os.path.abspath(__file__))
MCU = os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "runtime", "vehicle", "mcu", "receiver.py")


def _lines(settings, results):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    out = ControlOutput("udp://127.0.0.1:%d" % rx.getsockname()[1], settings, log=None)
    steering = types.SimpleNamespace(task="steering", path="pilotnet", curvature_per_unit=0.1, steering_sign=1.0)
    networks = types.SimpleNamespace(bundle=steering, names=["pilotnet", "detector"],
                                     bundles=[steering, types.SimpleNamespace(task="detection")])
    out.bind(networks, types.SimpleNamespace(live=True), None)  # as the pipeline does: which networks detect
    image = np.zeros((180, 320, 3), np.uint8)
    for result in results:
        out.write(Frame(image, 0), result)
    out.close()
    got = []
    while True:
        try:
            got.append(rx.recv(4096))
        except socket.timeout:
            break
        if got[-1].startswith(b"neutral") and b"reason=stop" in got[-1]:
            break
    rx.close()
    return [line for line in got if line.startswith(b"cmd")]


def _combined(box, age_ms=0.0):
    """PilotNet's result and the detector's (box: one car's, None: nothing seen; "none": no result yet)."""
    if box == "none":
        return Combined(pilotnet=Result(steering=0.0, inverse_radius=0.0), detector=None)
    detections = [] if box is None else [{"box": box, "score": 0.9, "class_id": 2, "label": "car"}]
    return Combined(pilotnet=Result(steering=0.0, inverse_radius=0.0),
                    detector=Result(detections=detections, age_ms=age_ms))


def _box_at(z):
    """A 1.8 m wide, 1.4 m tall box standing z metres ahead on the lane centre, in a 320x180 frame."""
    cam = Camera()
    bottom = cam.row(z, 180, 320)
    half = 160.0 * 0.9 / z
    return [160.0 - half, bottom - 160.0 * 1.4 / z, 160.0 + half, bottom]


def _policy():
    """The simulator's policy as `runtime run --brake` hands it to the link (the speed dead-reckoned)."""
    return DeadReckoned(Camera(), 30.0, 8.0)


def test_an_obstacle_in_the_path_sends_throttle_0_and_a_brake_the_receivers_accept():
    settings = ControlSettings(throttle=0.3, speed=8.0, brake=0.6, policy=_policy())
    lines = _lines(settings, [_combined(None), _combined(_box_at(9.0)), _combined(_box_at(60.0))])
    fields = [control.parse_line(line)[1] for line in lines]
    assert fields[0]["throttle"] == 0.3 and fields[0]["brake"] == 0.0
    assert fields[1]["throttle"] == 0.0 and 0.0 < fields[1]["brake"] <= 0.6  # 9 m ahead at 8 m/s: the limit
    assert fields[1]["brake"] == 0.6
    assert fields[2]["brake"] == 0.0 or fields[2]["throttle"] == 0.0  # held 0.3 s, then released
    spec = importlib.util.spec_from_file_location("mcu_receiver", os.path.normpath(MCU))
    mcu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mcu)
    for line in lines:
        kind, parsed, _ = mcu.parse(line)
        assert kind == "cmd" and parsed["brake"] == control.parse_line(line)[1]["brake"]


def test_a_blind_car_stops_gently_and_a_standing_one_holds_its_brake():
    settings = ControlSettings(throttle=0.3, speed=8.0, brake=0.5, policy=_policy())
    blind = [_combined("none"), _combined(None, age_ms=600.0)]  # no result yet; one older than 0.5 s
    fields = [control.parse_line(line)[1] for line in _lines(settings, blind + [_combined(None)])]
    for f in fields[:2]:
        assert f["throttle"] == 0.0 and f["brake"] == pytest.approx(0.5 * 2.0 / 4.9, abs=1e-6)
    assert (fields[2]["throttle"], fields[2]["brake"]) == (0.3, 0.0)  # it sees again: nothing there
    standing = [control.parse_line(line)[1]["brake"] for line in _lines(settings, [_combined(_box_at(5.0))] * 90)]
    assert standing[-1] == 0.5  # stood still before it (dead-reckoned): B, the brake that holds, not a token


def test_without_braking_the_lines_are_unchanged():
    line = _lines(ControlSettings(throttle=0.3), [_combined(_box_at(9.0))])[0]
    assert b"brake" not in line and control.parse_line(line)[1]["throttle"] == 0.3


@pytest.mark.parametrize("kw, message", [
    (dict(brake=0.0, speed=8.0), "--brake must be"), (dict(brake=float("nan"), speed=8.0), "--brake must be"),
    (dict(brake=0.5), "needs the vehicle's speed"), (dict(brake=0.5, speed=-1.0), "needs the vehicle's speed"),
    (dict(brake=0.5, speed=8.0), "needs a braking policy"),
])
def test_bad_braking_settings_are_refused(kw, message):
    with pytest.raises(UserError, match=message):
        ControlSettings(**kw)


# -- the receivers act on brake ------------------------------------------------------------------------------------
def _mcu():
    spec = importlib.util.spec_from_file_location("mcu_receiver", os.path.normpath(MCU))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Python:
    """runtime/vehicle/receiver.py's Receiver behind the MicroPython one's calls (milliseconds, a verdict)."""

    def __init__(self, **limits):
        self.rx = Receiver(0.3, log=None, **limits)

    def apply(self, line, now_ms):
        return self.rx.apply(line, now_ms / 1000.0).verdict

    def tick(self, now_ms):
        return self.rx.tick(now_ms / 1000.0)

    def __getattr__(self, name):
        return getattr(self.rx, name)


def _receivers(**limits):
    return [_Python(**limits), _mcu().Receiver(timeout_ms=300, **limits)]


def _line(kind, seq, **fields):
    return control.format_line(kind, dict({"seq": seq, "t": 1.0}, **fields, v=2, session=7))


def _state(rx):
    return rx.steering, rx.throttle, rx.brake, rx.failsafe


@pytest.mark.parametrize("which", ["python", "mcu"])
def test_the_receivers_brake_and_neither_neutral_nor_silence_releases_it(which):
    rx = _receivers()[which == "mcu"]
    assert _state(rx) == (0.0, 0.0, 0.0, True)  # before the first line: fail-safe, no brake (as before)
    assert rx.apply(_line("cmd", 1, steering=0.2, throttle=0.3, brake=0.6), 0) == "ok"
    assert _state(rx) == (0.2, 0.0, 0.6, False)  # throttle and brake in one line: the brake wins
    rx.apply(_line("neutral", 2, steering=0.0, throttle=0.0, reason="watchdog"), 10)
    assert _state(rx) == (0.0, 0.0, 0.6, False)  # neutral centres and cuts the throttle, the brake stays
    rx.apply(_line("cmd", 3, steering=0.1, throttle=0.3), 20)
    assert _state(rx) == (0.1, 0.3, 0.0, False)  # a command without brake releases it
    rx.apply(_line("cmd", 4, steering=0.1, throttle=0.3, brake=0.25), 30)
    assert not rx.tick(330) and rx.tick(331)
    assert _state(rx) == (0.0, 0.0, 0.25, True)  # the link died while braking: it goes on braking
    rx.apply(_line("cmd", 5, steering=0.0, throttle=0.2, brake=0.0), 900)
    assert _state(rx) == (0.0, 0.2, 0.0, False)  # only a command releases it
    assert rx.counts["clamped"] == 0


@pytest.mark.parametrize("which", ["python", "mcu"])
def test_the_receivers_clamp_the_brake_and_apply_a_failsafe_brake(which):
    rx = _receivers(brake_limit=0.5, failsafe_brake=0.3)[which == "mcu"]
    assert rx.brake == 0.3  # before the first line: the fail-safe's brake
    rx.apply(_line("cmd", 1, steering=0.0, throttle=0.4, brake=0.9), 0)
    assert (rx.throttle, rx.brake, rx.counts["clamped"]) == (0.0, 0.5, 1)
    rx.apply(_line("cmd", 2, steering=0.0, throttle=0.4, brake=-0.2), 10)
    assert (rx.throttle, rx.brake, rx.counts["clamped"]) == (0.4, 0.0, 2)
    rx.apply(_line("neutral", 3, steering=0.0, throttle=0.0, reason="stop"), 20)
    assert (rx.throttle, rx.brake) == (0.0, 0.3)  # at least failsafe_brake
    rx.apply(_line("cmd", 4, steering=0.0, throttle=0.4), 30)
    assert rx.tick(400) and (rx.throttle, rx.brake) == (0.0, 0.3)
    assert _receivers(brake_limit=0.2, failsafe_brake=0.3)[which == "mcu"].brake == 0.2  # never above the limit
    assert _receivers(failsafe_brake=-0.5)[which == "mcu"].brake == 0.0  # nor below 0 (a servo's 0.5 ms pulse)


@pytest.mark.parametrize("which", ["python", "mcu"])
def test_a_brake_of_minus_0_is_0_in_both_receivers(which):
    rx = _receivers()[which == "mcu"]
    assert rx.apply(b"cmd seq=1 t=1 steering=0 throttle=0.3 brake=-0 v=2 session=7\n", 0) == "ok"
    assert math.copysign(1.0, rx.brake) == 1.0 and (rx.throttle, rx.counts["clamped"]) == (0.3, 0)


def test_the_mcu_receiver_actuates_the_brake(capsys):
    mcu = _mcu()
    mcu.actuate(0.1, 0.0, 0.5)
    mcu.actuate(0.1, 0.0, 0.5)  # unchanged: printed once
    assert capsys.readouterr().out == "steering 0.100 throttle 0.000 brake 0.500\n"


# -- runtime run --brake -----------------------------------------------------------------------------------------
BUNDLES = os.path.join(os.path.dirname(HERE), "bundles")
PILOT, DETECTOR = os.path.join(BUNDLES, "pilotnet"), os.path.join(BUNDLES, "detector")
BRAKING = [PILOT, DETECTOR, "--source", "synthetic://road", "--output", "udp://127.0.0.1:9", "--no-display"]


def _refusal(capsys, args):
    """`runtime run ARGS` in this process, up to its first error: (exit status, the lines on stderr)."""
    from runtime.__main__ import _main
    from runtime.cli import main

    try:
        status = main("python -m runtime", _main, ["run"] + args)
    except SystemExit as exc:  # argparse's error: its one line, exit status 2
        status = exc.code
    return status, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("args, message", [
    (BRAKING + ["--brake", "0.5"], "--brake needs --speed"),
    (BRAKING + ["--brake", "0.5", "--speed", "0"], "--brake needs --speed"),
    (BRAKING + ["--brake", "0.5", "--speed", "-3"], "--brake needs --speed"),
    (BRAKING + ["--brake", "0.5", "--speed", "80"], "--speed: give a number of metres a second from -50 to 50"),
    (BRAKING[:1] + BRAKING[2:] + ["--brake", "0.5", "--speed", "8"], "a steering bundle and a detection bundle"),
    (BRAKING[1:] + ["--brake", "0.5", "--speed", "8"], "a steering bundle and a detection bundle"),
    (BRAKING[:4] + ["--brake", "0.5", "--speed", "8"], "give --output udp://"),
    (BRAKING[:4] + ["--output", "out.jsonl", "--brake", "0.5", "--speed", "8"], "give --output udp://"),
    (BRAKING + ["--brake", "0", "--speed", "8"], "give a brake of 0.01 to 1"),
    (BRAKING + ["--brake", "1e-7", "--speed", "8"], "give a brake of 0.01 to 1"),  # every brake sent would be 0
    (BRAKING + ["--brake", "1.5", "--speed", "8"], "give a brake of 0.01 to 1"),
    (BRAKING + ["--brake", "nan", "--speed", "8"], "give a brake of 0.01 to 1"),
    (BRAKING + ["--brake", "inf", "--speed", "8"], "give a brake of 0.01 to 1"),
    (BRAKING + ["--brake", "x", "--speed", "8"], "give a brake of 0.01 to 1"),
    (BRAKING + ["--camera-height", "1.2"], "--camera-height goes with --brake"),
    (BRAKING + ["--camera-pitch", "5"], "--camera-pitch goes with --brake"),
    (BRAKING + ["--brake", "0.5", "--speed", "8", "--camera-height", "50"], "metres from 0.2 to 10"),
    (BRAKING + ["--brake", "0.5", "--speed", "8", "--camera-height", "nan"], "metres from 0.2 to 10"),
    (BRAKING + ["--brake", "0.5", "--speed", "8", "--camera-pitch", "90"], "degrees from -30 to 60"),
])
def test_run_refuses_bad_braking_in_one_line(capsys, args, message):
    status, lines = _refusal(capsys, args)
    assert status == 2 and len(lines) == 1 and message in lines[0], lines


def _braking_run(tmp_path, image, frames=45):
    """`runtime run pilotnet detector --brake 0.8 --speed 8 --throttle 0.3` on one image looped at 30 frames a
    second (--realtime: the detector's thread has its frames), its commands sent over UDP here: (the cmd lines'
    fields, every line received, the JSON lines)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(1.0)
    jsonl = tmp_path / "run.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "run", PILOT, DETECTOR, "--source", image,
                             "--input-loop", "--realtime", "--max-frames", str(frames), "--jsonl", str(jsonl),
                             "--output", "udp://127.0.0.1:%d" % rx.getsockname()[1], "--brake", "0.8", "--speed",
                             "8", "--throttle", "0.3", "--backend", "onnxruntime", "--no-display", "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, deadline = [], time.monotonic() + 60.0  # a bound on a run that hangs, not a measurement
    try:
        while not lines or b"reason=stop" not in lines[-1]:
            try:
                lines.append(rx.recv(4096))
            except socket.timeout:
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
    finally:
        rx.close()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cmds = [control.parse_line(line)[1] for line in lines if line.startswith(b"cmd")]
    with open(str(jsonl)) as f:
        frames = [json.loads(line)["result"] for line in f]
    assert len(cmds) == len(frames) == 45
    return cmds, lines, frames


SAMPLES = os.path.join(DETECTOR, "samples")


def test_run_brakes_for_an_obstacle_in_the_path_and_the_receivers_act_on_it(tmp_path):
    # sample_000: the detector sees a cone on the lane 15 m ahead (the simulator's camera): at 8 m/s it needs
    # 2.7 m/s^2, more than the 2.0 that starts braking
    cmds, lines, frames = _braking_run(tmp_path, os.path.join(SAMPLES, "sample_000.png"))
    seen = [f["detector"] is not None and bool(f["detector"]["detections"]) for f in frames]
    blind = [f["detector"] is None for f in frames]  # before the detector's first result: the car stops gently
    assert any(seen)  # the detector's thread gave results (its first after a frame or two)
    for fields, detected, dark in zip(cmds, seen, blind):  # a command brakes exactly when the detector has seen
        assert (fields["brake"] > 0.0) == (detected or dark), (fields, detected)  # the cone, or nothing yet
        assert 0.0 <= fields["brake"] <= 0.8 and fields["throttle"] == (0.0 if detected or dark else 0.3)
    python, mcu = _receivers()
    for i, line in enumerate(lines):
        assert python.apply(line, 10 * i) == mcu.apply(line, 10 * i) == "ok"
        assert _state(python) == _state(mcu)
    assert python.counts["braking"] == sum(d or b for d, b in zip(seen, blind))
    assert _state(python) == (0.0, 0.0, cmds[-1]["brake"], False)  # the run's stop neutral: the brake held


def test_run_sends_brake_0_when_nothing_is_in_the_path(tmp_path):
    # sample_001: a cone, a stop sign and a car, each beside the lane
    cmds, _, frames = _braking_run(tmp_path, os.path.join(SAMPLES, "sample_001.png"))
    assert any(f["detector"] is not None and f["detector"]["detections"] for f in frames)
    seeing = [c for c, f in zip(cmds, frames) if f["detector"] is not None]  # before its first result: blind
    assert {(c["brake"], c["throttle"]) for c in seeing} == {(0.0, 0.3)}


# -- the simulated car at the far end brakes as its receiver's brake asks --------------------------------------
def test_the_linked_car_in_traffic_brakes_at_the_limit_after_the_latency_and_drives_on_when_released():
    from runtime.sim.linked_car import LinkedCar
    from runtime.sim.scenarios import SCENARIOS

    car = LinkedCar("udp://127.0.0.1:%d" % free_udp_port(), 160, 90, 30.0, 2016, 0.3, log=None,
                    scenario=SCENARIOS["traffic"])
    sender = control.Sender(None)
    try:
        car.start()
        car.next_view()
        assert car.sim.v == 8.0  # traffic's speed

        def frames(n, brake):
            car.receiver.apply(sender.line("cmd", {"t": time.time(), "steering": 0.0, "throttle": 0.3,
                                                   "brake": brake}), time.monotonic())
            speeds = []
            for _ in range(n):
                car.next_view()
                speeds.append(car.sim.v)
            return speeds

        braking = frames(30, 1.0)
        assert braking[:2] == [8.0, 8.0]  # the 100 ms latency: 3 frames, the first already asked
        assert np.diff(braking[2:]) == pytest.approx(-4.9 / 30.0)  # 0.5 g, brake 1 being the limit
        assert car.receiver.throttle == 0.0  # the brake wins
        released = frames(30, 0.0)
        assert released[:3] == pytest.approx([braking[-1] - 4.9 / 30.0 * i for i in (1, 2, 3)])  # the latency
        assert np.diff(released[3:]) == pytest.approx(1.5 / 30.0)  # back towards 8 m/s at 1.5 m/s^2
        assert car.report()["min_speed_mps"] == pytest.approx(released[2], abs=1e-3)
    finally:
        car.close()


# -- ros2:// brakes too: speed 0 and the deceleration asked (runtime/vehicle/ros2.py) ---------------------------
FAKE_ROS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "fakes", "ros2")
ROS2 = BRAKING[:4] + ["--output", "ros2://cmd_vel", "--brake", "0.5", "--speed", "8", "--no-display"]


@pytest.mark.parametrize("args, message", [
    (ROS2, "with --ros2-msg ackermann needs --wheelbase M"),  # ros2's own checks, once --brake is accepted
    (ROS2 + ["--wheelbase", "1"], "needs ROS 2's Python bindings"),
])
def test_run_brake_with_ros2_is_checked_by_ros2_itself(capsys, args, message):
    if importlib.util.find_spec("rclpy") is not None:
        pytest.skip("rclpy is installed here: ros2:// opens")
    status, lines = _refusal(capsys, args)
    assert status == 2 and len(lines) == 1 and message in lines[0], lines


def test_run_brakes_on_ros2_with_speed_0_and_the_deceleration_asked(capsys, monkeypatch):
    # against FAKE rclpy (tests/fakes/ros2), in this process to read what it published: sample_000's cone on the
    # lane 15 m ahead, as in the UDP run above
    monkeypatch.syspath_prepend(FAKE_ROS)
    try:
        status, lines = _refusal(capsys, [PILOT, DETECTOR, "--source", os.path.join(SAMPLES, "sample_000.png"),
                                          "--input-loop", "--realtime", "--max-frames", "45", "--output",
                                          "ros2://cmd_vel", "--wheelbase", "1", "--brake", "0.8", "--speed", "8",
                                          "--backend", "onnxruntime", "--no-display", "--quiet"])
        rclpy = sys.modules["rclpy"]
        published = [m.drive for _, m in rclpy.PUBLISHED]
        del rclpy.PUBLISHED[:]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("rclpy", "ackermann_msgs", "geometry_msgs",
                                                                       "std_msgs", "builtin_interfaces")]:
            del sys.modules[name]
    assert status == 0, lines
    commands = published[1:-1]  # between the start and the stop neutrals (no watchdog neutral at 30 frames/s)
    braking = [d for d in commands if d.speed == 0.0]
    assert len(commands) == 45 and len(braking) == 45  # blind until the detector's first result, then its cone
    for drive in commands:
        if drive.speed == 0.0:  # AckermannDrive.msg: the deceleration's magnitude, positive (0 would ask for
            assert 0.0 < drive.acceleration <= 4.9 + 1e-5, drive.acceleration  # the fastest stop), at most 4.9
        else:
            assert (drive.speed, drive.acceleration) == (8.0, 0.0)
