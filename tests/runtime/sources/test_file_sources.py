"""Files, folders and URIs that cannot be read: one line, exit status 2 (runtime/sources/files.py, __init__.py)."""

import pytest

from tests.conftest import cli, one_line_error


@pytest.mark.parametrize("source, message", [
    ("/no/such/video.mp4", "no such file"),
    ("synthetic://moon", "unknown synthetic source"),
    ("ftp://example/video", "unknown source"),
])
def test_bad_sources_are_one_line_exit_2(pilot_bundle, source, message):
    proc = cli("runtime", "run", pilot_bundle, "--source", source, "--max-frames", "1", "--no-display")
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_unreadable_video_is_one_line_exit_2(pilot_bundle, tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 1000)
    proc = cli("runtime", "run", pilot_bundle, "--source", tmp_path / "clip.mp4", "--no-display")
    assert one_line_error(proc), proc.stderr
