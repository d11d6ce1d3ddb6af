"""train's tf.data pipelines: images (in memory, or files read as they are needed) -> augmented, prepared batches.

    images or files -> geometry (decode, crop, resize to the network's size, uint8) -> [cache] -> shuffle
                    -> batch -> augment (training only) -> colour, scale, layout -> prefetch

The geometry and the colour steps are train/inputs.py's, so the pipeline and `prepare()` give the same tensors
(tests/test_skew.py holds both to the runtime's preprocessing). Files are decoded in parallel, in a fixed order
(deterministic maps); the network-sized uint8 images are cached in memory only when they fit `cache_mb`, else
decoded again each epoch, so a folder of any size trains in bounded memory. Augmentation draws its randomness
from the seed (stateless ops fed by a seeded random stream that differs each epoch), so a run repeats exactly.
It runs on the training batches only and is not part of the model, so nothing of it reaches the export:

    steering        flip (the steering negated), brightness; horizontal shift only when asked, with the
                    steering it calls for per 10% of the width the view moves (shift_correction: it depends on
                    the camera's field of view and the steering's units, so there is no default)
    classification  flip (only when asked: digits and letters are not mirror-symmetric), rotation, zoom, contrast
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from runtime.errors import native_stderr_silenced

from .inputs import finish, geometry, geometry_of

AUGMENT = {"steering": ("flip", "brightness"), "classification": ("rotate", "zoom", "contrast")}
KINDS = ("flip", "brightness", "shift", "rotate", "zoom", "contrast")
SHIFT_FRACTION = 0.1  # views move up to 10% of the width either way
ROTATE_DEG, ZOOM, CONTRAST, BRIGHTNESS = 10.0, 0.1, 0.2, 0.3


def names(paths):
    """File names as TensorFlow takes any of them: bytes (os.fsencode). A str that is not UTF-8 (its bytes held
    as surrogates) cannot become a string tensor."""
    return [os.fsencode(p) for p in paths]


def decode_file(tf, path):
    """path: a file name (str or bytes) or a string tensor of one."""
    if isinstance(path, (str, os.PathLike)):
        path = os.fsencode(path)
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def readable(paths, log="stderr"):
    """The indices of the files TensorFlow decodes (each decoded once, in parallel: a truncated JPEG is found
    here, not in the middle of an epoch), with a progress bar on log (sys.stderr as it is now; None: no bar)
    when it is a terminal."""
    import keras
    import tensorflow as tf


    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), names(paths)))
    ds = ds.map(lambda i, p: (i, tf.shape(decode_file(tf, p))), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True).ignore_errors()
    log = sys.stderr if log == "stderr" else log
    bar = keras.utils.Progbar(len(paths), verbose=1 if log is not None and log.isatty() else 0,
                              unit_name="image")
    good = []
    with native_stderr_silenced():  # libjpeg's and libpng's own complaints about a broken file
        for i, _ in ds.batch(256):
            good.extend(int(v) for v in i.numpy())
            bar.add(len(i))
    return good


class Split:
    """One side of a train/validation split: uint8 RGB images in memory (N x H x W x 3) or image files, and
    their targets (class ids, or steering values)."""

    def __init__(self, targets, images=None, files=None):
        self.targets, self.images, self.files = np.asarray(targets), images, files

    def __len__(self):
        return len(self.targets)


def _transform(tf, angle, zoom, shift, height, width):
    """The projective transforms (B x 8) that rotate by angle (radians) and zoom about the centre, then move the
    view right by shift pixels: for each output pixel, where to sample the input."""
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    zero = tf.zeros_like(angle)
    return tf.stack([cos, sin, cx - cos * cx - sin * cy - shift, -sin, cos, cy + sin * cx - cos * cy, zero, zero],
                    axis=1)


def augment_batch(tf, x, y, seed, kinds, task, shift_correction):
    """x: float32 B x h x w x 3 (0..255), y: targets; seed: int64 pair tensor. Returns (x, y) augmented."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    draw = [0]

    def uniform(low, high):
        draw[0] += 1
        return tf.random.stateless_uniform([b], seed=seed + draw[0], minval=low, maxval=high)

    if "flip" in kinds:
        flip = uniform(0.0, 1.0) < 0.5
        x = tf.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
        if task == "steering":
            y = tf.where(flip, -y, y)
    angle = uniform(-ROTATE_DEG, ROTATE_DEG) * (math.pi / 180) if "rotate" in kinds else tf.zeros([b])
    zoom = uniform(1.0 - ZOOM, 1.0 + ZOOM) if "zoom" in kinds else tf.ones([b])
    shift = uniform(-SHIFT_FRACTION, SHIFT_FRACTION) if "shift" in kinds else tf.zeros([b])
    if {"rotate", "zoom", "shift"} & set(kinds):
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=_transform(tf, angle, zoom, shift * w, h, w), output_shape=[h, w],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST" if task == "steering" else "REFLECT")
        if task == "steering":
            y = y + shift / SHIFT_FRACTION * shift_correction  # the lane moves right: steer right
    if "brightness" in kinds:
        x = x * uniform(1.0 - BRIGHTNESS, 1.0 + BRIGHTNESS)[:, None, None, None]
    if "contrast" in kinds:
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        x = (x - mean) * uniform(1.0 - CONTRAST, 1.0 + CONTRAST)[:, None, None, None] + mean
    return tf.clip_by_value(x, 0.0, 255.0), y


def fits(n, pre, cache_mb):
    """Whether n network-sized uint8 images fit in cache_mb."""
    size = pre["resize"]
    return n * size["width"] * size["height"] * 3 <= cache_mb * 2 ** 20


def build(split, pre, layout, task, num_classes, batch_size, seed=0, training=False, augment=(),
          shift_correction=0.0, cache_mb=1024):
    """The tf.data.Dataset of (inputs, targets) batches over split."""
    import tensorflow as tf

    auto = tf.data.AUTOTUNE
    targets = split.targets.astype(np.float32 if task in ("steering", "binary") else np.int64)
    cached = split.images is not None or fits(len(split), pre, cache_mb)
    if split.images is not None:  # in memory: the geometry once, here, in chunks

        ds = tf.data.Dataset.from_tensor_slices((geometry_of(split.images, pre), targets))
    else:
        ds = tf.data.Dataset.from_tensor_slices((names(split.files), targets))
        if training and not cached:  # shuffle the names, not the images: the buffer stays small
            ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda path, t: (tf.cast(geometry(tf, decode_file(tf, path), pre), tf.uint8), t),
                    num_parallel_calls=auto, deterministic=True)
        if cached:
            ds = ds.cache()
    if training and cached:
        ds = ds.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment:
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, randoms)).map(
            lambda xy, s: augment_batch(tf, tf.cast(xy[0], tf.float32), xy[1], s, augment, task, shift_correction),
            num_parallel_calls=auto, deterministic=True)
    if task == "classification":
        ds = ds.map(lambda x, t: (x, tf.one_hot(t, num_classes)))
    return ds.map(lambda x, t: (finish(tf, tf.cast(x, tf.float32), pre, layout), t), num_parallel_calls=auto,
                  deterministic=True).prefetch(auto)


def seeded_batches(count, batch_size, seed, training, example):
    """`count` examples as a keras.utils.PyDataset of batches, for inputs that tf.data does not make (detection's
    boxes, segmentation's masks): example(i, rng) gives example i's arrays as a tuple, rng a RandomState seeded by
    (seed, epoch, i) to augment it with when training, else None; a batch is those tuples stacked member by
    member. training: the order shuffled anew each epoch (seeded by (seed, epoch)), so that a run is repeatable."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch, self.order = 0, np.arange(count)
            self.on_epoch_end()

        def __len__(self):
            return (count + batch_size - 1) // batch_size

        def on_epoch_end(self):
            if training:
                self.order = np.random.RandomState([seed, self.epoch]).permutation(count)
            self.epoch += 1

        def __getitem__(self, index):
            made = [example(int(i), np.random.RandomState([seed, self.epoch, int(i)]) if training else None)
                    for i in self.order[index * batch_size:(index + 1) * batch_size]]
            return tuple(np.stack(member) for member in zip(*made))

    return Batches()
