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


def test_random_source_uris_give_a_clean_error_or_a_source(tmp_path, monkeypatch):
    """Whatever a user types after --source: a UserError in one line or a Source, never another exception.
    (rtsp:// is left out: it would reach for the network.)"""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from runtime.errors import UserError
    from runtime.sources import Source, open_source

    monkeypatch.chdir(tmp_path)  # relative paths resolve in an empty folder
    (tmp_path / "frames").mkdir()
    schemes = st.sampled_from(["", "file://", "synthetic://", "csi://", "v4l2://", "gst://", "/dev/video", "ftp://",
                               "SYNTHETIC://", "file:///", "gst://videotestsrc ! "])
    rest = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)

    @hypothesis.settings(derandomize=True, max_examples=300, deadline=None, database=None)
    @hypothesis.given(scheme=schemes, tail=rest, flip=st.sampled_from(["none", "clockwise", "sideways"]))
    def check(scheme, tail, flip):
        try:
            source = open_source(scheme + tail, flip=flip, reconnect_timeout=0.1)
        except UserError as exc:
            assert "\n" not in str(exc)
            return
        with source:
            assert isinstance(source, Source)

    check()
