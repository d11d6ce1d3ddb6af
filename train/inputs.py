"""train's own input pipeline: RGB uint8 images -> network inputs, in TensorFlow.

It follows the same manifest contract as the runtime's preprocessing (crop fractions; resize, its result
rounded to uint8 as a uint8 image resize gives it; colour in float; scale and offset) but is written
independently, with TensorFlow's image ops and the colour formulas rather than the runtime's matrices, so
that comparing the two tests for train/serve skew instead of comparing a function with itself.
"""

from __future__ import annotations

import numpy as np


def _crop_box(h, w, crop):
    # Python's round on both sides, as the manifest's contract says
    return (int(round(crop["top"] * h)), int(round(crop["bottom"] * h)),
            int(round(crop["left"] * w)), int(round(crop["right"] * w)))


def _prepare_same_size(tf, x, pre):
    """x: uint8 tensor N x H x W x 3 (RGB) -> float32 N x h x w x c."""
    if pre.get("crop"):
        y0, y1, x0, x1 = _crop_box(int(x.shape[1]), int(x.shape[2]), pre["crop"])
        x = x[:, y0:y1, x0:x1, :]
    resize = pre["resize"]
    size = (resize["height"], resize["width"])
    x = tf.cast(x, tf.float32)
    if tuple(x.shape[1:3]) != size:
        method = {"linear": "bilinear", "area": "area", "nearest": "nearest"}[resize.get("interpolation", "linear")]
        x = tf.image.resize(x, size, method=method, antialias=False)
        # a uint8 image resized is a uint8 image: rounded half up, as OpenCV's integer-factor paths do (its
        # other paths round exact ties to even; the README's skew section measures what that leaves); no
        # clipping needed, these interpolations never leave the inputs' range
        x = tf.floor(x + 0.5)
    color = pre["color"]
    if color == "bgr":
        x = x[..., ::-1]
    elif color in ("gray", "yuv"):
        # BT.601, as OpenCV defines BGR2GRAY and BGR2YUV (U and V centred on 128, the uint8 range)
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        y = 0.299 * r + 0.587 * g + 0.114 * b
        x = y[..., None] if color == "gray" else tf.stack([y, 0.492 * (b - y) + 128.0, 0.877 * (r - y) + 128.0], -1)
    scale = tf.constant(np.asarray(pre["scale"], np.float32))
    offset = tf.constant(np.asarray(pre["offset"], np.float32))
    return x * scale + offset


def prepare(images, pre: dict, layout: str = "NHWC", chunk: int = 256) -> np.ndarray:
    """images: an N x H x W x 3 uint8 RGB array, or a list of such images of any sizes."""
    import tensorflow as tf

    parts = []
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), chunk):
            parts.append(_prepare_same_size(tf, tf.convert_to_tensor(images[i:i + chunk]), pre).numpy())
    else:
        for image in images:
            parts.append(_prepare_same_size(tf, tf.convert_to_tensor(image[None]), pre).numpy())
    x = np.concatenate(parts, axis=0).astype(np.float32)
    if layout == "flat":
        x = x.reshape(len(x), -1)
    elif layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)
