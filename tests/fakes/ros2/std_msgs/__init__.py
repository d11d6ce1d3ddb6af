"""FAKE std_msgs (tests/fakes/ros2)."""
