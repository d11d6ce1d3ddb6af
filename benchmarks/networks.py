"""Several networks on one stream (issue 32): PilotNet alone, and beside the detector and the free-space network,
alternating in one process on the same live source, --rounds times.

    .venv/bin/python benchmarks/networks.py [--size 1280x720] [--rate 30] [--seconds 20] [--rounds 3] [--json FILE]

The source is road frames at --size rendered once and held in memory, handed over at --rate frames a second as a
camera delivers them (live: the newest frame wins; each copied into a buffer as a driver writes it), so that no
renderer or decoder takes the cores a camera's hardware would spare. Each run:
PilotNet's results a second and latency p50/p95 (capture -> steering), and with the others each one's results a
second. Printed per round and as medians: PilotNet's rate beside the others over its rate alone (issue 32's
target: at least 0.8), its p95 over its p95 alone (at most 1.5), and the results a second of the three together
against one after another (each network's time alone, summed: the rate a single loop running all three would
have, times three). The bundles are tests/runtime/bundles/{pilotnet,detector,freespace}.
"""

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

BUNDLES = [os.path.join(ROOT, "tests", "runtime", "bundles", n) for n in ("pilotnet", "detector", "freespace")]


def camera(images, rate):
    """The frames in memory as a live camera at `rate` frames a second."""
    from runtime.commands.bench import MemoryFrames

    class Camera(MemoryFrames):
        live = True

        def _images(self):
            due = time.perf_counter()
            for image, truth in super()._images():
                due += 1.0 / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    due = time.perf_counter()  # late: a camera does not catch up
                yield image, truth

    return Camera(images, "memory://camera")


def one_run(bundles, images, rate, seconds):
    """{fps, p50, p95, rates: {name: results a second}} of one run of these bundles on the paced frames."""
    from runtime.model import Model
    from runtime.networks import Networks
    from runtime.pipeline import run

    make = (lambda: Model(bundles[0])) if len(bundles) == 1 else (lambda: Networks(bundles))
    with make() as model, camera(images, rate) as source:
        run(model, source, max_frames=int(rate), log=None)  # warm-up: sessions made, threads running
        before = model.counts() if len(bundles) > 1 else None
        stats = run(model, source, seconds=seconds, log=None)
        out = {"fps": stats.fps, "p50": stats.percentile(50), "p95": stats.percentile(95), "rates": {}}
        if len(bundles) > 1:
            out["rates"] = {name: r for name, (r, _) in model.rates(stats.end - stats.start, before).items()}
    return out


def alone_ms(bundle, images):
    """One network's preprocessing, inference and postprocessing a frame, alone (ms): its share of a loop that
    ran all three one after another."""
    from runtime.model import Model

    frames = len(images)
    with Model(bundle) as model:
        model(images[0])
        start = time.perf_counter()
        for image in images:
            model(image)
        return (time.perf_counter() - start) / frames * 1000.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    from runtime.sim import obstacles

    images = [im for im, _, _, _ in zip(*obstacles.sample_detection_frames(30, size[0], size[1], seed=5))]
    rounds = []
    for i in range(args.rounds):
        alone = one_run(BUNDLES[:1], images, args.rate, args.seconds)
        together = one_run(BUNDLES, images, args.rate, args.seconds)
        r = {"alone": alone, "together": together, "rate_ratio": together["fps"] / alone["fps"],
             "p95_ratio": together["p95"] / alone["p95"]}
        rounds.append(r)
        print("round %d: PilotNet alone %.1f/s p95 %.2f ms; beside the others %.1f/s p95 %.2f ms (rate %.2fx, p95 "
              "%.2fx); %s" % (i + 1, alone["fps"], alone["p95"], together["fps"], together["p95"], r["rate_ratio"],
                              r["p95_ratio"], ", ".join("%s %.1f/s" % kv for kv in together["rates"].items())))
    per_frame = sum(alone_ms(b, images) for b in BUNDLES)
    sequential = 3 * min(args.rate, 1000.0 / per_frame)
    total = [r["together"]["fps"] + sum(r["together"]["rates"].values()) for r in rounds]
    summary = {"size": args.size, "rate": args.rate, "seconds": args.seconds, "rounds": rounds,
               "rate_ratio_median": statistics.median(r["rate_ratio"] for r in rounds),
               "p95_ratio_median": statistics.median(r["p95_ratio"] for r in rounds),
               "together_results_per_s_median": statistics.median(total),
               "one_after_another_ms_per_frame": per_frame, "one_after_another_results_per_s": sequential}
    print("medians: PilotNet's rate %.2fx of alone (target >= 0.8), p95 %.2fx (target <= 1.5); the three together "
          "%.1f results/s, one after another %.1f (%.1f ms a frame for all three)"
          % (summary["rate_ratio_median"], summary["p95_ratio_median"], summary["together_results_per_s_median"],
             sequential, per_frame))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
