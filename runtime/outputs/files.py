"""FILE.mp4|.avi|.mkv ...: a video of annotated frames; FILE.jsonl: one JSON line per frame; --masks DIR: a
segmentation network's class map per frame, as a PNG.

Names of any bytes work (a video whose name is not UTF-8 is written through a link with a plain name:
runtime/images.py). A JSON-lines file never ends in a torn line: a write that fails part-way (a full disk)
is cut back to the last whole line.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import stat

from .. import images
from ..cli import number_in
from ..errors import UserError, require
from .base import Output, OutputStopped, check_space, check_writable

VIDEO_EXTS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoOutput(Output):
    """Annotated frames to a video file (opened at the first frame, when its size is known)."""

    wants_overlay = True

    def __init__(self, path, fps=30.0):
        ext = os.path.splitext(path)[1].lower()
        if ext not in VIDEO_EXTS:
            raise UserError("cannot write video %s: use one of %s" % (path, ", ".join(sorted(VIDEO_EXTS))))
        check_writable(path)
        self.cv2 = require("cv2", "opencv", "writing video")
        self.path, self.fps, self.fourcc = path, fps, VIDEO_EXTS[ext]
        self.folder = os.path.dirname(os.path.abspath(path))
        self.writer = self.name = None

    def write(self, frame, result, annotated=None):
        annotated = self.annotate(frame, result, annotated)
        if self.writer is None:
            h, w = annotated.shape[:2]
            fourcc = self.cv2.VideoWriter_fourcc(*self.fourcc)
            self.name = images.OpenCvName(self.path)  # a name that is not UTF-8 crashed OpenCV
            self.writer = self.cv2.VideoWriter(self.name.name, fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise UserError("OpenCV cannot write %s with codec %s" % (images.shown(self.path), self.fourcc))
        check_space(images.shown(self.path), self.folder)  # OpenCV's writer says nothing when the disk is full
        self.writer.write(annotated)                         # (2 us a frame)

    def close(self):
        if self.writer is not None:
            self.writer.release()
        if self.name is not None:
            self.name.close()


MB = 1000 * 1000  # --jsonl-max-mb counts in 10^6 bytes
MAX_MB_RANGE = (0.01, 1e6)  # 10 KB (tests) to 1 TB
KEEP_RANGE = (1, 999)
DEFAULT_KEEP = 5

Rotation = collections.namedtuple("Rotation", "max_bytes keep")


def count_in(low, high, unit):
    """argparse type: a whole number (ASCII digits) within [low, high]."""
    def parse(text):
        digits = text.strip()
        value = int(digits) if digits and all(c in "0123456789" for c in digits) and len(digits) < 10 else -1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError("give a whole number of %s from %d to %d, not %r"
                                             % (unit, low, high, text))
        return value

    parse.__name__ = unit
    return parse


def add_rotation_options(parser, option="--jsonl"):
    """OPTION-max-mb MB and OPTION-keep K: rotate a JSON-lines file as logging's RotatingFileHandler does."""
    parser.add_argument(option + "-max-mb", type=number_in(*MAX_MB_RANGE, "megabytes"), metavar="MB",
                        help="rotate a JSON-lines file before it grows past MB megabytes (10^6 bytes; %g to %g): "
                             "FILE becomes FILE.1, FILE.1 becomes FILE.2 ... up to %s-keep, the oldest dropped; a "
                             "line is never split; FILE is appended to, not emptied, when started again (default: "
                             "one file, emptied at the start, never rotated)" % (MAX_MB_RANGE + (option,)))
    parser.add_argument(option + "-keep", type=count_in(*KEEP_RANGE, "files"), metavar="K",
                        help="with %s-max-mb: how many rotated files to keep (default %d; %d to %d)"
                             % ((option, DEFAULT_KEEP) + KEEP_RANGE))


def rotation(max_mb=None, keep=None, option="--jsonl"):
    """The Rotation --jsonl-max-mb and --jsonl-keep ask for, or None (no rotation)."""
    if max_mb is None:
        if keep is not None:
            raise UserError("%s-keep needs %s-max-mb (the size at which a file rotates)" % (option, option))
        return None
    return Rotation(int(max_mb * MB), DEFAULT_KEEP if keep is None else keep)


class LineFile:
    """Lines (bytes, each ending in a newline) to a file, each written whole in one write, unbuffered (a reader can
    follow a live run: tail -F), and the file never left ending in a torn line: a write that fails part-way (a
    full disk) or is interrupted is cut back to the last whole line and raises; what to do then is the caller's
    (JsonlOutput stops the run; runtime vehicle's log stops logging, not the receiver).

    With rotation (a Rotation), as logging's RotatingFileHandler: before a line would take FILE past max_bytes,
    FILE.keep-1 becomes FILE.keep ... FILE.1 FILE.2, FILE becomes FILE.1 (the oldest dropped), and a new FILE
    starts; a line is never split, and one longer than max_bytes has a file of its own. A rotated FILE is opened
    to append (a restarted service goes on where it was; a torn line a power cut left at its end is cut off
    first); it must be a plain file (a device, a FIFO or a link cannot be renamed in turn). Without rotation FILE
    is emptied at the start, and may be anything that can be written (/dev/stdout, a FIFO)."""

    def __init__(self, path, rotation=None, wait_for_reader=True):
        self.path, self.rotation, self.lines = path, rotation, 0
        self.name = os.fsdecode(os.fspath(path))
        self.wait_for_reader = wait_for_reader  # False: a FIFO nobody reads is ENXIO now, not a wait for ever
        if rotation is not None:
            try:
                mode = os.lstat(self.name).st_mode
            except FileNotFoundError:
                mode = stat.S_IFREG
            if not stat.S_ISREG(mode):
                raise UserError("%s is not a plain file (a device, a FIFO or a link): it cannot be rotated; drop "
                                "--jsonl-max-mb or name a file" % images.shown(path))
            self._check_rotated()
        self.fd = self._open(append=rotation is not None)
        try:
            self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)
            self.end = self._whole_end() if self.regular else 0  # where the last whole line ends
        except OSError:
            self.regular, self.end = False, 0

    def _open(self, append):
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | (0 if append else os.O_TRUNC)
        fd = os.open(self.name, flags | (0 if self.wait_for_reader else os.O_NONBLOCK), 0o666)
        if not self.wait_for_reader:
            os.set_blocking(fd, True)
        return fd

    def _whole_end(self):
        """The file's size, once a torn last line (a power cut while appending) is cut off."""
        size = os.fstat(self.fd).st_size
        if size == 0:
            return 0
        with open(self.name, "rb") as f:
            end = size
            while end > 0:
                start = max(0, end - 65536)
                f.seek(start)
                chunk = f.read(end - start)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    end = start + newline + 1
                    break
                end = start
        if end != size:
            os.ftruncate(self.fd, end)
        return end

    def write(self, data):
        """One whole line; OSError (the file cut back to its last whole line) when it cannot be written."""
        if self.regular:  # the size as it is, not as it was: logrotate's copytruncate may have emptied it
            self.end = os.fstat(self.fd).st_size
        if self.rotation is not None and self.end and self.end + len(data) > self.rotation.max_bytes:
            self._rotate()
        try:
            rest = memoryview(data)
            while rest:
                written = os.write(self.fd, rest)  # a full disk can take part of a line, then refuse the rest
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                rest = rest[written:]
        except BaseException:  # a full disk (ENOSPC), an I/O error, a non-blocking reader not reading, a 2nd Ctrl-C
            self._cut()
            raise
        self.lines += 1
        self.end += len(data)

    def _check_rotated(self):
        """UserError where a FILE.1 ... FILE.K that rotation would rename is not a plain file (a folder, a link):
        not this run's to move (found by attacking the rotation: a folder FILE.2 was moved to FILE.3)."""
        for i in range(1, self.rotation.keep + 1):
            older = "%s.%d" % (self.name, i)
            try:
                mode = os.lstat(older).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(mode):
                raise UserError("%s is not a plain file, and rotating %s would move it: move it away or name "
                                "another file" % (images.shown(older), images.shown(self.path)))

    def _rotate(self):
        """FILE.K-1 -> FILE.K ... FILE -> FILE.1, then a new FILE; the old one stays open until the new one is."""
        self._check_rotated()
        for i in range(self.rotation.keep - 1, 0, -1):
            older = "%s.%d" % (self.name, i)
            if os.path.lexists(older):
                os.replace(older, "%s.%d" % (self.name, i + 1))
        if os.path.lexists(self.name):  # (not when something else moved it away: logrotate, a user)
            os.replace(self.name, self.name + ".1")
        fd = self._open(append=False)
        os.close(self.fd)
        self.fd, self.end = fd, 0

    def _cut(self):
        """Truncate the file to its last whole line (a pipe or a device keeps what it took: it cannot be cut)."""
        if self.regular:
            try:
                os.ftruncate(self.fd, self.end)
            except OSError:
                pass

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class JsonlOutput(Output):
    """One JSON object per frame: frame, timestamp (capture, epoch s), latency_ms, result, truth; rotated with
    --jsonl-max-mb (LineFile)."""

    def __init__(self, path, rotation=None):
        check_writable(path)
        self.path = path
        try:
            self.file = LineFile(path, rotation)
        except OSError as exc:
            raise UserError("cannot write %s: %s" % (images.shown(path), exc.strerror or exc)) from None

    @property
    def lines(self):
        return self.file.lines

    def write(self, frame, result, annotated=None):
        line = {"frame": frame.index, "timestamp": round(frame.timestamp, 6),
                "latency_ms": None if frame.latency_ms is None else round(frame.latency_ms, 3), "result": result}
        if frame.truth is not None:
            line["truth"] = frame.truth
        try:
            self.file.write((json.dumps(line) + "\n").encode("utf-8"))
        except OSError as exc:  # a full disk (ENOSPC), an I/O error: the file ends in its last whole line
            kept = ("its first %d line(s) are kept" % self.lines if self.file.rotation is None else
                    "its %d line(s) so far are kept, in it and its rotated files" % self.lines)
            raise OutputStopped("cannot write %s: %s: the run stopped; %s"
                                % (images.shown(self.path), exc.strerror or exc, kept)) from None

    def close(self):
        self.file.close()


class MaskFiles(Output):
    """A segmentation bundle's class map per frame, as DIR/NNNNNNNN.png (the source's frame index): lossless
    8-bit PNGs of class indices at the network's size, what Cityscapes-style tools read. Every `every`-th frame
    only, if asked; the run stops cleanly when the disk is nearly full, as the video's does."""

    def __init__(self, folder, every=1):
        if not os.path.isdir(folder):
            raise UserError("--masks %s: %s" % (images.shown(folder), "not a folder" if os.path.exists(folder) else
                                                "no such folder (make it first)"))
        if not os.access(folder, os.W_OK):
            raise UserError("--masks %s: the folder is not writable" % images.shown(folder))
        self.cv2 = require("cv2", "opencv", "writing mask files")
        self.folder, self.every, self.written, self.last = folder, every, 0, None

    @staticmethod
    def check(bundles):
        """A one-line UserError unless one of the bundles run is a segmentation bundle."""
        if not any(b.task == "segmentation" for b in bundles):
            raise UserError("--masks is for segmentation bundles; %s" % (
                "%s is a %s bundle" % (bundles[0].name, bundles[0].task) if bundles else "a recording has none"))

    def bind(self, model, source, stats):
        self.check(getattr(model, "bundles", None) or ([model.bundle] if model is not None else []))

    def write(self, frame, result, annotated=None):
        segmented = next((r for _, r in result.parts if getattr(r, "mask", None) is not None), None)
        if segmented is None:
            return
        index = segmented.get("frame", frame.index)  # the frame it was made from (several networks: maybe older)
        if index == self.last or index % self.every:
            return  # once for each frame the network saw
        self.last, mask = index, segmented.mask
        path = os.path.join(self.folder, "%08d.png" % index)
        check_space(images.shown(path), self.folder)
        ok, data = self.cv2.imencode(".png", mask.astype("uint8"))
        try:
            with open(path, "wb") as f:
                f.write(data.tobytes())
        except OSError as exc:
            raise OutputStopped("cannot write %s: %s: the run stopped; %d mask(s) written before it"
                                % (images.shown(path), exc.strerror or exc, self.written)) from None
        self.written += 1


def path_of(uri):
    """A file output's path: file://PATH or PATH."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


def open_file(uri, fps=30.0, rotation=None, **_):
    path = path_of(uri)
    return JsonlOutput(path, rotation) if path.lower().endswith(".jsonl") else VideoOutput(path, fps)
