"""display://0: a window with the overlay (OpenCV's highgui; q or Esc stops the run)."""

from __future__ import annotations

import os
import sys

from ..errors import UserError, require
from .base import Output


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


class DisplayOutput(Output):
    """A window with the overlay; q or Esc stops the run."""

    wants_overlay = True

    def __init__(self, title="runtime"):
        self.cv2 = require("cv2", "opencv", "showing a window")
        self.title = title
        try:
            self.cv2.namedWindow(title, self.cv2.WINDOW_NORMAL)
        except self.cv2.error:
            raise UserError("this OpenCV cannot open a window (a headless build, or no display); "
                            "run with --no-display") from None
        self.closed_by_user = False

    def write(self, frame, result, annotated=None):
        self.cv2.imshow(self.title, self.annotate(frame, result, annotated))
        if self.cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed_by_user = True

    def close(self):
        self.cv2.destroyWindow(self.title)


def open_display(uri, fps=30.0, **_):
    return DisplayOutput("runtime" if uri in ("display://0", "display://") else "runtime " + uri[len("display://"):])
