"""FAKE geometry_msgs (tests/fakes/ros2)."""
