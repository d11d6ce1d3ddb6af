"""Keras against ONNX Runtime on the same inputs: the largest error per output, and whether it means anything.

An output passes when max |Keras - ONNX| <= atol x max(1, its range over the samples): absolute for
outputs within a unit range (probabilities, normalised steering), relative to the range for larger ones.

An output's parity is vacuous when the output barely moves with the input, so that a conversion error inside
the network could not show at the tolerance's size. Its spread is the largest, over the output's values, of the
standard deviation over the samples (the samples' own variation, not the differences between classes), and it
is vacuous when spread < VACUOUS_RATIO x atol x max(1, range), or with fewer than 2 samples: an error upstream
that moved the outputs by a tenth of their variation over the samples must exceed the tolerance. A dead or
saturated network (range 1e-5, error 0.0), or samples scaled into a range the network ignores, are vacuous;
parity then passes or fails as ever, and the report says "vacuous" beside it.
"""

from __future__ import annotations

import numpy as np

from runtime.detections import iou, pairs

DEFAULT_ATOL = 1e-4
VACUOUS_RATIO = 10.0  # the spread over the samples must be this many times the tolerance


def frame_at_a_time(run, x) -> list:
    """run (a batch -> a list of arrays, one per output) on each sample of x alone, the outputs joined again per
    output: a detector's decoding in the graph takes a batch of 1."""
    runs = [[np.asarray(o) for o in run(x[i:i + 1])] for i in range(len(x))]
    return [np.concatenate([r[j] for r in runs]) for j in range(len(runs[0]))]


def compare(keras_outputs, onnx_outputs, atol: float = DEFAULT_ATOL) -> dict:
    """A report (what parity.json holds): per output its errors, range and spread; report['passed'] says
    whether every output is within its tolerance, report['vacuous'] whether any output's parity is vacuous (its
    spread over the samples below VACUOUS_RATIO times its tolerance: the module's docstring)."""
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
        spread = float(np.std(k, axis=0).max()) if k.size else 0.0  # how much the samples' outputs differ
        tolerance = atol * max(1.0, value_range)
        vacuous = len(k) < 2 or spread < VACUOUS_RATIO * tolerance
        ok = max_abs <= tolerance
        report["outputs"].append({
            "index": i, "shape": list(k.shape), "max_abs_error": max_abs,
            "max_rel_error": float((diff / np.maximum(np.abs(k), 1e-6)).max()) if diff.size else 0.0,
            "range": value_range, "error_over_range": max_abs / value_range if value_range > 0 else None,
            "tolerance": tolerance, "spread_over_samples": spread,
            "spread_over_tolerance": spread / tolerance if tolerance > 0 else None, "vacuous": vacuous, "passed": ok})
        report["passed"] = report["passed"] and ok
        report["vacuous"] = report["vacuous"] or vacuous
    return report


def why_vacuous(report) -> str:
    """One phrase for the outputs whose parity is vacuous: which, their spread and their tolerance."""
    parts = ["output %d's spread over the samples (std %.2g) is below %g x its tolerance (%.2g)"
             % (o["index"], o["spread_over_samples"], VACUOUS_RATIO, o["tolerance"])
             for o in report.get("outputs", []) if o.get("vacuous") and "tolerance" in o]
    return "; ".join(parts) if parts else "fewer than 2 samples"


def worst(report) -> float:
    """The largest error over the output's range (absolute where the range is 1 or less), as judged."""
    if report.get("error"):
        return float("inf")
    return max((o["max_abs_error"] / max(1.0, o["range"]) if "max_abs_error" in o else float("inf")
                for o in report["outputs"]), default=0.0)


MIN_IOU, SCORE_TOL = 0.99, 1e-4


def compare_detections(keras_dets, onnx_dets, threshold, min_iou=MIN_IOU, score_tol=SCORE_TOL) -> dict:
    """A detector's decoded outputs, Keras's against the ONNX's: per sample (K, 6) rows x0 y0 x1 y1 score class.
    Every detection at or above the threshold on either side must have its own on the other: the same class,
    boxes at IoU >= min_iou and scores within score_tol, each taken once, pairs of best IoU first (TopK may
    order equal scores either way). Near-ties: a detection within score_tol of the threshold may have no
    counterpart (its score may fall either side); one that has a counterpart is held to the rule like any.
    Vacuous when no sample has a detection above the threshold: the decoding's parity then proves nothing (an
    untrained network)."""
    worst_iou, worst_score, unmatched, compared = 1.0, 0.0, 0, 0
    for k_rows, o_rows in zip(keras_dets, onnx_dets):
        k_rows, o_rows = np.asarray(k_rows, np.float64).reshape(-1, 6), np.asarray(o_rows, np.float64).reshape(-1, 6)
        k_rows = k_rows[k_rows[:, 4] >= threshold - score_tol]
        o_rows = o_rows[o_rows[:, 4] >= threshold - score_tol]
        pairs = _pairs(k_rows, o_rows, min_iou, score_tol)
        for rows, matched in ((k_rows, {a for a, _, _ in pairs}), (o_rows, {b for _, b, _ in pairs})):
            shown = np.where(rows[:, 4] >= threshold)[0]
            compared += len(shown)
            unmatched += sum(1 for i in shown if i not in matched and rows[i, 4] >= threshold + score_tol)
        for a, b, overlap in pairs:
            worst_iou = min(worst_iou, overlap)
            worst_score = max(worst_score, float(abs(k_rows[a, 4] - o_rows[b, 4])))
    return {"threshold": threshold, "min_iou": min_iou, "score_tol": score_tol, "compared": compared,
            "unmatched": unmatched, "worst_iou": worst_iou,  # over the pairs; `unmatched` counts the rest
            "worst_score_error": worst_score, "vacuous": compared == 0, "passed": unmatched == 0}


MIN_CLASS_AGREEMENT = 0.999  # a segmentation network's class maps: the share of pixels that must agree


def compare_classes(keras_maps, onnx_maps, min_agreement=MIN_CLASS_AGREEMENT) -> dict:
    """A segmentation network's class maps, Keras's against the ONNX's: the share of pixels with the same class
    (an ArgMax flips only where two classes' probabilities are within rounding). Vacuous when every pixel of
    every sample is one class: the map's parity then proves nothing (an untrained network)."""
    k, o = np.asarray(keras_maps), np.asarray(onnx_maps)
    if k.shape != o.shape:
        return {"error": "shape %s vs %s" % (k.shape, o.shape), "passed": False, "vacuous": False}
    agreement = float(np.mean(k == o)) if k.size else 1.0
    return {"pixels": int(k.size), "agreement": agreement, "min_agreement": min_agreement,
            "classes_seen": int(np.unique(k).size), "vacuous": np.unique(k).size < 2,
            "passed": agreement >= min_agreement}


def _pairs(a, b, min_iou, score_tol):
    """(index in a, index in b, IoU) pairs of the same class, IoU >= min_iou and scores within score_tol, each
    row in one pair at most, best IoU first."""
    if not len(a) or not len(b):
        return []
    overlaps = iou(a[:, :4], b[:, :4])
    fits = (a[:, None, 5] == b[None, :, 5]) & (np.abs(a[:, None, 4] - b[None, :, 4]) <= score_tol) & \
        (overlaps >= min_iou)
    return pairs(overlaps, fits)
