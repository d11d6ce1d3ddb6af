"""python -m runtime engine BUNDLE: build the TensorRT engine for this device, on the board, with only the
runtime installed (`python -m export engine` is the same command under its older name)."""

from __future__ import annotations

from ..cli import add_max_image_pixels, positive_int

from ..errors import UserError
from ..backends.tensorrt.calibrator import DATASETS, DEFAULT_FRAMES
from ..backends.tensorrt.engines import PRECISIONS


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
    p.add_argument("--force", action="store_true", help="build even when a matching engine exists")
    add_max_image_pixels(p)  # calibration frames from a folder or glob are images read from disk
    return p


def main(args):
    from .. import bundle as bundle_format
    from ..backends.tensorrt import api as trtlib
    from ..backends.tensorrt import build
    from ..backends.tensorrt import engines
    from ..backends.tensorrt.cuda import Gpu, load_pycuda

    if args.dla_core is not None and args.dla_core < 0:
        raise UserError("--dla-core must be 0 or more")
    if args.calib_data is not None and args.precision != "int8":
        raise UserError("--calib-data is for --precision int8")
    opts = build.BuildOptions(args.precision, args.workspace, args.max_batch, args.dla_core, args.calib_data,
                              args.calib_frames, args.timing_cache)
    bundle = bundle_format.load(args.bundle)
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
