"""FAKE ackermann_msgs (tests/fakes/ros2)."""
