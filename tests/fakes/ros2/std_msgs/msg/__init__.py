"""FAKE std_msgs.msg: Header (stamp: builtin_interfaces/Time, frame_id: string)."""

from builtin_interfaces.msg import Time


class Header:
    def __init__(self):
        self.stamp, self.frame_id = Time(), ""
