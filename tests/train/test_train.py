"""Real training on the embedded datasets reaches the issue's targets and writes a complete run."""

import json

import pytest

from tests.conftest import cli, one_line_error


def _held_out(run):
    with open(run / "history.json") as f:
        return json.load(f)["held_out"]


def test_digits_reach_95_percent_held_out(digits_run):
    assert _held_out(digits_run)["val_accuracy"] >= 0.95


def test_pilotnet_halves_the_error_of_a_constant_prediction(pilot_run):
    held_out = _held_out(pilot_run)
    assert held_out["val_mae"] <= 0.5 * held_out["constant_mae"], held_out


def test_run_directory_has_what_export_and_people_need(digits_run):
    for name in ("model.keras", "history.json", "training.png", "summary.txt", "meta.json"):
        assert (digits_run / name).is_file(), name
    assert (digits_run / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Total params" in (digits_run / "summary.txt").read_text()
    meta = json.loads((digits_run / "meta.json").read_text())
    assert meta["task"] == "classification" and meta["labels"] == [str(i) for i in range(10)]
    assert meta["preprocess"]["color"] == "gray" and meta["input"]["shape"] == [None, 28, 28, 1]
    assert len(meta["samples"]["files"]) >= 24
    assert all((digits_run / "samples" / n).is_file() for n in meta["samples"]["files"])
    history = json.loads((digits_run / "history.json").read_text())["history"]
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]


def test_folder_dataset_trains_the_binary_classifier(tmp_path):
    """The cats-vs-dogs layout, made of real digit images (0 vs 1) at another size."""
    import cv2
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    for cls, name in ((0, "zeros"), (1, "ones")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == cls][:30]):
            big = cv2.resize((image * 255 / 16).astype(np.uint8), (60, 60), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(tmp_path / "data" / name / ("%d.png" % i)), big)
    good = (tmp_path / "data" / "ones" / "0.png").read_bytes()
    cv2.imwrite(str(tmp_path / "data" / "ones" / "photo.jpg"), big)
    jpeg = (tmp_path / "data" / "ones" / "photo.jpg").read_bytes()
    (tmp_path / "data" / "ones" / "photo.jpg").write_bytes(jpeg[:len(jpeg) // 2])  # cut short
    (tmp_path / "data" / "zeros" / "noise.png").write_bytes(good[:8] + bytes(range(256)))  # a PNG header, then junk
    proc = cli("train", "--model", "binary_cnn", "--data", "folder:%s" % (tmp_path / "data"), "--epochs", "2",
               "--batch-size", "16", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["task"] == "binary" and meta["labels"] == ["ones", "zeros"]
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning: skipping")]
    assert warnings == ["warning: skipping %s: not a readable image" % (tmp_path / "data" / n)
                        for n in ("ones/photo.jpg", "zeros/noise.png")]
    assert "JPEG" not in proc.stderr and "PNG" not in proc.stderr  # the decoders' own messages stay off


def test_a_class_without_readable_images_is_one_line(tmp_path):
    import cv2
    import numpy as np

    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for i in range(3):
            cv2.imwrite(str(tmp_path / name / ("%d.png" % i)), np.full((20, 20, 3), 40 * i, np.uint8))
    for i in range(2):
        (tmp_path / "dogs" / ("%d.png" % i)).write_bytes(b"not an image")
    proc = cli("train", "--model", "binary_cnn", "--data", "folder:%s" % tmp_path, "--out", tmp_path / "run")
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith(("loading ", "checking "))]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert lines == ["warning: skipping %s: not a readable image" % (tmp_path / "dogs" / ("%d.png" % i))
                     for i in range(2)] + [
        "python -m train: error: class folder %s has 1 readable image(s) (2 could not be read); each class needs "
        "at least 2" % (tmp_path / "dogs")]


@pytest.mark.parametrize("args, message", [
    (["--model", "mnist_cnn", "--data", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "mnist_cnn", "--data", "folder:/no/such/folder"], "does not exist"),
    (["--model", "pilotnet", "--data", "digits"], "pilotnet is a steering model"),
    (["--model", "binary_cnn"], "needs a two-class image folder"),
    (["--model", "mnist_cnn", "--epochs", "0"], "invalid positive integer value"),
    (["--model", "mnist_cnn", "--road-views", "centred"], "--road-views is for --data road"),
    (["--model", "pilotnet", "--road-views", "sideways"], "invalid choice: 'sideways'"),
    (["--model", "mobilenetv2", "--weights", "/no/such/weights.h5"], "no such file"),
    (["--model", "mobilenetv2", "--image-size", "16"], "--image-size 16 is too small for mobilenetv2 (at least 32)"),
    (["--model", "efficientnetb0", "--fine-tune", "20"], "--fine-tune needs --weights"),
    (["--model", "mnist_cnn", "--image-size", "64"], "are for the backbones"),
    (["--model", "mobilenetv2", "--fine-tune-epochs", "3"], "--fine-tune-epochs needs --fine-tune N"),
])
def test_bad_training_requests_are_one_line_exit_2(tmp_path, args, message):
    proc = cli("train", *args, "--out", tmp_path / "run")
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_mnist_without_cache_or_network_says_which_file_to_place_where(tmp_path, monkeypatch):
    # an unreachable proxy stands in for "no network", so the test never downloads even where one exists
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    proc = cli("train", "--model", "mnist_dense", "--data", "mnist", "--out", tmp_path / "run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "place it at %s" % (tmp_path / "keras" / "datasets" / "mnist.npz") in last
