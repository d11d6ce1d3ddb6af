"""FAKE pycuda for tests (see tests/fakes/README.md). There is deliberately no autoinit module."""

VERSION_TEXT = "2024.1-fake"
