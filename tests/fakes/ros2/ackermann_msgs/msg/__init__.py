"""FAKE ackermann_msgs.msg (ros-drivers/ackermann_msgs, msg/AckermannDrive.msg and AckermannDriveStamped.msg):
AckermannDrive (float32 steering_angle [rad], steering_angle_velocity, speed [m/s], acceleration, jerk) and
AckermannDriveStamped (std_msgs/Header header, AckermannDrive drive)."""

from std_msgs.msg import Header


class AckermannDrive:
    def __init__(self):
        self.steering_angle = self.steering_angle_velocity = self.speed = self.acceleration = self.jerk = 0.0


class AckermannDriveStamped:
    def __init__(self):
        self.header, self.drive = Header(), AckermannDrive()
