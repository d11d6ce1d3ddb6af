"""file://PATH or PATH: a video file, an image, a folder of images or a glob of images (every frame, in
order; --input-loop to loop). A path that exists is that file or folder, even when its name holds the glob's `*`,
`?` or `[` (`frame[1].png`, `run[1]/`); only a path that does not exist is tried as a glob, and in a glob a
folder that exists under its very name is that folder (`run[1]/*.png`).

Names of any bytes work (runtime/images.py: images are read by Python and decoded from memory, a video whose
name is not UTF-8 is opened through a link with a plain name). Images are held to the pixel budget from their
header before they are decoded, and only regular files are read as images: a single image over the budget, or
a FIFO or device named like one, is one line; in a folder or glob it is skipped with a warning and counted
(`skipped N unusable frame(s)` in the summary). A video's frame size is held to the budget too.
"""

from __future__ import annotations

import glob
import os
import stat
import sys

from .. import images
from ..errors import UserError, native_stderr_silenced, printable, require
from .base import IMAGE_EXTS, OPEN_TIMEOUT, Source, resized, within


def _capture(cv2, name, path):
    """cv2.VideoCapture(name). A FIFO's or a device's open blocks in the kernel until a writer comes, where no
    signal reaches Python: it is opened in a thread of its own (base.within; a Ctrl-C is honoured while it waits)
    and given OPEN_TIMEOUT seconds, as a camera is."""
    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        regular = True  # OpenCV says what is wrong
    if regular:
        with native_stderr_silenced():  # FFmpeg's own complaints; ours follows in one line
            return cv2.VideoCapture(name)
    cap = within(OPEN_TIMEOUT, lambda: cv2.VideoCapture(name))
    if cap is None:
        raise UserError("cannot open video %s: it is not a file (a FIFO or a device) and nothing came through it "
                        "within %.0f s" % (images.shown(path), OPEN_TIMEOUT))
    return cap


class VideoFile(Source):
    def __init__(self, path, width=None, height=None, loop=False):
        cv2 = require("cv2", "opencv", "reading video files")
        self.uri, self.path, self.loop = "file://" + images.shown(path), path, loop
        self.size = (width, height) if width and height else None
        self.name = images.OpenCvName(path)  # a name that is not UTF-8 crashed OpenCV
        try:
            self.cap = _capture(cv2, self.name.name, path)
            if not self.cap.isOpened():
                raise UserError("cannot open video %s: not a video, or this OpenCV has no decoder for it"
                                % images.shown(path))
            frame_w, frame_h = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            why = images.over_budget(frame_w, frame_h)
            if why:
                self.cap.release()
                raise UserError("cannot read video %s: its frames are %s" % (images.shown(path), why))
        except BaseException:
            self.name.close()
            raise
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.cv2 = cv2

    def _images(self):
        while True:
            ok, image = self.cap.read()
            if not ok and self.loop:
                self.cap.set(self.cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self.cap.read()
            if not ok:
                return
            yield resized(self.cv2, image, self.size), None

    def close(self):
        self.cap.release()
        self.name.close()


class Images(Source):
    def __init__(self, paths, uri, width=None, height=None, loop=False):
        self.cv2 = require("cv2", "opencv", "reading images")
        self.paths, self.uri, self.loop = paths, printable(uri), loop
        self.size = (width, height) if width and height else None
        self.warned = set()

    def _images(self):
        while True:
            given = 0
            for path in self.paths:
                try:
                    image = images.read_image(path)
                except images.ImageError as exc:
                    if len(self.paths) == 1:
                        raise
                    self.skipped += 1  # counted in the summary, as an unusable frame is
                    if path not in self.warned:  # once, however often --input-loop comes back to it
                        self.warned.add(path)
                        print("warning: skipping %s: %s" % (images.shown(path), exc.why), file=sys.stderr)
                    continue
                given += 1
                yield resized(self.cv2, image, self.size), None
            if not self.loop or not given:  # a loop over files none of which can be read would never end
                return


def glob_images(pattern):
    """The paths a glob matches, its folder taken as itself where a folder of that very name exists (`run[1]/*.png`:
    the folder run[1], not run1), as a path that exists is."""
    folder, name = os.path.split(pattern)
    if folder and any(c in folder for c in "*?[") and os.path.isdir(folder):
        pattern = os.path.join(glob.escape(folder), name)
    return glob.glob(pattern)


def open_path(uri, width=None, height=None, loop=False, **_):
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" in path:
        raise UserError("unknown source %r (use csi://N, v4l2:///dev/videoN, rtsp://..., gst://PIPELINE, "
                        "synthetic://road, file://PATH or a path)" % uri)
    if not os.path.lexists(path) and any(c in path for c in "*?["):  # a file or folder so named is itself
        paths = sorted(p for p in glob_images(path) if p.lower().endswith(IMAGE_EXTS))
        if not paths:
            raise UserError("no images match %s" % images.shown(path))
        return Images(paths, uri, width, height, loop)
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTS))
        if not paths:
            raise UserError("folder %s has no images (%s)" % (images.shown(path), ", ".join(IMAGE_EXTS)))
        return Images(paths, uri, width, height, loop)
    if not os.path.exists(path):
        raise UserError("no such file or folder: %s" % images.shown(path))
    if path.lower().endswith(IMAGE_EXTS):
        if not os.path.isfile(path):  # stat, which never blocks: a FIFO's open waits for a writer
            raise UserError("cannot read image %s: it is not a regular file (a FIFO or a device?)"
                            % images.shown(path))
        return Images([path], uri, width, height, loop)
    return VideoFile(path, width, height, loop)
