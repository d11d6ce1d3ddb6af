"""Real data from disk: MNIST's IDX files, CIFAR-10's batches (and a pickle that would run code), driving logs in
Udacity's and DonkeyCar's layouts, the tf.data pipeline and its augmentation. Every file is written here."""

import gzip
import json
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from tests.conftest import cli, one_line_error


# -- MNIST and CIFAR-10 files ---------------------------------------------------------------------------------
def _idx(path, array, gz):
    head = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "i" * array.ndim, *array.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(head + array.astype(np.uint8).tobytes())


def _digit_images(n, size):
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = [cv2.resize((im * 255 / 16).astype(np.uint8), (size, size)) for im in digits.images[:n]]
    return np.array(images), digits.target[:n].astype(np.uint8)


def test_mnist_idx_files_gzipped_or_not(tmp_path):
    from train import classic

    x, y = _digit_images(60, 28)
    _idx(tmp_path / "train-images-idx3-ubyte.gz", x[:40], True)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:40], True)
    _idx(tmp_path / "t10k-images.idx3-ubyte", x[40:], False)  # some mirrors write a dot
    _idx(tmp_path / "t10k-labels.idx1-ubyte", y[40:], False)
    x_train, y_train, x_test, y_test, labels = classic.read_mnist(str(tmp_path))
    assert np.array_equal(x_train, x[:40]) and np.array_equal(y_test, y[40:]) and labels[9] == "9"
    assert y_train.dtype == np.int64 and x_test.shape == (20, 28, 28)
    with open(tmp_path / "t10k-labels.idx1-ubyte", "r+b") as f:
        f.truncate(12)  # the header says 20 labels, 4 are there
    with pytest.raises(Exception, match="holds 4 bytes of data, not the 20"):
        classic.read_mnist(str(tmp_path))


def _cifar_python(folder, n=12):
    rng = np.random.RandomState(0)
    os.makedirs(folder)
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8), b"labels": list(rng.randint(0, 10, n)),
                 b"batch_label": name.encode()}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_cifar10_python_batches_from_the_archive_and_binary_batches(tmp_path):
    from train import classic

    _cifar_python(str(tmp_path / "cifar-10-batches-py"))
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    x_train, y_train, x_test, y_test, labels = classic.read_cifar10(str(tmp_path / "cifar-10-python.tar.gz"))
    assert x_train.shape == (60, 32, 32, 3) and x_test.shape == (12, 32, 32, 3) and labels[0] == "airplane"
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    # rows are R, G, B planes of 32 x 32: pixel (0, 0)'s red, green and blue
    assert list(x_train[0, 0, 0]) == [first[b"data"][0][0], first[b"data"][0][1024], first[b"data"][0][2048]]
    binary = tmp_path / "cifar-10-batches-bin"
    binary.mkdir()
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        records = np.concatenate([np.array([[3]] * 4, np.uint8), np.full((4, 3072), 7, np.uint8)], axis=1)
        (binary / (name + ".bin")).write_bytes(records.tobytes())
    xb, yb, _, _, _ = classic.read_cifar10(str(tmp_path / "cifar-10-batches-bin"))
    assert xb.shape == (20, 32, 32, 3) and set(yb) == {3} and xb.max() == 7


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    _cifar_python(str(tmp_path / "c"))

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch %s" % (tmp_path / "ran"),))

    with open(tmp_path / "c" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Payload(), b"labels": [1]}, f, protocol=2)
    from runtime.errors import UserError
    from train import classic

    with pytest.raises(UserError, match="refusing data_batch_3 in .*: it names (posix|os).system") as refused:
        classic.read_cifar10(str(tmp_path / "c"))
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "ran").exists()


def test_mnist_from_its_files_trains(tmp_path):
    x, y = _digit_images(300, 28)
    for stem, array in (("train-images-idx3", x[:240]), ("train-labels-idx1", y[:240]), ("t10k-images-idx3", x[240:]),
                        ("t10k-labels-idx1", y[240:])):
        _idx(tmp_path / ("%s-ubyte" % stem), array, False)
    proc = cli("train", "--model", "mnist_dense", "--data", "mnist:%s" % tmp_path, "--epochs", "2", "--out",
               tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert meta["dataset"] == "mnist:%s" % tmp_path and meta["labels"][3] == "3"
    assert history["held_out"]["val_accuracy"] > 0.5  # 10 classes, 240 images, 2 epochs: far above chance


# -- driving logs ---------------------------------------------------------------------------------------------
def _road_frames(n, seed):
    from runtime.sim import road

    return road.sample_frames(n, 160, 90, seed=seed)


def write_udacity(folder, n=120, seed=0):
    """The simulator's layout: IMG/ and driving_log.csv with absolute Windows, absolute Linux and relative paths,
    one malformed row and one row whose image is missing."""
    import cv2

    frames, labels = _road_frames(n, seed)
    (folder / "IMG").mkdir(parents=True)
    rows = []
    for i, (frame, label) in enumerate(zip(frames, labels)):
        names = ["%s_%04d.jpg" % (cam, i) for cam in ("center", "left", "right")]
        for name in names:
            cv2.imwrite(str(folder / "IMG" / name), frame)
        style = i % 3
        paths = [("C:\\Users\\me\\Desktop\\data\\IMG\\" + m) if style == 0 else
                 ("/home/me/data/IMG/" + m) if style == 1 else ("IMG/" + m) for m in names]
        rows.append("%s, %s, %s,%.6f,0.5,0,30.1" % (paths[0], paths[1], paths[2], label))
    rows.insert(5, "IMG/center_x.jpg, IMG/left_x.jpg, IMG/right_x.jpg,not-a-number,0,0,0")
    rows.insert(9, "IMG/center_gone.jpg, , ,0.1,0.5,0,30")
    (folder / "driving_log.csv").write_text("\n".join(rows) + "\n")
    return labels


def write_donkey_v2(folder, n=100, seed=1):
    import cv2

    frames, labels = _road_frames(n, seed)
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, (frame, label) in enumerate(zip(frames, labels)):
        name = "%d_cam_image_array_.jpg" % i
        cv2.imwrite(str(folder / "images" / name), frame)
        lines.append(json.dumps({"_index": i, "_session_id": "s", "_timestamp_ms": 1700000000000 + 50 * i,
                                 "cam/image_array": name, "user/angle": float(label), "user/throttle": 0.3,
                                 "user/mode": "user"}))
    lines[7] = lines[7][:20]  # a record cut short by a power cut
    (folder / "catalog_0.catalog").write_text("\r\n".join(lines) + "\r\n")
    manifest = [["cam/image_array", "user/angle", "user/throttle", "user/mode"],
                ["image_array", "float", "float", "str"], {}, {"created_at": 1700000000.0},
                {"paths": ["catalog_0.catalog"], "current_index": n, "max_len": 1000, "deleted_indexes": [3, 4]}]
    (folder / "manifest.json").write_text("\r\n".join(json.dumps(m) for m in manifest) + "\r\n")
    return labels


def write_donkey_v1(folder, n=10, seed=2):
    import cv2

    frames, labels = _road_frames(n, seed)
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"inputs": ["cam/image_array", "user/angle", "user/throttle"],
                                                  "types": ["image_array", "float", "float"]}))
    for i, (frame, label) in enumerate(zip(frames, labels)):
        cv2.imwrite(str(folder / ("%d_cam-image_array_.jpg" % i)), frame)
        (folder / ("record_%d.json" % i)).write_text(json.dumps({
            "cam/image_array": "%d_cam-image_array_.jpg" % i, "user/angle": float(label), "user/throttle": 0.2,
            "milliseconds": 1000 * i}))
    return labels


def test_driving_logs_in_each_layout_are_read_with_what_was_skipped_named(tmp_path):
    from train import drivelog

    udacity = write_udacity(tmp_path / "sim", n=12)
    donkey = write_donkey_v2(tmp_path / "tub", n=12)
    v1 = write_donkey_v1(tmp_path / "old", n=11)
    log = drivelog.read("%s,%s,%s" % (tmp_path / "sim", tmp_path / "tub", tmp_path / "old"), side_correction=0.25)
    by_camera = {}
    for s in log.samples:
        by_camera.setdefault(s.camera, []).append(s)
    assert len(by_camera["left"]) == len(by_camera["right"]) == 12  # every row's side images, re-rooted
    assert all(os.path.dirname(s.image) == str(tmp_path / "sim" / "IMG") for s in by_camera["left"])
    sim = [s for s in by_camera["centre"] if "/sim/" in s.image]
    assert np.allclose([s.steering for s in sim], udacity, atol=1e-5)
    assert np.allclose([s.steering for s in by_camera["left"]], udacity + 0.25, atol=1e-5)
    assert np.allclose([s.steering for s in by_camera["right"]], udacity - 0.25, atol=1e-5)
    tub = [s for s in log.samples if "/tub/" in s.image]
    kept = [round(float(v), 5) for i, v in enumerate(donkey) if i not in (3, 4, 7)]  # deleted twice, cut short once
    assert [round(s.steering, 5) for s in tub] == kept
    assert tub[0].time_ms == 1700000000000
    old = [s for s in log.samples if "/old/" in s.image]
    assert np.allclose([s.steering for s in old], v1, atol=1e-5)  # record_10 after record_9, not after record_1
    report = "\n".join(log.report())
    assert "skipped 1 malformed rows: %s:6" % (tmp_path / "sim" / "driving_log.csv") in report
    assert "skipped 1 malformed records: %s:8" % (tmp_path / "tub" / "catalog_0.catalog") in report
    assert "center_gone.jpg" in report
    assert [s.camera for s in drivelog.read(str(tmp_path / "sim"), side_correction=None).samples] == ["centre"] * 12


@pytest.mark.parametrize("spec, extra, message", [
    ("drivelog:", [], "needs a folder"),
    ("drivelog:{tmp}/none", [], "no such folder"),
    ("drivelog:{tmp}", [], "holds no driving log"),
    ("road", ["--augment", "shift"], "--augment shift needs --shift-correction S"),
    ("road", ["--augment", "flip,tilt"], "--augment flip,tilt: choose from"),
    ("road", ["--side-correction", "0.2"], "--side-correction is for --data drivelog:PATH"),
])
def test_bad_driving_logs_and_augmentations_are_one_line(tmp_path, spec, extra, message):
    proc = cli("train", "--model", "pilotnet", "--data", spec.format(tmp=tmp_path), "--out", tmp_path / "run", *extra)
    assert one_line_error(proc) and message in proc.stderr, proc.stderr


def test_a_log_with_nothing_usable_is_one_line(tmp_path):
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "driving_log.csv").write_text("IMG/a.jpg,IMG/b.jpg,IMG/c.jpg,0.1,0,0,0\nbroken\n")
    proc = cli("train", "--model", "pilotnet", "--data", "drivelog:%s" % (tmp_path / "sim"), "--out", tmp_path / "r")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert "no usable sample" in error and "missing images" in error, proc.stderr


@pytest.fixture(scope="module")
def drivelog_run(tmp_path_factory):
    """PilotNet trained on a Udacity log and a DonkeyCar tub together, side cameras and every steering
    augmentation on (the logs are of the procedural road: 0.49 is its shift correction, README)."""
    base = tmp_path_factory.mktemp("logs")
    write_udacity(base / "sim", n=110)
    write_donkey_v2(base / "tub", n=110)
    out = base / "run"
    proc = cli("train", "--model", "pilotnet", "--data", "drivelog:%s,%s" % (base / "sim", base / "tub"),
               "--epochs", "3", "--augment", "flip,brightness,shift", "--shift-correction", "0.49", "--tensorboard",
               "--out", out)
    return proc, out


def test_pilotnet_trains_on_driving_logs_with_augmentation(drivelog_run):
    proc, out = drivelog_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipped 1 malformed rows" in proc.stderr and "skipped 1 malformed records" in proc.stderr
    assert "from side cameras, corrected by 0.2" in proc.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["steering"]["units"] == "normalised" and meta["augment"] == ["flip", "brightness", "shift"]
    held_out = json.loads((out / "history.json").read_text())["held_out"]
    assert held_out["val_mae"] < held_out["constant_mae"], held_out  # learnt something in 3 epochs
    assert any(f.startswith("events.out.tfevents") for _, _, files in os.walk(out / "tensorboard") for f in files)


def test_the_driving_log_model_exports_and_passes_parity(drivelog_run, tmp_path):
    proc, out = drivelog_run
    assert proc.returncode == 0
    exported = cli("export", "onnx", out, "--out", tmp_path / "bundle")
    assert exported.returncode == 0, exported.stderr[-2000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["steering"]["units"] == "normalised" and manifest["task"] == "steering"


# -- the pipeline ---------------------------------------------------------------------------------------------
def test_pipeline_without_augmentation_gives_prepare_s_tensors_and_augmentation_repeats_with_the_seed():
    from train import load_tensorflow, models
    from train.inputs import prepare
    from train.pipeline import Split, build

    load_tensorflow()
    spec = models.get("pilotnet")
    frames, labels = _road_frames(24, 5)
    rgb = np.ascontiguousarray(frames[..., ::-1])
    split = Split(labels, images=rgb)
    common = dict(pre=spec.preprocess(), layout=spec.layout, task="steering", num_classes=2, batch_size=8)
    plain = np.concatenate([x.numpy() for x, _ in build(split, **common)])
    assert np.array_equal(plain, prepare(rgb, spec.preprocess(), spec.layout))

    def epoch(seed):
        ds = build(split, seed=seed, training=True, augment=("flip", "brightness", "shift"), **common)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    first, again, other = epoch(3), epoch(3), epoch(4)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    targets = np.concatenate([y for _, y in first])
    assert not np.allclose(np.sort(targets), np.sort(labels))  # flips and shifts moved the labels


def test_a_flip_mirrors_the_view_and_negates_the_steering():
    import tensorflow as tf

    from train.pipeline import augment_batch

    x = tf.constant(np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3) % 255)
    y = tf.constant([0.3, -0.2])
    for seed in range(8):  # some seeds flip the first image, some not; each flipped one is exactly mirrored
        fx, fy = augment_batch(tf, x, y, tf.constant([seed, 0], tf.int64), ("flip",), "steering", 0.1)
        for i in range(2):
            flipped = fy.numpy()[i] == -y.numpy()[i]
            assert flipped or fy.numpy()[i] == y.numpy()[i]
            assert np.array_equal(fx.numpy()[i], x.numpy()[i, :, ::-1] if flipped else x.numpy()[i])
