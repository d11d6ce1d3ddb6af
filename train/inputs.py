"""train's own preprocessing: RGB uint8 images -> network inputs, in TensorFlow, in two steps that the tf.data
pipeline (train/pipeline.py) runs with augmentation between them: `geometry` (crop, resize, round) and `finish`
(colour, scale and offset, layout); `prepare` is both at once.

It follows the same manifest contract as the runtime's preprocessing (crop fractions; resize, its result
rounded to uint8 as a uint8 image resize gives it; colour in float; scale and offset) but is written
independently, with TensorFlow's image ops and the colour formulas rather than the runtime's matrices, so
that comparing the two tests for train/serve skew instead of comparing a function with itself.
"""

from __future__ import annotations

import numpy as np


def geometry(tf, x, pre):
    """Crop (the manifest's fractions of this image's size, rounded as Python rounds) and resize to the network's
    size, rounded to whole values as a uint8 image resize gives them. x: uint8 or float H x W x 3, or a batch
    of them; returns float32. Shapes may be unknown until run time (tf.data maps one decoded file at a time)."""
    shape = tf.shape(x)
    h, w = shape[-3], shape[-2]
    crop = pre.get("crop")
    if crop:
        hf, wf = tf.cast(h, tf.float64), tf.cast(w, tf.float64)
        y0, y1 = tf.cast(tf.round(crop["top"] * hf), tf.int32), tf.cast(tf.round(crop["bottom"] * hf), tf.int32)
        x0, x1 = tf.cast(tf.round(crop["left"] * wf), tf.int32), tf.cast(tf.round(crop["right"] * wf), tf.int32)
        x = x[..., y0:y1, x0:x1, :]
    resize = pre["resize"]
    size = (resize["height"], resize["width"])
    x = tf.cast(x, tf.float32)
    if tuple(x.shape[-3:-1]) != size:  # known and equal in eager batches of the right size: nothing to do
        method = {"linear": "bilinear", "area": "area", "nearest": "nearest"}[resize.get("interpolation", "linear")]
        x = tf.image.resize(x, size, method=method, antialias=False)  # the same size gives the same values
        # a uint8 image resized is a uint8 image: rounded half up, as OpenCV's integer-factor paths do (its
        # other paths round exact ties to even; the README's skew section measures what that leaves); no
        # clipping needed, these interpolations never leave the inputs' range
        x = tf.floor(x + 0.5)
    return x


def finish(tf, x, pre, layout="NHWC"):
    """Colour, scale and offset, and the layout: float32 N x h x w x 3 (0..255, RGB) -> the network's input."""
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
    x = x * scale + offset
    if layout == "flat":
        return tf.reshape(x, [tf.shape(x)[0], -1])
    if layout == "NCHW":
        return tf.transpose(x, [0, 3, 1, 2])
    return x


def _chunks(tf, images, chunk):
    if isinstance(images, np.ndarray):
        for i in range(0, len(images), chunk):
            yield tf.convert_to_tensor(images[i:i + chunk])
    else:
        for image in images:
            yield tf.convert_to_tensor(image[None])


def geometry_of(images, pre: dict, chunk: int = 256) -> np.ndarray:
    """images (an N x H x W x 3 uint8 RGB array, or a list of images of any sizes) at the network's size, uint8."""
    import tensorflow as tf

    return np.concatenate([geometry(tf, x, pre).numpy().astype(np.uint8) for x in _chunks(tf, images, chunk)])


def prepare(images, pre: dict, layout: str = "NHWC", chunk: int = 256) -> np.ndarray:
    """images: an N x H x W x 3 uint8 RGB array, or a list of such images of any sizes -> network inputs."""
    import tensorflow as tf

    parts = [finish(tf, geometry(tf, x, pre), pre, layout).numpy() for x in _chunks(tf, images, chunk)]
    return np.ascontiguousarray(np.concatenate(parts, axis=0).astype(np.float32))
