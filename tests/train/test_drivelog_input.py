"""Driving logs read right or not at all (train/drivelog.py): Udacity logs written where numbers use a decimal
comma, rows of more fields than the format, NUL bytes (on the Pythons whose csv refuses them too), a DonkeyCar
v1 tub's exclude.json, paths out of the log's folder, and the warning for a training set of one label. Every log
is written here; nothing trains."""

import glob
import json
import os
import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT


def _udacity(folder, rows, images=()):
    """FOLDER/driving_log.csv of rows (text, no newline) and empty files FOLDER/IMG/<name> for images."""
    (folder / "IMG").mkdir(parents=True, exist_ok=True)
    for name in images:
        (folder / "IMG" / name).write_bytes(b"")
    (folder / "driving_log.csv").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return folder


def _csharp(value, comma=True):
    """A float as the simulator writes it (C#'s float.ToString(): 7 significant digits, no trailing zeros,
    1E-05 below 1e-4), with the decimal mark of a French, German or Spanish system."""
    text = ("%.7g" % value).replace("e", "E")
    return text.replace(".", ",") if comma else text


def _sim_rows(n, seed):
    """(steering, throttle, brake, speed) as the simulator records a drive with the keyboard: steering often
    exactly 0, throttle often exactly 1, brake mostly 0, speed from a standstill (3.576279E-07) to 30 mph."""
    rng = np.random.RandomState(seed)
    rows = []
    for _ in range(n):
        steering = rng.choice([0.0, 1.0, -1.0, rng.uniform(-1, 1)], p=[0.4, 0.03, 0.02, 0.55])
        throttle = rng.choice([1.0, 0.0, rng.uniform(0, 1)], p=[0.3, 0.2, 0.5])
        brake = rng.choice([0.0, 1.0, rng.uniform(0, 1)], p=[0.9, 0.05, 0.05])
        speed = rng.choice([rng.uniform(1e-7, 1e-5), rng.uniform(0, 1), rng.uniform(1, 30.2)], p=[0.1, 0.1, 0.8])
        rows.append(tuple(float("%.7g" % v) for v in (steering, throttle, brake, speed)))
    return rows


# -- decimal commas and extra fields -------------------------------------------------------------------------
def test_the_lines_of_a_french_linux_simulator_log_are_read_with_their_steering(tmp_path):
    """The two rows udacity/sdc-issue-reports#170 quotes (the 2016 simulator on a French Ubuntu: ", " between
    fields, "," inside a number) and the same numbers as the open-source simulator writes them (no spaces)."""
    from train import drivelog

    base = "/home/merriaux/udacity/lesson14/simulator-linux/data/IMG/"
    names = ["%s_2016_11_24_08_11_00_%s.jpg" % (cam, t) for t in ("780", "884") for cam in ("center", "left", "right")]
    beta = ["%s%s, %s%s, %s%s, -0,08581576, 0,1286689, 0, %s" % (base, names[3 * i], base, names[3 * i + 1], base,
                                                                 names[3 * i + 2], speed)
            for i, speed in enumerate(("12,1822", "12,67823"))]
    _udacity(tmp_path / "beta", beta, names)
    _udacity(tmp_path / "open", [r.replace(", ", ",") for r in beta], names)
    for folder in ("beta", "open"):
        log = drivelog.read(str(tmp_path / folder), side_correction=0.2)
        centre = [s for s in log.samples if s.camera == "centre"]
        assert [(s.steering, s.throttle) for s in centre] == [(-0.08581576, 0.1286689)] * 2, log.report()
        assert [s.camera for s in log.samples] == ["centre", "left", "right"] * 2 and not log.skipped
        assert all(os.path.dirname(s.image) == str(tmp_path / folder / "IMG") for s in log.samples)


@pytest.mark.parametrize("spaced", [False, True], ids=["open-source-simulator", "2016-beta"])
def test_a_drive_logged_with_decimal_commas_is_read_right_or_skipped_and_counted(tmp_path, spaced):
    """500 rows of a keyboard drive, as the simulator writes them in a comma locale: every row that is read has
    the steering and throttle that were recorded; the few that could be read two ways are skipped and counted.
    The same drive in a dot locale is read whole, with the same values."""
    from train import drivelog

    truth = _sim_rows(500, seed=3)
    separator = ", " if spaced else ","
    images = ["center_2017_02_07_%04d.jpg" % i for i in range(len(truth))]
    for name, comma in (("comma", True), ("dot", False)):
        _udacity(tmp_path / name, [separator.join(["C:\\Users\\me\\Desktop\\data\\IMG\\" + image, "", ""]
                                                  + [_csharp(v, comma) for v in row])
                                   for image, row in zip(images, truth)], images)
    dot = drivelog.read(str(tmp_path / "dot"), side_correction=None)
    assert [(s.steering, s.throttle) for s in dot.samples] == [r[:2] for r in truth] and not dot.skipped
    log = drivelog.read(str(tmp_path / "comma"), side_correction=None)
    by_image = {os.path.basename(s.image): (s.steering, s.throttle) for s in log.samples}
    wrong = [(image, got, row[:2]) for image, row in zip(images, truth) for got in [by_image.get(image)]
             if got is not None and got != row[:2]]
    assert not wrong, wrong[:5]  # never misread
    skipped = sum(len(w) for w in log.skipped.values())
    assert set(log.skipped) <= {"rows with ambiguous decimal commas"} and len(log.samples) + skipped == len(truth)
    if spaced:
        assert skipped == 0  # ", " between fields tells each number's comma
    else:
        assert 0 < skipped <= 0.03 * len(truth), log.report()  # e.g. steering 0, throttle 1, speed 0,5


def test_a_row_that_reads_two_ways_and_rows_of_extra_fields_are_skipped_and_counted(tmp_path):
    from train import drivelog

    rows = ["IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,0,1,0,0,5",  # steering 0, throttle 1, speed 0.5; or steering 0.1, speed 5
            "IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,-0.25,0.5,0,12.5,extra",  # a column the format does not have
            "IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,-0.25,0.5,0,12.5,7.5",
            "IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,0,5,0,5,0,5,0,5,0",  # 9 numbers' worth: not four numbers
            "IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,-0,25,0,5,0,12,5"]  # the one row that can be read: -0.25, 0.5
    _udacity(tmp_path / "sim", rows, ["a.jpg"])
    log = drivelog.read(str(tmp_path / "sim"), side_correction=None)
    assert [(s.steering, s.throttle) for s in log.samples] == [(-0.25, 0.5)]
    csv = str(tmp_path / "sim" / "driving_log.csv")
    assert log.skipped == {"rows with ambiguous decimal commas": ["%s:1" % csv],
                           "rows with more fields than the format": ["%s:%d" % (csv, n) for n in (2, 3, 4)]}
    assert "skipped 3 rows with more fields than the format: %s:2" % csv in "\n".join(log.report())


def test_numbers_with_a_decimal_comma_in_one_field_quoted_or_between_semicolons(tmp_path):
    """What a spreadsheet in a comma locale writes when it saves the log again: "0,5" quoted, or ";" between
    fields. In a log whose numbers are split, a row of fewer fields cannot be told and is skipped."""
    from train import drivelog

    _udacity(tmp_path / "quoted", ['"IMG/a.jpg","IMG/b.jpg","IMG/c.jpg","-0,25","0,5","0","12,5"',
                                   '"IMG/a.jpg","IMG/b.jpg","IMG/c.jpg","0,125","1","0","3,576279E-07"'], ["a.jpg"])
    _udacity(tmp_path / "semicolons", ["center;left;right;steering;throttle;brake;speed",
                                       "IMG/a.jpg;IMG/b.jpg;IMG/c.jpg;-0,25;0,5;0;12,5",
                                       "IMG/a.jpg;IMG/b.jpg;IMG/c.jpg;0,125;1;0;3,576279E-07"], ["a.jpg"])
    for folder in ("quoted", "semicolons"):
        log = drivelog.read(str(tmp_path / folder), side_correction=None)
        assert [(s.steering, s.throttle) for s in log.samples] == [(-0.25, 0.5), (0.125, 1.0)] and not log.skipped
    _udacity(tmp_path / "short", ["IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,-0,25,0,5,0,12,5",
                                  "IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,0,5"], ["a.jpg"])
    log = drivelog.read(str(tmp_path / "short"), side_correction=None)
    assert [s.steering for s in log.samples] == [-0.25]
    assert list(log.skipped) == ["short rows in a log with decimal commas"]


def test_utf8_and_utf16_byte_order_marks_are_read_as_such(tmp_path):
    from train import drivelog

    text = "center,left,right,steering,throttle,brake,speed\nIMG/a.jpg,IMG/b.jpg,IMG/c.jpg,-0.25,0.5,0,12.5\n"
    for name, data in (("utf8", b"\xef\xbb\xbf" + text.encode()), ("utf16", text.encode("utf-16"))):
        _udacity(tmp_path / name, [], ["a.jpg"])
        (tmp_path / name / "driving_log.csv").write_bytes(data)
        log = drivelog.read(str(tmp_path / name), side_correction=None)
        assert [s.steering for s in log.samples] == [-0.25] and not log.skipped, log.report()


# -- NUL bytes -----------------------------------------------------------------------------------------------
def _nul_log(folder):
    """Six rows; row 3 has a NUL byte, and the file ends in the zeros a power cut leaves."""
    rows = ["IMG/c%d.jpg,IMG/l%d.jpg,IMG/r%d.jpg,%.2f,0.5,0,20" % (i, i, i, i / 10) for i in range(6)]
    rows[2] = rows[2].replace("c2", "c\x002")
    _udacity(folder, rows, ["c%d.jpg" % i for i in range(6)])
    with open(folder / "driving_log.csv", "ab") as f:
        f.write(b"\x00" * 300)
    return str(folder / "driving_log.csv")


OLD_PYTHON_READS = """
import json, sys, types
root, folder = sys.argv[1], sys.argv[2]
runtime = types.ModuleType("runtime")  # only runtime/errors.py: this Python has none of the runtime's packages
runtime.__path__ = [root + "/runtime"]
sys.modules["runtime"] = runtime
sys.path.insert(0, root)
from train import drivelog
log = drivelog.read(folder, side_correction=None)
print(json.dumps({"steering": [s.steering for s in log.samples], "skipped": log.skipped}))
"""


def _old_pythons():
    """The Pythons whose csv raises 'line contains NUL' (before 3.11) that this machine has (pyenv's)."""
    found = []
    for minor in (8, 9, 10):
        for python in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.%d.*/bin/python3.%d" % (minor, minor)))):
            if subprocess.run([python, "-c", "import csv"], capture_output=True).returncode == 0:
                found.append(python)
                break
    return found


def test_a_nul_byte_is_a_skipped_row_on_this_python(tmp_path):
    from train import drivelog

    csv = _nul_log(tmp_path / "sim")
    log = drivelog.read(str(tmp_path / "sim"), side_correction=None)
    assert [s.steering for s in log.samples] == [0.0, 0.1, 0.3, 0.4, 0.5]
    assert log.skipped == {"rows with NUL bytes": ["%s:3" % csv, "%s:7" % csv]}


def test_a_nul_byte_is_a_skipped_row_on_the_pythons_whose_csv_refuses_it(tmp_path):
    pythons = _old_pythons()
    if not pythons:
        why = "no Python 3.8-3.10 on this machine (pyenv install 3.8 to run this check)"
        pytest.fail(why) if os.environ.get("CI") else pytest.skip(why)
    csv = _nul_log(tmp_path / "sim")
    for python in pythons:
        proc = subprocess.run([python, "-c", OLD_PYTHON_READS, ROOT, str(tmp_path / "sim")], capture_output=True,
                              text=True, cwd=str(tmp_path))
        assert proc.returncode == 0, "%s: %s" % (python, proc.stderr[-2000:])
        read = json.loads(proc.stdout)
        assert read["steering"] == [0.0, 0.1, 0.3, 0.4, 0.5], python
        assert read["skipped"] == {"rows with NUL bytes": ["%s:3" % csv, "%s:7" % csv]}, python


# -- DonkeyCar v1's exclude.json -----------------------------------------------------------------------------
def _tub_v1(folder, n=8):
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"inputs": ["cam/image_array", "user/angle", "user/throttle"],
                                                  "types": ["image_array", "float", "float"]}))
    for i in range(n):
        (folder / ("%d_cam-image_array_.jpg" % i)).write_bytes(b"")
        (folder / ("record_%d.json" % i)).write_text(json.dumps({
            "cam/image_array": "%d_cam-image_array_.jpg" % i, "user/angle": i / 10, "user/throttle": 0.2,
            "milliseconds": 100 * i}))
    return folder


def test_a_v1_tub_leaves_out_the_records_its_exclude_json_names(tmp_path):
    """DonkeyCar's Tub (donkeycar/parts/datastore.py) keeps the indices its tub manager excluded as a JSON list in
    exclude.json and leaves record_N.json out of gather_records() when N is in it."""
    from runtime.errors import UserError
    from train import drivelog

    tub = _tub_v1(tmp_path / "tub")
    (tub / "exclude.json").write_text(json.dumps([2, 5, 10]))
    assert [s.steering for s in drivelog.read(str(tub)).samples] == [0.0, 0.1, 0.3, 0.4, 0.6, 0.7]
    for bad in ('{"2": true}', "[2, \"five\"]", "[2, 5"):
        (tub / "exclude.json").write_text(bad)
        with pytest.raises(UserError, match="exclude.json is not a JSON list of record numbers"):
            drivelog.read(str(tub))


# -- paths out of the folder ---------------------------------------------------------------------------------
def test_nothing_outside_the_log_s_folder_is_read_or_handed_to_training(tmp_path):
    """Udacity's absolute paths are mapped to the folder's IMG/ by base name (so /etc/passwd is IMG/passwd), and
    an image, catalog or record that is a link to outside is skipped and counted, as is a name with '..'."""
    from train import drivelog

    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("secret.jpg", "passwd", "catalog_1.catalog", "record_3.json"):
        (outside / name).write_text("{}")
    sim = _udacity(tmp_path / "sim", ["/etc/passwd,,,0.5,0,0,0", "../../outside/secret.jpg,,,0.5,0,0,0",
                                      "IMG/linked.jpg,,,0.5,0,0,0", "C:\\data\\IMG\\real.jpg,,,0.25,0,0,0"],
                   ["real.jpg"])
    os.symlink(outside / "secret.jpg", sim / "IMG" / "linked.jpg")
    log = drivelog.read(str(sim), side_correction=None)
    assert [(s.image, s.steering) for s in log.samples] == [(str(sim / "IMG" / "real.jpg"), 0.25)]
    assert log.skipped["paths outside the folder"] == ["%s (%s:3)" % (sim / "IMG" / "linked.jpg",
                                                                      sim / "driving_log.csv")]
    assert len(log.skipped["missing images"]) == 2  # IMG/passwd and IMG/secret.jpg: not there

    tub = tmp_path / "tub"
    (tub / "images").mkdir(parents=True)
    (tub / "images" / "0.jpg").write_bytes(b"")
    os.symlink(outside / "secret.jpg", tub / "images" / "1.jpg")
    records = [{"_index": i, "cam/image_array": image, "user/angle": 0.1 * i, "user/throttle": 0.2}
               for i, image in enumerate(["0.jpg", "1.jpg", "../../outside/secret.jpg"])]
    (tub / "catalog_0.catalog").write_text("".join(json.dumps(r) + "\n" for r in records))
    os.symlink(outside / "catalog_1.catalog", tub / "catalog_1.catalog")
    (tub / "manifest.json").write_text("\n".join(json.dumps(m) for m in [
        [], [], {}, {}, {"paths": ["catalog_0.catalog", "../outside/catalog_1.catalog"], "current_index": 3,
                         "max_len": 1000, "deleted_indexes": []}]) + "\n")
    log = drivelog.read(str(tub))
    assert [s.image for s in log.samples] == [str(tub / "images" / "0.jpg")]
    assert len(log.skipped["paths outside the folder"]) == 3, log.skipped  # 1.jpg, ../../outside, catalog_1

    old = _tub_v1(tmp_path / "old", n=3)
    os.remove(old / "record_2.json")
    os.symlink(outside / "record_3.json", old / "record_2.json")
    log = drivelog.read(str(old))
    assert [s.steering for s in log.samples] == [0.0, 0.1]
    assert log.skipped == {"paths outside the folder": [str(old / "record_2.json")]}
    for s in drivelog.read("%s,%s,%s" % (sim, tub, old)).samples:
        assert os.path.realpath(s.image).startswith(str(tmp_path.resolve()) + os.sep)
        assert not os.path.realpath(s.image).startswith(str(outside.resolve()))


# -- a training set of one label -----------------------------------------------------------------------------
def _jpegs(folder, names):
    import cv2

    (folder / "IMG").mkdir(parents=True, exist_ok=True)
    frame = np.full((16, 32, 3), 90, np.uint8)
    for name in names:
        cv2.imwrite(str(folder / "IMG" / name), frame)


def test_a_training_set_of_one_steering_or_one_class_is_a_warning(tmp_path, capsys):
    from train import datasets, models

    names = ["c%d.jpg" % i for i in range(60)]
    _jpegs(tmp_path / "flat", names)
    (tmp_path / "flat" / "driving_log.csv").write_text("".join("IMG/%s,,,0,0.5,0,20\n" % n for n in names))
    spec = models.get("pilotnet")
    data = datasets.load("drivelog:%s" % (tmp_path / "flat"), spec, side_correction=0.2)
    assert set(data.y_train) == {0.0}
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "every training" in ln]
    assert warnings == ["warning: every training row of drivelog:%s (50) has steering 0: the model can only "
                        "learn to answer steering 0, whatever the image" % (tmp_path / "flat")]

    _jpegs(tmp_path / "turns", names)
    (tmp_path / "turns" / "driving_log.csv").write_text("".join("IMG/%s,,,%.2f,0.5,0,20\n" % (n, (i % 7) / 10)
                                                                for i, n in enumerate(names)))
    datasets.load("drivelog:%s" % (tmp_path / "turns"), spec, side_correction=0.2)
    assert "every training" not in capsys.readouterr().err

    datasets.load("digits", models.get("mnist_cnn"), limit=1, seed=0)
    err = capsys.readouterr().err
    assert "warning: every training example of digits (1) has class " in err, err
    assert "the model can only learn to answer that class" in err


# -- logs nested too deep, and FIFOs -------------------------------------------------------------------------
DEEP = "[" * 100000 + "]" * 100000  # past any JSON parser's recursion limit


def _tub_v2(folder, lines, manifest=None):
    """A v2 tub of one catalog of JSON lines (text), every image it names present as an empty file."""
    (folder / "images").mkdir(parents=True)
    for i in range(len(lines)):
        (folder / "images" / ("%d.jpg" % i)).write_bytes(b"")
    (folder / "catalog_0.catalog").write_text("".join(line + "\n" for line in lines))
    (folder / "manifest.json").write_text(manifest if manifest is not None else "\n".join(json.dumps(m) for m in [
        [], [], {}, {}, {"paths": ["catalog_0.catalog"], "current_index": len(lines), "deleted_indexes": []}]))
    return folder


def _record(i):
    return json.dumps({"_index": i, "cam/image_array": "%d.jpg" % i, "user/angle": i / 10, "user/throttle": 0.2})


def test_records_nested_too_deep_are_skipped_and_a_manifest_or_exclude_json_so_nested_is_one_line(tmp_path):
    from runtime.errors import UserError
    from train import drivelog

    tub = _tub_v1(tmp_path / "v1", n=3)
    (tub / "record_1.json").write_text(DEEP)
    log = drivelog.read(str(tub))
    assert [s.steering for s in log.samples] == [0.0, 0.2]
    assert log.skipped == {"malformed records": [str(tub / "record_1.json")]}
    (tub / "exclude.json").write_text(DEEP)
    with pytest.raises(UserError, match=r"exclude.json is not a JSON list of record numbers.*\(nested too deep\)"):
        drivelog.read(str(tub))

    tub = _tub_v2(tmp_path / "v2", [_record(0), DEEP, _record(2)])
    log = drivelog.read(str(tub))
    assert [s.steering for s in log.samples] == [0.0, 0.2]
    assert log.skipped == {"malformed records": ["%s:2" % (tub / "catalog_0.catalog")]}
    (tub / "manifest.json").write_text("[]\n[]\n{}\n{}\n" + DEEP + "\n")
    with pytest.raises(UserError, match="manifest.json is not a DonkeyCar tub v2 manifest"):
        drivelog.read(str(tub))


def _unblocked(read, fifos):
    """read() run in a thread: what it returned or raised. A reader that waits on a FIFO is let go (a writer
    opens and closes it) so that the test ends, and then fails."""
    import threading

    done = {}

    def run():
        try:
            done["value"] = read()
        except Exception as exc:  # handed to the test
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)  # a guard against a hang only: a reader that does not wait returns at once
    blocked = thread.is_alive()
    while thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(0.1)
    assert not blocked, "blocked on a FIFO"
    return done


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_a_driving_log_is_skipped_and_counted_or_one_line_never_waited_on(tmp_path):
    from runtime.errors import UserError
    from train import drivelog

    tub = _tub_v1(tmp_path / "v1", n=3)
    os.remove(tub / "record_2.json")
    os.mkfifo(tub / "record_2.json")
    os.mkdir(tub / "record_3.json")
    done = _unblocked(lambda: drivelog.read(str(tub)), [tub / "record_2.json"])
    assert [s.steering for s in done["value"].samples] == [0.0, 0.1]
    assert done["value"].skipped == {"unreadable records": [
        "%s (it is a FIFO, not a file)" % (tub / "record_2.json"),
        "%s (it is a folder, not a file)" % (tub / "record_3.json")]}
    os.mkfifo(tub / "exclude.json")
    done = _unblocked(lambda: drivelog.read(str(tub)), [tub / "exclude.json"])
    assert isinstance(done.get("error"), UserError), done
    assert str(done["error"]).endswith("its exclude.json is not a JSON list of record numbers, the records "
                                       "DonkeyCar's tub manager leaves out (it is a FIFO, not a file)")

    tub = _tub_v2(tmp_path / "v2", [_record(0), _record(1)])
    os.remove(tub / "images" / "1.jpg")
    os.mkfifo(tub / "images" / "1.jpg")  # left to training, it would block the pipeline
    os.mkfifo(tub / "catalog_2.catalog")
    (tub / "manifest.json").write_text("\n".join(json.dumps(m) for m in [
        [], [], {}, {}, {"paths": ["catalog_0.catalog", "catalog_2.catalog"], "deleted_indexes": []}]))
    done = _unblocked(lambda: drivelog.read(str(tub)), [tub / "catalog_2.catalog"])
    assert [s.steering for s in done["value"].samples] == [0.0], done
    assert done["value"].skipped == {
        "images that are not files": ["%s (%s:2)" % (tub / "images" / "1.jpg", tub / "catalog_0.catalog")],
        "unreadable catalogs": ["%s (it is a FIFO, not a file)" % (tub / "catalog_2.catalog")]}
