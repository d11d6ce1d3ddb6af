"""python -m runtime drive BUNDLE: the command that lets a steering bundle drive the simulated road in closed loop
(sim/judge.py drives and judges; this module parses, prints the table and writes the report, video and plot)."""

from __future__ import annotations

import os

from .. import bundle as bundle_format
from ..backends import NAMES as BACKENDS
from ..backends.tensorrt.engines import PRECISIONS
from ..cli import positive_float
from ..errors import UserError, require
from ..model import Model
from ..outputs.base import check_writable
from ..outputs.files import VIDEO_EXTS
from ..sim.judge import CONTROLLERS, judge, steering_units
from ..sim.simulator import DEFAULT_SEED
from ..sim.visuals import JudgedVideo, plot


def add_parser(sub):
    p = sub.add_parser("drive", help="let a steering bundle drive the procedural road in closed loop: autonomy")
    p.prog = "python -m runtime drive"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("bundle", help="a steering bundle (train's pilotnet, exported)")
    p.add_argument("--seconds", type=positive_float, default=120.0, help="simulated seconds (default 120)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the track (default %d: held out)" % DEFAULT_SEED)
    p.add_argument("--controller", choices=CONTROLLERS, default="model",
                   help="model (the bundle), zero (never steers) or pure-pursuit (the true pose): default model")
    p.add_argument("--delay-frames", type=int, default=1, metavar="N",
                   help="frames between a steering command and its effect (default 1)")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="TensorRT: which engine; ONNX Runtime: model.onnx (fp32) or the bundle's fp16/int8 variant")
    p.add_argument("--compare", action="store_true",
                   help="drive the same track with every precision the bundle has, and the two references")
    p.add_argument("--output", metavar="FILE.mp4", help="a video of the drive (camera view and a top-down inset)")
    p.add_argument("--plot", metavar="FILE.png", help="offset and steering over time (needs matplotlib)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")


def _row(r):
    latency = "%.2f" % r["latency_ms"]["p50"] if r["latency_ms"] else "-"
    return "%-13s %-9s %8.1f%% %13d %12.3f %11.3f %13.2f %9s" % (
        r["controller"], r["precision"], r["autonomy"], r["interventions"], r["mean_abs_offset_m"],
        r["max_abs_offset_m"], r["steering_change_per_s"], latency)


HEADER = "%-13s %-9s %9s %13s %12s %11s %13s %9s" % ("controller", "precision", "autonomy", "interventions",
                                                      "mean|off| m", "max|off| m", "steer chg/s", "p50 ms")


def _check(args):
    """One-line refusals of options that cannot work, before anything is driven."""
    if args.delay_frames < 0:
        raise UserError("--delay-frames must be 0 or more")
    for path in (args.output, args.plot, args.json):
        if path:
            check_writable(path)
    if args.plot:
        require("matplotlib", "plot", "--plot")
    if args.output and os.path.splitext(args.output)[1].lower() not in VIDEO_EXTS:
        raise UserError("--output %s: give a video file (%s)" % (args.output, ", ".join(sorted(VIDEO_EXTS))))


def _judged(args, bundle, controller, precision):
    """One judged drive (a Scorecard), its video written where asked."""
    video = JudgedVideo(args.output) if args.output else None
    try:
        if controller != "model":
            return judge(None, controller, args.seconds, args.seed, args.delay_frames, bundle=bundle, on_frame=video)
        with Model(bundle, backend=args.backend, precision=precision) as model:
            return judge(model, controller, args.seconds, args.seed, args.delay_frames,
                         precision or getattr(model.backend, "precision", None) or "fp32", on_frame=video)
    finally:
        if video is not None:
            video.close()


def main(args):
    _check(args)
    bundle = bundle_format.load(args.bundle)
    if args.controller == "model" or args.compare:
        steering_units(bundle)
    runs = [(args.controller, args.precision)]
    if args.compare:
        if args.output or args.plot:
            raise UserError("--compare drives several times: --output and --plot go with one drive")
        runs = [("model", p) for p in ["fp32"] + list(bundle.variants)] + [("pure-pursuit", None), ("zero", None)]
    reports = []
    print(HEADER)
    for controller, precision in runs:
        card = _judged(args, bundle, controller, precision)
        reports.append(card.report())
        print(_row(reports[-1]), flush=True)
        if args.plot:
            plot(card, args.plot)
    last = reports[-1] if not args.compare else None
    if last is not None:
        print("%.0f simulated seconds in %.1f s (%sx real time)%s" % (
            last["sim_seconds"], last["wall_seconds"], last["realtime_factor"],
            "; %s" % last["backend"] if last["backend"] else ""))
    for path in (args.output, args.plot):
        if path:
            print("wrote %s" % path)
    if args.json:
        bundle_format.write_json(args.json, {"rows": reports} if args.compare else reports[0])
        print("wrote %s" % args.json)
    return 0
