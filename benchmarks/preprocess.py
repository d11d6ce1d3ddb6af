"""The runtime's preprocessing, this tree's against another revision's, side by side in one run.

    .venv/bin/python benchmarks/preprocess.py [--against HEAD~1] [--size 1280x720] [--frames 200] [--repeats 7]

For each of the zoo's preprocessing contracts (PilotNet's crop + area resize + YUV, the CIFAR CNN's RGB,
the MNIST CNN's gray, the 150x150 binary classifier's RGB), both Preprocessors prepare the same raw frames
(rendered road frames at --size) into their own buffers, in one thread with OpenCV's own threads limited
to one (as in the runtime's capture thread on a loaded board). The two alternate, repeat by repeat, and
the best repeat of each counts. Prints microseconds per frame and the difference; writes nothing.
"""

import argparse
import os
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

CONTRACTS = ("pilotnet", "cifar_cnn", "mnist_cnn", "binary_cnn")  # their preprocessing: train/models.py


def preprocessor_at(revision):
    """runtime.preprocess.Preprocessor as it was at a git revision (its own module, beside this tree's)."""
    source = subprocess.run(["git", "show", "%s:runtime/preprocess.py" % revision], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("runtime.preprocess_at_%s" % revision.replace("~", "_").replace("^", "_"))
    module.__package__ = "runtime"
    exec(compile(source, "%s:runtime/preprocess.py" % revision, "exec"), module.__dict__)
    return module.Preprocessor


def per_frame_us(prep, frames):
    t0 = time.perf_counter()
    for frame in frames:
        prep(frame)
    return (time.perf_counter() - t0) / len(frames) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD", help="the git revision to compare with (default HEAD)")
    parser.add_argument("--size", default="1280x720", help="raw frame size WxH (default 1280x720)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import cv2

    from runtime.sim import road
    from runtime.preprocess import Preprocessor
    from train import models  # the specs only: no TensorFlow until a model is built

    cv2.setNumThreads(1)
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames, _ = road.sample_frames(args.frames, width, height, seed=3)
    frames = list(frames)
    other = preprocessor_at(args.against)
    print("%d frames at %dx%d, best of %d interleaved repeats; microseconds per frame"
          % (len(frames), width, height, args.repeats))
    print("%-11s %12s %12s %10s" % ("contract", args.against, "this tree", "change"))
    for name in CONTRACTS:
        zoo = models.get(name)
        pre, spec = zoo.preprocess(), {"layout": zoo.layout, "shape": [None] + list(zoo.input_shape)}
        pair = {"then": other(pre, spec), "now": Preprocessor(pre, spec)}
        best = {"then": float("inf"), "now": float("inf")}
        for _ in range(args.repeats):
            for key, prep in pair.items():
                best[key] = min(best[key], per_frame_us(prep, frames))
        print("%-11s %12.1f %12.1f %+9.1f" % (name, best["then"], best["now"], best["now"] - best["then"]))


if __name__ == "__main__":
    main()
