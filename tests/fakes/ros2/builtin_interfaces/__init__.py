"""FAKE builtin_interfaces (tests/fakes/ros2)."""
