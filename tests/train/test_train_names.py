"""Names of any bytes in train's inputs (issue 26): an image folder, a class folder, an image or a driving log
whose name is not UTF-8 is read and goes through the tf.data pipeline (TensorFlow takes the names as bytes),
and what is printed of it shows those bytes as \\xNN; a folder whose name holds glob's pattern characters is
that folder, not a pattern; a Latin-1 image name written inside driving_log.csv names the file with those bytes.
Nothing trains: the readers and one batch of the pipeline are run."""

import json
import os

import numpy as np
import pytest

from tests.conftest import cli, one_line_error


def _png(path, value):
    """A small PNG at path (bytes, any bytes), written by Python: OpenCV's imwrite is not given such names."""
    import cv2

    ok, data = cv2.imencode(".png", np.full((12, 16, 3), value, np.uint8))
    assert ok
    with open(path, "wb") as f:
        f.write(data.tobytes())


def _first_batch(split, spec, classes):
    from train import pipeline

    ds = pipeline.build(split, spec.preprocess(), spec.layout, spec.task, classes, batch_size=4)
    x, _ = next(iter(ds))
    return x.numpy()


def test_an_image_folder_whose_names_are_not_utf8_is_read_and_batched(tmp_path, capsys):
    from train import datasets, models

    base = os.fsencode(tmp_path) + b"/fold_\xff"
    for label in (b"caf\xe9", b"b"):
        os.makedirs(base + b"/" + label)
        for i in range(4):
            _png(base + b"/" + label + b"/img_\xff\xfe%d.png" % i, 40 * i)
    with open(base + b"/b/bad_\xff.png", "wb") as f:
        f.write(b"not an image")
    name = "folder:" + os.fsdecode(base)
    spec = models.get("mnist_cnn")
    data = datasets.load(name, spec, seed=0)
    assert len(data.train) + len(data.val) == 8 and all(isinstance(f, str) for f in data.train.files)
    assert _first_batch(data.train, spec, 2).shape == (4, 28, 28, 1)
    assert len(data.raw_samples) == len(data.val)  # decoded by name too
    shown = str(tmp_path) + "/fold_\\xff"
    assert data.name == "folder:" + shown and data.labels == ["b", "caf\\xe9"]  # plots and meta.json print them
    err = capsys.readouterr().err
    assert "checking 9 images in %s\n" % shown in err, err
    assert "warning: skipping %s/b/bad_\\xff.png: not a readable image\n" % shown in err, err


def test_a_driving_log_at_a_path_that_is_not_utf8_is_read_and_batched(tmp_path):
    """A Udacity log in a folder named in Latin-1 whose driving_log.csv names its images in Latin-1 too
    (IMG/c\\xe9_N.jpg): every image is found and decoded."""
    from train import datasets, drivelog, models

    sim = os.fsencode(tmp_path) + b"/sim_\xe9"
    os.makedirs(sim + b"/IMG")
    rows = []
    for i in range(60):
        _png(sim + b"/IMG/c\xe9_%d.jpg" % i, 4 * i)  # a PNG named .jpg: decode_image goes by the content
        rows.append(b"C:\\data\\IMG\\c\xe9_%d.jpg,,,%.2f,0.5,0,20\n" % (i, (i % 9) / 10 - 0.4))
    with open(sim + b"/driving_log.csv", "wb") as f:
        f.write(b"".join(rows))
    log = drivelog.read(os.fsdecode(sim), side_correction=None)
    assert not log.skipped, log.report()
    assert [os.fsencode(s.image) for s in log.samples] == [sim + b"/IMG/c\xe9_%d.jpg" % i for i in range(60)]
    spec = models.get("pilotnet")
    data = datasets.load("drivelog:" + os.fsdecode(sim), spec, side_correction=None)
    assert len(data.train) + len(data.val) == 60
    assert _first_batch(data.val, spec, 0).shape == (4, 66, 200, 3)


def test_a_report_of_skipped_files_shows_bytes_that_are_not_utf8_as_escapes(tmp_path):
    from train import drivelog

    sim = os.fsencode(tmp_path) + b"/sim_\xff"
    os.makedirs(sim + b"/IMG")
    _png(sim + b"/IMG/here.jpg", 9)
    with open(sim + b"/driving_log.csv", "wb") as f:
        f.write(b"IMG/here.jpg,,,0.1,0,0,0\nIMG/gone_\xfe.jpg,,,0.1,0,0,0\n")
    report = drivelog.read(os.fsdecode(sim), side_correction=None).report()
    assert report == ["skipped 1 missing images: %s/sim_\\xff/IMG/gone_\\xfe.jpg (%s/sim_\\xff/driving_log.csv:2)"
                      % (tmp_path, tmp_path)]


def _tub_v1(folder, steering):
    folder.mkdir()
    for i, value in enumerate(steering):
        (folder / ("%d.jpg" % i)).write_bytes(b"")
        (folder / ("record_%d.json" % i)).write_text(json.dumps({"cam/image_array": "%d.jpg" % i,
                                                                 "user/angle": value, "user/throttle": 0.2}))


def test_a_folder_named_with_glob_s_pattern_characters_is_that_folder(tmp_path):
    """tub[1] is not a pattern that matches tub1, and tub* does not gather its siblings' records."""
    from runtime.errors import UserError
    from train import drivelog

    _tub_v1(tmp_path / "tub[1]", [0.1, 0.2])
    _tub_v1(tmp_path / "tub1", [0.9])
    _tub_v1(tmp_path / "tub*", [0.3])
    _tub_v1(tmp_path / "tubX", [-0.5, -0.6, -0.7])
    assert drivelog.check(str(tmp_path / "tub[1]")) == [(str(tmp_path / "tub[1]"), "donkey-v1")]
    assert [s.steering for s in drivelog.read(str(tmp_path / "tub[1]")).samples] == [0.1, 0.2]
    log = drivelog.read(str(tmp_path / "tub*"))
    assert [(s.steering, s.image) for s in log.samples] == [(0.3, str(tmp_path / "tub*" / "0.jpg"))]
    (tmp_path / "empty[x]").mkdir()  # as a pattern, it would be the tub emptyx beside it
    _tub_v1(tmp_path / "emptyx", [0.4])
    with pytest.raises(UserError, match=r"empty\[x\] holds no driving log"):
        drivelog.check(str(tmp_path / "empty[x]"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_folder_named_like_an_image_in_an_image_folder_is_skipped_with_a_warning(tmp_path, capsys):
    from tests.train.test_drivelog_input import _unblocked
    from train import datasets, models

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            _png(str(tmp_path / label / ("%d.png" % i)), 50 * i)
    os.mkfifo(tmp_path / "a" / "pipe.png")
    (tmp_path / "b" / "folder.jpg").mkdir()
    done = _unblocked(lambda: datasets.load("folder:%s" % tmp_path, models.get("mnist_cnn"), seed=0),
                      [tmp_path / "a" / "pipe.png"])
    assert len(done["value"].train) + len(done["value"].val) == 6, done
    err = capsys.readouterr().err
    assert "warning: skipping %s: it is a FIFO, not an image file\n" % (tmp_path / "a" / "pipe.png") in err, err
    assert "warning: skipping %s: it is a folder, not an image file\n" % (tmp_path / "b" / "folder.jpg") in err, err


def test_a_run_folder_whose_name_is_not_utf8_is_one_line(tmp_path):
    """TensorFlow's file functions take UTF-8 names only (the samples, TensorBoard): refused before any work."""
    out = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b"run_\xff"))
    proc = cli("train", "--model", "mnist_cnn", "--epochs", "1", "--out", out, timeout=300)
    assert one_line_error(proc), proc.stderr
    assert "run_\\xff" in proc.stderr and "UTF-8" in proc.stderr and not os.path.exists(out)


def test_a_run_file_nested_too_deep_is_one_line(tmp_path):
    from runtime.errors import UserError
    from train import run_dir

    path = tmp_path / "meta.json"
    path.write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(UserError, match="nested too deep"):  # before: RecursionError, an internal error
        run_dir.read_json(str(path))
