"""FAKE builtin_interfaces.msg: Time (sec int32, nanosec uint32)."""


class Time:
    def __init__(self):
        self.sec, self.nanosec = 0, 0
