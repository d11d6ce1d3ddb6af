"""Soak: many frames of synthetic://road through the threaded pipeline with outputs (JSON lines to a file,
the overlay drawn for every frame), sampling resident memory, open files, latency and the status line's cost
as it goes: all must stay flat.

    .venv/bin/python benchmarks/soak.py [--frames 100000] [--every 5000] [--bundle tests/runtime/bundles/pilotnet]
                                        [--size 320x180] [--prefill-days 7] [--json benchmarks/results/soak.json]

Each sample: frames so far, resident memory (VmRSS), open file descriptors, latency p50/p95/max over the frames
since the last sample, FPS over them, and the time the run's 5 s status line takes to make (the median of 20).
At the end: the RSS slope (a least-squares line through the samples after the first, in MB per 100,000
frames), the growth of open files, and the latency and status-line time of the last window against the first.
--prefill-days D first fills the run's statistics with D days of 30 FPS latencies, so that the status line is
timed as a months-long service would make it (issue 29: 0.75 s a line at 7 days before the statistics were
bounded). --control adds the control link (to a loopback port) and counts its watchdog's neutral commands: a
status line that holds the loop trips it; with it the status line is timed only after the run. To compare
with a revision before issue 29, copy this file into a worktree of it and run it there with the same options.
Run by hand (minutes); docs/reliability.md quotes its figures.
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def open_files():
    return len(os.listdir("/proc/self/fd"))


def status_line(stats):
    """What run() prints every 5 s (a revision before issue 29 has no recent=)."""
    try:
        return stats.summary(recent=True)
    except TypeError:
        return stats.summary()


def status_line_ms(stats, repeats=20, budget_s=2.0):
    """The median time to make the status line over `repeats` (fewer once budget_s is spent: a slow one)."""
    times, spent = [], 0.0
    while len(times) < repeats and spent < budget_s:
        t = time.perf_counter()
        status_line(stats)
        times.append(time.perf_counter() - t)
        spent += times[-1]
    return float(np.median(times)) * 1000.0


def rss_slope(samples):
    """MB per 100,000 frames: the least-squares slope through the samples after the first (the warm-up)."""
    later = samples[1:] if len(samples) > 2 else samples
    if len(later) < 2:
        return 0.0
    frames = np.array([s["frames"] for s in later], float)
    rss = np.array([s["rss_mb"] for s in later], float)
    return float(np.polyfit(frames, rss, 1)[0] * 100000)


def main():
    from runtime import Model, open_output, open_outputs, open_source, run
    from runtime.outputs import Output
    from runtime.vehicle.sender import ControlSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100000)
    parser.add_argument("--every", type=int, default=5000)
    parser.add_argument("--bundle", default=os.path.join(os.path.dirname(HERE), "tests", "runtime", "bundles",
                                                         "pilotnet"))
    parser.add_argument("--size", default="320x180", help="frame size from synthetic://road")
    parser.add_argument("--prefill-days", type=float, default=0.0,
                        help="fill the statistics with this many days of 30 FPS latencies first")
    parser.add_argument("--control", action="store_true",
                        help="also send each result over the control link to a UDP port on the loopback, and count "
                             "its watchdog's neutral commands (each a result late by 3 frame periods)")
    parser.add_argument("--rate", type=float, default=None, help="pace synthetic://road like a camera (FPS)")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "soak.json"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    samples = []

    class Sampler(Output):
        """Wants the overlay (so it is drawn every frame) and records a sample every --every frames."""

        wants_overlay = True

        def __init__(self):
            self.latency, self.t, self.stats = [], time.perf_counter(), None

        def bind(self, model, source, stats):
            self.stats = stats
            prefill = int(args.prefill_days * 86400 * 30)
            rng = np.random.RandomState(0)
            for start in range(0, prefill, 1000000):  # as if the run had been going for days
                batch = rng.lognormal(1.0, 0.3, min(1000000, prefill - start))
                if hasattr(stats, "latency"):
                    stats.latency.add_many(batch)
                    stats.recent.add_many(batch)
                else:  # a revision before issue 29 (this file copied into its worktree): every latency in one array
                    stats.latency_ms.frombytes(batch.tobytes())
                stats.frames += batch.size

        def write(self, frame, result, annotated=None):
            self.latency.append(frame.latency_ms)
            if len(self.latency) == args.every:
                now = time.perf_counter()
                lat = np.asarray(self.latency)
                samples.append({"frames": (len(samples) + 1) * args.every, "rss_mb": round(rss_mb(), 1),
                                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3),
                                               "p95": round(float(np.percentile(lat, 95)), 3),
                                               "max": round(float(lat.max()), 3)},
                                "fps": round(args.every / (now - self.t), 1), "open_files": open_files(),
                                "status_line_ms": None if args.control else round(status_line_ms(self.stats), 4)})
                print("%7d frames  %6.1f MB  %3d files  latency p50 %.2f p95 %.2f max %.1f ms  %6.1f FPS  status line "
                      "%s ms" % (samples[-1]["frames"], samples[-1]["rss_mb"], samples[-1]["open_files"],
                                 *samples[-1]["latency_ms"].values(), samples[-1]["fps"],
                                 samples[-1]["status_line_ms"]), flush=True)
                self.latency, self.t = [], now

    with tempfile.TemporaryDirectory() as tmp, Model(args.bundle, backend="onnxruntime") as model, \
            open_source("synthetic://road", width, height, args.rate) as road:
        outputs = open_outputs(jsonl=os.path.join(tmp, "soak.jsonl")) + [Sampler()]
        if args.control:
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the vehicle: bound, never read
            sink.bind(("127.0.0.1", 0))
            control = open_output("udp://127.0.0.1:%d" % sink.getsockname()[1], control=ControlSettings())
            outputs.append(control)
        started = time.perf_counter()
        with open(os.devnull, "w") as devnull:  # the 5 s status line is made as a service makes it, and dropped
            stats = run(model, road, outputs, max_frames=args.frames, log=devnull)
        seconds = time.perf_counter() - started
        lines = sum(1 for _ in open(os.path.join(tmp, "soak.jsonl")))
    status_end = status_line_ms(stats)  # after the run: with --control, timing it during the run would stall it
    first, last = samples[0], samples[-1]
    report = {"bundle": os.path.basename(os.path.abspath(args.bundle)), "frames": stats.frames, "jsonl_lines": lines,
              "size": args.size, "seconds": round(seconds, 1), "summary": stats.summary(), "samples": samples,
              "prefill_days": args.prefill_days, "rate": args.rate,
              "control_watchdog_neutrals": control.neutral_events if args.control else None,
              "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
              "rss_slope_mb_per_100k_frames": round(rss_slope(samples), 3),
              "open_files_growth": last["open_files"] - first["open_files"],
              "status_line_ms": {"first": first["status_line_ms"], "last": last["status_line_ms"],
                                 "end": round(status_end, 4)},
              "latency_p50_last_over_first": round(last["latency_ms"]["p50"] / first["latency_ms"]["p50"], 3),
              "date": time.strftime("%Y-%m-%d")}
    print(stats.summary())
    if args.control:
        print("control link: %d watchdog neutral(s)" % control.neutral_events)
    print("%d frames in %.0f s; resident memory %.1f -> %.1f MB (%+.1f MB after the first %d frames; slope %+.3f MB "
          "per 100,000 frames); open files %d -> %d; latency p50 %.2f -> %.2f ms (%.2fx); status line %s -> %s ms, "
          "%.3f ms at the end" % (stats.frames, seconds, first["rss_mb"], last["rss_mb"], report["rss_growth_mb"],
                                  args.every, report["rss_slope_mb_per_100k_frames"], first["open_files"],
                                  last["open_files"], first["latency_ms"]["p50"], last["latency_ms"]["p50"],
                                  report["latency_p50_last_over_first"], first["status_line_ms"],
                                  last["status_line_ms"], status_end))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
