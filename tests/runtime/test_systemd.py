"""systemd's notify protocol (runtime/systemd.py): a real AF_UNIX datagram socket stands in for systemd, at a path
and in the abstract namespace; the datagrams' contents, the watchdog's rate (on a clock the test moves), a
WATCHDOG_PID of another process, a socket that is not there; and `python -m runtime vehicle` under it for real."""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from runtime.systemd import Watchdog
from tests.conftest import ROOT, free_udp_port


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Systemd:
    """The notify socket's receiving end: every datagram, as text."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0)

    def received(self, wait=0.0):
        """Every datagram waiting now (or within wait seconds for the first)."""
        got, end = [], time.monotonic() + wait
        while True:
            try:
                got.append(self.sock.recv(4096).decode("utf-8"))
            except BlockingIOError:
                if got or time.monotonic() >= end:
                    return got
                time.sleep(0.01)

    def listen(self):
        """Read in a thread of its own from now on, as systemd does: the kernel queues only
        /proc/sys/net/unix/max_dgram_qlen datagrams (10 by default), and a sender then gets EAGAIN."""
        self.heard, self.timed, self.stop = [], [], threading.Event()

        def read():
            while not self.stop.is_set():
                got = self.received(0.05)
                self.heard.extend(got)
                self.timed.extend((time.monotonic(), text) for text in got)

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()
        return self

    def close(self):
        if getattr(self, "thread", None) is not None:
            self.stop.set()
            self.thread.join(2.0)
            self.heard.extend(self.received())
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def systemd(request, tmp_path):
    """(the receiving socket, NOTIFY_SOCKET for it)."""
    if request.param == "path":
        address = str(tmp_path / "notify")
        env = address
    else:
        name = "edge-runtime-test-%s" % uuid.uuid4().hex
        address, env = "\0" + name, "@" + name
    receiver = Systemd(address)
    yield receiver, env
    receiver.close()


def watchdog(env, usec="200000", pid=None):
    environ = {"NOTIFY_SOCKET": env, "WATCHDOG_USEC": usec, "WATCHDOG_PID": str(os.getpid() if pid is None else pid)}
    dog = Watchdog.from_env(environ)
    dog.clock = Clock()
    return dog


def test_ready_once_then_watchdog_every_half_period(systemd):
    receiver, env = systemd
    dog = watchdog(env)  # WATCHDOG_USEC 0.2 s: WATCHDOG=1 every 0.1 s
    dog.alive()
    assert receiver.received() == []  # nothing before READY=1: systemd would arm its watchdog during start-up
    dog.ready("listening")
    dog.ready("again")  # once
    assert receiver.received() == ["READY=1\nSTATUS=listening\n"]
    for _ in range(1000):  # 1 s in steps of 1 ms: 10 due, the other calls send nothing
        dog.clock.now += 0.001
        dog.alive()
    got = receiver.received()
    assert got == ["WATCHDOG=1\n"] * len(got) and len(got) in (9, 10)
    dog.stopping()
    assert receiver.received() == ["STOPPING=1\n"]
    dog.close()
    dog.alive()
    dog.stopping()
    assert receiver.received() == []


def test_status_is_rate_limited_and_the_newest_waits_for_the_next_datagram(systemd):
    receiver, env = systemd
    dog = watchdog(env, usec="10000000")  # a ping every 5 s
    dog.ready()
    dog.status("1 frame")
    dog.status("2 frames")  # within a second: waits
    assert receiver.received() == ["READY=1\n", "STATUS=1 frame\n"]
    dog.clock.now += 0.5
    dog.alive()
    assert receiver.received() == []
    dog.clock.now += 0.6  # the second is over: the waiting status goes, with a WATCHDOG=1
    dog.alive()
    assert receiver.received() == ["WATCHDOG=1\nSTATUS=2 frames\n"]
    dog.status("a\nb")  # one line
    dog.clock.now += 1.1
    dog.alive()
    assert receiver.received() == ["WATCHDOG=1\nSTATUS=a b\n"]


def test_a_status_before_ready_goes_with_it(systemd):
    receiver, env = systemd
    dog = watchdog(env)
    dog.status("loading")
    dog.status("building the engine")  # within the second: waits for READY=1
    dog.ready()
    assert receiver.received() == ["STATUS=loading\n", "READY=1\nSTATUS=building the engine\n"]


def test_a_watchdog_meant_for_another_process_is_not_fed(systemd):
    receiver, env = systemd
    dog = watchdog(env, pid=os.getpid() + 1)  # WATCHDOG_PID: a parent's, inherited
    dog.ready()
    for _ in range(20):
        dog.clock.now += 1
        dog.alive()
    assert receiver.received() == ["READY=1\n"]


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1"},
                                     {"NOTIFY_SOCKET": "relative/notify", "WATCHDOG_USEC": "1"}])
def test_outside_systemd_it_does_nothing(environ, capfd):
    dog = Watchdog.from_env(environ)
    assert not dog.enabled
    dog.ready("x")
    dog.alive()
    dog.status("y")
    dog.stopping()
    dog.close()
    assert capfd.readouterr() == ("", "")


def test_a_socket_that_is_not_there_is_one_line_then_silence(tmp_path, capfd):
    dog = watchdog(str(tmp_path / "gone"), usec="2")
    dog.ready()
    for _ in range(50):
        dog.clock.now += 1
        dog.alive()
    dog.stopping()
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "cannot notify systemd at %s" % (tmp_path / "gone") in err, err


def test_a_refused_ready_is_said_again(tmp_path):
    address = str(tmp_path / "late")
    dog = watchdog(address, usec="4000000")
    dog.ready()  # nobody listens yet
    receiver = Systemd(address)
    dog.clock.now += 0.2
    dog.alive()  # retried within half a second, not after the whole 2 s
    dog.clock.now += 0.4
    dog.alive()
    assert receiver.received() == ["READY=1\nWATCHDOG=1\n"]
    dog.clock.now += 2
    dog.alive()
    assert receiver.received() == ["WATCHDOG=1\n"]
    receiver.close()


def test_the_vehicle_command_says_ready_then_feeds_the_watchdog(tmp_path):
    """`python -m runtime vehicle` as a Type=notify unit would run it: READY=1 once it listens, WATCHDOG=1 from its
    loop every WATCHDOG_USEC/2, STOPPING=1 at the end."""
    receiver = Systemd(str(tmp_path / "notify")).listen()
    env = dict(os.environ, PYTHONPATH=ROOT, NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="200000")
    proc = subprocess.run([sys.executable, "-m", "runtime", "vehicle", "--listen",
                           "udp://127.0.0.1:%d" % free_udp_port(), "--seconds", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    receiver.close()
    got = receiver.heard
    assert proc.returncode == 2 and "nothing was accepted" in proc.stderr, proc.stderr
    assert got[0].startswith("READY=1\nSTATUS=listening on udp://127.0.0.1:"), got
    assert got[-1] == "STOPPING=1\n" and 6 <= got.count("WATCHDOG=1\n") <= 11 and len(got) == got.count(
        "WATCHDOG=1\n") + 2, got


def test_runtime_run_says_ready_feeds_the_watchdog_and_reports_its_status(pilot_bundle, tmp_path):
    """`python -m runtime run` as jetson_setup.sh's Type=notify unit runs it: READY=1 with what it runs, WATCHDOG=1
    from its loop, the status line as STATUS=, STOPPING=1 at the end."""
    receiver = Systemd(str(tmp_path / "notify")).listen()
    env = dict(os.environ, PYTHONPATH=ROOT, NOTIFY_SOCKET=str(tmp_path / "notify"), WATCHDOG_USEC="200000")
    proc = subprocess.run([sys.executable, "-m", "runtime", "run", str(pilot_bundle), "--source", "synthetic://road",
                           "--input-rate", "30", "--max-frames", "45", "--no-display", "--quiet",
                           "--backend", "onnxruntime"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    receiver.close()
    got = receiver.heard
    assert proc.returncode == 0, proc.stderr
    assert got[0].startswith("READY=1\nSTATUS=%s on synthetic://road" % pilot_bundle), got
    assert got[-1] == "STOPPING=1\n" and got.count("WATCHDOG=1\n") >= 5, got  # 1.5 s of frames, a ping due each 0.1 s


def test_a_loop_that_hangs_stops_feeding_the_watchdog(tmp_path, monkeypatch):
    """The point of the watchdog: while an output blocks the loop (a hung device, a stalled disk), no WATCHDOG=1
    goes out, so systemd's WatchdogSec= runs out and the service is restarted."""
    from runtime import Output, open_source, run

    receiver = Systemd(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    arrivals = []

    class Hangs(Output):
        def write(self, frame, result, annotated=None):
            arrivals.extend((time.monotonic(), text) for text in receiver.received())
            if frame.index == 10:
                time.sleep(1.0)

    with open_source("synthetic://road", 64, 36, rate=30) as road:
        stats = run(None, road, [Hangs()], max_frames=20, log=None)
    arrivals.extend((time.monotonic(), text) for text in receiver.received())
    receiver.close()
    assert stats.frames == 20
    pings = [t for t, text in arrivals if text == "WATCHDOG=1\n"]
    assert len(pings) >= 5
    assert max(b - a for a, b in zip(pings, pings[1:])) >= 0.9  # silent while the loop hung


def test_a_capture_stuck_inside_its_source_stops_feeding_the_watchdog(tmp_path, monkeypatch):
    """Found by attacking: the loop fed the watchdog every 0.1 s while waiting for a frame, so a capture thread
    stuck for good inside its source (an opener blocked in native code) was never restarted. Now it stops once
    no frame has come for starved_after(source) (60 s, or the source's own timeouts; 0.5 s here)."""
    import threading

    from runtime import pipeline
    from runtime.sources.base import Source

    monkeypatch.setattr(pipeline, "STARVED_S", 0.5)
    receiver = Systemd(str(tmp_path / "notify")).listen()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    stuck = threading.Event()

    class Stuck(Source):
        uri, live, fps = "stuck://", False, 0.0

        def _images(self):
            for _ in range(3):
                yield np.zeros((36, 64, 3), np.uint8), None
            stuck.wait(30)  # blocked, as in native code
            return

    source = Stuck()
    stats = pipeline.run(None, source, [], log=None, seconds=2.0)
    stuck.set()
    receiver.close()
    ready = next(t for t, text in receiver.timed if text.startswith("READY=1"))
    pings = [t for t, text in receiver.timed if text == "WATCHDOG=1\n"]
    assert stats.frames == 3 and pings
    assert pings[-1] - ready < 1.2  # fed for 0.5 s after the last frame, then none in the rest of the 2 s run
