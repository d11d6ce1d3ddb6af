"""The browser view under load: the pipeline's FPS with 0, 1 and 10 viewers of /stream.mjpg and with one viewer
that never reads, on synthetic://road and on frames in memory, against the FPS with no viewer (loopback).

    .venv/bin/python benchmarks/web_load.py [--bundle tests/runtime/bundles/pilotnet] [--frames 1500] [--rounds 3]

Viewers are curl reading the stream as fast as it comes. "10 viewers" is one curl process holding ten
connections: the server's whole load, with as little else on the board's cores as viewers on laptops would put
there. "10 viewer processes" is ten curl processes on the same cores: what it costs when the viewers themselves
run on the board. The stalled viewer is a socket that sends its request and never reads. Each configuration runs
once a round, in turn, --rounds times, in one process with one model; the figure is the median over the rounds
of each round's FPS against that round's FPS with no viewer. Target: 10 viewers keep >= 95% of the FPS with none.
On a VM whose speed drifts by 10-20% that ratio is coarse, so the CPU time of the view's own threads (server
and encoder, from /proc) is measured too, as a share of one core: what the view takes from the pipeline.
Writes benchmarks/results/web_load.json.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
CONFIGS = ("none", "1 viewer", "10 viewers", "10 viewer processes", "1 stalled")
CURL = ["curl", "--silent", "--no-progress-meter"]


def thread_cpu(thread):
    """A thread's CPU seconds so far (user + system), from /proc."""
    with open("/proc/self/task/%d/stat" % thread.native_id) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_viewers(config, url):
    """The curl processes that watch `url` in this configuration."""
    if config in ("1 viewer", "10 viewer processes"):
        return [subprocess.Popen(CURL + ["-o", os.devnull, url]) for _ in range(1 if config == "1 viewer" else 10)]
    if config == "10 viewers":  # one process, ten connections (distinct URLs, or curl waits to reuse one)
        targets = sum([["-o", os.devnull, "%s?viewer=%d" % (url, i)] for i in range(10)], [])
        return [subprocess.Popen(CURL + ["--parallel", "--parallel-immediate", "--parallel-max", "10"] + targets)]
    return []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    from runtime import Model, open_source, run
    from runtime.bench import MemoryFrames, network_sized
    from runtime.bundle import bundle_samples
    from runtime.outputs.web import WebOutput

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=os.path.join(os.path.dirname(HERE), "tests", "runtime", "bundles",
                                                         "pilotnet"))
    parser.add_argument("--frames", type=int, default=1500, help="on the road; 8x as many from memory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sources", nargs="+", default=["road", "memory"], choices=["road", "memory"])
    parser.add_argument("--json", default=os.path.join(HERE, "results", "web_load.json"))
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "frames": args.frames,
              "sources": {}}
    with Model(args.bundle, backend="onnxruntime") as model:
        memory = network_sized(model.bundle, bundle_samples(model.bundle))
        for name in args.sources:
            fps, cpu = {c: [] for c in CONFIGS}, {c: [] for c in CONFIGS}
            with open_source("synthetic://road", 640, 360) as warm:
                run(model, warm, [], max_frames=100, log=None)
            for _ in range(args.rounds):
                for config in CONFIGS:
                    port = free_port()
                    web = WebOutput("127.0.0.1", port, log=None)
                    url = "http://127.0.0.1:%d/stream.mjpg" % port
                    viewers, stalled = start_viewers(config, url), None
                    n = {"1 viewer": 1, "10 viewers": 10, "10 viewer processes": 10}.get(config, 0)
                    if config == "1 stalled":
                        stalled = socket.create_connection(("127.0.0.1", port))
                        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
                    deadline = time.time() + 10
                    while web.viewers < n + (stalled is not None) and time.time() < deadline:
                        time.sleep(0.05)
                    if name == "road":
                        source, inline = open_source("synthetic://road", 640, 360), False
                    else:
                        source, inline = MemoryFrames(memory), True
                    threads, after, close = (web.server, web.encoder), [], web.close

                    def measured_close(threads=threads, after=after, close=close):  # run() closes it: read first
                        if not after:
                            after.append((sum(thread_cpu(t) for t in threads), time.monotonic()))
                        close()

                    web.close = measured_close
                    before, started = sum(thread_cpu(t) for t in threads), time.monotonic()
                    with source:  # run() closes the output at the end: one run per configuration
                        frames = args.frames * (8 if inline else 1)  # frames in memory run 10x faster
                        stats = run(model, source, [web], max_frames=frames, log=None, capture_thread=not inline)
                    # the browser view's own threads (server and encoder): the CPU they took from the pipeline
                    cpu[config].append((after[0][0] - before) / (after[0][1] - started))
                    fps[config].append(stats.fps)
                    for v in viewers:
                        v.terminate()
                        v.wait()
                    if stalled is not None:
                        stalled.close()
                    web.close()
            # each round's configurations run back to back: their ratio to that round's "none" shares the VM's
            # drift between rounds (10-20% here), so the median of the ratios is the figure
            report["sources"][name] = {c: {"fps_median": round(statistics.median(v), 1),
                                           "fps_runs": [round(x, 1) for x in v],
                                           "of_none": round(statistics.median(
                                               [x / n for x, n in zip(v, fps["none"])]), 3),
                                           "view_cpu_share": round(statistics.median(cpu[c]), 4)}
                                       for c, v in fps.items()}
            for c in CONFIGS:
                r = report["sources"][name][c]
                print("%-7s %-19s %7.1f FPS  %.3fx the FPS with no viewer  view's threads %4.1f%% of a core  "
                      "(runs: %s)" % (name, c, r["fps_median"], r["of_none"], 100 * r["view_cpu_share"],
                                      ", ".join("%.0f" % x for x in r["fps_runs"])), flush=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
