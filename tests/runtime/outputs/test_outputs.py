"""Outputs by URI (runtime/outputs/): what cannot be written is one line, exit status 2."""

from tests.conftest import cli, one_line_error


def test_output_into_missing_folder_is_one_line_exit_2(pilot_bundle, tmp_path):
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "1",
               "--no-display", "--output", tmp_path / "no" / "such" / "dir" / "o.mp4")
    assert one_line_error(proc), proc.stderr
