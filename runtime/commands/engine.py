"""python -m runtime engine BUNDLE: build the TensorRT engine for this device, on the board, with only the
runtime installed (`python -m export engine` is the same command under its older name).

It also chooses calibration data, which the backend does not: --calib-data names frames (the procedural road,
scikit-learn's digits, or any source the runtime reads: a folder or glob of images, a video, synthetic://road),
given to the TensorRT calibrator as an iterable; `export variants` and `export verify` read theirs here too.

    --calib-data road           the procedural road (what the embedded-default PilotNet drives on)
    --calib-data road-obstacles the road with obstacles on it (a detector's; `export verify` judges its mAP on them)
    --calib-data road-freespace the same frames (a free-space network's; `export verify` judges its mIoU on them)
    --calib-data digits         scikit-learn's digits (needs scikit-learn: the train extra)
    --calib-data PATH|URI       any source the runtime reads: a folder or glob of images, a video, synthetic://road
    (none)                      the bundle's own samples, with a warning: a few dozen are too few

--frame-size WxH builds the engine that takes the camera's uint8 frame of that size and crops, resizes and
converts colour itself (runtime/backends/tensorrt/frame_input.py; `runtime run --gpu-preprocess` uses it): its
own file, named with the size (fp16-b1-gpu-frame1280x720-...). Area contracts only; fp32 or fp16 (INT8 engines
that TensorRT calibrates take the network's input).
"""

from __future__ import annotations

import sys

import numpy as np

from .. import bundle as bundle_format, platform
from ..backends.tensorrt import api as trtlib, build, calibrator, engines
from ..backends.tensorrt.calibrator import DEFAULT_FRAMES
from ..backends.tensorrt.cuda import Gpu, load_pycuda
from ..backends.tensorrt.engines import PRECISIONS
from ..cli import add_max_image_pixels, positive_int
from ..errors import UserError
from ..preprocess import Preprocessor
from ..sim import obstacles, road
from ..sources import open_source
from .bench import frame_size

DATASETS = ("road", "road-obstacles", "road-freespace", "digits")
SEEDS = {"calibration": 2024, "evaluation": 7}  # different road frames for calibrating and for judging


def calibration_arguments(p):
    """--calib-data and --calib-frames, as `engine` here and `export variants` take them."""
    p.add_argument("--calib-data", metavar="PATH|DATASET",
                   help="INT8 calibration frames: %s, or a folder, glob or video of real frames (default: the "
                        "bundle's samples, with a warning: too few)" % " or ".join(DATASETS))
    p.add_argument("--calib-frames", type=positive_int, default=DEFAULT_FRAMES, metavar="N",
                   help="how many calibration frames (default %d)" % DEFAULT_FRAMES)


def add_parser(sub, prog="python -m runtime engine"):
    p = sub.add_parser("engine", help="build a TensorRT engine from a bundle, on the device that will run it")
    p.prog = prog
    p.add_argument("bundle", metavar="BUNDLE_DIR")
    p.add_argument("--precision", choices=PRECISIONS, help="default: fp16 where the GPU has fast FP16, else fp32")
    p.add_argument("--workspace", type=positive_int, metavar="MiB",
                   help="builder workspace limit (default: 256 MiB on 4 GB boards, 1 GiB on 8 GB, else 4 GiB)")
    p.add_argument("--max-batch", type=positive_int, default=1, metavar="N",
                   help="largest batch the engine takes (default 1: one camera frame at a time)")
    p.add_argument("--dla-core", type=int, metavar="N", help="build for DLA core N, falling back to the GPU "
                                                             "(Xavier, AGX Orin, Orin NX; needs fp16 or int8)")
    calibration_arguments(p)
    p.add_argument("--timing-cache", metavar="FILE", help="TensorRT timing cache to read and update (default: "
                                                          "one per device beside the engines)")
    p.add_argument("--frame-size", type=frame_size, metavar="WxH",
                   help="build the engine that takes the camera's uint8 WxH frame and preprocesses it on the GPU "
                        "(runtime run --gpu-preprocess; area contracts only)")
    p.add_argument("--force", action="store_true", help="build even when a matching engine exists")
    add_max_image_pixels(p)  # calibration frames from a folder or glob are images read from disk
    return p


def main(args):
    if args.dla_core is not None and args.dla_core < 0:
        raise UserError("--dla-core must be 0 or more")
    if args.calib_data is not None and args.precision != "int8":
        raise UserError("--calib-data is for --precision int8")
    problem = platform.dla_problem({None: args.dla_core}) if args.dla_core is not None else None
    if problem:
        raise UserError(problem)
    bundle = bundle_format.load(args.bundle)
    frames = calibration_frames(bundle, args.calib_data, args.calib_frames)  # read only if TensorRT calibrates
    opts = build.BuildOptions(args.precision, args.workspace, args.max_batch, args.dla_core, args.calib_data,
                              args.calib_frames, args.timing_cache, calibration=frames, frame_size=args.frame_size)
    trt = trtlib.load()
    load_pycuda()
    gpu = Gpu()
    try:
        plan = build.make_plan(trt, gpu, bundle, opts)
        existing = engines.find(bundle.path, plan.key)
        if existing and not args.force:
            print("up to date: %s (--force builds it again)" % existing)
            return 0
        build.build(bundle, opts, gpu, trt)
    finally:
        gpu.close()
    return 0


# -- choosing frames: to calibrate on (TensorRT here, ONNX Runtime in `export variants`) or to judge on ------------
def _road(count, purpose):
    frames, _ = road.sample_frames(count, 320, 180, seed=SEEDS[purpose])
    return list(frames)


def road_obstacles(count, purpose, size=(320, 180)):
    """Road frames with obstacles at size (BGR), and their truths: per frame (boxes (M, 4), classes (M,),
    ignore regions (I, 4)) in its pixels; an object is labelled as the detector's training labels it at the
    same size (train's road-obstacles dataset renders at the detector's input size)."""
    frames, boxes, classes, ignore = obstacles.sample_detection_frames(count, size[0], size[1], seed=SEEDS[purpose])
    return list(frames), [(b[~i], c[~i], b[i]) for b, c, i in zip(boxes, classes, ignore)]


def _digits(count, purpose):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("--calib-data digits needs scikit-learn (pip install '.[train]'); or give a folder of "
                        "images") from None
    images = load_digits().images
    images = images[-count:] if purpose == "calibration" else images[:count]  # apart when count <= 898
    images = np.round(images * (255.0 / 16.0)).astype(np.uint8)
    return [np.repeat(im[:, :, None], 3, axis=2) for im in images]


def _from_source(uri, count):
    """The first count frames' images of any source the runtime reads, one at a time as they are read."""
    read = 0
    with open_source(uri) as source:
        for frame in source:
            yield frame.image
            read += 1
            if read >= count:
                return
    if not read:
        raise UserError("--calib-data %s gave no frames" % uri)


def calibration_frames(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration"):
    """The frames spec names (raw BGR images, at most count), as a generator: nothing is read until they are
    iterated (a build with a kept calibration cache reads none), a folder or video one frame at a time. spec:
    road, road-obstacles, road-freespace, digits, a path or URI; None: the bundle's samples. For
    purpose="evaluation" the datasets give other frames than for calibration (a folder or video gives the same
    ones: use another for judging). Too few are said once they are read."""
    if spec is None:
        yield from calibrator.bundle_frames(bundle, count, log)
        return
    read = 0
    obstacle_frames = lambda n, why: road_obstacles(n, why)[0]  # noqa: E731  (road-freespace's are the same)
    datasets = {"road": _road, "road-obstacles": obstacle_frames, "road-freespace": obstacle_frames, "digits": _digits}
    chosen = datasets[spec](count, purpose) if spec in datasets else _from_source(spec, count)
    for frame in chosen:
        read += 1
        yield frame
    if log is not None and read < min(count, 100):
        print("warning: --calib-data %s gave only %d frames; hundreds calibrate better" % (spec, read)
              if purpose == "calibration" else
              "warning: %s gave only %d frames to judge on; hundreds judge better" % (spec, read), file=log)


def load_frames(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration", prepare=None):
    """(the frames calibration_frames gives, a description of where they came from); with prepare, each frame
    as prepare(frame) gives it, applied as frames are read."""
    frames = [frame if prepare is None else prepare(frame)
              for frame in calibration_frames(bundle, spec, count, log, purpose)]
    return frames, ("bundle samples (%d)" % len(frames) if spec is None else "%s (%d frames)" % (spec, len(frames)))


def load_batch(bundle, spec=None, count=DEFAULT_FRAMES, log=sys.stderr, purpose="calibration"):
    """(the frames preprocessed as the runtime does: float32 (N, ...), where they came from), as load_frames
    gives them. Each is preprocessed as it is read, so that only network-sized inputs are held: 500 raw 4K
    frames held for preprocessing afterwards were 12 GB."""
    pre = Preprocessor(bundle.preprocess, bundle.input)
    frames, where = load_frames(bundle, spec, count, log, purpose, prepare=lambda image: pre(image).copy())
    return np.concatenate(frames, axis=0), where
