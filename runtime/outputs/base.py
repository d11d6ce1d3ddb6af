"""What every output is: Output (write(frame, result[, annotated]), close(), a context manager), and the
check that a file can be written where it is asked for."""

from __future__ import annotations

import os

from .. import overlay
from ..errors import UserError

MIN_FREE_BYTES = 4 << 20  # a file output stops while this much is left: room to close its file complete


class OutputStopped(UserError):
    """An output that cannot go on (its disk full, a write refused): the run stops cleanly, every output is
    closed with what it had, and `runtime run` says why (exit status 2)."""


def free_bytes(folder):
    """What an unprivileged writer may still put on the disk that holds folder."""
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def check_space(path, folder=None):
    """OutputStopped when the disk that holds path has less than MIN_FREE_BYTES left."""
    free = free_bytes(folder or os.path.dirname(os.path.abspath(path)))
    if free < MIN_FREE_BYTES:
        raise OutputStopped("the disk holding %s is full (%d KB left): the run stopped, and %s is complete up "
                            "to the frame before" % (path, free // 1024, path))


def check_writable(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError("cannot write %s: folder %s does not exist" % (path, folder))
    if not os.access(folder, os.W_OK):
        raise UserError("cannot write %s: folder %s is not writable" % (path, folder))


class Output:
    """write(frame, result[, annotated]) for each frame, close() at the end (also on `with`).
    wants_overlay: it shows frames, drawn with the result; closed_by_user: its user asked to stop (a window's
    q or Esc); finished: it wants no more frames (its user closed it, a recording has all it was asked for),
    which ends run()."""

    wants_overlay = False
    closed_by_user = False

    @property
    def finished(self):
        return self.closed_by_user

    def bind(self, model, source, stats):
        """Told by run() before the first frame what it runs: the model, the source and its live Stats (an
        output that reports on the run, as the browser view does, keeps them). Nothing by default."""

    def write(self, frame, result, annotated=None):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def annotate(frame, result, annotated):
        """The frame with the overlay: the caller's, or drawn here on a copy (the frame stays as it was)."""
        if annotated is not None:
            return annotated

        truth = frame.truth.get("steering") if frame.truth else None
        return overlay.draw(frame.image.copy(), result, None, truth)
