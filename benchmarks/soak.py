"""Soak: many frames of synthetic://road through the threaded pipeline with outputs (JSON lines to a file,
the overlay drawn for every frame), sampling resident memory and latency as it goes: both must stay flat.

    .venv/bin/python benchmarks/soak.py [--frames 100000] [--every 5000] [--bundle tests/runtime/bundles/pilotnet]
                                        [--size 320x180] [--json benchmarks/results/soak.json]

Each sample: frames so far, resident memory (VmRSS), latency p50/p95/max over the frames since the last sample,
and FPS over them. At the end: memory growth from the first sample (after warm-up) to the last, and the
latency of the last window against the first. Run by hand (minutes); the README quotes its figures.
"""

import argparse
import json
import os
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


def main():
    from runtime import Model, open_outputs, open_source, run
    from runtime.outputs import Output

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100000)
    parser.add_argument("--every", type=int, default=5000)
    parser.add_argument("--bundle", default=os.path.join(os.path.dirname(HERE), "tests", "runtime", "bundles",
                                                         "pilotnet"))
    parser.add_argument("--size", default="320x180", help="frame size from synthetic://road")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "soak.json"))
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    samples = []

    class Sampler(Output):
        """Wants the overlay (so it is drawn every frame) and records a sample every --every frames."""

        wants_overlay = True

        def __init__(self):
            self.latency, self.t = [], time.perf_counter()

        def write(self, frame, result, annotated=None):
            self.latency.append(frame.latency_ms)
            if len(self.latency) == args.every:
                now = time.perf_counter()
                lat = np.asarray(self.latency)
                samples.append({"frames": (len(samples) + 1) * args.every, "rss_mb": round(rss_mb(), 1),
                                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3),
                                               "p95": round(float(np.percentile(lat, 95)), 3),
                                               "max": round(float(lat.max()), 3)},
                                "fps": round(args.every / (now - self.t), 1)})
                print("%7d frames  %6.1f MB  latency p50 %.2f p95 %.2f max %.1f ms  %6.1f FPS"
                      % (samples[-1]["frames"], samples[-1]["rss_mb"], *samples[-1]["latency_ms"].values(),
                         samples[-1]["fps"]), flush=True)
                self.latency, self.t = [], now

    with tempfile.TemporaryDirectory() as tmp, Model(args.bundle, backend="onnxruntime") as model, \
            open_source("synthetic://road", width, height) as road:
        outputs = open_outputs(jsonl=os.path.join(tmp, "soak.jsonl")) + [Sampler()]
        started = time.perf_counter()
        stats = run(model, road, outputs, max_frames=args.frames, log=None)
        seconds = time.perf_counter() - started
        lines = sum(1 for _ in open(os.path.join(tmp, "soak.jsonl")))
    first, last = samples[0], samples[-1]
    report = {"bundle": os.path.basename(os.path.abspath(args.bundle)), "frames": stats.frames, "jsonl_lines": lines,
              "size": args.size, "seconds": round(seconds, 1), "summary": stats.summary(), "samples": samples,
              "rss_growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
              "latency_p50_last_over_first": round(last["latency_ms"]["p50"] / first["latency_ms"]["p50"], 3),
              "date": time.strftime("%Y-%m-%d")}
    print(stats.summary())
    print("%d frames in %.0f s; resident memory %.1f -> %.1f MB (%+.1f MB after the first %d frames); latency p50 "
          "%.2f -> %.2f ms (%.2fx)" % (stats.frames, seconds, first["rss_mb"], last["rss_mb"],
                                       report["rss_growth_mb"], args.every, first["latency_ms"]["p50"],
                                       last["latency_ms"]["p50"], report["latency_p50_last_over_first"]))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
