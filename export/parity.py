"""Keras against ONNX Runtime on the same inputs: the largest absolute and relative error per output."""

from __future__ import annotations

import numpy as np

DEFAULT_ATOL = 1e-4


def compare(keras_outputs, onnx_outputs, atol: float = DEFAULT_ATOL) -> dict:
    """A report (what parity.json holds); report['passed'] says whether every output is within atol."""
    report = {"atol": atol, "outputs": [], "passed": True}
    for i, (k, o) in enumerate(zip(keras_outputs, onnx_outputs)):
        k, o = np.asarray(k, np.float64), np.asarray(o, np.float64)
        if k.shape != o.shape:
            report["outputs"].append({"index": i, "error": "shape %s vs %s" % (k.shape, o.shape)})
            report["passed"] = False
            continue
        diff = np.abs(k - o)
        max_abs = float(diff.max()) if diff.size else 0.0
        max_rel = float((diff / np.maximum(np.abs(k), 1e-6)).max()) if diff.size else 0.0
        ok = max_abs <= atol
        report["outputs"].append({"index": i, "shape": list(k.shape), "max_abs_error": max_abs,
                                  "max_rel_error": max_rel, "passed": ok})
        report["passed"] = report["passed"] and ok
    return report
