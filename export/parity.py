"""Keras against ONNX Runtime on the same inputs: the largest error per output, and whether it means anything.

An output passes when max |Keras - ONNX| <= atol x max(1, its range over the samples): absolute for
outputs within a unit range (probabilities, normalised steering), relative to the range for larger ones.
A check is vacuous when every sample gives the same output (a dead or saturated network, a constant
head): 0.0 error then proves nothing about the conversion, and the report says so.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ATOL = 1e-4
VACUOUS_SPREAD = 1e-6  # relative to the output's size: below this every sample gave the same output


def compare(keras_outputs, onnx_outputs, atol: float = DEFAULT_ATOL) -> dict:
    """A report (what parity.json holds): per output its errors, range and spread; report['passed'] says
    whether every output is within its tolerance, report['vacuous'] whether any output is the same for all."""
    report = {"atol": atol, "outputs": [], "passed": True, "vacuous": False}
    if len(keras_outputs) != len(onnx_outputs):
        report.update(passed=False, error="Keras gives %d outputs, the ONNX %d" % (len(keras_outputs),
                                                                                  len(onnx_outputs)))
        return report
    for i, (k, o) in enumerate(zip(keras_outputs, onnx_outputs)):
        k, o = np.asarray(k, np.float64), np.asarray(o, np.float64)
        if k.shape != o.shape:
            report["outputs"].append({"index": i, "error": "shape %s vs %s" % (k.shape, o.shape), "passed": False})
            report["passed"] = False
            continue
        diff = np.abs(k - o)
        max_abs = float(diff.max()) if diff.size else 0.0
        value_range = float(k.max() - k.min()) if k.size else 0.0
        spread = float(np.ptp(k, axis=0).max()) if k.size else 0.0  # how much the samples' outputs differ
        vacuous = len(k) < 2 or spread <= VACUOUS_SPREAD * max(1.0, float(np.abs(k).max()))
        ok = max_abs <= atol * max(1.0, value_range)
        report["outputs"].append({
            "index": i, "shape": list(k.shape), "max_abs_error": max_abs,
            "max_rel_error": float((diff / np.maximum(np.abs(k), 1e-6)).max()) if diff.size else 0.0,
            "range": value_range, "error_over_range": max_abs / value_range if value_range > 0 else None,
            "spread_over_samples": spread, "vacuous": vacuous, "passed": ok})
        report["passed"] = report["passed"] and ok
        report["vacuous"] = report["vacuous"] or vacuous
    return report


def worst(report) -> float:
    """The largest error over the output's range (absolute where the range is 1 or less), as judged."""
    if report.get("error"):
        return float("inf")
    return max((o["max_abs_error"] / max(1.0, o["range"]) if "max_abs_error" in o else float("inf")
                for o in report["outputs"]), default=0.0)
