"""python -m export onnx: Keras model -> checked ONNX bundle.

    python -m export onnx runs/pilotnet --out bundles/pilotnet
    python -m export onnx my_model.keras --out bundles/mine --samples my_images/ --labels cat,dog
"""

from __future__ import annotations

import os
import sys

from runtime.bundle import INTERPOLATIONS, COLORS, TASKS
from runtime.cli import ArgumentParser, UserError, main

from . import keras_onnx, parity


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
                   help="largest absolute Keras/ONNX difference allowed (default %g)" % parity.DEFAULT_ATOL)
    p.add_argument("--samples", metavar="DIR", help="real images for the parity check and the bundle "
                                                    "(default: the run's own held-out samples)")
    g = p.add_argument_group("for a model that train did not make (no meta.json beside it)")
    g.add_argument("--name", help="the bundle's name")
    g.add_argument("--task", choices=TASKS, help="default: from the output layer")
    g.add_argument("--labels", type=_labels, help="comma-separated, or a file with one label a line")
    g.add_argument("--color", choices=COLORS, help="colour the network expects (default rgb, gray for 1 channel)")
    g.add_argument("--scale", type=_scale, help="input = pixel * scale + offset (default 1/255)")
    g.add_argument("--offset", type=_scale, help="(default 0)")
    g.add_argument("--interpolation", choices=INTERPOLATIONS, help="resize method (default linear)")
    return parser


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import load_tensorflow
    from .onnx_bundle import Options, export, resolve_source

    if not args.atol > 0:
        raise UserError("--atol must be positive")
    model_path, _ = resolve_source(args.src)
    keras_onnx.check_model_file(model_path)
    load_tensorflow()

    opts = Options(opset=args.opset, atol=args.atol, name=args.name, task=args.task, labels=args.labels,
                   color=args.color, scale=args.scale, offset=args.offset, interpolation=args.interpolation,
                   samples=args.samples)
    report = export(args.src, args.out, opts)
    worst = max((o.get("max_abs_error", float("inf")) for o in report["outputs"]), default=0.0)
    if not report["passed"]:
        print("python -m export: parity FAILED: Keras and ONNX Runtime differ by up to %.3g (allowed %g) on %d "
              "samples; nothing was published, see %s.failed/parity.json"
              % (worst, args.atol, report["samples"], args.out.rstrip("/")), file=sys.stderr)
        return 1
    print("parity: max |Keras - ONNX Runtime| = %.3g on %d samples (allowed %g)"
          % (worst, report["samples"], args.atol))
    print("wrote %s (model.onnx, manifest.json, parity.json, samples/)" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main("python -m export", _main))
