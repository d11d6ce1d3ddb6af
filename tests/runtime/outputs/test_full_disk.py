"""A full disk while writing outputs (runtime/outputs/files.py): the run stops cleanly, says so, and keeps every
frame and line written before it. /dev/full refuses every write; a small tmpfs fills up for real (where this
machine lets the test mount one: CI runs as root)."""

import os

import pytest

from tests.runtime.conftest import tmpfs
from tests.conftest import cli, read_jsonl


def stopped_in_one_line(proc):
    """Exit status 2, no traceback, and the error as the last line (after the run's own start line)."""
    lines = proc.stderr.strip().splitlines()
    return proc.returncode == 2 and "Traceback" not in proc.stderr and lines[-1].startswith("python -m runtime: error")


def test_json_lines_to_a_full_device_stop_the_run_in_one_line(pilot_bundle):
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "50", "--no-display",
               "--jsonl", "/dev/full", "--quiet")
    assert stopped_in_one_line(proc), proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("python -m runtime: error: cannot write /dev/full: No space left "
                                                    "on device: the run stopped; its first 0 line(s) are kept")
    assert proc.stdout.startswith("0 frames")  # the summary still comes


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path, "12m")


def test_a_disk_that_fills_up_stops_the_run_with_every_output_complete(pilot_bundle, small_disk):
    import cv2

    video, jsonl = small_disk / "road.avi", small_disk / "road.jsonl"
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--input-width", "640",
               "--input-height", "360", "--max-frames", "100000", "--no-display", "--quiet", "--output", video,
               "--jsonl", jsonl)
    assert stopped_in_one_line(proc), proc.stderr
    assert "the disk holding %s is full" % video in proc.stderr and "the run stopped" in proc.stderr
    lines = read_jsonl(jsonl)
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert 20 < frames == len(lines)  # every frame before the stop in both, and the video closed playable
    assert "%d frames" % len(lines) in proc.stdout
    stat = os.statvfs(small_disk)
    assert stat.f_bavail * stat.f_frsize > 0  # it stopped before the disk was full, with room to close the files
