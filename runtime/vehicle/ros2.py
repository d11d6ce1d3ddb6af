"""ros2://TOPIC: the control link as ROS 2 messages, where rclpy is importable (a sourced ROS 2: JetPack's
Isaac ROS, or ros-humble-* on Ubuntu). outputs/control.py sends its lines here as it sends them to UDP; this
link turns each into a message on TOPIC (ros2://cmd_vel is the relative topic cmd_vel, ros2:///car/drive the
absolute /car/drive), in ROS's units and conventions (REP 103: metres, radians, positive to the left):

    --ros2-msg ackermann   ackermann_msgs/msg/AckermannDriveStamped: drive.steering_angle = atan(wheelbase x
                           curvature), drive.speed = --speed; header.stamp the frame's capture time
    --ros2-msg twist       geometry_msgs/msg/Twist: linear.x = --speed, angular.z = --speed x curvature (the yaw
                           rate)

curvature is the command's inverse_radius turned left-positive; a neutral is steering 0 at speed 0. A command
that brakes (brake more than 0: `runtime run --brake B`, sender.py) asks the vehicle to stop: ackermann's
drive.speed = 0 and drive.acceleration = the deceleration the braking policy asked (brake / B x the policy's
limit, handed in: 4.9 m/s^2 at brake B), steering as before; twist's linear.x = angular.z = 0 (a Twist carries no
deceleration). A command with brake=0 is published as one without. The heartbeat is not published (ROS has no
such message): a vehicle stops when its command topic goes quiet, and while the watchdog holds, the neutral is
published at every heartbeat.
"""

from __future__ import annotations

import math

from . import link as control
from ..errors import UserError

MESSAGES = ("ackermann", "twist")
SPEED_RANGE, WHEELBASE_RANGE = (-50.0, 50.0), (0.05, 20.0)  # m/s, m: finite (inf steered to full lock); run's too
NODE = "edge_runtime_control"


class Ros2Link:
    needs_units = True  # a steering bundle whose manifest gives inverse_radius_per_unit

    def __init__(self, uri, msg="ackermann", wheelbase=None, speed=None, brake=None, decel_limit=None):
        parts = control.split(uri)
        self.topic = (parts.netloc + parts.path).rstrip("/")
        if not self.topic or parts.query:
            raise UserError("%s: give ros2://TOPIC (ros2://cmd_vel, or ros2:///car/drive for an absolute one)" % uri)
        if msg not in MESSAGES:
            raise UserError("--ros2-msg %s: choose %s" % (msg, " or ".join(MESSAGES)))
        if speed is None:
            raise UserError("%s needs --speed M/S: ROS's drive messages carry a speed" % uri)
        if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1] or (
                wheelbase is not None and not WHEELBASE_RANGE[0] <= wheelbase <= WHEELBASE_RANGE[1]):
            raise UserError("%s: --speed is %g to %g m/s and --wheelbase %g to %g m (inf or nan would steer to full "
                            "lock or publish NaN)" % ((uri,) + SPEED_RANGE + WHEELBASE_RANGE))
        if brake is not None and not (0.0 < brake <= 1.0 and decel_limit is not None
                                      and 0.0 < decel_limit < math.inf):  # NaN fails too
            raise UserError("%s: braking needs its brake B (more than 0, at most 1) and the policy's deceleration "
                            "limit (m/s^2)" % uri)
        if msg == "ackermann" and not (wheelbase and wheelbase > 0):
            raise UserError("%s with --ros2-msg ackermann needs --wheelbase M (front to rear axle) for the steering "
                            "angle" % uri)
        try:
            import rclpy

            if msg == "ackermann":
                from ackermann_msgs.msg import AckermannDriveStamped as Message
            else:
                from geometry_msgs.msg import Twist as Message
        except ImportError as exc:
            raise UserError("%s needs ROS 2's Python bindings (%s): source /opt/ros/DISTRO/setup.bash first%s"
                            % (uri, exc, " and install ros-DISTRO-ackermann-msgs" if msg == "ackermann" else "")
                            ) from None
        self.rclpy, self.Message, self.msg = rclpy, Message, msg
        self.wheelbase, self.speed = wheelbase, float(speed)
        self.brake, self.decel_limit = brake, decel_limit  # --brake's B: brake B is the policy's decel_limit
        self.inited = not rclpy.ok()
        if self.inited:
            rclpy.init()
        self.node = rclpy.create_node(NODE)
        self.publisher = self.node.create_publisher(Message, self.topic, 10)

    def send(self, line):
        kind, fields = control.parse_line(line)
        if kind == "hb":
            return True
        stop = kind == "neutral"
        curvature = 0.0 if stop else -fields.get("inverse_radius", 0.0)  # right-positive -> REP 103's left
        braking = not stop and fields.get("brake", 0.0) > 0.0
        speed = 0.0 if stop or braking else self.speed
        message = self.Message()
        if self.msg == "ackermann":
            t = fields.get("t", 0.0)
            message.header.stamp.sec = int(t)
            message.header.stamp.nanosec = int(round((t - int(t)) * 1e9)) % 1000000000
            message.header.frame_id = "base_link"
            message.drive.steering_angle = math.atan(self.wheelbase * curvature)
            message.drive.speed = speed
            if braking and self.brake is not None:
                # ackermann_msgs' msg/AckermannDrive.msg (ros-drivers/ackermann_msgs): "Zero acceleration means
                # change speed as quickly as possible. Positive acceleration indicates a desired absolute
                # magnitude; that includes deceleration." So the deceleration asked goes out positive, as it is
                # (more than 0 while braking), never past the limit. (Without B, as for a Ros2Link made by hand,
                # acceleration stays 0: stop as quickly as possible.)
                message.drive.acceleration = self.decel_limit * min(1.0, fields["brake"] / self.brake)
        else:
            message.linear.x = speed
            message.angular.z = speed * curvature
        self.publisher.publish(message)
        return True

    def close(self):
        self.node.destroy_node()
        if self.inited:
            self.rclpy.shutdown()
