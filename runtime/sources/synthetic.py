"""synthetic://road: the procedural road as a camera (frames carry the true steering)."""

from __future__ import annotations

import time

from ..errors import UserError
from .base import Source


class SyntheticRoad(Source):
    """Rendered as fast as it is read (every frame); with a rate, paced like a camera (newest frame wins)."""

    def __init__(self, width=None, height=None, rate=None, seed=0):
        from ..road import RoadDrive

        self.uri = "synthetic://road"
        self.live = rate is not None
        self.width, self.height = width or 640, height or 360
        self.rate = rate
        self.fps = float(rate or 30.0)
        try:
            self.drive = RoadDrive(self.width, self.height, seed=seed, fps=self.fps)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def _images(self):
        period = 1.0 / self.rate if self.rate else 0.0
        next_t = time.perf_counter()
        while True:
            if period:
                next_t += period
                delay = next_t - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            frame, label = self.drive.next()
            yield frame, {"steering": label}


def open_synthetic(uri, width=None, height=None, rate=None, **_):
    if uri.rstrip("/") != "synthetic://road":
        raise UserError("unknown synthetic source %r (there is synthetic://road)" % uri)
    return SyntheticRoad(width, height, rate)
