"""What export onnx writes as a bundle's samples stays within what the runtime reads of them (issue 26): at most
runtime.bundle.MAX_SAMPLES files, holding the image budget's pixels together. No TensorFlow needed: this is the
step that picks the samples, before any model is loaded."""

import numpy as np

from runtime import bundle as bundle_format


def png(path, height, width):
    import cv2

    ok, data = cv2.imencode(".png", np.full((height, width, 3), 7, np.uint8))
    with open(path, "wb") as f:
        f.write(data.tobytes())


def test_export_keeps_only_the_samples_the_runtime_reads_together(tmp_path, monkeypatch, capsys):
    from export.onnx_bundle import Options, _load_samples
    from runtime import images

    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(bundle_format.MAX_SAMPLES + 6):
        png(str(folder / ("s%03d.png" % i)), 10, 10)
    frames = _load_samples(None, str(tmp_path), Options(samples=str(folder)), (10, 10))
    assert len(frames) == bundle_format.MAX_SAMPLES  # was 64 by a number of its own

    monkeypatch.setattr(images, "_budget", 250)  # 2 of the 10x10 samples fit together
    frames = _load_samples(None, str(tmp_path), Options(samples=str(folder)), (10, 10))
    assert len(frames) == 2  # was all 64: a bundle whose samples the runtime would then refuse
    assert "warning: keeping the first 2 of 64 samples" in capsys.readouterr().err
    frames = _load_samples(None, str(tmp_path), Options(), (10, 10))  # synthetic road frames, 64x64 at least
    assert len(frames) == 1 and frames[0].shape[:2] == (64, 64)
