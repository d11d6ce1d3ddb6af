"""JSON lines that rotate for months-long runs (runtime/outputs/files.py's LineFile: --jsonl-max-mb, --jsonl-keep):
real files, a small size; every file parses line by line, ends whole, and no line is lost or split but those of
the oldest files dropped; a restart appends (a torn tail cut first); a full disk keeps every file whole; `runtime
run` and `runtime vehicle` rotate their --jsonl; the options' bad values are one line, exit status 2."""

import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest

from runtime.__main__ import build_parser
from runtime.commands import vehicle
from runtime.errors import UserError
from runtime.outputs import open_outputs
from runtime.outputs.files import LineFile, Rotation, rotation
from runtime.vehicle import link as control
from tests.conftest import ROOT, cli, free_udp_port
from tests.runtime.conftest import tmpfs


def numbered(i, rng):
    return (json.dumps({"n": i, "pad": "x" * rng.randrange(20, 400)}) + "\n").encode()


def rotated(path, keep):
    """FILE.keep ... FILE.1, FILE: the names that exist, oldest first."""
    names = ["%s.%d" % (path, i) for i in range(keep, 0, -1)] + [str(path)]
    return [name for name in names if os.path.exists(name)]


def numbers(names):
    """Every file parsed line by line (each must be whole JSON): the numbers, oldest first."""
    out = []
    for name in names:
        with open(name, "rb") as f:
            data = f.read()
        assert data.endswith(b"\n") or not data, name  # a file never ends in a partial line
        out += [json.loads(line)["n"] for line in data.splitlines()]
    return out


def test_files_rotate_between_lines_and_only_the_oldest_are_dropped(tmp_path):
    path, rng = tmp_path / "run.jsonl", random.Random(1)
    out = LineFile(path, Rotation(10000, 3))
    for i in range(2000):  # about 460 KB: some 46 rotations
        out.write(numbered(i, rng))
    out.close()
    names = rotated(path, 10)
    assert [os.path.basename(n) for n in names] == ["run.jsonl.3", "run.jsonl.2", "run.jsonl.1", "run.jsonl"]
    got = numbers(names)
    assert got == list(range(2000 - len(got), 2000)) and len(got) > 3 * 20  # a suffix: only the oldest are gone
    for older, newer in zip(names, names[1:]):  # each rotated file is as full as the next line allowed
        size = os.path.getsize(older)
        first_of_newer = open(newer, "rb").readline()
        assert size <= 10000 < size + len(first_of_newer), older


def test_a_line_longer_than_the_limit_has_a_file_of_its_own(tmp_path):
    path = tmp_path / "big.jsonl"
    out = LineFile(path, Rotation(1000, 5))
    lines = [(json.dumps({"n": i, "pad": "y" * (3000 if i == 2 else 10)}) + "\n").encode() for i in range(5)]
    for line in lines:
        out.write(line)
    out.close()
    assert [open(n, "rb").read() for n in rotated(path, 5)] == [lines[0] + lines[1], lines[2], lines[3] + lines[4]]


def test_a_rotated_file_is_appended_to_on_a_restart_and_a_torn_tail_is_cut(tmp_path):
    path, rng = tmp_path / "run.jsonl", random.Random(2)
    out = LineFile(path, Rotation(10 ** 6, 2))
    for i in range(10):
        out.write(numbered(i, rng))
    out.close()
    with open(path, "ab") as f:
        f.write(b'{"n": 10, "pad": "cut by a power failu')  # the line a power cut tore
    out = LineFile(path, Rotation(10 ** 6, 2))  # the service, restarted
    for i in range(11, 15):
        out.write(numbered(i, rng))
    out.close()
    assert numbers([path]) == list(range(10)) + list(range(11, 15))
    out = LineFile(path)  # without rotation: emptied at the start, as before
    out.close()
    assert os.path.getsize(path) == 0


def test_a_file_moved_away_by_someone_else_does_not_stop_the_rotation(tmp_path):
    path, rng = tmp_path / "run.jsonl", random.Random(4)
    out = LineFile(path, Rotation(1000, 2))
    out.write(numbered(0, rng))
    os.rename(path, tmp_path / "taken.jsonl")  # logrotate, or a user
    for i in range(1, 20):
        out.write(numbered(i, rng))
    out.close()
    assert numbers(rotated(path, 2))[-1] == 19


def test_what_cannot_be_renamed_is_not_rotated(tmp_path):
    os.symlink(tmp_path / "elsewhere.jsonl", tmp_path / "link.jsonl")
    for name in (os.devnull, str(tmp_path / "link.jsonl")):
        with pytest.raises(UserError, match="cannot be rotated"):
            LineFile(name, Rotation(10000, 2))


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path, "256k")


def test_a_full_disk_leaves_every_file_whole(small_disk):
    path, rng = small_disk / "run.jsonl", random.Random(3)
    out = LineFile(path, Rotation(20000, 50))
    with pytest.raises(OSError):
        for i in range(100000):
            out.write(numbered(i, rng))
    written = out.lines
    out.close()
    names = rotated(path, 50)
    assert len(names) > 5 and numbers(names) == list(range(written))  # every line kept, none torn


def test_runtime_run_rotates_every_json_lines_file(pilot_bundle, tmp_path):
    jsonl, other = tmp_path / "run.jsonl", tmp_path / "other.jsonl"
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--input-width", "160",
               "--input-height", "90", "--max-frames", "300", "--no-display", "--quiet", "--backend", "onnxruntime",
               "--jsonl", jsonl, "--output", other, "--jsonl-max-mb", "0.01", "--jsonl-keep", "2")
    assert proc.returncode == 0, proc.stderr
    for path in (jsonl, other):
        assert not os.path.exists("%s.3" % path)
        names = rotated(path, 2)
        frames = []
        for name in names:
            assert os.path.getsize(name) <= 10000
            frames += [json.loads(line)["frame"] for line in open(name, "rb").read().splitlines()]
        assert len(names) == 3 and frames == list(range(300 - len(frames), 300)), (names, frames[:3])


def test_runtime_vehicle_rotates_its_log(tmp_path):
    port, log = free_udp_port(), tmp_path / "heard.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "runtime", "vehicle", "--listen", "udp://127.0.0.1:%d" % port,
                             "--jsonl", str(log), "--jsonl-max-mb", "0.01", "--jsonl-keep", "3", "--seconds", "3",
                             "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    assert "listening" in proc.stderr.readline()
    for seq in range(1, 301):  # 150 a second: within the log's budget of 200
        sender.sendto(control.format_line("cmd", {"seq": seq, "t": 1.0, "steering": 0.1, "v": 2, "session": 7}),
                      ("127.0.0.1", port))
        time.sleep(1 / 150)
    out, err = proc.communicate(timeout=30)
    sender.close()
    assert proc.returncode == 0, err
    names = rotated(log, 3)
    records = [json.loads(line) for name in names for line in open(name, "rb").read().splitlines()]
    assert records[-1]["event"] == "failsafe"  # the silence after the last line
    seqs = [r["seq"] for r in records[:-1]]
    assert len(names) == 4 and seqs == list(range(301 - len(seqs), 301)), (names, seqs[:3])


def _parse(argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err
    return 0, ""


@pytest.mark.parametrize("command", [["run", "b", "--source", "x"], ["vehicle", "--listen", "udp://:1"]])
@pytest.mark.parametrize("option, value", [("--jsonl-max-mb", v) for v in ("0", "0.001", "-1", "nan", "inf", "1e7",
                                                                          "x", "")]
                         + [("--jsonl-keep", v) for v in ("0", "1000", "2.5", "-1", "x", "\u0661", "99999999999")])
def test_bad_rotation_values_are_one_line(command, option, value, capsys):
    code, err = _parse(command + ["--jsonl", "f.jsonl", option, value], capsys)
    assert code == 2 and err.count("\n") == 1 and option in err, err


def test_rotation_without_a_file_to_rotate_is_one_line(capsys):
    assert _parse(["run", "b", "--source", "x", "--jsonl-max-mb", "0.01", "--jsonl-keep", "999"], capsys)[0] == 0
    assert rotation(None, None) is None and rotation(0.01, None) == Rotation(10000, 5)
    with pytest.raises(UserError, match="--jsonl-keep needs --jsonl-max-mb"):
        rotation(None, 3)
    with pytest.raises(UserError, match="give --jsonl FILE"):
        open_outputs(["out.mp4"], None, jsonl_max_mb=1.0)
    args = build_parser().parse_args(["vehicle", "--listen", "udp://127.0.0.1:1", "--jsonl-keep", "3"])
    with pytest.raises(UserError, match="give --jsonl FILE too"):
        vehicle.main(args)


def test_a_file_emptied_by_logrotates_copytruncate_is_measured_as_it_is(tmp_path):
    """Found by attacking: after logrotate's copytruncate the writer still counted the old size, so it rotated too
    early (and a failed write could cut the file back past its end, padding it with NUL bytes)."""
    from runtime.outputs.files import LineFile, Rotation

    path = tmp_path / "run.jsonl"
    out = LineFile(str(path), Rotation(1000, 2))
    for i in range(9):
        out.write(b'{"i": %d, "pad": "%s"}\n' % (i, b"x" * 80))
    os.truncate(path, 0)  # what copytruncate does after copying
    out.write(b'{"after": "%s"}\n' % (b"y" * 180))
    out.close()
    assert not os.path.exists(str(path) + ".1")  # 200 bytes in an empty file: no rotation
    assert path.read_bytes().startswith(b'{"after"') and b"\0" not in path.read_bytes()


def test_a_folder_where_a_rotated_file_would_go_and_one_file_named_twice_are_refused(tmp_path):
    """Found by attacking the rotation: a folder FILE.2 was moved to FILE.3 by the run, which then stopped on
    'FILE: Is a directory'; and --jsonl X --output X made two writers rotate each other's lines."""
    (tmp_path / "run.jsonl.2").mkdir()
    with pytest.raises(UserError, match=r"run\.jsonl\.2 is not a plain file, and rotating .*run\.jsonl would move"):
        LineFile(str(tmp_path / "run.jsonl"), Rotation(1000, 3))
    assert (tmp_path / "run.jsonl.2").is_dir() and not (tmp_path / "run.jsonl.3").exists()
    same = str(tmp_path / "x.jsonl")
    with pytest.raises(UserError, match="is named as two outputs"):
        open_outputs([same], jsonl=same, jsonl_max_mb=0.01)
    with pytest.raises(UserError, match="is named as two outputs"):
        open_outputs(["file://" + same, os.path.join(str(tmp_path), ".", "x.jsonl")])
    assert not os.path.exists(same)
