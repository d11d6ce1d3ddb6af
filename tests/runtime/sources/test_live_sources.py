"""Live sources and the real-time pipeline, with real GStreamer (runtime/sources/live.py, cameras.py,
rtsp.py, appsink.py), in the system-OpenCV interpreter (tests/runtime/gstreamer.py)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, cli, one_line_error, read_jsonl
from tests.runtime.gstreamer import CAMERA, _opencv_with_gstreamer, run_sys, script_sys


def test_a_live_gstreamer_camera_runs_at_its_rate(syspy, pilot_bundle, tmp_path):
    proc = run_sys(syspy, "run", pilot_bundle, "--source", "gst://" + CAMERA, "--max-frames", "45", "--no-display",
                   "--jsonl", tmp_path / "live.jsonl", "--output", tmp_path / "live.mp4")
    assert proc.returncode == 0, proc.stderr
    lines = read_jsonl(tmp_path / "live.jsonl")
    assert len(lines) == 45 and all(-2 < ln["result"]["steering"] < 2 for ln in lines)
    frames = [ln["frame"] for ln in lines]
    assert frames == sorted(set(frames))  # each camera frame at most once, in order
    fps = float(proc.stdout.split(" FPS")[0].split()[-1])
    # paced by the camera, not by inference: never above its 30 fps (36 allows the first frame's timing).
    # No lower bound: a loaded machine may run slower, and that is not what this test is about.
    assert 0 < fps < 36
    assert os.path.getsize(tmp_path / "live.mp4") > 0


def test_newest_frame_wins_when_inference_is_slower_than_the_camera(syspy, pilot_bundle, tmp_path):
    code = """
        import json, sys, time
        from runtime import Model, open_outputs, open_source, run
        with Model(sys.argv[1], backend="onnxruntime") as model:
            infer = model.backend.infer
            model.backend.infer = lambda batch: (time.sleep(0.1), infer(batch))[1]   # 10 FPS against 30
            with open_source("gst://" + sys.argv[2]) as camera:
                stats = run(model, camera, open_outputs(jsonl=sys.argv[3]), max_frames=30, log=None)
        print(json.dumps(stats.as_dict()))
    """
    proc = script_sys(syspy, code, pilot_bundle, CAMERA, tmp_path / "slow.jsonl")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = read_jsonl(tmp_path / "slow.jsonl")
    frames = [ln["frame"] for ln in lines]
    assert frames == sorted(frames) and len(set(frames)) == 30  # never out of order, never twice
    assert stats["dropped"] >= 30  # about two of every three camera frames (60 of 90) went stale and were dropped
    assert 0 < stats["fps"] < 11  # the 100 ms sleep bounds it from above whatever the machine
    # Bounded latency: one inference (100 ms) plus at most a frame's wait, about 130 ms. A queue (oldest frame
    # first) would add 67 ms a frame, 2 s by the 30th; the bounds sit far from both, so load cannot flip them.
    latency = [ln["latency_ms"] for ln in lines]
    assert max(latency) < 1000
    assert sum(latency[-10:]) / 10 < sum(latency[:10]) / 10 + 500  # not growing with time


def test_a_source_that_dies_is_reconnected_or_given_up_cleanly(syspy, pilot_bundle, tmp_path):
    code = """
        import json, sys, cv2
        from runtime import Model, open_outputs, run
        from runtime.errors import UserError
        from runtime.sources import LiveCapture
        pipeline = sys.argv[2].replace("is-live=true", "is-live=true num-buffers=15")   # dies after 15 frames
        attempts = []
        def opener(timeout):                # comes back on the third try; never, when told so
            attempts.append(1)
            if len(attempts) > 1 and (sys.argv[4] == "never" or len(attempts) < 4):
                raise UserError("camera unplugged")
            return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)   # OpenCV's reader: a caller's opener may give it
        with Model(sys.argv[1], backend="onnxruntime") as model:
            camera = LiveCapture("gst://test", opener, reconnect_timeout=float(sys.argv[5]))
            with camera:
                stats = run(model, camera, open_outputs(jsonl=sys.argv[3]), max_frames=25, log=None)
        print(json.dumps(dict(stats.as_dict(), lost=camera.lost)))
    """
    # it is back after about 0.75 s of backoff (0.25 + 0.5) and two pipeline opens; 20 s leaves room for load
    proc = script_sys(syspy, code, pilot_bundle, CAMERA, tmp_path / "back.jsonl", "back", 20)
    assert proc.returncode == 0, proc.stderr
    assert "gst://test stopped (no frame (OpenCV's reader does not say why)); reconnecting (for up to 20 s)" \
        in proc.stderr and "is back after" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["reconnects"] == 1
    assert len(read_jsonl(tmp_path / "back.jsonl")) == 25

    proc = script_sys(syspy, code, pilot_bundle, CAMERA, tmp_path / "gone.jsonl", "never", 2)
    assert proc.returncode == 0, proc.stderr
    assert "did not come back within 2 s (camera unplugged); stopping" in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["lost"] == \
        "gst://test did not come back within 2 s (camera unplugged)"
    assert len(read_jsonl(tmp_path / "gone.jsonl")) == 15  # every result so far written, then a clean end


def test_a_pipeline_that_reaches_its_end_ends_the_run(syspy, pilot_bundle, tmp_path):
    """videotestsrc num-buffers=N sends end-of-stream after N frames: GStreamer's bus says so, and the run ends
    with exit status 0 instead of reconnecting and playing N more, forever."""
    pipeline = CAMERA.replace("is-live=true", "is-live=true num-buffers=40")
    proc = run_sys(syspy, "run", pilot_bundle, "--source", "gst://" + pipeline, "--no-display", "--quiet",
                   "--jsonl", tmp_path / "end.jsonl")
    assert proc.returncode == 0, proc.stderr
    frames = [ln["frame"] for ln in read_jsonl(tmp_path / "end.jsonl")]
    assert frames and frames[-1] < 40 and "reconnecting" not in proc.stderr  # never past the end, never again
    assert "%d frames" % len(frames) in proc.stdout


def _free_udp_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what, seconds=60):
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "waited %d s for %s" % (seconds, what)
        time.sleep(0.1)


def test_a_stream_that_stalls_is_reconnected_and_one_that_is_gone_exits_3(syspy, pilot_bundle, tmp_path):
    """An RTP/UDP H.264 stream whose sender freezes (SIGSTOP) gives no frame and no error: the read times out,
    the pipeline is reopened and the stream comes back when the sender thaws. When the sender is gone for
    longer than --reconnect-timeout, the run ends with every output complete and exit status 3."""
    port = _free_udp_port()
    sender = subprocess.Popen(
        ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "!", "video/x-raw,width=160,height=120,framerate=30/1",
         "!", "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=15", "!", "rtph264pay",
         "config-interval=1", "pt=96", "!", "udpsink", "host=127.0.0.1", "port=%d" % port])
    receiver = ('gst://udpsrc port=%d caps="application/x-rtp,media=video,encoding-name=H264,payload=96,'
                'clock-rate=90000" ! rtph264depay ! avdec_h264 ! videoconvert ! appsink drop=1 max-buffers=1 '
                'sync=false' % port)
    jsonl, err = tmp_path / "udp.jsonl", tmp_path / "err.txt"
    with open(err, "w") as stderr:
        run = subprocess.Popen([syspy, "-m", "runtime", "run", str(pilot_bundle), "--source", receiver,
                                "--no-display", "--quiet", "--jsonl", str(jsonl), "--read-timeout", "1",
                                "--reconnect-timeout", "3"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        def results():
            return len(open(jsonl).readlines()) if os.path.exists(jsonl) else 0

        _wait_for(lambda: results() >= 10, "the first results")
        sender.send_signal(signal.SIGSTOP)  # frozen: no frames, no error, no end
        _wait_for(lambda: "stopped (no frame for 1.0 s); reconnecting" in open(err).read(), "the stall")
        sender.send_signal(signal.SIGCONT)
        _wait_for(lambda: "is back after" in open(err).read(), "the stream's return")
        before = results()
        _wait_for(lambda: results() >= before + 10, "frames after the return")
        sender.kill()  # gone for good
        out, _ = run.communicate(timeout=60)
    finally:
        for proc in (sender, run):
            if proc.poll() is None:
                proc.kill()
    text = open(err).read()
    assert run.returncode == 3, text
    assert "did not come back within 3 s (no frame for" in text and "every output is complete (exit status 3)" in text
    frames = len(read_jsonl(jsonl))
    assert "%d frames" % frames in out and "reconnected" in out  # every result written, and the summary


@pytest.mark.parametrize("uri, message", [
    ("/dev/video9", "no such camera /dev/video9"),
    ("v4l2:///dev/video7", "no such camera /dev/video7"),
    ("3", "no such camera /dev/video3"),
    ("csi://0", "only a Jetson has"),
    ("csi://front", "csi:// needs a sensor number"),
    ("csi://\u00b2", "csi:// needs a sensor number"),  # '²'.isdigit(), and int('²') fails: on a Jetson a traceback
    ("gst://videotestsrc ! fakesink", "must end in appsink"),
    ("gst://nosuchelement ! videoconvert ! appsink", 'GStreamer says: no element "nosuchelement"'),
    ("gst://videotestsrc ! video/x-raw,format=NOPE ! appsink", "could not link"),
])
def test_live_sources_that_cannot_open_are_one_line(syspy, pilot_bundle, uri, message):
    proc = run_sys(syspy, "run", pilot_bundle, "--source", uri, "--no-display")
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_pips_opencv_says_it_has_no_gstreamer(pilot_bundle):
    if _opencv_with_gstreamer(sys.executable):  # a board's venv sees JetPack's OpenCV, which has GStreamer
        pytest.skip("this interpreter's OpenCV has GStreamer (a board's, or a system one): nothing to refuse")
    # bounded all the same: an OpenCV with GStreamer would otherwise run the live camera for ever
    proc = cli("runtime", "run", pilot_bundle, "--source", "gst://" + CAMERA, "--no-display", "--max-frames", "5",
               timeout=120)
    assert one_line_error(proc), proc.stderr
    assert "built without GStreamer" in proc.stderr and "grep GStreamer" in proc.stderr
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--no-display", "--max-frames", "5",
               "--output", "rtsp://@:8554/x", timeout=120)
    assert one_line_error(proc) and "built without GStreamer" in proc.stderr


def test_every_frame_of_a_file_in_order_unless_realtime(pilot_bundle, tmp_path):
    proc = cli("runtime", "run", pilot_bundle, "--source", pilot_bundle / "samples", "--no-display",
               "--jsonl", tmp_path / "f.jsonl", "--quiet")
    assert proc.returncode == 0, proc.stderr
    samples = len(os.listdir(pilot_bundle / "samples")) - 1  # the PNGs, not keras_outputs.npz
    assert [ln["frame"] for ln in read_jsonl(tmp_path / "f.jsonl")] == list(range(samples))
    assert "dropped" not in proc.stdout


def test_ctrl_c_during_a_live_run_closes_every_output(syspy, pilot_bundle, tmp_path):
    proc = subprocess.Popen([syspy, "-m", "runtime", "run", str(pilot_bundle), "--source", "gst://" + CAMERA,
                             "--no-display", "--jsonl", str(tmp_path / "c.jsonl"), "--output", str(tmp_path / "c.mp4")],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60  # interrupted once it has written 11 results, however long that takes
    while time.time() < deadline and proc.poll() is None and (
            not os.path.exists(tmp_path / "c.jsonl") or len(open(tmp_path / "c.jsonl").readlines()) < 11):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = read_jsonl(tmp_path / "c.jsonl")
    assert len(lines) > 10 and "stopped by Ctrl-C" in out
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "c.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)  # a complete file, every frame in it


def test_the_python_api_camera_demo_runs_on_a_live_source(syspy, pilot_bundle):
    code = """
        import sys
        from runtime import Model, open_source
        with Model(sys.argv[1]) as model, open_source("gst://" + sys.argv[2]) as camera:
            for frame in camera:
                result = model(frame.image)
                if frame.index == 10:
                    break
        print("LAST", frame.index, sorted(result))
    """
    proc = script_sys(syspy, code, pilot_bundle, CAMERA)
    assert proc.returncode == 0, proc.stderr
    assert "LAST 10 ['inverse_radius', 'steering']" in proc.stdout
