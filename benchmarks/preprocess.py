"""The runtime's preprocessing, this tree's against another revision's, side by side in one run.

    .venv/bin/python benchmarks/preprocess.py [--against HEAD~1] [--sizes 1280x720 1920x1080] [--frames 200]
                                              [--repeats 7] [--json FILE]

For each frame size and each of the zoo's preprocessing contracts (PilotNet's crop + area resize + YUV, the
CIFAR CNN's RGB, the MNIST CNN's gray, the 150x150 binary classifier's RGB), both Preprocessors prepare the
same raw frames (rendered road frames at that size) into their own buffers, in one thread with OpenCV's own
threads limited to one (as in the runtime's capture thread on a loaded board). The two alternate, repeat by
repeat, and the best repeat of each counts. Prints microseconds per frame, the ratio, and how many of the
network's input values differ between the two (and by how much at most); --json writes the same.
The revision's runtime/resize.py, where it has one, comes with its preprocess.py.

    .venv/bin/python benchmarks/preprocess.py --live [--against REV] [--seconds 20] [--rounds 3] [--json FILE]

--live: PilotNet's bundle on a live 1280x720 GStreamer source at 30 FPS (videotestsrc is-live=true, as a
camera hands frames over), run by `runtime.pipeline.run` with its capture thread, in the interpreter whose
OpenCV has GStreamer (tests/runtime/gstreamer.py's board-like venv), once with the revision's runtime (a
`git archive` of it) and once with this tree's, alternating for --rounds. Per run: the process's CPU
milliseconds per frame (getrusage, over the measured frames only; the source's own GStreamer threads
included, the same for both) and the pipeline's latency p50/p95 (capture to result); the medians of the
rounds count.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

CONTRACTS = ("pilotnet", "cifar_cnn", "mnist_cnn", "binary_cnn")  # their preprocessing: train/models.py


def _module_at(revision, name):
    """runtime/NAME.py as it was at a git revision, as a module of its own (None where it had none)."""
    proc = subprocess.run(["git", "show", "%s:runtime/%s.py" % (revision, name)], cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        return None
    module = types.ModuleType("runtime.%s_at_%s" % (name, revision.replace("~", "_").replace("^", "_")))
    module.__package__ = "runtime"
    exec(compile(proc.stdout, "%s:runtime/%s.py" % (revision, name), "exec"), module.__dict__)
    return module


def preprocessor_at(revision):
    """runtime.preprocess.Preprocessor as it was at a git revision (its own module, beside this tree's), with
    that revision's runtime/resize.py in place of this tree's while it is imported."""
    import runtime.resize

    resize = _module_at(revision, "resize")
    sys.modules["runtime.resize"] = resize or runtime.resize
    try:
        return _module_at(revision, "preprocess").Preprocessor
    finally:
        sys.modules["runtime.resize"] = runtime.resize


def per_frame_us(prep, frames):
    t0 = time.perf_counter()
    for frame in frames:
        prep(frame)
    return (time.perf_counter() - t0) / len(frames) * 1e6


LIVE = ("videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=1 max-buffers=1 sync=false")
LIVE_RUN = """
import json, resource, sys
from runtime.model import Model
from runtime.pipeline import run
from runtime.sources import open_source
with Model(sys.argv[1], backend="onnxruntime") as model, open_source("gst://" + sys.argv[2]) as source:
    run(model, source, max_frames=60, log=None)  # warm-up: the session made, the source running
    before = resource.getrusage(resource.RUSAGE_SELF)
    stats = run(model, source, seconds=float(sys.argv[3]), log=None)
    after = resource.getrusage(resource.RUSAGE_SELF)
cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000.0
print("LIVE " + json.dumps({"frames": stats.frames, "fps": stats.fps, "cpu_ms_per_frame": cpu / stats.frames,
                            "latency_p50_ms": stats.percentile(50), "latency_p95_ms": stats.percentile(95),
                            "preprocess_ms": stats.stages()["preprocess"]}))
"""


def live(args):
    """PilotNet on a live 720p source at 30 FPS: CPU ms a frame and latency, the revision's runtime against this
    tree's, in the interpreter whose OpenCV has GStreamer."""
    import statistics
    import tempfile

    sys.path.insert(0, ROOT)
    from tests.runtime.gstreamer import system_python

    python, bundle = system_python(), os.path.join(ROOT, "tests", "runtime", "bundles", "pilotnet")
    with tempfile.TemporaryDirectory() as then:
        archive = subprocess.run(["git", "archive", args.against, "runtime"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", then], input=archive, check=True)
        runs = {args.against: [], "this tree": []}
        for _ in range(args.rounds):
            for key, root in ((args.against, then), ("this tree", ROOT)):
                proc = subprocess.run([python, "-c", LIVE_RUN, bundle, LIVE, str(args.seconds)], cwd=root,
                                      capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("LIVE ")]
                if not line:
                    raise SystemExit("%s: %s" % (key, proc.stderr[-2000:]))
                runs[key].append(json.loads(line[0][5:]))
                print(key, runs[key][-1], flush=True)
    medians = {key: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]} for key, rs in runs.items()}
    for key, m in medians.items():
        print("%-10s %5.1f FPS  CPU %.2f ms/frame  latency p50 %.2f ms p95 %.2f ms  preprocess %.2f ms"
              % (key, m["fps"], m["cpu_ms_per_frame"], m["latency_p50_ms"], m["latency_p95_ms"], m["preprocess_ms"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"against": args.against, "source": LIVE, "seconds": args.seconds, "medians": medians,
                       "runs": runs}, f, indent=2)


def compare(name, other, frames, repeats):
    """One contract on one size of frames: the best microseconds per frame of each, and how their tensors differ."""
    import numpy as np

    from runtime.preprocess import Preprocessor
    from train import models  # the specs only: no TensorFlow until a model is built

    zoo = models.get(name)
    pre, spec = zoo.preprocess(), {"layout": zoo.layout, "shape": [None] + list(zoo.input_shape)}
    pair = {"then": other(pre, spec), "now": Preprocessor(pre, spec)}
    best = {"then": float("inf"), "now": float("inf")}
    for _ in range(repeats):
        for key, prep in pair.items():
            best[key] = min(best[key], per_frame_us(prep, frames))
    diff = np.abs(pair["then"].batch(frames[:20]) - pair["now"].batch(frames[:20]))
    return {"contract": name, "then_us": round(best["then"], 1), "now_us": round(best["now"], 1),
            "ratio": round(best["then"] / best["now"], 2), "values_differing": float(np.mean(diff > 1e-4)),
            "largest_difference": float(diff.max())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--sizes", nargs="+", default=["1280x720", "1920x1080"], help="raw frame sizes WxH")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--live", action="store_true", help="PilotNet on a live 720p GStreamer source instead")
    parser.add_argument("--seconds", type=float, default=20.0, help="--live: seconds measured per run")
    parser.add_argument("--rounds", type=int, default=3, help="--live: runs of each, alternating")
    args = parser.parse_args()
    if args.live:
        return live(args)
    import cv2

    from runtime.sim import road

    cv2.setNumThreads(1)
    other = preprocessor_at(args.against)
    rows = []
    print("best of %d interleaved repeats of %d frames; microseconds per frame; values: of the network's input"
          % (args.repeats, args.frames))
    print("%-9s %-11s %10s %10s %7s %16s" % ("frames", "contract", args.against[:10], "this tree", "ratio",
                                             "values differing"))
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        frames = list(road.sample_frames(args.frames, width, height, seed=3)[0])
        for name in CONTRACTS:
            row = dict(compare(name, other, frames, args.repeats), size=size)
            rows.append(row)
            print("%-9s %-11s %10.1f %10.1f %6.2fx %9.4f%% (<=%.3g)"
                  % (size, name, row["then_us"], row["now_us"], row["ratio"], 100 * row["values_differing"],
                     row["largest_difference"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"against": args.against, "cpu_count": os.cpu_count(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
