"""python -m runtime drive BUNDLE: the command that lets a steering bundle drive the simulated road in closed loop
(sim/judge.py drives and judges; this module parses, prints the table and writes the report, video and plot).
With --scenario NAME|all it drives the fixed scenarios of sim/scenarios.py, each over --seeds N seeds, and reports
means with a 95% interval (Student t over the seeds). With --detector DET [--freespace FS] the car also brakes
(sim/brake_drive.py): PilotNet steers, the detector's boxes and the free space stop it, and the table gives
collisions, stops before obstacles, false stops per km and time lost against braking on the exact boxes."""

from __future__ import annotations

import contextlib
import os

from .. import bundle as bundle_format
from ..backends import NAMES as BACKENDS
from ..backends.tensorrt.engines import PRECISIONS
from ..cli import positive_float
from ..errors import UserError, require
from ..model import Model
from ..outputs.base import check_writable
from ..outputs.files import VIDEO_EXTS
from ..sim import brake_drive
from ..sim.brake_drive import BRAKE_SUMMARISED, check_bundle, time_lost
from ..sim.braking import Camera
from ..sim.judge import CONTROLLERS, SUMMARISED, judge, steering_units, summarise
from ..sim.scenarios import CALM, MAX_SEEDS, SCENARIOS
from ..sim.simulator import DEFAULT_SEED
from ..sim.visuals import BrakeVideo, JudgedVideo, plot, plot_braking


DEFAULT_SEEDS = 5


def add_parser(sub):
    p = sub.add_parser("drive", help="let a steering bundle drive the procedural road in closed loop: autonomy")
    p.prog = "python -m runtime drive"
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("bundle", help="a steering bundle (train's pilotnet, exported)")
    p.add_argument("--seconds", type=positive_float, default=120.0, help="simulated seconds (default 120)")
    p.add_argument("--seed", type=int, help="the track (default %d: held out); not with --scenario" % DEFAULT_SEED)
    p.add_argument("--scenario", metavar="NAME", help="a fixed scenario (%s) or all: each driven over --seeds seeds "
                   "(docs/simulator.md)" % ", ".join(SCENARIOS))
    p.add_argument("--seeds", type=int, metavar="N", help="with --scenario: drive its first N fixed seeds "
                   "(default %d, at most %d)" % (DEFAULT_SEEDS, MAX_SEEDS))
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
    p.add_argument("--detector", metavar="DET_BUNDLE", help="brake for what this detection bundle sees in the car's "
                   "path (the traffic scenario by default); --precision and --compare then pick the detector's")
    p.add_argument("--freespace", metavar="FS_BUNDLE", help="with --detector: also stop where this segmentation "
                   "bundle's free space in the path is shorter than the stopping distance")
    p.add_argument("--camera-height", type=float, metavar="M", help="the camera's height over the road for the "
                   "boxes' distances (default: the detector manifest's camera.height_m, else the simulator's 1.4)")
    p.add_argument("--camera-pitch", type=float, metavar="DEG", help="the camera's pitch, down positive (default: "
                   "the manifest's camera.pitch_deg, else the simulator's 0)")


def _row(r):
    latency = "%.2f" % r["latency_ms"]["p50"] if r["latency_ms"] else "-"
    return "%-13s %-9s %8.1f%% %13d %12.3f %11.3f %13.2f %9s" % (
        r["controller"], r["precision"], r["autonomy"], r["interventions"], r["mean_abs_offset_m"],
        r["max_abs_offset_m"], r["steering_change_per_s"], latency)


def _cell(stat, digits):
    """A mean and the half-width of its 95% interval: '12.3 +- 4.5' (the mean alone for one seed)."""
    if stat["low"] is None:
        return "%.*f" % (digits, stat["mean"])
    return "%.*f +- %.*f" % (digits, stat["mean"], digits, (stat["high"] - stat["low"]) / 2.0)


SUITE_COLUMNS = ((14, 1), (13, 1), (11, 1), (14, 3), (14, 3))  # per SUMMARISED: width, digits
SUITE_HEADER = "%-11s %-13s %-9s %14s %13s %11s %14s %14s" % (
    "scenario", "controller", "precision", "autonomy %", "interventions", "collisions", "mean|off| m", "max|off| m")


def _suite_row(row):
    cells = ["%*s" % (width, _cell(row[key], digits)) for key, (width, digits) in zip(SUMMARISED, SUITE_COLUMNS)]
    return "%-11s %-13s %-9s %s" % (row["scenario"], row["controller"], row["precision"], " ".join(cells))


HEADER = "%-13s %-9s %9s %13s %12s %11s %13s %9s" % ("controller", "precision", "autonomy", "interventions",
                                                      "mean|off| m", "max|off| m", "steer chg/s", "p50 ms")


def _check(args, braking=False):
    """One-line refusals of options that cannot work, before anything is driven (braking: --detector's drives,
    where --seed picks one track of the scenario, traffic by default)."""
    if args.delay_frames < 0:
        raise UserError("--delay-frames must be 0 or more")
    if args.scenario is not None:
        if args.scenario != "all" and args.scenario not in SCENARIOS:
            raise UserError("unknown scenario %r (choose from: %s, all)" % (args.scenario, ", ".join(SCENARIOS)))
        if args.seed is not None and not braking:
            raise UserError("--seed picks one track: a scenario drives its own fixed seeds (--seeds N)")
        if args.seeds is None:
            args.seeds = DEFAULT_SEEDS
        if not 1 <= args.seeds <= MAX_SEEDS:
            raise UserError("--seeds must be 1 to %d, not %d" % (MAX_SEEDS, args.seeds))
        if (args.output or args.plot) and (args.scenario == "all" or args.seeds > 1 or args.compare):
            raise UserError("--output and --plot go with one drive: --scenario NAME --seeds 1, without --compare")
    elif args.seeds is not None:
        raise UserError("--seeds goes with --scenario (one drive takes --seed)")
    if args.compare and (args.output or args.plot):
        raise UserError("--compare drives several times: --output and --plot go with one drive")
    for path in (args.output, args.plot, args.json):
        if path:
            check_writable(path)
    if args.plot:
        require("matplotlib", "plot", "--plot")
    if args.output and os.path.splitext(args.output)[1].lower() not in VIDEO_EXTS:
        raise UserError("--output %s: give a video file (%s)" % (args.output, ", ".join(sorted(VIDEO_EXTS))))


def _runs(args, bundle):
    """(controller, precision) of each drive: the one asked, or with --compare every precision and the references."""
    if not args.compare:
        return [(args.controller, args.precision)]
    return [("model", p) for p in ["fp32"] + list(bundle.variants)] + [("pure-pursuit", None), ("zero", None)]


def _open(stack, args, bundle, controller, precision):
    """(the Model that steers, or None for a reference; the precision to report)."""
    if controller != "model":
        return None, None
    model = stack.enter_context(Model(bundle, backend=args.backend, precision=precision))
    return model, precision or getattr(model.backend, "precision", None) or "fp32"


def _drive(args, bundle, steering, controller, seed, scenario):
    """One judged drive (a Scorecard): its video and plot written where asked."""
    model, precision = steering
    video = JudgedVideo(args.output) if args.output else None
    try:
        card = judge(model, controller, args.seconds, seed, args.delay_frames, precision or "fp32",
                     bundle=bundle, on_frame=video, scenario=scenario)
    finally:
        if video is not None:
            video.close()
    if args.plot:
        plot(card, args.plot)
    return card


def _suite(args, bundle, runs, models):
    """The scenarios asked, each driven by each run over its seeds: one summarised row per scenario and run."""
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    print(SUITE_HEADER)
    rows = []
    for name in names:
        scenario = SCENARIOS[name]
        for (controller, _), steering in zip(runs, models):
            drives = [_drive(args, bundle, steering, controller, seed, scenario).report()
                      for seed in scenario.seeds(args.seeds)]
            rows.append(dict(summarise(drives), drives=drives))
            print(_suite_row(rows[-1]), flush=True)
    seeds = SCENARIOS[names[0]].seeds(args.seeds)
    print("mean +- half-width of its 95%% interval (Student t over %d seed(s): %s); %g simulated s a drive"
          % (args.seeds, ", ".join(map(str, seeds)), args.seconds))
    return {"scenarios": {n: _jsonable(SCENARIOS[n].parameters()) for n in names}, "seeds": args.seeds,
            "seconds": args.seconds, "interval": "95%, Student t over the seeds (mean -/+ t(0.975, n - 1) sd / "
            "sqrt(n)); low and high are null for one seed", "rows": rows}


def _jsonable(params):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def main(args):
    if args.detector is not None:
        return _braking(args)
    for name in ("freespace", "camera_height", "camera_pitch"):
        if getattr(args, name) is not None:
            raise UserError("--%s goes with --detector" % name.replace("_", "-"))
    _check(args)
    bundle = bundle_format.load(args.bundle)
    if args.controller == "model" or args.compare:
        steering_units(bundle)
    runs = _runs(args, bundle)
    with contextlib.ExitStack() as stack:
        models = [_open(stack, args, bundle, controller, precision) for controller, precision in runs]
        if args.scenario is not None:
            report = _suite(args, bundle, runs, models)
        else:
            report = _single(args, bundle, runs, models)
    return _written(args, report)


def _written(args, report):
    """The files a drive wrote named (--output, --plot), and its report as --json; the exit status."""
    for path in (args.output, args.plot):
        if path:
            print("wrote %s" % path)
    if args.json:
        bundle_format.write_json(args.json, report)
        print("wrote %s" % args.json)
    return 0


def _single(args, bundle, runs, models):
    """Today's drive without --scenario: the calm track at --seed, one row a run; the report (or the rows)."""
    seed = DEFAULT_SEED if args.seed is None else args.seed
    reports = []
    print(HEADER)
    for (controller, _), steering in zip(runs, models):
        reports.append(_drive(args, bundle, steering, controller, seed, CALM).report())
        print(_row(reports[-1]), flush=True)
    if not args.compare:
        last = reports[-1]
        print("%.0f simulated seconds in %.1f s (%sx real time)%s" % (
            last["sim_seconds"], last["wall_seconds"], last["realtime_factor"],
            "; %s" % last["backend"] if last["backend"] else ""))
    return {"rows": reports} if args.compare else reports[0]


BRAKE_HEADER = "%-12s %-9s %11s %13s %16s %14s %11s" % (
    "braker", "precision", "collisions", "stops before", "false stops/km", "time lost s", "autonomy %")
BRAKE_COLUMNS = ((11, 1), (13, 1), (16, 2), (14, 1), (11, 1))  # per brake_drive.BRAKE_SUMMARISED


def _brake_row(row):
    cells = ["%*s" % (width, "-" if row[key] is None else _cell(row[key], digits))
             for key, (width, digits) in zip(BRAKE_SUMMARISED, BRAKE_COLUMNS)]
    return "%-12s %-9s %s" % (row["braker"], row["precision"], " ".join(cells))


def _braking_inputs(args):
    """--detector's options checked and its bundles loaded: (steering bundle, detector, free space or None,
    camera)."""
    if args.scenario == "all":
        raise UserError("--detector drives one scenario (traffic by default), not all")
    if args.controller != "model":
        raise UserError("--detector: PilotNet (the bundle) steers; --controller goes without it")
    if args.seed is not None and (args.scenario is not None or args.seeds is not None):
        raise UserError("--seed picks one track: a scenario drives its own fixed seeds (--seeds N)")
    args.scenario = args.scenario or "traffic"
    args.seeds = args.seeds if args.seeds is not None else (1 if args.seed is not None else DEFAULT_SEEDS)
    _check(args, braking=True)
    bundle = bundle_format.load(args.bundle)
    steering_units(bundle)
    detector = bundle_format.load(args.detector)
    check_bundle(detector, "detection", "--detector")
    freespace = None
    if args.freespace is not None:
        freespace = bundle_format.load(args.freespace)
        check_bundle(freespace, "segmentation", "--freespace")
    return bundle, detector, freespace, Camera.of_bundle(detector, args.camera_height, args.camera_pitch)


def _braking(args):
    """--detector: the braking drives (sim/brake_drive.py), each braker over the scenario's seeds."""
    bundle, detector, freespace, camera = _braking_inputs(args)
    scenario = SCENARIOS[args.scenario]
    seeds = [args.seed] if args.seed is not None else scenario.seeds(args.seeds)
    precisions = ["fp32"] + list(detector.variants) if args.compare else [args.precision]
    runs = [("detector", p) for p in precisions] + [("ground-truth", None)] + (
        [("never-sees", None)] if args.compare else [])
    rows, cards = [], []
    with contextlib.ExitStack() as stack:
        steer = stack.enter_context(Model(bundle, backend=args.backend))
        print(BRAKE_HEADER)
        for braker, precision in runs:
            det = fs = None
            if braker == "detector":
                det = stack.enter_context(Model(detector, backend=args.backend, precision=precision))
                if freespace is not None:
                    fs_precision = precision if precision in (None, "fp32") or precision in freespace.variants \
                        else None
                    fs = stack.enter_context(Model(freespace, backend=args.backend, precision=fs_precision))
                precision = precision or getattr(det.backend, "precision", None) or "fp32"
            drives = []
            for seed in seeds:
                video = BrakeVideo(args.output) if args.output and braker == "detector" else None
                try:
                    card = brake_drive.drive(steer, args.seconds, seed, scenario, camera, det, fs, braker,
                                             precision or "fp32", args.delay_frames, video)
                finally:
                    if video is not None:
                        video.close()
                if args.plot and braker == "detector":
                    plot_braking(card, args.plot)
                drives.append(card)
            cards.append(drives)
        time_lost([c for group in cards for c in group])
        for drives in cards:
            rows.append(dict(brake_drive.summarise([c.report() for c in drives]),
                             drives=[c.report() for c in drives]))
            print(_brake_row(rows[-1]), flush=True)
    print("mean +- half-width of its 95%% interval (Student t over %d seed(s): %s); %g simulated s a drive on %s; "
          "time lost against ground-truth braking" % (len(seeds), ", ".join(map(str, seeds)), args.seconds,
                                                      scenario.name))
    report = {"scenario": scenario.name, "seeds": seeds, "seconds": args.seconds, "camera": camera.describe(),
              "braking": brake_drive.PARAMETERS, "rows": rows,
              "detector": detector.path, "freespace": freespace.path if freespace is not None else None}
    return _written(args, report)
