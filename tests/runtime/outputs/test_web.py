"""The browser view (runtime/outputs/web.py): the page in a real headless browser (Debian's chromium), the token
rule, its routes, and a viewer that never reads, which must not stall the pipeline (measured by count)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, cli, free_tcp_port, one_line_error

pytest.importorskip("aiohttp")


def get(url, headers=None, timeout=5):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, what, seconds=60):
    deadline = time.time() + seconds
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass
        assert time.time() < deadline, "waited %d s for %s" % (seconds, what)
        time.sleep(0.2)


@pytest.fixture
def served(pilot_bundle, tmp_path):
    """`runtime run` on the road at 30 fps with an http:// output; yields (base URL, the process, its stderr file)."""
    port = free_tcp_port()
    err = tmp_path / "err.txt"

    def start(host="127.0.0.1", *extra):
        with open(err, "w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "runtime", "run", str(pilot_bundle), "--source",
                                     "synthetic://road", "--input-rate", "30", "--max-frames", "3000", "--no-display",
                                     "--quiet", "--output", "http://%s:%d" % (host, port), *extra], cwd=ROOT,
                                    env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE, stderr=stderr)
        procs.append(proc)
        wait_until(lambda: "web: watch at" in err.read_text(), "the server")
        return "http://127.0.0.1:%d" % port, proc, err

    procs = []
    yield start
    for proc in procs:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (apt install chromium; .ci/run does)")
def test_the_page_shows_the_annotated_road_and_live_stats_in_a_headless_browser(served, tmp_path):
    import cv2

    base, proc, _ = served()
    wait_until(lambda: get(base + "/healthz")[0] == 200, "frames")
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--timeout=2500"]
    shot = tmp_path / "page.png"
    subprocess.run(browser + ["--window-size=1200,420", "--screenshot=%s" % shot, base + "/"], capture_output=True,
                   timeout=120, check=True)
    page = cv2.imread(str(shot))
    view = page[16:376, 16:656]  # the <img>: 640x360 at the page's 16 px padding
    assert view.std() > 20  # a picture, not an empty box
    sky, road = view[60, 320], view[300, 480]
    assert sky[0] > sky[2] and abs(int(road[0]) - int(road[2])) < 30  # blue sky above, grey asphalt below
    dial = view[250:352, 260:380]
    assert (dial.min(axis=2) > 200).sum() > 50  # the steering dial's white arc and ticks, drawn by the overlay

    def dom():
        """The page as the browser has built it, once its script has filled the table (the browser dumps the DOM
        at its --timeout, which may come before the first /stats answer on a loaded machine: then again)."""
        for _ in range(20):
            out = subprocess.run(browser + ["--dump-dom", base + "/"], capture_output=True, text=True,
                                 timeout=120).stdout
            if "<td>frames</td><td>" in out:
                return out, int(out.split("<td>frames</td><td>")[1].split("<")[0])
        raise AssertionError("the page's statistics never appeared:\n" + out[-2000:])

    first, frames_first = dom()
    assert "frames flowing" in first.split("</script>")[-1] or 'class="ok">frames flowing' in first
    assert "<td>FPS (last 5 s)</td>" in first and "<td>latency p50 / p95</td>" in first and "onnxruntime" in first
    _, frames_later = dom()
    assert frames_later > frames_first  # the statistics change without a reload
    assert proc.poll() is None


def test_bound_beyond_the_loopback_it_asks_for_a_token(served):
    base, _, err = served("0.0.0.0", "--web-host", "cam.example")
    token = err.read_text().split("?token=")[1].split()[0]
    port = base.rsplit(":", 1)[1]
    assert get(base + "/stats?token=" + token, {"Host": "cam.example:" + port})[0] == 200  # --web-host's name
    assert get(base + "/stats?token=" + token, {"Host": "rebound.example:" + port})[0] == 421  # DNS rebinding
    assert get(base + "/stats")[0] == 401 and get(base + "/")[0] == 401 and get(base + "/stream.mjpg")[0] == 401
    status, body = get(base + "/stats?token=" + token)
    assert status == 200 and json.loads(body)["source"] == "synthetic://road"
    assert get(base + "/healthz", {"Authorization": "Bearer " + token})[0] in (200, 503)
    assert get(base + "/stats?token=" + token + "x")[0] == 401


def test_only_its_own_routes_and_a_chosen_token(served):
    base, _, err = served("127.0.0.1", "--web-token", "s3cret-s3cret-s3cret")
    assert "?token=s3cret-s3cret-s3cret" in err.read_text()
    assert get(base + "/stats")[0] == 401 and get(base + "/stats?token=s3cret-s3cret-s3cret")[0] == 200
    for path in ("/etc/passwd", "/../README.md", "/stream.mjpg/../../x", "/static/"):
        assert get(base + path + "?token=s3cret-s3cret-s3cret")[0] == 404, path
    for path in ("/", "/page.js", "/page.css"):  # nothing fetched from the network: the board may be offline
        assert "http" not in get(base + path + "?token=s3cret-s3cret-s3cret")[1].decode(), path


def test_a_viewer_that_never_reads_does_not_stall_the_pipeline(pilot_bundle):
    from runtime import Model, open_source, run
    from runtime.outputs.web import WebOutput

    port = free_tcp_port()
    web = WebOutput("127.0.0.1", port, log=None)
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads a byte
    box = {}
    with Model(str(pilot_bundle), backend="onnxruntime") as model, open_source("synthetic://road", 640, 360) as road:
        runner = threading.Thread(target=lambda: box.update(stats=run(model, road, [web], max_frames=300, log=None)))
        runner.start()
        reader = urllib.request.urlopen("http://127.0.0.1:%d/stream.mjpg" % port, timeout=10)
        got = reader.read(200000)  # a reading viewer gets JPEG frames meanwhile
        runner.join(120)
        assert not runner.is_alive(), "the pipeline stalled behind a viewer that does not read"
    reader.close()
    stalled.close()
    assert box["stats"].frames == 300  # every frame processed: counted, not timed
    assert got.count(b"Content-Type: image/jpeg") >= 2 and b"\xff\xd8" in got


@pytest.mark.parametrize("uri, message", [
    ("http://127.0.0.1", "give http://HOST:PORT"),
    ("http://:8080", "give http://HOST:PORT"),
    ("http://127.0.0.1:99999", "give http://HOST:PORT"),
    ("http://203.0.113.7:8080", "cannot serve http://203.0.113.7:8080"),  # not an address of this machine
])
def test_bad_web_outputs_are_one_line(pilot_bundle, uri, message):
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--max-frames", "1", "--no-display",
               "--output", uri)
    assert one_line_error(proc), proc.stderr
    assert message in proc.stderr


def test_several_networks_in_the_view_the_free_space_blended_and_each_one_in_the_stats(tmp_path):
    """PilotNet and the free-space network on the road: the streamed frames carry the free space's colours (the ego
    lane's green over the grey road), and /stats names both models, the free space and the other network's rate."""
    import cv2
    import numpy as np

    port = free_tcp_port()
    err = tmp_path / "err.txt"
    bundles = ["%s/tests/runtime/bundles/%s" % (ROOT, n) for n in ("pilotnet", "freespace")]
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "runtime", "run", *bundles, "--source", "synthetic://road",
                                 "--input-rate", "30", "--max-frames", "3000", "--no-display", "--quiet", "--output",
                                 "http://127.0.0.1:%d" % port], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                                stdout=subprocess.PIPE, stderr=stderr)
    try:
        base = "http://127.0.0.1:%d" % port
        wait_until(lambda: get(base + "/healthz")[0] == 200, "frames")
        wait_until(lambda: "free_space" in json.loads(get(base + "/stats")[1]), "the free space's first result")
        stats = json.loads(get(base + "/stats")[1])
        assert "pilotnet" in stats["model"] and "freespace" in stats["model"] and 0.2 < stats["free_space"] < 0.6
        assert stats["networks"]["freespace"] > 0
        with urllib.request.urlopen(base + "/stream.mjpg", timeout=10) as stream:
            data = b""
            while data.count(b"\xff\xd9") < 3:  # the third frame: drawn once the free space has a result
                data += stream.read(4096)
        jpeg = data[:data.rindex(b"\xff\xd9") + 2]
        view = cv2.imdecode(np.frombuffer(jpeg[jpeg.rindex(b"\xff\xd8"):], np.uint8), cv2.IMREAD_COLOR)
        ego = view[view.shape[0] * 3 // 4:, view.shape[1] * 2 // 5:view.shape[1] * 3 // 5].reshape(-1, 3).mean(axis=0)
        assert ego[1] - max(ego[0], ego[2]) > 20, ego  # green over grey: the ego lane's colour blended in
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert "Traceback" not in err.read_text()
