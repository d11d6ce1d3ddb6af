"""train's input pipeline on a folder of JPEG frames: the tf.data pipeline (files decoded in parallel as batches
are needed, nothing cached) against loading every image into memory first (what train did before), for
PilotNet's input. Each runs in a process of its own, so each peak RSS is its own.

    .venv/bin/python benchmarks/data_pipeline.py [--frames 20000] [--rounds 2] [--folder /tmp/frames]

The frames are procedural road views at 320x180 written as JPEG (quality 90) into --folder, once (kept for
the next run). Images/s is one pass over every frame, ready for the network, from the first image read to the
last batch; the rounds alternate the two, and the median counts. Writes benchmarks/results/data_pipeline.json.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def write_frames(folder, n):
    import cv2

    from runtime.sim import road

    os.makedirs(folder, exist_ok=True)
    have = len([f for f in os.listdir(folder) if f.endswith(".jpg")])
    for start in range(have, n, 500):
        frames, _ = road.sample_frames(min(500, n - start), 320, 180, seed=start)
        for i, frame in enumerate(frames):
            cv2.imwrite(os.path.join(folder, "%06d.jpg" % (start + i)), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print("wrote %d of %d frames" % (start + len(frames), n), file=sys.stderr, flush=True)


def measure(way, folder, n):
    """In this process: one pass of `way` over the first n frames; prints JSON."""
    from train import load_tensorflow, models

    tf = load_tensorflow()
    spec = models.get("pilotnet")
    files = [os.path.join(folder, "%06d.jpg" % i) for i in range(n)]
    started = time.perf_counter()
    if way == "in-memory":
        from train.inputs import prepare

        images = [tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False).numpy() for f in files]
        x = prepare(images, spec.preprocess(), spec.layout)
        seen = len(x)
    else:
        import numpy as np

        from train.pipeline import Split, build

        ds = build(Split(np.zeros(n, np.float32), files=files), spec.preprocess(), spec.layout, "steering", 2, 64,
                   training=True, augment=("flip", "brightness", "shift"), cache_mb=0)
        seen = sum(int(x.shape[0]) for x, _ in ds)
    seconds = time.perf_counter() - started
    print(json.dumps({"way": way, "images": seen, "seconds": seconds, "images_per_s": seen / seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--folder", default="/tmp/data_pipeline_frames")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "data_pipeline.json"))
    parser.add_argument("--measure", choices=("in-memory", "tf.data"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.folder, args.frames)
    write_frames(args.folder, args.frames)
    runs = {"in-memory": [], "tf.data": []}
    for r in range(args.rounds):
        for way in (("in-memory", "tf.data") if r % 2 == 0 else ("tf.data", "in-memory")):
            out = subprocess.run([sys.executable, __file__, "--measure", way, "--frames", str(args.frames),
                                  "--folder", args.folder], capture_output=True, text=True, check=True,
                                 env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3"))
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[way].append(result)
            print("%-9s %6d images  %7.0f images/s  peak RSS %6.0f MB" % (
                way, result["images"], result["images_per_s"], result["peak_rss_mb"]), flush=True)
    report = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "frames": args.frames,
              "frame": "320x180 JPEG q90 -> pilotnet 66x200 YUV", "ways": {}}
    for way, results in runs.items():
        report["ways"][way] = {"images_per_s": round(statistics.median(r["images_per_s"] for r in results), 1),
                               "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in results), 1)}
    mem, data = report["ways"]["in-memory"], report["ways"]["tf.data"]
    report["tf_data_over_in_memory"] = {"speed": round(data["images_per_s"] / mem["images_per_s"], 2),
                                        "peak_rss": round(data["peak_rss_mb"] / mem["peak_rss_mb"], 2)}
    print("tf.data / in-memory: %.2fx the images/s, %.2fx the peak RSS"
          % (report["tf_data_over_in_memory"]["speed"], report["tf_data_over_in_memory"]["peak_rss"]))
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
