"""FAKE evdev (python-evdev): the subset runtime/record.py's Joystick uses, with python-evdev's names
(evdev/device.py, events.py, ecodes): InputDevice(path) with .fd, .absinfo(code) -> AbsInfo(value, min, max,
fuzz, flat, resolution), .read() (the events waiting; BlockingIOError when none, as the real one's
non-blocking read), .close(); InputEvent(sec, usec, type, code, value) with .timestamp(); ecodes.ecodes (name
-> code) and ecodes.EV_ABS. A test makes a device with plug(path, axes) and moves a stick with move(path, code,
value), which makes the device's fd readable (a pipe) as the kernel's would be; unplug(path) makes the next
read fail with ENODEV."""

import collections
import errno
import os
import time

from . import ecodes

AbsInfo = collections.namedtuple("AbsInfo", "value min max fuzz flat resolution")
_DEVICES = {}


class InputEvent:
    def __init__(self, sec, usec, type, code, value):
        self.sec, self.usec, self.type, self.code, self.value = sec, usec, type, code, value

    def timestamp(self):
        return self.sec + self.usec / 1000000.0


class _Fake:
    def __init__(self, axes):
        self.axes = dict(axes)  # code -> AbsInfo
        self.read_fd, self.write_fd = os.pipe()
        self.events, self.gone = [], False


def plug(path, axes):
    _DEVICES[path] = _Fake(axes)


def move(path, code, value):
    fake = _DEVICES[path]
    now = time.time()
    fake.events.append(InputEvent(int(now), int((now % 1) * 1e6), ecodes.EV_ABS, code, value))
    os.write(fake.write_fd, b"x")


def unplug(path):
    fake = _DEVICES[path]
    fake.gone = True
    os.write(fake.write_fd, b"x")


class InputDevice:
    def __init__(self, dev):
        if dev not in _DEVICES:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", dev)
        self.path, self._fake = dev, _DEVICES[dev]
        self.fd = self._fake.read_fd

    def absinfo(self, axis_num):
        if axis_num not in self._fake.axes:
            raise OSError(errno.EINVAL, "Invalid argument")
        return self._fake.axes[axis_num]

    def read(self):
        if self._fake.gone:
            raise OSError(errno.ENODEV, "No such device")
        if not self._fake.events:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        os.read(self.fd, 4096)
        events, self._fake.events = self._fake.events, []
        return iter(events)

    def close(self):
        pass
