"""The braking policy on the control link (runtime/vehicle/sender.py with ControlSettings(brake=, speed=)): a
detector's box in the path among several networks' results sends throttle 0 and a brake value; none sends brake=0;
the lines, keyed or not, are accepted by the Python receiver and the MicroPython one; bad settings are refused."""

import importlib.util
import os
import socket

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.networks import Combined
from runtime.postprocess import Result
from runtime.sim.braking import BrakingPolicy, Camera
from runtime.sources.base import Frame
from runtime.vehicle import link as control
from runtime.vehicle.sender import ControlOutput, ControlSettings

HERE = os.path.dirname(os.path.abspath(__file__))
MCU = os.path.join(os.path.dirname(os.path.dirname(HERE)), "..", "runtime", "vehicle", "mcu", "receiver.py")


def _lines(settings, results):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    out = ControlOutput("udp://127.0.0.1:%d" % rx.getsockname()[1], settings, log=None)
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


def _combined(box):
    detections = [] if box is None else [{"box": box, "score": 0.9, "class_id": 2, "label": "car"}]
    return Combined(pilotnet=Result(steering=0.0, inverse_radius=0.0), detector=Result(detections=detections))


def _box_at(z):
    """A 1.8 m wide, 1.4 m tall box standing z metres ahead on the lane centre, in a 320x180 frame."""
    cam = Camera()
    bottom = cam.row(z, 180, 320)
    half = 160.0 * 0.9 / z
    return [160.0 - half, bottom - 160.0 * 1.4 / z, 160.0 + half, bottom]


def _policy():
    """The simulator's policy as a command hands it to the link (the link cannot tell the car stands)."""
    return BrakingPolicy(Camera(), 30.0, near_hold=False)


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
