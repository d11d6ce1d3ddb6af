"""FAKE geometry_msgs.msg: Vector3 (float64 x, y, z) and Twist (Vector3 linear, angular)."""


class Vector3:
    def __init__(self):
        self.x = self.y = self.z = 0.0


class Twist:
    def __init__(self):
        self.linear, self.angular = Vector3(), Vector3()
