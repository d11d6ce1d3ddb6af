"""Frame -> network input, exactly as the bundle's manifest says, the same code for every backend.

Frames are uint8 BGR (H x W x 3), as OpenCV gives them. Steps: crop (fractions of the frame), resize,
colour conversion, then value = pixel * scale + offset written into a preallocated float32 buffer in the
network's layout. The buffer is reused: copy it if you keep it past the next call.
"""

from __future__ import annotations

import numpy as np

from .cli import UserError, require

_COLOR_CODES = {"rgb": "COLOR_BGR2RGB", "gray": "COLOR_BGR2GRAY", "yuv": "COLOR_BGR2YUV"}
_INTERPOLATIONS = {"linear": "INTER_LINEAR", "area": "INTER_AREA", "nearest": "INTER_NEAREST"}


class Preprocessor:
    def __init__(self, preprocess: dict, input_spec: dict):
        self.cv2 = require("cv2", "opencv", "preprocessing frames")
        resize = preprocess["resize"]
        self.size = (int(resize["width"]), int(resize["height"]))
        self.interpolation = getattr(self.cv2, _INTERPOLATIONS[resize.get("interpolation", "linear")])
        self.crop = preprocess.get("crop")
        self.color = preprocess["color"]
        self.color_code = getattr(self.cv2, _COLOR_CODES[self.color]) if self.color in _COLOR_CODES else None
        self.channels = 1 if self.color == "gray" else 3
        self.layout = input_spec["layout"]
        self.scale = np.asarray(preprocess["scale"], dtype=np.float32)
        self.offset = np.asarray(preprocess["offset"], dtype=np.float32)
        self.shape = self._network_shape(input_spec["shape"])
        self.buffer = self.new_buffer()

    def new_buffer(self) -> np.ndarray:
        """A (1, ...) float32 input buffer; pass it as `out` to keep several frames in flight."""
        return np.zeros((1,) + self.shape, dtype=np.float32)

    def _hwc(self, buffer):
        """A view of the buffer in H x W x C order, so one ufunc call fills it whatever the layout."""
        if self.layout == "NCHW":
            return buffer[0].transpose(1, 2, 0)
        return buffer[0].reshape(self.size[1], self.size[0], self.channels)

    def _network_shape(self, shape):
        w, h, c = self.size[0], self.size[1], self.channels
        expected = {"NHWC": (h, w, c), "NCHW": (c, h, w), "flat": (h * w * c,)}[self.layout]
        actual = tuple(shape[1:])
        if actual != expected:
            raise UserError("the manifest's input shape %s does not match its preprocessing (%dx%d, %d "
                            "channel(s), %s): the bundle is inconsistent" % (list(shape), w, h, c, self.layout))
        return expected

    def __call__(self, frame: np.ndarray, out=None) -> np.ndarray:
        """One frame -> a (1, ...) float32 network input: written into `out` (from new_buffer()), or else
        into the one reused buffer."""
        cv2 = self.cv2
        img = frame
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise UserError("frames must be uint8 BGR images (H x W x 3), got %s %s" % (img.dtype, img.shape))
        if self.crop is not None:
            h, w = img.shape[:2]
            c = self.crop
            y0, y1 = int(round(c["top"] * h)), int(round(c["bottom"] * h))
            x0, x1 = int(round(c["left"] * w)), int(round(c["right"] * w))
            if y1 <= y0 or x1 <= x0:
                raise UserError("a %dx%d frame is too small for the bundle's crop" % (w, h))
            img = img[y0:y1, x0:x1]
        if (img.shape[1], img.shape[0]) != self.size:
            img = cv2.resize(img, self.size, interpolation=self.interpolation)
        if self.color_code is not None:
            img = cv2.cvtColor(img, self.color_code)
        if img.ndim == 2:
            img = img[:, :, None]
        out = self.buffer if out is None else out
        hwc = self._hwc(out)
        np.multiply(img, self.scale, out=hwc, casting="unsafe")
        if self.offset.any():
            hwc += self.offset
        return out

    def batch(self, frames) -> np.ndarray:
        """Several frames -> an (N, ...) float32 array of their own."""
        return np.concatenate([self(f).copy() for f in frames], axis=0)
