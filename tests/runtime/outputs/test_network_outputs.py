"""rtp:// and rtsp:// outputs, read back by a real GStreamer player (runtime/outputs/network.py)."""

import os
import signal
import subprocess
import textwrap
import time

from tests.conftest import ROOT
from tests.runtime.gstreamer import SYSTEM_PYTHON


def test_rtp_and_rtsp_outputs_stream_h264_a_player_can_read(syspy, pilot_bundle, tmp_path):
    # Nothing here waits for a time. The player loads OpenCV (READY); the run starts; once it has sent a
    # second of video (30 results in its JSON lines) the player is told to connect (GO), and the run streams
    # until the player has its 20 frames (or 60 s have passed); only then is it stopped (Ctrl-C). Keyframes
    # every 30 frames let a player that joins a running stream decode. (A player connecting to the RTSP
    # server in the very first moments of the run sometimes got no frames at all: see the README.)
    receiver = """
        import os, sys, threading, time, cv2
        print("READY", flush=True)
        sys.stdin.readline()  # GO
        uri, t = sys.argv[1], time.time()
        watchdog = threading.Timer(60, lambda: (print("GAVE UP after 60 s", flush=True), os._exit(1)))
        watchdog.daemon = True  # a read that never returns (a stream gone quiet) cannot hang the test
        watchdog.start()
        if uri.startswith("rtp://"):
            pipeline = ('udpsrc port=%s caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,'
                        'payload=96" ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! '
                        'video/x-raw,format=BGR ! appsink sync=false' % uri.rsplit(":", 1)[1])
        else:
            pipeline = ("rtspsrc location=%s latency=100 ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! "
                        "video/x-raw,format=BGR ! appsink sync=false" % uri)
        cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        while not cap.isOpened() and time.time() - t < 60:  # RTSP: the server is not up yet
            time.sleep(0.2)
            cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        got, shape = 0, None
        while got < 20 and time.time() - t < 60:
            ok, frame = cap.read()
            if ok:
                got, shape = got + 1, frame.shape
        print("RECEIVED", got, shape, flush=True)
    """
    for out, watch in (("rtp://127.0.0.1:5611", "rtp://127.0.0.1:5611"),
                       ("rtsp://@:8611/road", "rtsp://127.0.0.1:8611/road")):
        player = subprocess.Popen([SYSTEM_PYTHON, "-c", textwrap.dedent(receiver), watch], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert player.stdout.readline().startswith("READY")
        jsonl = tmp_path / ("%s.jsonl" % out.split(":")[0])
        run = subprocess.Popen([syspy, "-m", "runtime", "run", str(pilot_bundle), "--source", "synthetic://road",
                                "--input-rate", "30", "--input-width", "320", "--input-height", "180",
                                "--no-display", "--output", out, "--jsonl", str(jsonl), "--quiet"], cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and run.poll() is None and (
                    not jsonl.exists() or len(jsonl.read_text().splitlines()) < 30):
                time.sleep(0.1)
            seen = player.communicate("GO\n", timeout=90)[0]
        finally:
            player.kill()
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=60)
        assert "RECEIVED 20 (180, 320, 3)" in seen, (out, seen, err)
        assert run.returncode == 130 and "Traceback" not in err, err  # stopped by Ctrl-C, cleanly
