"""Side by side, in one run, on the same frames and the same model: what users would write instead, and
this runtime. Run by hand (it takes minutes); it writes the README's performance table.

    .venv/bin/python benchmarks/compare.py [--models pilotnet cifar_cnn binary_cnn]
                                           [--sources memory 720p 1080p video road] [--out benchmarks/results]

Approaches, each measured in a process of its own (so peak memory is its own):
    keras_predict   the lecture's way: preprocess, then model.predict(x) per frame
    keras_call      preprocess, then model(x) per frame
    sequential      a tutorial's loop in one thread: read -> cv2 resize/colour/astype -> ONNX Runtime -> draw
                    (the same overlay as the runtime draws, its FPS counter included, so drawing costs both
                    the same)
    bare            the runtime's backend alone on one ready input (the limit for any pipeline)
    runtime         runtime.run(): threaded capture + preprocessing, inference, overlay drawn
Sources: frames in memory (the bundle's samples at the size whose crop is the network input), the same
samples in memory at camera sizes (720p: 1280x720, 1080p: 1920x1080, as `runtime bench --frame-size` holds
them: the whole preprocessing and no decoder), a 1280x720 H.264 video (made with GStreamer's x264enc by the
system Python), and synthetic://road (rendered).
Models are the zoo's networks with fresh weights: speed does not depend on what they learned.
Each approach runs --repeats times (5; Keras's twice: it is 7-230x slower, its precision does not matter),
interleaved with the others; the best run gives its FPS, and the median of its runs its peak memory (the
peak moves by up to 10% between runs with the decoder's threads). The sequential loop and the runtime see the same
number of frames after the same warm-up and run back to back in each round (in turn first), and
runtime / sequential is the median of the rounds' ratios: this VM's speed drifts by 10-20% between
processes, more than the difference between the two on frames in memory, and a pair measured side by side
shares the drift.
Writes results.json (per case: runtime_fps, bare_fps, keras_predict_fps, keras_call_fps, sequential_fps, ...,
when it was measured), results.md (the table) and results.png (the chart). Cases of an earlier results.json
that a run does not measure (fewer --models or --sources) are kept.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
APPROACHES = ("keras_predict", "keras_call", "bare", "sequential", "runtime")
KERAS_REPEATS = 2
FRAMES = {"keras_predict": 50, "keras_call": 120, "sequential": 1500, "bare": 2000, "runtime": 1500}
MEMORY_FRAMES = 4000  # frames in memory run at thousands a second: longer runs, less of this machine's noise
CAMERA_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}  # sources: frames in memory at a camera's size
IN_MEMORY = ("memory",) + tuple(CAMERA_SIZES)
CAMERA_FRAMES = 1500  # a few hundred a second at camera sizes
WARMUP = 20  # frames before the measured ones, for every approach (the runtime's warm-up is a run of its own)
VIDEO_FRAMES = 240


def prepare(model_name, work):
    """A run directory (fresh zoo model + meta.json) and its bundle; returns the bundle path."""
    bundle = os.path.join(work, "bundles", model_name)
    if os.path.isfile(os.path.join(bundle, "manifest.json")):
        return bundle
    from train import load_tensorflow, models
    from runtime.sim import road
    from runtime.bundle import write_json

    load_tensorflow()
    spec = models.get(model_name)
    run = os.path.join(work, "runs", model_name)
    os.makedirs(os.path.join(run, "samples"), exist_ok=True)
    model = spec.build(1 if spec.task == "binary" else 10)
    model.save(os.path.join(run, "model.keras"))
    import cv2

    frames, _ = road.sample_frames(16, 640, 360, seed=5)
    files = []
    for i, frame in enumerate(frames):
        files.append("sample_%03d.png" % i)
        cv2.imwrite(os.path.join(run, "samples", files[-1]), frame)
    labels = ["negative", "positive"] if spec.task == "binary" else [] if spec.task == "steering" else \
        [str(i) for i in range(10)]
    meta = {"format": "edge-run", "format_version": 1, "name": model_name, "task": spec.task, "labels": labels,
            "input": {"shape": [None] + list(spec.input_shape), "layout": spec.layout},
            "preprocess": spec.preprocess(), "samples": {"dir": "samples", "files": files}}
    if spec.task == "steering":
        meta["steering"] = {"inverse_radius_per_unit": 0.1, "positive": "right"}
    write_json(os.path.join(run, "meta.json"), meta)
    from export.__main__ import _main as export_main

    assert export_main(["onnx", run, "--out", bundle]) == 0
    return bundle


def make_video(path):
    """A 1280x720 H.264 file of the road, encoded by GStreamer's x264enc through the system's OpenCV."""
    if os.path.isfile(path):
        return path
    code = """
import sys, cv2
sys.path.insert(0, %r)
from runtime.sim.simulator import Simulator
car = Simulator(1280, 720, seed=3, driver="human")  # the car synthetic://road shows, driven by its simulated human
w = cv2.VideoWriter("appsrc ! videoconvert ! x264enc speed-preset=fast bitrate=6000 ! h264parse ! mp4mux ! "
                    "filesink location=%s", cv2.CAP_GSTREAMER, 0, 30, (1280, 720), True)
assert w.isOpened(), "no x264enc: apt install gstreamer1.0-plugins-ugly python3-opencv"
for _ in range(%d):
    w.write(car.view()[0])
    car.step()
w.release()
""" % (ROOT, path, VIDEO_FRAMES)
    subprocess.run(["/usr/bin/python3", "-c", code], check=True)
    return path


# -- one measurement, in its own process ---------------------------------------------------------------------
def frames_from(source, bundle):
    """An endless iterator of BGR frames, read as each approach would read them."""
    import cv2

    if source in IN_MEMORY:  # each read copied into a reused buffer, as runtime bench's MemoryFrames (a decoder's
        from runtime.commands.bench import MemoryFrames  # write), so both loops pay the same for reading

        for image, _ in MemoryFrames(frames_from_list(bundle, source))._images():
            yield image
    elif source == "road":
        from runtime.sim.simulator import Simulator

        car = Simulator(640, 360, seed=0, driver="human")
        while True:
            image, _ = car.view()
            car.step()
            yield image
    else:
        while True:
            cap = cv2.VideoCapture(source)
            while True:
                ok, image = cap.read()
                if not ok:
                    break
                yield image
            cap.release()


def tutorial_preprocess(image, pre):
    """What a tutorial writes: crop, cv2.resize, cvtColor, astype, scale, expand_dims (new arrays each time)."""
    import cv2
    import numpy as np

    crop = pre["crop"]
    if crop:
        h, w = image.shape[:2]
        image = image[int(crop["top"] * h):int(crop["bottom"] * h), int(crop["left"] * w):int(crop["right"] * w)]
    image = cv2.resize(image, (pre["resize"]["width"], pre["resize"]["height"]),  # the model's own interpolation:
                       interpolation={"area": cv2.INTER_AREA, "nearest": cv2.INTER_NEAREST}.get(  # else it is not
                           pre["resize"].get("interpolation"), cv2.INTER_LINEAR))              # the same input
    code = {"rgb": cv2.COLOR_BGR2RGB, "yuv": cv2.COLOR_BGR2YUV, "gray": cv2.COLOR_BGR2GRAY}.get(pre["color"])
    if code is not None:
        image = cv2.cvtColor(image, code)
    x = image.astype(np.float32) * np.float32(pre["scale"]) + np.float32(pre["offset"])
    return x.reshape((1,) + x.shape if x.ndim == 3 else (1,) + x.shape + (1,))


def tutorial_step(session, input_name, pre, post):
    """The tutorial loop's body, image -> outputs: its preprocessing, ONNX Runtime, and the same overlay as the
    runtime draws, a tutorial's FPS counter included (so drawing costs both the same)."""
    from runtime import overlay

    last = [time.perf_counter()]

    def step(image):
        out = session.run(None, {input_name: tutorial_preprocess(image, pre)})
        now = time.perf_counter()
        fps, last[0] = 1.0 / max(now - last[0], 1e-9), now
        overlay.draw(image.copy(), post(out), fps, None)
        return out

    return step


def measure(approach, source, bundle, run_dir, frames):

    from runtime import bundle as bundle_format

    b = bundle_format.load(bundle)
    pre = b.preprocess
    it = frames_from(source, bundle)
    t_start, latencies = None, []
    if approach in ("keras_predict", "keras_call"):
        from train import load_tensorflow

        load_tensorflow()
        import keras

        model = keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False)

        def step(image):
            x = tutorial_preprocess(image, pre)
            return model.predict(x, verbose=0) if approach == "keras_predict" else model(x, training=False).numpy()
    elif approach == "sequential":
        import onnxruntime as ort

        session = ort.InferenceSession(b.model_path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        from runtime.postprocess import Postprocessor

        step = tutorial_step(session, name, pre, Postprocessor(b.task, b.labels, b.outputs, b.curvature_per_unit))
    elif approach == "bare":
        from runtime.model import Model

        model = Model(bundle, backend="onnxruntime")
        x = model.preprocess(next(it)).copy()

        def step(image):
            return model.backend.infer(x)
    else:
        return measure_runtime(source, bundle, frames)
    def read():
        return None if approach == "bare" else next(it)  # the bare call reads nothing: it is the limit

    for _ in range(WARMUP):
        step(read())
    n, t_start = 0, time.perf_counter()
    while n < frames:
        t = time.perf_counter()
        step(read())
        latencies.append((time.perf_counter() - t) * 1000)
        n += 1
    elapsed = time.perf_counter() - t_start
    return {"fps": n / elapsed, "latency_p50_ms": sorted(latencies)[len(latencies) // 2]}


def _drawn():
    """An output that wants the overlay drawn (as the tutorial loop draws) and keeps nothing."""
    from runtime.outputs import Output

    class Drawn(Output):
        wants_overlay = True

        def write(self, frame, result, annotated=None):
            pass

    return Drawn()


def measure_runtime(source, bundle, frames):
    from runtime.commands.bench import MemoryFrames
    from runtime.model import Model
    from runtime.pipeline import run
    from runtime.sources import open_source

    with Model(bundle, backend="onnxruntime") as model:
        if source in IN_MEMORY:
            src = MemoryFrames(frames_from_list(bundle, source))
        elif source == "road":
            src = open_source("synthetic://road")
        else:
            src = open_source(source, loop=True)
        inline = source in IN_MEMORY  # as `runtime bench` reads frames in memory
        with src:
            run(model, src, [_drawn()], max_frames=WARMUP, log=None, capture_thread=not inline)
            stats = run(model, src, [_drawn()], max_frames=frames, log=None, capture_thread=not inline)
    return {"fps": stats.fps, "latency_p50_ms": stats.percentile(50), "stages_ms": stats.stages(),
            "slowest_stage_fps": stats.slowest_stage_fps}


def frames_from_list(bundle, source="memory"):
    """The bundle's samples at the size whose crop is the network input, or at a camera's size, as `runtime
    bench` holds them (without and with --frame-size)."""
    from runtime import bundle as bundle_format
    from runtime.commands.bench import camera_sized, network_sized
    from runtime.bundle import bundle_samples

    b = bundle_format.load(bundle)
    if source in CAMERA_SIZES:
        return camera_sized(bundle_samples(b), CAMERA_SIZES[source])
    return network_sized(b, bundle_samples(b))


# -- the driver --------------------------------------------------------------------------------------------
def child(args):
    result = measure(args.approach, args.source, args.bundle, args.run_dir, args.frames)
    from runtime.commands.bench import peak_rss_mb

    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def one(approach, source, bundle, run_dir, frames):
    proc = subprocess.run([sys.executable, __file__, "--child", "--approach", approach, "--source", source,
                           "--bundle", bundle, "--run-dir", run_dir, "--frames", str(frames)],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit("%s/%s failed:\n%s" % (approach, source, proc.stderr[-3000:]))
    return json.loads(line[0][len("RESULT "):])


def merged(path, results):
    """results, with the cases of an earlier results.json that this run did not measure kept (in the table's
    order): `--sources memory` measures frames in memory again and leaves video and the road as they were."""
    if not os.path.isfile(path):
        return results
    with open(path) as f:
        earlier = json.load(f)["results"]
    fresh = {(r["model"], r["source"]): r for r in results}
    cases = [(r["model"], r["source"]) for r in earlier] + [k for k in fresh if k not in
                                                               {(r["model"], r["source"]) for r in earlier}]
    kept = {(r["model"], r["source"]): r for r in earlier}
    return [fresh.get(k) or kept[k] for k in cases]


def table(results):
    head = ("| model | source | runtime FPS | bare FPS | sequential FPS | Keras model(x) FPS | Keras predict FPS | "
            "runtime / predict | runtime / model(x) | runtime / sequential | runtime ms - bare ms | "
            "runtime / slowest stage | peak MB runtime / Keras |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        rows.append(("| %s | %s | %.0f | %.0f | %.0f | %.1f | %.1f | %.0fx | %.0fx | %.2fx | %+.3f | %.0f%% | "
                     "%.0f / %.0f |")
                    % (r["model"], r["source"], r["runtime_fps"], r["bare_fps"], r["sequential_fps"],
                       r["keras_call_fps"], r["keras_predict_fps"], r["runtime_fps"] / r["keras_predict_fps"],
                       r["runtime_fps"] / r["keras_call_fps"], r["runtime_vs_sequential"],
                       1000 / r["runtime_fps"] - 1000 / r["bare_fps"],
                       100 * r["runtime_fps"] / r["runtime_slowest_stage_fps"],
                       r["runtime_peak_rss_mb"], r["keras_predict_peak_rss_mb"]))
    return "\n".join(rows)


def chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.16
    labels = ["%s\n%s" % (r["model"], r["source"]) for r in results]
    for i, a in enumerate(APPROACHES):
        ax.bar([x + (i - 2) * width for x in range(len(results))], [r["%s_fps" % a] for r in results], width,
               label=a)
    ax.set_yscale("log")
    ax.set_ylabel("frames per second (log)")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.legend(ncol=5, fontsize=8)
    ax.set_title("Same frames, same model, one run (%d CPU cores, no GPU)" % os.cpu_count())
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["pilotnet", "cifar_cnn", "binary_cnn"])
    p.add_argument("--sources", nargs="+", default=["memory", "720p", "1080p", "video", "road"],
                   choices=["memory", "720p", "1080p", "video", "road"])
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--repeats", type=int, default=5,
                   help="rounds, each running every approach once (Keras's only in the first %d)" % KERAS_REPEATS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--approach", help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    p.add_argument("--bundle", help=argparse.SUPPRESS)
    p.add_argument("--run-dir", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")
    os.makedirs(work, exist_ok=True)
    video = make_video(os.path.join(work, "road_1280x720_h264.mp4")) if "video" in args.sources else None
    results = []
    for model in args.models:
        bundle = prepare(model, work)
        run_dir = os.path.join(work, "runs", model)
        for source in args.sources:
            src = video if source == "video" else source
            case = {"model": model, "source": source, "measured": time.strftime("%Y-%m-%d %H:%M")}
            best, ratios, peaks = {}, [], {}
            for i in range(args.repeats):  # interleaved, best of each: this machine's noise is larger than
                order = list(APPROACHES)  # some of the differences measured
                if i % 2:
                    order[-2:] = order[-1:-3:-1]  # the runtime first in every other round
                if i >= KERAS_REPEATS:
                    order = [a for a in order if not a.startswith("keras")]
                pair = {}
                for approach in order:
                    frames = FRAMES[approach]
                    if source == "video" and approach not in ("keras_predict", "keras_call"):
                        frames = min(frames, 600)
                    elif source in IN_MEMORY and approach in ("sequential", "runtime"):
                        frames = MEMORY_FRAMES if source == "memory" else CAMERA_FRAMES
                    r = pair[approach] = one(approach, src, bundle, run_dir, frames)
                    peaks.setdefault(approach, []).append(r["peak_rss_mb"])
                    if approach not in best or r["fps"] > best[approach]["fps"]:
                        best[approach] = r
                ratios.append(pair["runtime"]["fps"] / pair["sequential"]["fps"])
            for approach in APPROACHES:
                r = best[approach]
                case["%s_fps" % approach] = round(r["fps"], 2)
                case["%s_peak_rss_mb" % approach] = round(statistics.median(peaks[approach]), 1)
                if approach == "runtime":
                    case["runtime_slowest_stage_fps"] = round(r["slowest_stage_fps"], 1)
                    case["runtime_stages_ms"] = {k: round(v, 3) for k, v in r["stages_ms"].items()}
                print("%-10s %-7s %-14s %9.1f FPS  %6.0f MB" % (model, source, approach, r["fps"],
                                                                  case["%s_peak_rss_mb" % approach]), flush=True)
            case["runtime_vs_sequential"] = round(statistics.median(ratios), 3)
            case["runtime_vs_sequential_by_round"] = [round(r, 3) for r in ratios]
            print("%-10s %-7s runtime / sequential %.3fx median of %d rounds (%s)"
                  % (model, source, case["runtime_vs_sequential"], len(ratios),
                     " ".join("%.2f" % r for r in ratios)), flush=True)
            results.append(case)
    results = merged(os.path.join(args.out, "results.json"), results)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": "%d CPU cores, %s" % (os.cpu_count(), sys.platform), "results": results}, f, indent=2)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table(results) + "\n")
    chart(results, os.path.join(args.out, "results.png"))
    print(table(results))
    print("wrote %s/results.json, results.md, results.png" % args.out)


if __name__ == "__main__":
    main()
