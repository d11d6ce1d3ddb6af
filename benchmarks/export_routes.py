"""Which Keras -> ONNX route is right more often: each of export's two routes (export/keras_onnx.py) on every
family keras.applications ships (tests/export/families.py: the smallest model of each at 96x96, random weights
woken as the tests wake them, fed road frames scaled by the family's own preprocess_input) and a Functional model
with augmentation, an adapted Normalization and a custom layer, judged as export judges (a sound ONNX: one input,
standard ops; then export/parity.compare on 16 fresh frames: within 1e-4 of the output's range, and whether that
parity is vacuous). By hand, a family at a time in a fresh model (ConvNeXt, InceptionResNetV2 and NASNet take a
minute or more each on 2 cores; give --families to run a few): docs/export.md quotes its table.

    .venv/bin/python benchmarks/export_routes.py [--families ConvNeXtTiny,VGG16] [--no-functional]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _models(names, functional):
    """(name, model, its inputs on 16 fresh frames), one at a time: a family's model is dropped before the next."""
    import keras

    from tests.export import families

    fresh = families.frames(16, seed=99)
    for name in names:
        keras.backend.clear_session()
        yield name, families.family(name), families.inputs(fresh, **families.FAMILIES[name])
    if functional:
        import pathlib

        from tests.export.test_export_any import _functional_model

        with tempfile.TemporaryDirectory() as tmp:
            yield ("Functional (augmentation, Normalization, custom layer)", _functional_model(pathlib.Path(tmp))[0],
                   families.inputs(fresh))


def main():
    from tests.export import families

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(families.FAMILIES),
                        help="keras.applications models, comma-separated (default: all of tests/export/families.py)")
    parser.add_argument("--routes", default=",".join(("frozen", "keras")), help="routes to try (default: both)")
    parser.add_argument("--no-functional", action="store_true", help="leave out the Functional model")
    args = parser.parse_args()

    from export import keras_onnx, load_tensorflow, parity

    load_tensorflow()
    import onnxruntime as ort

    routes = args.routes.split(",")
    right, count = {route: 0 for route in routes}, 0
    print("%-40s %-7s %-16s %9s %12s %8s  %s" % ("model", "route", "verdict", "err/range", "spread/tol", "seconds",
                                                 "why"), flush=True)
    for name, model, x in _models([f for f in args.families.split(",") if f], not args.no_functional):
        count += 1
        reference = model.predict(x, verbose=0)
        for route in routes:
            started = time.perf_counter()
            proto, problem = keras_onnx._convert_by(route, model, tuple(model.inputs[0].shape[1:]), 15)
            seconds = time.perf_counter() - started
            report = None
            if proto is not None:
                session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
                report = parity.compare([reference], session.run(None, {"input": x}))
                problem = None if report["passed"] else "parity"
            right[route] += problem is None
            out = report["outputs"][0] if report else {}
            verdict = ("right" if problem is None else "WRONG") + (" (vacuous)" if out.get("vacuous") else "")
            print("%-40s %-7s %-16s %9s %12s %8.1f  %s" % (
                name[:40], route, verdict, "-" if report is None else "%.2g" % parity.worst(report),
                "%.3g" % out["spread_over_tolerance"] if out else "-", seconds, (problem or "")[:110]), flush=True)
    print("right: " + ", ".join("%s %d of %d" % (r, n, count) for r, n in right.items()))


if __name__ == "__main__":
    main()
