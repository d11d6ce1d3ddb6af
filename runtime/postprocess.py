"""Network outputs -> a result a person or a controller can use, per the bundle's task.

classification: the top class, its label and confidence (softmax applied if the net gives logits)
binary:         the probability of the positive label and the label chosen at 0.5
steering:       the normalised steering value and the inverse turning radius it means
regression:     the raw values
Outputs that are NaN or infinite give a result with `invalid` set and the task's fields None.
"""

from __future__ import annotations

import numpy as np


INVALID = "the network gave NaN or infinite values"
_KEYS = {"classification": ("class_id", "label", "confidence", "top"),
         "binary": ("class_id", "label", "confidence", "probability"),
         "steering": ("steering", "inverse_radius"), "regression": ("values",)}


class Result(dict):
    """One frame's result: a plain dict (it goes to JSON as is) with a one-line `text` for overlays. When the
    network's output is not finite, `invalid` says so and the task's fields are None (JSON null)."""

    @property
    def text(self) -> str:
        if "invalid" in self:
            return "invalid output (NaN/inf)"
        if "label" in self:
            return "%s %.1f%%" % (self["label"], 100.0 * self["confidence"])
        if "steering" in self:
            return "steer %+.3f" % self["steering"]
        return " ".join("%.4g" % v for v in self["values"])


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class Postprocessor:
    def __init__(self, task: str, labels, outputs, curvature_per_unit=None, top_k: int = 5):
        """curvature_per_unit: a steering bundle's Bundle.curvature_per_unit (inverse_radius, right-positive)."""
        self.task = task
        self.labels = list(labels)
        self.activation = outputs[0].get("activation", "linear")
        self.curvature_per_unit = curvature_per_unit
        self.top_k = top_k

    def __call__(self, outputs, row: int = 0, frame_size=None) -> Result:
        """outputs: the backend's list of arrays; row: which item of the batch; frame_size (width, height):
        the frame's, for results given in its pixels (a detector's boxes)."""
        y = np.asarray(outputs[0][row], dtype=np.float64).reshape(-1)
        if not np.isfinite(y).all():  # flagged, not a crash: a broken engine or input must not stop a vehicle's loop
            return Result(dict.fromkeys(_KEYS[self.task]), invalid=INVALID)
        if self.task == "classification":
            probs = y if self.activation == "softmax" else _softmax(y)
            order = np.argsort(-probs)[:self.top_k]
            top = int(order[0])
            return Result(class_id=top, label=self._label(top), confidence=float(probs[top]),
                          top=[[int(i), self._label(int(i)), float(probs[i])] for i in order])
        if self.task == "binary":
            p = float(y[0] if self.activation == "sigmoid" else _sigmoid(y[0]))
            positive = p >= 0.5
            return Result(class_id=int(positive), label=self._label(int(positive)),
                          confidence=p if positive else 1.0 - p, probability=p)
        if self.task == "steering":
            value = float(y[0])
            result = Result(steering=value)
            if self.curvature_per_unit is not None:  # right-positive for every bundle, as the control line's
                result["inverse_radius"] = value * self.curvature_per_unit
            return result
        return Result(values=[float(v) for v in y])

    def _label(self, i: int) -> str:
        return self.labels[i] if i < len(self.labels) else str(i)
