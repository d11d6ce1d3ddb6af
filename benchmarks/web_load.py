"""The browser view under load: the pipeline's FPS while 1 or 10 viewers watch /stream.mjpg, or one viewer never
reads, against its FPS with nobody watching, on synthetic://road and on frames in memory (loopback).

    .venv/bin/python benchmarks/web_load.py [--bundle tests/runtime/bundles/pilotnet] [--pairs 6] [--window-s 3]

Measured in alternating windows of one continuous run, so that both sides of each comparison share the
machine's state: a run per source and configuration, the viewers connected in every other window (watched)
and gone in the others (not watched), starting and ending unwatched. Each watched window's FPS is divided by
the mean of the two unwatched windows around it, and the figure is the median of those ratios over --pairs
watched windows. (Runs of a few minutes apart on this VM drift by 10-20%, more than the effect; windows a
few seconds apart do not.) Each window's first half second, while viewers connect or leave, is not counted.

Viewers are curl reading the stream as fast as it comes. "10 viewers" is one curl process holding ten
connections: the server's whole load, with as little else on the board's cores as viewers on laptops would put
there. "10 viewer processes" is ten curl processes on the same cores: what it costs when the viewers
themselves run on the board. The stalled viewer is a socket that sends its request and never reads. The CPU
time of the view's own threads (server and encoder, from /proc) and of the viewers (RUSAGE_CHILDREN) is
measured too, as a share of one core over the watched windows. Target: 10 viewers keep >= 95% of the FPS
with none. Writes benchmarks/results/web_load.json.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
CONFIGS = ("1 viewer", "10 viewers", "10 viewer processes", "1 stalled")
CURL = ["curl", "--silent", "--no-progress-meter"]
SETTLE_S = 0.5


def thread_cpu(thread):
    """A thread's CPU seconds so far (user + system), from /proc."""
    with open("/proc/self/task/%d/stat" % thread.native_id) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Viewers:
    """The viewers of one configuration, connected by start() and gone after stop()."""

    def __init__(self, config, port):
        self.config, self.port = config, port
        self.url = "http://127.0.0.1:%d/stream.mjpg" % port
        self.processes, self.stalled = [], None
        self.count = {"1 viewer": 1, "10 viewers": 10, "10 viewer processes": 10, "1 stalled": 1}[config]

    def start(self):
        if self.config in ("1 viewer", "10 viewer processes"):
            self.processes = [subprocess.Popen(CURL + ["-o", os.devnull, self.url]) for _ in range(self.count)]
        elif self.config == "10 viewers":  # one process, ten connections (distinct URLs, or curl waits to reuse one)
            targets = sum([["-o", os.devnull, "%s?viewer=%d" % (self.url, i)] for i in range(10)], [])
            self.processes = [subprocess.Popen(CURL + ["--parallel", "--parallel-immediate", "--parallel-max", "10"]
                                               + targets)]
        else:
            self.stalled = socket.create_connection(("127.0.0.1", self.port))
            self.stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            self.stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def stop(self):
        for p in self.processes:
            p.terminate()
            p.wait()
        self.processes = []
        if self.stalled is not None:
            self.stalled.close()
            self.stalled = None


class Windows:
    """Drives one run from a thread of its own: alternating windows, viewers on in the odd ones; counts the
    frames of each window from the run's own statistics, then ends the run (as a closed window would)."""

    def __init__(self, web, config, pairs, window_s):
        self.web, self.config, self.pairs, self.window_s = web, config, pairs, window_s
        self.fps = {False: [], True: []}  # watched? -> each window's FPS
        self.view_cpu, self.viewer_cpu, self.watched_s = 0.0, 0.0, 0.0
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def _drive(self):
        web = self.web
        while web.stats is None or web.stats.frames < 50:  # bound and warm
            time.sleep(0.05)
        viewers = Viewers(self.config, web.port)
        threads = (web.server, web.encoder)
        for i in range(2 * self.pairs + 1):
            watched = i % 2 == 1
            children = children_cpu()
            if watched:
                viewers.start()
            time.sleep(SETTLE_S)
            frames, started, cpu = web.stats.frames, time.perf_counter(), sum(thread_cpu(t) for t in threads)
            time.sleep(self.window_s)
            elapsed = time.perf_counter() - started
            self.fps[watched].append((web.stats.frames - frames) / elapsed)
            if watched:
                self.view_cpu += sum(thread_cpu(t) for t in threads) - cpu
                self.watched_s += elapsed
                viewers.stop()
                self.viewer_cpu += children_cpu() - children  # its whole life, settling included
        web.closed_by_user = True  # run() stops after this frame

    def ratios(self):
        off, on = self.fps[False], self.fps[True]
        return [w / ((off[i] + off[i + 1]) / 2) for i, w in enumerate(on)]


def main():
    from runtime import Model, open_source, run
    from runtime.commands.bench import MemoryFrames, network_sized
    from runtime.bundle import bundle_samples
    from runtime.outputs.web import WebOutput

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=os.path.join(os.path.dirname(HERE), "tests", "runtime", "bundles",
                                                         "pilotnet"))
    parser.add_argument("--pairs", type=int, default=6, help="watched windows a configuration (default 6)")
    parser.add_argument("--window-s", type=float, default=3.0, help="seconds a window is counted (default 3)")
    parser.add_argument("--sources", nargs="+", default=["road", "memory"], choices=["road", "memory"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--json", default=os.path.join(HERE, "results", "web_load.json"))
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "pairs": args.pairs,
              "window_s": args.window_s, "sources": {}}
    with Model(args.bundle, backend="onnxruntime") as model:
        memory = network_sized(model.bundle, bundle_samples(model.bundle))
        for name in args.sources:
            rows = report["sources"][name] = {}
            for config in args.configs:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                web = WebOutput("127.0.0.1", port, log=None)
                windows = Windows(web, config, args.pairs, args.window_s)
                if name == "road":
                    source, inline = open_source("synthetic://road", 640, 360), False
                else:
                    source, inline = MemoryFrames(memory), True
                windows.thread.start()
                with source:
                    run(model, source, [web], log=None, capture_thread=not inline)
                windows.thread.join()
                ratios = windows.ratios()
                rows[config] = {"of_unwatched": round(statistics.median(ratios), 3),
                                "ratios": [round(r, 3) for r in ratios],
                                "fps_unwatched": round(statistics.median(windows.fps[False]), 1),
                                "fps_watched": round(statistics.median(windows.fps[True]), 1),
                                "view_cpu_share": round(windows.view_cpu / windows.watched_s, 4),
                                "viewers_cpu_share": round(windows.viewer_cpu / windows.watched_s, 4)}
                r = rows[config]
                print("%-7s %-19s %.3fx the FPS unwatched (%.1f against %.1f)  view's threads %4.1f%% of a core, "
                      "viewers %4.1f%%  (ratios: %s)" % (
                          name, config, r["of_unwatched"], r["fps_watched"], r["fps_unwatched"],
                          100 * r["view_cpu_share"], 100 * r["viewers_cpu_share"],
                          ", ".join("%.2f" % x for x in ratios)), flush=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
