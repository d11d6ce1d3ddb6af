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


MIN_IOU, SCORE_TOL = 0.99, 1e-4


def compare_detections(keras_dets, onnx_dets, threshold, min_iou=MIN_IOU, score_tol=SCORE_TOL) -> dict:
    """A detector's decoded outputs, Keras's against the ONNX's: per sample (K, 6) rows x0 y0 x1 y1 score class.
    Every detection at or above the threshold in one must be in the other: the same class, boxes at IoU >=
    min_iou and scores within score_tol, matched best IoU first (TopK may order equal scores either way).
    Near-ties: a detection within score_tol of the threshold may be missing from the other side (its score
    may fall either side). Vacuous when no sample has a detection above the threshold: the decoding's parity
    then proves nothing (an untrained network)."""
    from runtime.detections import iou

    worst_iou, worst_score, unmatched, compared = 1.0, 0.0, 0, 0
    for k_rows, o_rows in zip(keras_dets, onnx_dets):
        k_rows, o_rows = np.asarray(k_rows, np.float64).reshape(-1, 6), np.asarray(o_rows, np.float64).reshape(-1, 6)
        for mine, theirs in ((k_rows, o_rows), (o_rows, k_rows)):
            shown = mine[mine[:, 4] >= threshold]
            candidates = theirs[theirs[:, 4] >= threshold - score_tol]
            overlaps = iou(shown[:, :4], candidates[:, :4]) if len(candidates) else np.zeros((len(shown), 0))
            for i, row in enumerate(shown):
                same = (candidates[:, 5] == row[5]) & (np.abs(candidates[:, 4] - row[4]) <= score_tol) \
                    if len(candidates) else np.zeros(0, bool)
                best = float(overlaps[i][same].max()) if same.any() else 0.0
                compared += 1
                if best < min_iou and row[4] >= threshold + score_tol:
                    unmatched += 1
                if same.any():
                    worst_iou = min(worst_iou, best)
                    j = np.where(same)[0][np.argmax(overlaps[i][same])]
                    worst_score = max(worst_score, float(abs(candidates[j, 4] - row[4])))
    return {"threshold": threshold, "min_iou": min_iou, "score_tol": score_tol, "compared": compared // 1,
            "unmatched": unmatched, "worst_iou": worst_iou, "worst_score_error": worst_score,
            "vacuous": compared == 0, "passed": unmatched == 0}
