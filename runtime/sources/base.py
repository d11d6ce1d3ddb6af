"""What every source is: a Frame (image, index, capture time, truth) and a Source (iterate for Frames,
a context manager), the flips, and the constants the URIs and options share."""

from __future__ import annotations

import threading
import time

import numpy as np

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FLIPS = ("none", "counterclockwise", "rotate-180", "clockwise", "horizontal", "vertical")
NVVIDCONV_FLIP = {"none": 0, "counterclockwise": 1, "rotate-180": 2, "clockwise": 3, "horizontal": 4, "vertical": 6}
DEFAULT_RECONNECT_TIMEOUT = 10.0
OPEN_TIMEOUT = 20.0  # seconds a camera or stream may take to give its first frame
CLOSE_WAIT_S = 0.3  # how long closing a source waits when a reading thread was left stuck inside it


class Frame:
    """One captured frame: `image` (uint8 BGR), `index`, `timestamp` (epoch s), `t0` (perf_counter at
    capture, for latency), `truth` (the right answer, where the source knows it), and once stream() has
    run the model on it, `latency_ms` (capture -> result). `batch` is the network's input where stream()'s
    capture thread prepared it (in one of a few buffers used in turn: gone a few frames later)."""

    __slots__ = ("image", "index", "timestamp", "t0", "truth", "read_s", "latency_ms", "batch", "preprocess_s")

    def __init__(self, image, index, truth=None):
        self.image = image
        self.index = index
        self.timestamp = time.time()
        self.t0 = time.perf_counter()
        self.truth = truth
        self.read_s = 0.0  # how long the source took to give it (the capture stage)
        self.latency_ms = None
        self.batch, self.preprocess_s = None, 0.0


class Source:
    """Iterate to get Frames; `live` sources pace themselves, files give every frame in order."""

    uri = ""
    live = False
    fps = 30.0
    flip = "none"  # applied here unless the source flips in hardware (CSI on a Jetson)
    reconnects = 0
    lost = None  # why, when a live source stopped and did not come back (`runtime run` then exits 3)
    skipped = 0  # frames that were not images this runtime can use (counted, not given)
    prepared = None  # "crop" or "scale" where the source's own pipeline did that much preprocessing (sources/)
    reader_stuck = False  # a thread was left inside the source, blocked in it (pipeline.Capture.stop says so)

    def __iter__(self):
        index = 0
        for image, truth in self._images():
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                    and image.shape[2] == 3 and image.shape[0] > 1 and image.shape[1] > 1):
                image = conformed(image)
                if image is None:
                    self.skipped += 1
                    continue
            if self.flip != "none":
                image = flipped(image, self.flip)
            yield Frame(image, index, truth)
            index += 1

    def _images(self):
        raise NotImplementedError

    def interrupt(self):
        """Asked from another thread while one reads the source (pipeline.Capture.stop): give up a wait in
        progress (a pacer's sleep) and end the iteration soon. The next iteration starts afresh; the source
        is still to be closed."""

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.reader_stuck:
            self.close()
            return
        # a thread is still inside the source (blocked in its C code: a FIFO, a stalled device), and a close
        # may wait on it: it closes in a thread of its own, waited for at most CLOSE_WAIT_S, so that a stop
        # request ends the process in time whatever the source does
        failed = []

        def close():
            try:
                self.close()
            except BaseException as exc:  # raised below, in the thread that closes
                failed.append(exc)

        closer = threading.Thread(target=close, name="close-source", daemon=True)
        closer.start()
        closer.join(CLOSE_WAIT_S)
        if failed:
            raise failed[0]


def within(seconds, fn):
    """fn() in a helper thread; None when it has not returned within seconds (a stream that never starts, a FIFO
    no one writes to: opens that block in the kernel, where no signal reaches Python). The wait itself is a
    join, which a Ctrl-C interrupts."""
    box = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()
    worker.join(seconds)
    return box[0] if box else None


def sleep_unless(event, seconds):
    """Sleep `seconds` (of any length) unless `event` is set first: then return True at once."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return event.is_set()
        if event.wait(min(left, 3600.0)):  # Event.wait refuses more than threading.TIMEOUT_MAX
            return True


def conformed(image):
    """A frame as uint8 BGR (H x W x 3): gray, BGRA, 16-bit and 0..1 float frames converted; None for what
    cannot be (empty, 1-pixel-wide, other channel counts or types)."""
    import cv2

    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or min(image.shape[:2]) < 2:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64) and np.isfinite(image).all() and 0 <= image.min() <= image.max() <= 1:
        image = np.round(image * 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image) if channels == 3 else None


def flipped(image, how):
    import cv2

    if how == "horizontal":
        return cv2.flip(image, 1)
    if how == "vertical":
        return cv2.flip(image, 0)
    return cv2.rotate(image, {"clockwise": cv2.ROTATE_90_CLOCKWISE, "rotate-180": cv2.ROTATE_180,
                              "counterclockwise": cv2.ROTATE_90_COUNTERCLOCKWISE}[how])


def resized(cv2, image, size):
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if size and (image.shape[1], image.shape[0]) != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)
