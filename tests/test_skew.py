"""No train/serve skew: raw frames through the runtime give what Keras gives on the same frames prepared
by train's own (TensorFlow) input pipeline, not by the runtime's preprocessing."""

import json

import numpy as np

from tests.conftest import cli, read_jsonl


def _keras_on_train_pipeline(run, frames_bgr):
    import keras

    from train.inputs import prepare

    meta = json.loads((run / "meta.json").read_text())
    model = keras.saving.load_model(str(run / "model.keras"))
    rgb = [np.ascontiguousarray(f[..., ::-1]) for f in frames_bgr]
    return model.predict(prepare(rgb, meta["preprocess"], meta["input"]["layout"]), verbose=0)


def test_a_video_through_the_runtime_matches_keras(pilot_run, pilot_bundle, tmp_path):
    import cv2

    from runtime import road

    frames, _ = road.sample_frames(24, 1280, 720, seed=777)  # another size than training's 320x180
    writer = cv2.VideoWriter(str(tmp_path / "drive.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
    for f in frames:
        writer.write(f)
    writer.release()
    proc = cli("runtime", "run", pilot_bundle, "--source", tmp_path / "drive.avi", "--no-display",
               "--jsonl", tmp_path / "r.jsonl")
    assert proc.returncode == 0, proc.stderr
    runtime_out = np.array([ln["result"]["steering"] for ln in read_jsonl(tmp_path / "r.jsonl")])

    video = cv2.VideoCapture(str(tmp_path / "drive.avi"))  # the decoded frames, which the runtime saw
    decoded = [video.read()[1] for _ in range(24)]
    keras_out = _keras_on_train_pipeline(pilot_run, decoded).reshape(-1)
    assert len(runtime_out) == 24
    assert np.max(np.abs(runtime_out - keras_out)) < 0.01, np.abs(runtime_out - keras_out)


def test_images_of_another_size_through_the_runtime_match_keras(digits_run, digits_bundle, tmp_path):
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = tmp_path / "imgs"
    folder.mkdir()
    frames = []
    for i in range(20):
        img = cv2.resize((digits.images[i] * 255 / 16).astype(np.uint8), (40, 40), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(folder / ("%02d.png" % i)), img)
        frames.append(cv2.imread(str(folder / ("%02d.png" % i))))
    proc = cli("runtime", "run", digits_bundle, "--source", folder, "--no-display", "--jsonl", tmp_path / "d.jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(tmp_path / "d.jsonl")
    keras_probs = _keras_on_train_pipeline(digits_run, frames)
    assert [ln["result"]["class_id"] for ln in lines] == list(keras_probs.argmax(axis=1))
    conf = np.array([ln["result"]["confidence"] for ln in lines])
    assert np.max(np.abs(conf - keras_probs.max(axis=1))) < 0.02
