"""joystick:///dev/input/eventN: a gamepad's sticks as the human's steering and throttle for `runtime record`,
read through evdev (Linux, the joystick extra)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from ..errors import UserError, require
from .link import split

class Joystick:
    """A gamepad's absolute axes through evdev, each scaled to -1..1 by the range the device reports; read()
    gives the sticks' position now (a stick held still sends no event)."""

    def __init__(self, spec):
        parts = split(spec)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        evdev = require("evdev", "joystick", "joystick:// (evdev)")
        codes = evdev.ecodes.ecodes
        self.names = {"steering": query.pop("steering", "ABS_X"), "throttle": query.pop("throttle", "ABS_RY")}
        if query or not parts.path:
            raise UserError("--steering-from %s: give joystick:///dev/input/eventN[?steering=ABS_X&throttle=ABS_RY]"
                            % spec)
        for name in self.names.values():
            if not name.startswith("ABS_") or name not in codes:
                raise UserError("--steering-from %s: %s is not an evdev axis name (ABS_X, ABS_Y, ABS_RX, ABS_RY, "
                                "ABS_Z, ABS_RZ, ...)" % (spec, name))
        if self.names["steering"] == self.names["throttle"]:
            raise UserError("--steering-from %s: steering and throttle need two axes" % spec)
        try:
            self.device = evdev.InputDevice(parts.path)
            self.axes, self.values = {}, {}  # evdev code -> (role, minimum, maximum); role -> -1..1
            for role, name in self.names.items():
                info = self.device.absinfo(codes[name])
                self.axes[codes[name]] = (role, info.min, info.max)
                self.values[role] = self._scaled(role, info.value, info.min, info.max)
        except OSError as exc:
            raise UserError("cannot read %s: %s (is the user in the input group? does it have %s?)"
                            % (parts.path, exc.strerror or exc, " and ".join(self.names.values()))) from None
        self.evdev, self.path = evdev, parts.path

    @staticmethod
    def _scaled(role, value, low, high):
        scaled = 2.0 * (value - low) / float(high - low) - 1.0 if high > low else 0.0
        return -scaled if role == "throttle" else scaled  # throttle: up is forward

    def read(self, wait):
        """(now, steering, throttle) after up to `wait` seconds of the device's events."""
        import select

        try:
            if select.select([self.device.fd], [], [], wait)[0]:
                for event in self.device.read():
                    if event.type == self.evdev.ecodes.EV_ABS and event.code in self.axes:
                        role, low, high = self.axes[event.code]
                        self.values[role] = self._scaled(role, event.value, low, high)
        except BlockingIOError:
            pass
        except OSError as exc:  # unplugged, or a wireless pad gone to sleep
            raise UserError("the joystick %s stopped: %s" % (self.path, exc.strerror or exc)) from None
        return time.time(), self.values["steering"], self.values["throttle"]

    def close(self):
        self.device.close()


