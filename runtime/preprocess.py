"""Frame -> network input, exactly as the bundle's manifest says, the same code for every backend.

Frames are uint8 BGR (H x W x 3), as OpenCV gives them. Steps, as the manifest's contract orders them
(runtime/bundle.py): crop (fractions of the frame); resize the uint8 image (its result is uint8, rounded;
an area downscale at a non-integer factor is runtime/resize.py's exact integral route, not OpenCV's slow loop);
then in float32, with no rounding, the colour conversion and value = colour * scale + offset, folded into
one 3 -> C affine map (cv2.transform) that writes a preallocated buffer in the network's layout. train's
TensorFlow pipeline (train/inputs.py) follows the same contract, so the two agree (tests/test_skew.py).
The buffer is reused: copy it if you keep it past the next call.

A camera's GStreamer pipeline may do the first steps itself (`--gst-preprocess`, runtime/gst_launch.py's
Prepared): `request(mode)` says what to ask of it, and `prepared` (None, "crop" or "scale", set from the
source's own `prepared` by whoever opened both) says which steps its frames have had, so they are skipped
here. Nothing is guessed from a frame's size.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .errors import UserError, require
from .gst_launch import SCALE_METHOD, Prepared
from .resize import area_resize, exact_area_pays

# The manifest's colours as linear maps of a BGR pixel (rows: output channels) plus a bias. BT.601, as
# OpenCV defines its float BGR2GRAY and BGR2YUV: Y = .299 R + .587 G + .114 B, U = .492 (B - Y) + 128,
# V = .877 (R - Y) + 128 (U and V centred on 128, the uint8 range).
_Y = np.array([0.114, 0.587, 0.299])
_COLORS = {
    "bgr": (np.eye(3), np.zeros(3)),
    "rgb": (np.eye(3)[::-1], np.zeros(3)),
    "gray": (_Y[None], np.zeros(1)),
    "yuv": (np.stack([_Y, 0.492 * (np.array([1.0, 0, 0]) - _Y), 0.877 * (np.array([0, 0, 1.0]) - _Y)]),
            np.array([0.0, 128.0, 128.0])),
}
_INTERPOLATIONS = {"linear": "INTER_LINEAR", "area": "INTER_AREA"}  # "nearest": nearest_indices


def nearest_indices(n_in, n_out):
    """Nearest neighbour as TensorFlow and PIL sample it: the source pixel under each output pixel's centre,
    floor((i + 0.5) * n_in / n_out), in exact integer arithmetic. (OpenCV's INTER_NEAREST takes
    floor(i * n_in / n_out) instead, a different pixel; INTER_NEAREST_EXACT rounds some centres down.)"""
    return np.minimum((2 * np.arange(n_out) + 1) * n_in // (2 * n_out), n_in - 1)


GST_MODES = ("auto", "off", "crop", "on")  # --gst-preprocess: auto is crop (exact); on crops and scales
GPU_MODES = ("auto", "off", "on")  # --gpu-preprocess: in the TensorRT engine, from the whole frame (model.py)


def crop_box(crop, width, height):
    """The manifest's crop (fractions) as the pixel box (x0, y0, x1, y1) of a width x height frame, rounded as
    every path rounds it; the whole frame for no crop; UserError where it leaves no pixel."""
    if crop is None:
        return 0, 0, width, height
    y0, y1 = int(round(crop["top"] * height)), int(round(crop["bottom"] * height))
    x0, x1 = int(round(crop["left"] * width)), int(round(crop["right"] * width))
    if y1 <= y0 or x1 <= x0:
        raise UserError("a %dx%d frame is too small for the bundle's crop" % (width, height))
    return x0, y0, x1, y1


class PipelineRequest(namedtuple("PipelineRequest", "crop out method")):
    """What a source's pipeline is asked to do: crop (the manifest's fractions), then scale to out (width,
    height), or not (None)."""

    def prepared(self, width, height):
        """The Prepared for frames of that size, or None where the size is unknown."""
        if not (width and height):
            return None
        return Prepared(crop_box(self.crop, width, height), (width, height), self.out, self.method)


class Preprocessor:
    prepared = None  # what the source's pipeline did already: None, "crop" or "scale" (module docstring)

    def __init__(self, preprocess: dict, input_spec: dict):
        self.cv2 = require("cv2", "opencv", "preprocessing frames")
        resize = preprocess["resize"]
        self.size = (int(resize["width"]), int(resize["height"]))
        interpolation = resize.get("interpolation", "linear")
        self.interpolation = getattr(self.cv2, _INTERPOLATIONS[interpolation]) if interpolation != "nearest" else None
        self._nearest = {}  # (height, width) of a crop -> (rows, columns) to take
        self._area = {}  # (height, width) of a crop -> an area_resize(), or None where OpenCV's INTER_AREA stays
        self.crop = preprocess.get("crop")
        self.color = preprocess["color"]
        self.layout = input_spec["layout"]
        matrix, bias = _COLORS[self.color]
        self.channels = len(matrix)
        scale = np.broadcast_to(np.asarray(preprocess["scale"], np.float64), (self.channels,))
        offset = np.broadcast_to(np.asarray(preprocess["offset"], np.float64), (self.channels,))
        # one affine map: value = (matrix @ bgr + bias) * scale + offset
        self.affine = np.hstack([matrix * scale[:, None], (bias * scale + offset)[:, None]]).astype(np.float32)
        self.shape = self._network_shape(input_spec["shape"])
        self.buffer = self.new_buffer()

    def new_buffer(self) -> np.ndarray:
        """A (1, ...) float32 input buffer; pass it as `out` to keep several frames in flight."""
        return np.zeros((1,) + self.shape, dtype=np.float32)

    def _network_shape(self, shape):
        w, h, c = self.size[0], self.size[1], self.channels
        expected = {"NHWC": (h, w, c), "NCHW": (c, h, w), "flat": (h * w * c,)}[self.layout]
        actual = tuple(shape[1:])
        if actual != expected:
            raise UserError("the manifest's input shape %s does not match its preprocessing (%dx%d, %d "
                            "channel(s), %s): the bundle is inconsistent" % (list(shape), w, h, c, self.layout))
        return expected

    def request(self, mode):
        """What to ask of a camera's pipeline for --gst-preprocess MODE, or None: "crop" (and "auto") crop,
        exactly; "on" crops and scales with videoscale or the VIC, whose filters are not the contract's area
        average (docs/performance.md: the skew measured)."""
        if mode not in GST_MODES:
            raise UserError("--gst-preprocess %r is not one of %s" % (mode, ", ".join(GST_MODES)))
        if mode == "off" or (mode in ("auto", "crop") and self.crop is None):
            return None
        return PipelineRequest(self.crop, self.size if mode == "on" else None, SCALE_METHOD)

    def paths(self):
        """Where each step runs: {"crop": ..., "resize": ..., "colour": ...}, each "cpu" or "gstreamer" (the
        Model says "gpu" for an engine that takes the whole frame: model.py)."""
        crop = "gstreamer" if self.prepared in ("crop", "scale") else "cpu"
        return {"crop": crop, "resize": "gstreamer" if self.prepared == "scale" else "cpu", "colour": "cpu"}

    def _hw_c(self, buffer):
        """The buffer as the H x W (x C) image cv2.transform writes: a view, contiguous except for NCHW."""
        if self.layout == "NCHW":
            view = buffer[0].transpose(1, 2, 0)
        else:
            view = buffer[0].reshape(self.size[1], self.size[0], self.channels)
        return view[:, :, 0] if self.channels == 1 else view

    def _resize_nearest(self, img):
        key = img.shape[:2]
        if key not in self._nearest:  # one pair per frame size: a camera gives one size
            self._nearest[key] = (nearest_indices(key[0], self.size[1])[:, None],
                                  nearest_indices(key[1], self.size[0]))
        rows, cols = self._nearest[key]
        return img[rows, cols]

    def _resize(self, img):
        """The uint8 image at the network's size: uint8, or float32 (whole values) from area_resize()."""
        if self.interpolation is None:
            return self._resize_nearest(img)
        if self.interpolation == self.cv2.INTER_AREA:
            key = img.shape[:2]
            if key not in self._area:  # one per frame size: a camera gives one size
                pays = exact_area_pays((key[1], key[0]), self.size)
                self._area[key] = area_resize(self.cv2, key, self.size) if pays else None
            if self._area[key] is not None:
                return self._area[key](img)
        return self.cv2.resize(img, self.size, interpolation=self.interpolation)

    def __call__(self, frame: np.ndarray, out=None) -> np.ndarray:
        """One frame -> a (1, ...) float32 network input: written into `out` (from new_buffer()), or else
        into the one reused buffer."""
        cv2 = self.cv2
        img = frame
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise UserError("frames must be uint8 BGR images (H x W x 3), got %s %s" % (img.dtype, img.shape))
        if self.prepared == "scale":
            if (img.shape[1], img.shape[0]) != self.size:
                raise UserError("the source's pipeline gave a %dx%d frame, not the network's %dx%d"
                                % (img.shape[1], img.shape[0], self.size[0], self.size[1]))
        elif self.crop is not None and self.prepared is None:
            x0, y0, x1, y1 = crop_box(self.crop, img.shape[1], img.shape[0])
            img = img[y0:y1, x0:x1]
        if (img.shape[1], img.shape[0]) != self.size:
            img = self._resize(img)
        out = self.buffer if out is None else out
        view = self._hw_c(out)
        dst = view if view.flags.c_contiguous else None
        result = cv2.transform(img if img.dtype == np.float32 else img.astype(np.float32), self.affine, dst=dst)
        if result is not view:  # NCHW (or an OpenCV that allocated anew): copy into the layout's view
            np.copyto(view, result.reshape(view.shape))
        return out

    def batch(self, frames) -> np.ndarray:
        """Several frames -> an (N, ...) float32 array of their own."""
        return np.concatenate([self(f).copy() for f in frames], axis=0)
