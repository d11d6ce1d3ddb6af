"""Which Keras -> ONNX route is right more often: each of export's two routes (export/keras_onnx.py) on
keras.applications' edge families (96x96, random weights woken as tests/export/test_export_any.py does) and a
Functional model with augmentation, an adapted Normalization and a custom layer, judged as export judges
(a sound ONNX: one input, standard ops; then parity with Keras on 16 frames within 1e-4 of the output's
range). By hand (a few minutes): the README quotes its table.

    .venv/bin/python benchmarks/export_routes.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def main():
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()

    from export import keras_onnx, load_tensorflow

    load_tensorflow()
    import onnxruntime as ort

    from tests.test_export_any import FAMILIES, _family, _frames, _functional_model, _inputs

    frames = _frames(16, seed=99)
    models, x = {}, {}
    for family in FAMILIES:
        models[family] = _family(family)
        x[family] = _inputs(frames, **FAMILIES[family])
    with tempfile.TemporaryDirectory() as tmp:
        import pathlib

        name = "Functional (augmentation, Normalization, custom layer)"
        models[name], x[name] = _functional_model(pathlib.Path(tmp))[0], _inputs(frames)
    right = {route: 0 for route in keras_onnx.ROUTES}
    print("%-56s %-7s %-9s %10s %8s  %s" % ("model", "route", "verdict", "err/range", "seconds", "why"))
    for name, model in models.items():
        reference = model.predict(x[name], verbose=0)
        span = float(reference.max() - reference.min()) or 1.0
        for route in keras_onnx.ROUTES:
            started = time.perf_counter()
            proto, problem = keras_onnx._convert_by(route, model, tuple(model.inputs[0].shape[1:]), 15)
            seconds = time.perf_counter() - started
            error = None
            if proto is not None:
                session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
                error = float(np.abs(session.run(None, {"input": x[name]})[0] - reference).max()) / span
                problem = None if error <= 1e-4 else "parity"
            right[route] += problem is None
            print("%-56s %-7s %-9s %10s %8.1f  %s" % (name[:56], route, "right" if problem is None else "WRONG",
                                                     "-" if error is None else "%.2g" % error, seconds,
                                                     (problem or "")[:100]))
    print("right: " + ", ".join("%s %d of %d" % (r, n, len(models)) for r, n in right.items()))


if __name__ == "__main__":
    main()
