"""python -m export: Keras model -> checked ONNX bundle -> precision variants -> TensorRT engines.

    python -m export onnx runs/pilotnet --out bundles/pilotnet        (desktop: needs TensorFlow)
    python -m export variants bundles/pilotnet --calib-data road      (desktop: fp16 and int8 ONNX)
    python -m runtime engine bundles/pilotnet --precision fp16        (on the board; `export engine` too)
    python -m export verify bundles/pilotnet                          (anywhere: every backend vs Keras)
"""

from __future__ import annotations

import os
import sys

from runtime.bundle import COLORS, INTERPOLATIONS, TASKS, VARIANTS, write_json
from runtime.cli import ArgumentParser, add_max_image_pixels, main, positive_int
from runtime.commands import engine as engine_command
from runtime.commands.engine import DATASETS, DEFAULT_FRAMES
from runtime.errors import UserError

from . import keras_onnx, load_tensorflow, parity, variants, verify
from .onnx_bundle import Options, export, resolve_source


def _labels(text):
    if os.path.isfile(text):
        with open(text) as f:
            return [line.strip() for line in f if line.strip()]
    return [s.strip() for s in text.split(",") if s.strip()]


def _scale(text):
    values = [float(v) for v in text.split(",")]
    if len(values) not in (1, 3):
        raise ValueError(text)
    return values[0] if len(values) == 1 else values


_scale.__name__ = "number or three comma-separated numbers"


def build_parser():
    parser = ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("onnx", help="convert a Keras model to an ONNX bundle, checked against Keras")
    p.prog = "python -m export onnx"
    p.add_argument("src", metavar="RUN_DIR_or_MODEL.keras")
    p.add_argument("--out", required=True, metavar="BUNDLE_DIR")
    p.add_argument("--opset", type=int, default=keras_onnx.DEFAULT_OPSET,
                   help="ONNX opset (default %d; TensorRT 8.x parses up to %d)"
                        % (keras_onnx.DEFAULT_OPSET, keras_onnx.TENSORRT8_MAX_OPSET))
    p.add_argument("--atol", type=float, default=parity.DEFAULT_ATOL,
                   help="largest Keras/ONNX difference allowed, times the output's range where that is above 1 "
                        "(default %g)" % parity.DEFAULT_ATOL)
    p.add_argument("--samples", metavar="DIR", help="real images for the parity check and the bundle "
                                                    "(default: the run's own held-out samples)")
    add_max_image_pixels(p)
    _loading_options(p)
    g = p.add_argument_group("for a model that train did not make (no meta.json beside it)")
    g.add_argument("--name", help="the bundle's name")
    g.add_argument("--task", choices=TASKS, help="default: from the output layer")
    g.add_argument("--labels", type=_labels, help="comma-separated, or a file with one label a line")
    g.add_argument("--color", choices=COLORS, help="colour the network expects (default rgb, gray for 1 channel)")
    g.add_argument("--scale", type=_scale, help="input = pixel * scale + offset (default 1/255)")
    g.add_argument("--offset", type=_scale, help="(default 0)")
    g.add_argument("--interpolation", choices=INTERPOLATIONS, help="resize method (default linear)")

    engine_command.add_parser(sub, "python -m export engine")  # python -m runtime engine, by its older name

    p = sub.add_parser("variants", help="write fp16 and int8 (Q/DQ) variants of the bundle's ONNX and check them")
    p.prog = "python -m export variants"
    p.add_argument("bundle", metavar="BUNDLE_DIR")
    p.add_argument("--precision", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                   help="which variants (default: %s)" % " ".join(VARIANTS))
    engine_command.calibration_arguments(p)
    add_max_image_pixels(p)

    p = sub.add_parser("verify", help="run the bundle's samples through every backend here and compare with Keras")
    p.prog = "python -m export verify"
    p.add_argument("bundle", metavar="BUNDLE_DIR")
    p.add_argument("--keras", metavar="RUN_DIR_or_MODEL.keras", help="also run this Keras model now")
    _loading_options(p)
    p.add_argument("--data", metavar="PATH|DATASET", help="judge on more frames too: %s, or a folder, glob or "
                                                          "video (reference: model.onnx)" % " or ".join(DATASETS))
    p.add_argument("--frames", type=positive_int, default=DEFAULT_FRAMES, metavar="N",
                   help="how many --data frames (default %d)" % DEFAULT_FRAMES)
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    add_max_image_pixels(p)
    return parser


def _loading_options(p):
    p.add_argument("--custom-objects", action="append", default=[], metavar="FILE.py|MODULE",
                   help="import this first: the Python file or module that defines the model's custom layers "
                        "(repeatable)")
    p.add_argument("--unsafe", action="store_true",
                   help="load with Keras's safe_mode off: needed for Lambda layers, whose Python code is stored "
                        "in the file and runs when it loads; only for files you trust")


def command_variants(args):
    for precision in args.precision:
        path = variants.make(args.bundle, precision, args.calib_data, args.calib_frames)
        print("wrote %s" % path)
    report = verify.verify(args.bundle, data=args.calib_data, frames=args.calib_frames,  # other frames than
                           data_option="--calib-data")                                     # calibration's
    print(verify.table(report))
    if not report["passed"]:
        print("python -m export variants: a variant is outside its tolerance (see the table); it is kept in the "
              "bundle, but think before you deploy it", file=sys.stderr)
    return 0 if report["passed"] else 1


def command_verify(args):
    report = verify.verify(args.bundle, args.keras, args.data, args.frames,
                           keras_options={"unsafe": args.unsafe, "custom_objects": args.custom_objects})
    print(verify.table(report))
    if args.json:
        write_json(args.json, report)
    if not report["passed"]:
        print("python -m export verify: FAILED: a backend is outside its tolerance (see the table)", file=sys.stderr)
        return 1
    return 0


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"engine": engine_command.main, "variants": command_variants, "verify": command_verify}
    if args.command in commands:
        return commands[args.command](args)

    if not args.atol > 0:
        raise UserError("--atol must be positive")
    model_path, _ = resolve_source(args.src)
    keras_onnx.check_model_file(model_path)
    load_tensorflow()

    opts = Options(opset=args.opset, atol=args.atol, name=args.name, task=args.task, labels=args.labels,
                   color=args.color, scale=args.scale, offset=args.offset, interpolation=args.interpolation,
                   samples=args.samples, unsafe=args.unsafe, custom_objects=args.custom_objects)
    report = export(args.src, args.out, opts)
    worst = parity.worst(report)
    judged = "max |Keras - ONNX Runtime| (over the output's range where that is above 1)"
    if not report["passed"]:
        print("python -m export: parity FAILED: %s = %.3g (allowed %g) on %d samples; nothing was published, see "
              "%s.failed/parity.json" % (judged, worst, args.atol, report["samples"], args.out.rstrip("/")),
              file=sys.stderr)
        return 1
    print("parity: %s%s = %.3g on %d samples (allowed %g)" % (
        "VACUOUS, not a pass (the outputs barely move with the input; see the warning): " if report["vacuous"] else
        "", judged, worst, report["samples"], args.atol))
    print("wrote %s (model.onnx, manifest.json, parity.json, samples/; converted by the %s route)"
          % (args.out, report["route"]))
    return 0


if __name__ == "__main__":
    sys.exit(main("python -m export", _main))
