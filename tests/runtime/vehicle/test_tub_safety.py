"""A tub (runtime/vehicle/tub.py) stays whole after any stop, and never reaches outside its folder.

Whole: every catalog manifest.json names exists, and its own manifest counts exactly the lines it holds; every
record's image is there and no image is left without a record; no temporary file is left; the next index is past
every record's; and `runtime record` resumes it. Checked after a disk that fills for real (a small tmpfs, where
this machine lets the test mount one), after a failure or an interruption at each write tub.py makes in turn (its
writes all go through `os`, whose write, fsync, replace and creating open are made to fail there), and after a
power cut that left a catalog ahead of its manifest. Inside: a manifest that names `..`, an absolute path, or a
file or folder that is a link to outside the tub is refused in one line, and the file outside keeps its bytes.
"""

import errno
import json
import os
import subprocess

import numpy as np
import pytest

from runtime.vehicle import tub as tub_module
from runtime.errors import UserError
from runtime.vehicle.tub import TubWriter
from tests.runtime.conftest import tmpfs
from tests.conftest import cli, free_udp_port, one_line_error

JPEG = b"\xff\xd8 a frame \xff\xd9"


def whole(folder):
    """Assert that the tub in folder is whole (the module's docstring); its records' indexes, in order."""
    folder = str(folder)
    for _, dirs, files in os.walk(folder):
        assert not [n for n in files + dirs if n.endswith(".tmp")], files
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = [json.loads(line) for line in f]
    paths = manifest[4]["paths"]
    assert sorted(paths) == sorted(n for n in os.listdir(folder) if n.endswith(".catalog"))  # none unnamed
    indexes = []
    for name in paths:
        with open(os.path.join(folder, name), "rb") as f:
            lines = f.read().split(b"\n")
        assert lines[-1] == b"", "%s ends in a torn line" % name
        with open(os.path.join(folder, name + "_manifest")) as f:
            counted = json.load(f)["line_lengths"]
        assert counted == [len(line) + 1 for line in lines[:-1]], "%s: its manifest counts other lines" % name
        for line in lines[:-1]:
            record = json.loads(line)
            indexes.append(record["_index"])
            assert os.path.isfile(os.path.join(folder, "images", record["cam/image_array"]))
    assert len(set(indexes)) == len(indexes) and indexes == sorted(indexes)
    assert sorted(os.listdir(os.path.join(folder, "images"))) == sorted("%d_cam_image_array_.jpg" % i
                                                                       for i in indexes)
    assert manifest[4]["current_index"] >= (indexes[-1] + 1 if indexes else 0)
    return indexes


# -- a full disk, an interruption, a power cut ----------------------------------------------------------------
class Disk:
    """tub.py's `os`, whose writes (write, fsync, replace, an open that creates) are counted and made to fail from
    the `at`-th on (a disk that stays full), at the `at`-th only (room freed after it), or interrupted right
    after the `at`-th is done (a second Ctrl-C landing there). fsync does nothing here, for speed."""

    def __init__(self, at=None, how="full"):
        self.at, self.how, self.count = at, how, 0

    def __getattr__(self, name):
        return getattr(os, name)

    def _write(self, do, *args):
        self.count += 1
        if self.at is not None and (self.count == self.at or self.how == "full" and self.count > self.at):
            if self.how != "interrupted":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            do(*args)
            raise KeyboardInterrupt
        return do(*args)

    def write(self, fd, data):
        return self._write(os.write, fd, data)

    def fsync(self, fd):
        return self._write(lambda fd: None, fd)

    def replace(self, src, dst):
        return self._write(os.replace, src, dst)

    def open(self, path, flags, mode=0o777):
        if flags & os.O_CREAT:
            return self._write(os.open, path, flags, mode)
        return os.open(path, flags, mode)


def _session(folder, records):
    writer = TubWriter(str(folder))
    for i in range(records):
        writer.add(JPEG, 0.01 * i, None, 1000.0 + i)
    writer.close()


def test_a_failure_or_an_interruption_at_any_write_leaves_the_tub_whole_and_resumable(tmp_path, monkeypatch):
    monkeypatch.setattr(tub_module, "MAX_LEN", 3)  # a new catalog every 3 records,
    monkeypatch.setattr(tub_module, "GROUP", 2)  # a flush every 2: every kind of write, several times
    monkeypatch.setattr(tub_module, "os", Disk())
    _session(tmp_path / "count", 2)
    tub_module.os.count = 0
    _session(tmp_path / "count", 7)
    writes = tub_module.os.count  # the writes of the session that fails
    assert writes > 40, writes
    for how in ("full", "once", "interrupted"):
        for at in range(1, writes + 1):
            folder = tmp_path / ("%s-%d" % (how, at))
            monkeypatch.setattr(tub_module, "os", Disk())
            _session(folder, 2)  # a tub from an earlier session, resumed below
            monkeypatch.setattr(tub_module, "os", Disk(at, how))
            try:
                _session(folder, 7)
            except (OSError, UserError, KeyboardInterrupt):
                pass
            monkeypatch.setattr(tub_module, "os", Disk())
            where = "%s at write %d" % (how, at)
            kept = whole(folder)
            assert kept[:2] == [0, 1], where  # the earlier session's records are never touched
            _session(folder, 3)  # resumes
            again = whole(folder)
            assert again[:len(kept)] == kept and len(again) == len(kept) + 3, where


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path, "256k")


def _record(out, *extra):
    port = free_udp_port()
    return cli("runtime", "record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d" % port,
               "--steering-from", "udp://127.0.0.1:%d" % port, "--out", out, "--input-width", "160",
               "--input-height", "90", "--input-rate", "300", *extra, timeout=120)


def test_a_disk_that_fills_up_for_real_stops_record_with_the_tub_whole(small_disk):
    tub = small_disk / "tub"
    proc = _record(tub, "--min-free-mb", "0.0001")  # no margin: the disk fills in the middle of a write
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1] == ("python -m runtime: error: cannot write %s: No space left on device: stopped, every "
                         "flushed record is complete" % tub)
    kept = whole(tub)
    assert len(kept) > 10 and "recorded %d frames" % len(kept) in proc.stdout
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    proc = _record(tub, "--max-frames", "5", "--min-free-mb", "0.0001")
    assert proc.returncode == 0, proc.stderr
    assert whole(tub) == kept + list(range(kept[-1] + 1, kept[-1] + 6))


def test_a_catalog_a_power_cut_left_ahead_of_its_manifest_is_counted_again_on_resume(tmp_path):
    _session(tmp_path / "tub", 3)
    with open(tmp_path / "tub" / "catalog_0.catalog", "a") as f:  # written and flushed, its manifest not yet
        f.write(json.dumps({"_index": 3, "_session_id": "x", "_timestamp_ms": 1, "user/angle": 0.0,
                            "cam/image_array": "3_cam_image_array_.jpg", "user/throttle": 0.0,
                            "user/mode": "user"}) + "\n")
    (tmp_path / "tub" / "images" / "3_cam_image_array_.jpg").write_bytes(JPEG)
    (tmp_path / "tub" / "manifest.json.tmp").write_bytes(b"")  # and a manifest being written
    _session(tmp_path / "tub", 2)
    assert whole(tmp_path / "tub")[3:] == [3, 4, 5]


# -- every path a tub names stays inside it --------------------------------------------------------------------
def _tub_naming(tmp_path, how):
    """A tub of 2 records whose manifest (or a link in it) names victim.txt, beside the tub."""
    folder = tmp_path / "tub"
    _session(folder, 2)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\nno newline at its end")
    if how in ("dotdot", "absolute"):
        lines = (folder / "manifest.json").read_text().splitlines()
        last = json.loads(lines[4])
        last["paths"].append("../victim.txt" if how == "dotdot" else str(victim))
        lines[4] = json.dumps(last)
        (folder / "manifest.json").write_text("\n".join(lines) + "\n")
    elif how == "catalog link":
        os.replace(folder / "catalog_0.catalog", tmp_path / "moved.catalog")
        os.symlink("../victim.txt", folder / "catalog_0.catalog")
    elif how == "catalog manifest link":
        os.unlink(folder / "catalog_0.catalog_manifest")
        os.symlink(str(victim), folder / "catalog_0.catalog_manifest")
    elif how == "manifest link":
        os.replace(folder / "manifest.json", tmp_path / "manifest.json")
        os.symlink(str(tmp_path / "manifest.json"), folder / "manifest.json")
    elif how == "images link":
        os.replace(folder / "images", tmp_path / "outside")
        os.symlink(str(tmp_path / "outside"), folder / "images")
    return folder, victim


HOWS = ["dotdot", "absolute", "catalog link", "catalog manifest link", "manifest link", "images link"]


@pytest.mark.parametrize("how", HOWS)
def test_a_tub_that_names_a_path_outside_itself_is_refused_and_nothing_outside_is_touched(tmp_path, how):
    folder, victim = _tub_naming(tmp_path, how)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and folder not in p.parents}
    listing = sorted(os.listdir(folder))
    with pytest.raises(UserError, match="outside the tub|not a name inside the tub"):
        TubWriter(str(folder))
    assert victim.read_bytes() == b"precious\nno newline at its end"
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and folder not in p.parents} == before
    assert sorted(os.listdir(folder)) == listing


def test_record_refuses_such_a_tub_in_one_line(tmp_path):
    folder, victim = _tub_naming(tmp_path, "dotdot")
    proc = cli("runtime", "record", "--source", "synthetic://road", "--steering-from",
               "udp://127.0.0.1:%d" % free_udp_port(), "--out", folder, "--seconds", "5", timeout=120)
    assert one_line_error(proc), proc.stderr
    assert "'../victim.txt', which is not a name inside the tub: refused" in proc.stderr
    assert victim.read_bytes() == b"precious\nno newline at its end"


def test_frames_still_pending_when_the_disk_fills_are_dropped_and_the_disks_error_is_the_one_said(tmp_path,
                                                                                                  monkeypatch):
    """The clean-clone CI once said "the tub writer ... is closed" instead of the full disk: frames were pending
    when a write failed, and closing the recording tried to write them to the closed writer. Made certain here:
    three frames pending, the disk full at the first write, then TubOutput's close as run() calls it."""
    from runtime.sources.base import Frame
    from runtime.vehicle.record import Recorder

    class Readings:  # a reading for every frame, so every pending frame is due
        def newest(self):
            return 1e12

        def nearest(self, t, tolerance):
            return (t, 0.1, 0.2)

    writer = TubWriter(str(tmp_path / "tub"))
    recorder = Recorder(writer, Readings(), 0.05, 90)
    for index in range(3):
        frame = Frame(np.zeros((8, 8, 3), np.uint8), index)
        frame.timestamp = 1000.0 + index
        recorder.pending.append(frame)
    monkeypatch.setattr(tub_module, "os", Disk(1, "full"))
    with pytest.raises(OSError):
        recorder.settle()
    assert writer.closed and len(recorder.pending) == 2
    recorder.settle(final=True)  # what close() does: no "closed" error, the two frames dropped
    writer.close()
    monkeypatch.setattr(tub_module, "os", Disk())
    assert not recorder.pending and whole(tmp_path / "tub") == []
