"""The pipeline on real frames (runtime/pipeline.py, model.py, __main__.py): `runtime run` with its outputs
and summary, stream(), Ctrl-C, bad bundles, and never TensorFlow."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, cli, one_line_error, read_jsonl


def test_synthetic_road_run_writes_video_jsonl_and_summary(pilot_bundle, tmp_path):
    import cv2

    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "40",
               "--no-display", "--output", tmp_path / "out.mp4", "--jsonl", tmp_path / "out.jsonl",
               "--input-width", "480", "--input-height", "270")
    assert proc.returncode == 0, proc.stderr
    assert "40 frames" in proc.stdout and "FPS" in proc.stdout and "p95" in proc.stdout
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["frame"] for line in lines] == list(range(40))
    assert all(line["latency_ms"] > 0 and line["timestamp"] > 1e9 for line in lines)
    assert all(-1.5 < line["result"]["steering"] < 1.5 for line in lines)
    mae = sum(abs(ln["result"]["steering"] - ln["truth"]["steering"]) for ln in lines) / len(lines)
    assert mae < 0.1  # a camera it has never seen, at another resolution, still steers along the lane
    video = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (480, 270)


def test_classifier_on_a_folder_of_images(digits_bundle, tmp_path):
    proc = cli("runtime", "run", digits_bundle, "--source", digits_bundle / "samples", "--no-display",
               "--jsonl", tmp_path / "d.jsonl")
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(tmp_path / "d.jsonl")
    meta_targets = json.loads(open(os.path.join(ROOT, digits_bundle, "manifest.json")).read())["samples"]["files"]
    assert len(lines) == len(meta_targets)
    assert all(set(ln["result"]) >= {"class_id", "label", "confidence", "top"} for ln in lines)


def test_runtime_never_imports_tensorflow(pilot_bundle, tmp_path):
    code = (
        "import sys\n"
        "from runtime import Model, open_source, open_outputs, run\n"
        "with Model(sys.argv[1]) as model, open_source('synthetic://road', 160, 90) as source:\n"
        "    stats = run(model, source, open_outputs(jsonl=sys.argv[2]), max_frames=5, log=None)\n"
        "assert stats.frames == 5\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'train', "
        "'export'))\n"
        "print('LOADED', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(pilot_bundle), str(tmp_path / "x.jsonl")], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout


def test_missing_bundle_is_one_line_exit_2(tmp_path):
    proc = cli("runtime", "run", tmp_path / "nope", "--source", "synthetic://road", "--max-frames", "1")
    assert one_line_error(proc), proc.stderr
    assert "no bundle at" in proc.stderr


def _copy(bundle, tmp_path):
    dest = tmp_path / "copy"
    shutil.copytree(bundle, dest)
    return dest


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / "manifest.json").write_text("{ not json"), "not valid JSON"),
    (lambda b: (b / "manifest.json").unlink(), "no manifest.json"),
    (lambda b: (b / "model.onnx").write_bytes((b / "model.onnx").read_bytes()[:-100] + b"x" * 100), "sha256"),
    (lambda b: (b / "model.onnx").unlink(), "is missing"),
    (lambda b: (b / "manifest.json").write_text(json.dumps({"format": "edge-bundle", "format_version": 99})),
     "format_version 99"),
])
def test_corrupt_bundle_is_one_line_exit_2(pilot_bundle, tmp_path, damage, message):
    copy = _copy(pilot_bundle, tmp_path)
    damage(copy)
    proc = cli("runtime", "run", copy, "--source", "synthetic://road", "--max-frames", "1", "--no-display")
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_info_describes_a_bundle(digits_bundle):
    proc = cli("runtime", "info", digits_bundle)
    assert proc.returncode == 0, proc.stderr
    assert "classification" in proc.stdout and '"format": "edge-bundle"' in proc.stdout


@pytest.mark.parametrize("signame, status, said", [("SIGINT", 130, "stopped by Ctrl-C"),
                                                   ("SIGTERM", 143, "stopped by SIGTERM")])
def test_ctrl_c_or_sigterm_stops_cleanly_with_every_output_complete(pilot_bundle, tmp_path, signame, status, said):
    """SIGTERM (systemd, docker, timeout) does what the first Ctrl-C does: the frame in hand finished, every
    output closed complete, the summary printed; the exit status says which signal (128 + its number)."""
    import signal
    import time

    import cv2

    proc = subprocess.Popen([sys.executable, "-m", "runtime", "run", str(pilot_bundle), "--source",
                             "synthetic://road", "--no-display", "--quiet", "--output", str(tmp_path / "o.mp4"),
                             "--jsonl", str(tmp_path / "o.jsonl")], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not (tmp_path / "o.jsonl").exists()
                                      or (tmp_path / "o.jsonl").stat().st_size < 2000):
        time.sleep(0.2)
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert said in out and "Traceback" not in err
    lines = read_jsonl(tmp_path / "o.jsonl")
    video = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert len(lines) > 0 and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)


def test_stream_gives_frames_and_results_in_order_and_stops_its_thread_when_left(pilot_bundle):
    import threading

    from runtime import Model, open_source, stream

    with Model(str(pilot_bundle), backend="onnxruntime") as model, \
            open_source("synthetic://road", 160, 90) as road:
        seen = [(frame.index, result["steering"], frame.latency_ms, dict(model.times))
                for frame, result in stream(model, road, max_frames=12)]
        assert [index for index, _, _, _ in seen] == list(range(12))  # not live: every frame, in order
        assert all(-1.5 < steering < 1.5 and latency > 0 for _, steering, latency, _ in seen)
        assert all(set(times) == {"preprocess", "infer", "postprocess"} and min(times.values()) > 0
                   for _, _, _, times in seen)

        frames = stream(model, road)
        for frame, _ in frames:
            if frame.index >= 3:
                break  # leaving early: the capture thread is stopped
        assert not frames.capture.thread.is_alive()
        assert not [t for t in threading.enumerate() if t.name == "capture"]


def test_frames_prepared_in_the_capture_thread_give_the_same_results_as_inline(pilot_bundle):
    """Issue 30: for frames that all come in order, the capture thread preprocesses each (into a ring of
    buffers) while the model runs on the one before. The model here waits, each frame, until the capture thread
    has filled the queue and prepared one more (a ring one buffer short overwrites the one in use then, every
    time); every result is the one the frame gives alone, and the newest frame wins path (a live source)
    still prepares inline."""
    from runtime import Model, open_source, stream
    from runtime.sources.base import Source

    with Model(str(pilot_bundle), backend="onnxruntime") as model, \
            open_source("synthetic://road", 320, 180) as road:
        images = [frame.image.copy() for frame, _ in zip(road, range(24))]
        alone = [model(image)["steering"] for image in images]

        class Frames(Source):  # these images, every one, in order
            uri, live = "frames://", False

            def _images(self):
                for image in images:
                    yield image, None

        frames, infer, kept = stream(model, Frames()), model.infer, []

        def infer_when_the_capture_thread_is_ahead(batch, frame_size=None):
            # the worst case, made certain: the queue full and the next frame prepared before the model reads
            before = batch.copy()
            deadline = time.monotonic() + 10
            while not (frames.capture.producer_waiting or frames.capture.ended) and time.monotonic() < deadline:
                time.sleep(0.001)
            kept.append(np.array_equal(batch, before))  # no buffer in use was written meanwhile
            return infer(batch, frame_size)

        model.infer = infer_when_the_capture_thread_is_ahead
        try:
            seen = [(frame.batch is not None, result["steering"]) for frame, result in frames]
        finally:
            del model.infer
        assert kept == [True] * 24 and [prepared for prepared, _ in seen] == [True] * 24
        assert [steering for _, steering in seen] == alone  # exactly: the same input, bit for bit
        inline = [frame.batch for frame, _ in stream(model, Frames(), capture_thread=False)]
        assert inline == [None] * 24


def test_the_camera_demo_with_open_output_and_stream_as_the_readme_writes_it(pilot_bundle, tmp_path):
    """The README's demo, with a video file and JSON lines in place of display://0 (no screen here)."""
    import cv2

    from runtime import Model, Output, open_output, open_source, stream

    video, lines = str(tmp_path / "demo.mp4"), str(tmp_path / "demo.jsonl")
    with Model(str(pilot_bundle)) as model, open_source("synthetic://road", 320, 180) as camera, \
            open_output(video) as window, open_output(lines) as log:
        assert isinstance(window, Output) and window.wants_overlay and not log.wants_overlay
        for frame, result in stream(model, camera, max_frames=15):
            window.write(frame, result)  # draws the overlay itself, on a copy
            log.write(frame, result)
    capture = cv2.VideoCapture(video)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 15
    assert [line["frame"] for line in read_jsonl(lines)] == list(range(15))
    assert all(line["latency_ms"] > 0 for line in read_jsonl(lines))
    with pytest.raises(Exception, match="unknown kind of output"):
        open_output("ftp://example/x")


def test_a_capture_thread_stops_onnx_runtime_spin_waiting_and_an_inline_read_lets_it(pilot_bundle):
    """ONNX Runtime's workers spin between calls by default; beside a capture thread they would take its
    core, so stream() tells the backend whether the cores are shared, and the session follows."""
    from runtime import Model, open_source, stream
    from runtime.commands.bench import MemoryFrames

    with Model(str(pilot_bundle), backend="onnxruntime") as model, open_source("synthetic://road", 160, 90) as road:
        assert model.backend.spinning and model.backend._session is None  # made on first use, not before
        assert len(list(stream(model, road, max_frames=3))) == 3
        assert not model.backend.spinning  # made without spinning: the stream said so before the first frame
        again = model.backend.session
        list(stream(model, road, max_frames=2))
        assert model.backend.session is again  # unchanged setting: not reopened
        images = [frame.image for frame, _ in stream(model, road, max_frames=2)]
        memory = MemoryFrames(images)
        drawn = [frame.image for frame, _ in stream(model, memory, max_frames=4, capture_thread=False)]
        assert model.backend.spinning and model.backend.session is not again  # inline: made again, spinning
        drawn[0][:] = 0  # fresh copies: drawing on one never reaches the frames held in memory
        assert images[0].any() and drawn[2] is not images[0]


def test_stream_loads_the_model_before_the_first_frame_and_runs_without_one(pilot_bundle):
    """stream() prepares the backend (a model that cannot load says so before a camera gives a frame), and
    with model None gives the frames as they come (what `runtime record` runs)."""
    from runtime import Model, stream
    from runtime.sources.base import Source

    loaded_when_read = []

    class Camera(Source):
        uri, live, fps = "camera", False, 30.0

        def _images(self):
            loaded_when_read.append(model.backend._session is not None)
            for i in range(3):
                yield np.full((90, 160, 3), 40 * i, np.uint8), None

    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        assert model.backend._session is None
        assert len(list(stream(model, Camera()))) == 3
        assert loaded_when_read == [True]
        frames = list(stream(None, Camera(), capture_thread=False))
    assert [result for _, result in frames] == [None] * 3
    assert [int(frame.image[0, 0, 0]) for frame, _ in frames] == [0, 40, 80]


def test_nan_or_infinite_outputs_are_flagged_in_the_results_not_a_crash(pilot_bundle, digits_bundle, tmp_path):
    import numpy as np

    from runtime import Model, open_outputs, open_source, run
    from runtime.sim.judge import judge
    from runtime.postprocess import INVALID

    for bundle, bad in ((pilot_bundle, np.nan), (digits_bundle, np.inf)):
        out = tmp_path / bundle.name
        with Model(str(bundle), backend="onnxruntime") as model, open_source("synthetic://road", 160, 90) as road:
            real = model.backend.infer
            model.backend.infer = lambda batch, real=real, bad=bad: [np.full_like(o, bad) for o in real(batch)]
            stats = run(model, road, open_outputs([str(out) + ".mp4"], jsonl=str(out) + ".jsonl"), max_frames=4,
                        log=None)
            if bundle is pilot_bundle:  # closed loop: the car steers straight on a bad output, and counts it
                assert judge(model, "model", 1.0).report()["invalid_outputs"] == 30
        lines = read_jsonl(str(out) + ".jsonl")
        assert len(lines) == 4 and all(ln["result"]["invalid"] == INVALID for ln in lines)
        task_field = "steering" if bundle is pilot_bundle else "label"
        assert all(ln["result"][task_field] is None for ln in lines)  # JSON null, never NaN (which is not JSON)
        assert stats.invalid == 4 and "4 invalid output(s) (NaN/inf)" in stats.summary()
        assert os.path.getsize(str(out) + ".mp4") > 0  # the overlay was drawn: "invalid output (NaN/inf)"


def test_frames_of_another_depth_or_channel_count_are_converted_or_skipped_and_counted(pilot_bundle):
    import numpy as np

    from runtime import Model, run
    from runtime.sources import Source

    bgr = np.full((90, 160, 3), 128, np.uint8)

    class Odd(Source):  # what a capture card, a depth camera or a user's own source may give
        def _images(self):
            for image in (bgr, bgr[..., 0], np.dstack([bgr, bgr[..., :1]]), bgr.astype(np.uint16) * 257,
                          bgr / 255.0, np.zeros((1, 160, 3), np.uint8), bgr.astype(np.int32), "not an image"):
                yield image, None

    seen = []
    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        stats = run(model, Odd(), [], log=None, capture_thread=False)
        seen = [(f.image.dtype, f.image.shape) for f in Odd()]
    assert seen == [(np.uint8, (90, 160, 3))] * 5  # gray, BGRA, 16-bit and 0..1 float as BGR
    assert stats.frames == 5 and stats.skipped == 3 and "skipped 3 unusable frame(s)" in stats.summary()


def test_the_readmes_demo_ends_on_q_in_the_window(pilot_bundle, monkeypatch):
    """The README's loop, run as it is written there (its first `with` block), with synthetic://road for the camera
    and a FAKE cv2 window whose key press after the third frame is q."""
    import re

    import runtime
    from runtime.outputs import display
    from tests.conftest import ROOT

    class FakeWindowCv2:  # the highgui calls DisplayOutput makes, and the key the user presses
        WINDOW_NORMAL, error = 0, RuntimeError

        def __init__(self):
            self.shown = 0

        def namedWindow(self, title, flags):
            pass

        def imshow(self, title, image):
            self.shown += 1
            assert self.shown < 10, "the README's loop did not end on q"

        def waitKey(self, delay):
            return ord("q") if self.shown == 3 else -1

        def destroyWindow(self, title):
            pass

    fake = FakeWindowCv2()
    monkeypatch.setattr(display, "require", lambda *a: fake)
    readme = open(os.path.join(ROOT, "README.md")).read()
    demo = re.search(r"```python\n.*?\n(with Model.*?\n)\n", readme, re.S).group(1)
    demo = demo.replace('"bundles/pilotnet"', repr(str(pilot_bundle)))
    demo = demo.replace('"csi://0"', '"synthetic://road", 160, 90')
    printed = []
    exec(demo, dict(vars(runtime), print=lambda *a: printed.append(a)))  # noqa: S102 (the README's own code)
    assert fake.shown == 3 and len(printed) == 3  # it stopped at the q


def test_run_closes_every_output_when_one_fails_to_and_says_the_first_failure():
    """A full disk in one output's close leaves no other output unclosed (a video half written, a socket open)."""
    from runtime.outputs.base import Output
    from runtime.pipeline import run
    from runtime.sources.base import Source

    class Three(Source):
        uri = "three://"

        def _images(self):
            for _ in range(3):
                yield np.zeros((4, 4, 3), np.uint8), None

    closed = []

    class Kept(Output):
        def __init__(self, name, fails):
            self.name, self.fails, self.frames = name, fails, 0

        def write(self, frame, result=None, annotated=None):
            self.frames += 1

        def close(self):
            closed.append(self.name)
            if self.fails:
                raise OSError(28, "No space left on device (%s)" % self.name)

    outputs = [Kept("first", True), Kept("second", True), Kept("third", False)]
    with pytest.raises(OSError, match=r"\(first\)"):
        run(None, Three(), outputs, log=None, capture_thread=False)
    assert closed == ["first", "second", "third"] and [o.frames for o in outputs] == [3, 3, 3]
