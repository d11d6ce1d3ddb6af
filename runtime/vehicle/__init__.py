"""The vehicle wing: the control link (link.py: its line format, keys, UDP and serial links, limits), the sender
that outputs results on it with a watchdog (sender.py), ROS 2 (ros2.py), the reference receiver (receiver.py;
mcu/receiver.py for a microcontroller), recording the human's driving (record.py, joystick.py) into DonkeyCar
tubs (tub.py). Imported, it adds udp://, serial:// and ros2:// to the core's output table."""

from ..outputs import OPENERS as _OUTPUTS
from .sender import open_control

for _scheme in ("udp", "serial", "ros2"):
    _OUTPUTS[_scheme] = open_control
