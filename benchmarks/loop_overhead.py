"""Frames in memory: the runtime against the tutorial loop, alternating in one process, many times.

    .venv/bin/python benchmarks/loop_overhead.py [--models pilotnet cifar_cnn binary_cnn] [--rounds 8] [--frames 3000]

compare.py runs each approach in a process of its own (so that peak memory is its own), and between
processes this 2-core VM's speed moves by 10-20%: more than the difference to be measured on frames in
memory, where there is nothing to overlap. Here both loops share one process, one ONNX Runtime session
(spinning, as both read inline), the same frames and the same overlay (FPS counter included), and run
in turn, --rounds times; each round gives a ratio, and the median ratio is printed with its range. Uses
compare.py's bundles (run `make bench` once first). Writes nothing.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def tutorial_loop(step, images):
    """compare.py's tutorial loop on frames in memory: n -> FPS."""

    def loop(n):
        start = time.perf_counter()
        for i in range(n):
            step(images[i % len(images)])
        return n / (time.perf_counter() - start)

    return loop


def main():
    import compare
    from runtime.commands.bench import MemoryFrames
    from runtime.model import Model
    from runtime.pipeline import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["pilotnet", "cifar_cnn", "binary_cnn"])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    for name in args.models:
        bundle = os.path.join(HERE, "results", "work", "bundles", name)
        if not os.path.isfile(os.path.join(bundle, "manifest.json")):
            raise SystemExit("no %s: run `make bench` (benchmarks/compare.py) once first" % bundle)
        model = Model(bundle, backend="onnxruntime")
        session, input_name = model.backend.session, model.backend.input_name
        images = compare.frames_from_list(bundle)
        pre = model.bundle.preprocess
        frames = max(args.frames // (8 if name == "binary_cnn" else 1), 200)

        tutorial = tutorial_loop(compare.tutorial_step(session, input_name, pre, model.postprocess), images)
        source = MemoryFrames(images)
        tutorial(compare.WARMUP)
        run(model, source, [compare._drawn()], max_frames=compare.WARMUP, log=None, capture_thread=False)
        ratios, fps = [], {"runtime": [], "tutorial": []}
        for _ in range(args.rounds):
            fps["tutorial"].append(tutorial(frames))
            fps["runtime"].append(run(model, source, [compare._drawn()], max_frames=frames, log=None,
                                      capture_thread=False).fps)
            ratios.append(fps["runtime"][-1] / fps["tutorial"][-1])
        print("%-10s runtime %6.0f FPS, tutorial loop %6.0f FPS (medians of %d rounds of %d frames): "
              "runtime / tutorial %.3fx median, %.2f-%.2fx by round"
              % (name, statistics.median(fps["runtime"]), statistics.median(fps["tutorial"]), args.rounds, frames,
                 statistics.median(ratios), min(ratios), max(ratios)), flush=True)
        model.close()


if __name__ == "__main__":
    main()
