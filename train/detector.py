"""`--model detector`: a small CenterNet-style object detector (Zhou et al. 2019, "Objects as Points").

Why CenterNet and not an anchor-free head with NMS: its decoding is a 3x3 max-pool that keeps each heatmap peak,
then TopK, so the detections are a fixed-size tensor made by operations that ONNX Runtime, every TensorRT
release from 8.5 and the ONNX graph itself all have (MaxPool, TopK, Gather); NMS would need the EfficientNMS
plugin or ONNX's NonMaxSuppression, whose output size depends on the data, and which DLA cannot run.

The network maps an image to one tensor at a quarter of the input's size (stride 4), RAW channels per cell:
    0 .. C-1    each class's heatmap logit (a sigmoid gives the score that an object's centre is here)
    C, C+1      the box's width and height, in input pixels / STRIDE
    C+2, C+3    the centre's offset within the cell (0..1), x then y
encode() makes the training target from boxes (TARGET channels: the heatmap with a Gaussian at each centre,
the sizes and offsets, a mask of the centre cells and a weight that is 0 inside ignore regions), loss() is
CenterNet's penalty-reduced focal loss plus L1 on the sizes (weight 0.1) and offsets, and decode() turns RAW
into K detections, padded: (x0, y0, x1, y1) in input pixels, score, class.
"""

from __future__ import annotations

import functools

import numpy as np

from . import backbones
from .spec import Spec

STRIDE = 4
K = 50  # detections per image, padded with score 0
THRESHOLD = 0.3  # the score a detection needs to be shown (the runtime's default --threshold)
SIZE_WEIGHT = 0.1
MIN_RADIUS = 1
SIZE = (256, 144)  # the input, width x height: a 16:9 camera frame at stride 16 (16 x 9 cells there)


def raw_channels(num_classes: int) -> int:
    return num_classes + 4


def target_channels(num_classes: int) -> int:
    return num_classes + 6


def _radius(w, h, min_overlap=0.7):
    """CenterNet's Gaussian radius for a box of w x h cells (the smallest of CornerNet's three cases)."""
    a1, b1, c1 = 1.0, h + w, w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4.0, 2 * (h + w), (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (h + w), (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return max(MIN_RADIUS, int(min(r1, r2, r3)))


def encode(boxes, classes, ignore, size, num_classes):
    """The training target for one image of size (width, height): boxes (M, 4) x0 y0 x1 y1 in its pixels,
    classes (M,) ints, ignore (I, 4) regions where nothing counts (neither an object nor a false one)."""
    width, height = size
    out_w, out_h = width // STRIDE, height // STRIDE
    target = np.zeros((out_h, out_w, target_channels(num_classes)), np.float32)
    target[..., -1] = 1.0
    ys, xs = np.mgrid[0:out_h, 0:out_w]
    for x0, y0, x1, y1 in np.asarray(ignore, np.float64).reshape(-1, 4):
        cx0, cy0 = int(np.floor(x0 / STRIDE)), int(np.floor(y0 / STRIDE))
        cx1, cy1 = int(np.ceil(x1 / STRIDE)), int(np.ceil(y1 / STRIDE))
        target[max(cy0, 0):max(cy1, 0), max(cx0, 0):max(cx1, 0), -1] = 0.0
    for (x0, y0, x1, y1), c in zip(np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(classes).reshape(-1)):
        w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        ix, iy = min(max(int(np.floor(cx)), 0), out_w - 1), min(max(int(np.floor(cy)), 0), out_h - 1)
        sigma = (2 * _radius(w, h) + 1) / 6.0
        gauss = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2))
        np.maximum(target[..., int(c)], gauss, out=target[..., int(c)])
        target[iy, ix, int(c)] = 1.0
        target[iy, ix, num_classes:num_classes + 4] = (w, h, cx - ix, cy - iy)
        target[iy, ix, -2] = 1.0
        target[iy, ix, -1] = 1.0  # a centre counts even where an ignore region overlaps it
    return target


def loss(num_classes):
    """CenterNet's loss for RAW predictions against encode()'s targets, as a Keras loss function."""
    from keras import ops

    def centernet_loss(y_true, y_pred):
        heat_true, weight = y_true[..., :num_classes], y_true[..., -1:]
        centre = y_true[..., -2:-1]
        p = ops.clip(ops.sigmoid(y_pred[..., :num_classes]), 1e-4, 1.0 - 1e-4)
        positive = ops.cast(ops.equal(heat_true, 1.0), p.dtype)
        pos = -ops.log(p) * ops.square(1.0 - p) * positive
        neg = -ops.log(1.0 - p) * ops.square(p) * ops.power(1.0 - heat_true, 4.0) * (1.0 - positive)
        count = ops.maximum(ops.sum(centre, axis=(1, 2, 3)), 1.0)
        focal = ops.sum((pos + neg) * weight, axis=(1, 2, 3)) / count
        size = ops.abs(y_pred[..., num_classes:num_classes + 2] - y_true[..., num_classes:num_classes + 2])
        offset = ops.abs(y_pred[..., num_classes + 2:num_classes + 4] - y_true[..., num_classes + 2:num_classes + 4])
        regression = ops.sum((SIZE_WEIGHT * size + offset) * centre, axis=(1, 2, 3)) / count
        return focal + regression

    return centernet_loss


def build(layers, models, input_shape, num_classes, features=None):
    """The detector: a small convolutional encoder to stride 16 (264 M multiply-adds at 256x144), or features, a
    function of the input giving a backbone's maps at strides 4, 8 and 16 (train/backbones.py's
    FirstBlocks.features: a frozen backbone keeps its BatchNormalization statistics); upsampled to stride 4 with
    the encoder's features added at each step, and 1x1 heads, each on a 3x3 layer of its own: heatmap logits (the
    bias set so that every score starts at 0.01, as CenterNet does), and the sizes and offsets, concatenated into
    RAW."""
    import keras

    inputs = layers.Input(input_shape)

    def conv(x, filters, stride=1, name=None, size=3):
        x = layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # scratch training: statistics that keep up
        return layers.ReLU()(x)

    if features is None:
        x = conv(inputs, 16, 2)
        x = conv(x, 24)
        x = conv(x, 32, 2)
        s4 = conv(x, 32)
        x = conv(s4, 48, 2)
        s8 = conv(x, 48)
        x = conv(s8, 96, 2)
        s16 = conv(x, 96)
    else:  # the backbone's maps; those at strides 4 and 8 brought to the decoder's widths by 1x1 layers
        s4, s8, s16 = features(inputs)
        s4, s8 = conv(s4, 32, size=1), conv(s8, 48, size=1)
    up = layers.UpSampling2D(2)(conv(s16, 48))
    up = conv(layers.Add()([up, s8]), 48)
    up = layers.UpSampling2D(2)(conv(up, 32))
    up = conv(layers.Add()([up, s4]), 48)
    prior = keras.initializers.Constant(-np.log((1 - 0.01) / 0.01))
    heat = layers.Conv2D(num_classes, 1, bias_initializer=prior, name="heatmap")(conv(up, 48))
    box = layers.Conv2D(4, 1, name="box")(conv(up, 48))
    raw = layers.Concatenate(name="raw")([heat, box])
    return models.Model(inputs, raw, name="detector")


def decode(raw, num_classes, k=K):
    """RAW (1, H/4, W/4, C+4) -> (1, k, 6): x0, y0, x1, y1 (input pixels), score, class; padded with zeros.
    Keras ops only, so the same graph decodes in Keras and, exported, in ONNX Runtime and TensorRT: each
    class's heatmap peaks (a cell equal to its 3x3 max-pool), the best class per cell, TopK over the cells,
    then each chosen cell's box gathered. Batch 1, as the runtime runs it."""
    from keras import ops

    heat = ops.sigmoid(raw[..., :num_classes])
    pooled = ops.max_pool(heat, 3, strides=1, padding="same")
    peaks = heat * ops.cast(ops.greater_equal(heat, pooled), heat.dtype)
    best, best_class = ops.top_k(peaks, 1)  # the best class per cell (Keras's argmax leaves a Bitcast to ONNX)
    score, cls = best[..., 0], ops.cast(best_class[..., 0], "float32")  # (1, h, w)
    h, w = raw.shape[1], raw.shape[2]
    ys, xs = (ops.convert_to_tensor(grid.astype(np.float32)) for grid in np.mgrid[0:h, 0:w])
    cx = (xs + raw[0, ..., num_classes + 2]) * STRIDE
    cy = (ys + raw[0, ..., num_classes + 3]) * STRIDE
    size = ops.maximum(raw[0, ..., num_classes:num_classes + 2], 0.0) * (STRIDE / 2.0)  # never a negative box
    half_w, half_h = size[..., 0], size[..., 1]
    cells = ops.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h, cls[0]], axis=-1)
    cells = ops.reshape(cells, (h * w, 5))
    top, index = ops.top_k(ops.reshape(score, (h * w,)), k)
    chosen = ops.take(cells, index, axis=0)  # (k, 5)
    out = ops.concatenate([chosen[:, :4], top[:, None], chosen[:, 4:]], axis=-1)
    return ops.expand_dims(out, 0)


def with_decoding(model, num_classes, k=K):
    """model (image -> RAW) with decode() after it: outputs [RAW, detections (1, k, 6)], what export converts
    (RAW for parity against Keras, as other tasks have; the detections for the runtime)."""
    import keras

    class Decode(keras.layers.Layer):
        def call(self, raw):
            return decode(raw, num_classes, k)

    return keras.Model(model.inputs[0], [model.outputs[0], Decode(name="detections")(model.outputs[0])],
                       name=model.name + "_decoded")


def manifest_section(k=K, threshold=THRESHOLD):
    """The bundle's `detection` section: what the detections output holds, for the runtime."""
    return {"k": k, "threshold": threshold, "box_format": "xyxy", "box_units": "input pixels",
            "columns": ["x0", "y0", "x1", "y1", "score", "class"], "output": "detections", "raw_output": "raw",
            "stride": STRIDE}


class DetectorSpec(backbones.FirstBlocks, Spec):
    """The zoo's `detector`: its own encoder, or (--backbone) a keras.applications backbone's first blocks, from
    random weights or --weights (frozen, then --fine-tune N of its last layers), as transfer learning does
    for the classifiers (train/backbones.py's FirstBlocks, shared with the free-space network)."""

    STRIDES, NOUN = (4, 8, 16), "detector"

    def __init__(self, backbone=None, weights=None, fine_tune=0, fine_tune_epochs=None):
        b = backbones.BACKBONES[backbone] if backbone else None
        about = ("a small CenterNet-style detector (train/detector.py): 256x144 RGB in, K boxes with scores and "
                 "classes out") + (", on %s's first blocks" % b.name if b else "")
        super().__init__("detector", "detection", SIZE, "rgb", scale=b.scale if b else 1.0 / 255,
                         offset=b.offset if b else 0.0, interpolation="area", optimizer="adam",
                         default_data="road-obstacles", about=about)
        self.take_backbone(backbone, weights, fine_tune, fine_tune_epochs)

    def configure(self, backbone=None, weights=None, fine_tune=None, fine_tune_epochs=None):
        """The Spec for one run, its options checked without TensorFlow; UserError (one line) when they do not
        fit."""
        self.check_backbone(backbone, weights, fine_tune, fine_tune_epochs)
        return DetectorSpec(backbone, weights, fine_tune or 0, fine_tune_epochs) if backbone else DetectorSpec()

    def build(self, num_classes=10):
        import keras

        features = functools.partial(self.features, self.build_base()) if self.backbone is not None else None
        model = build(keras.layers, keras.models, self.input_shape, num_classes, features)
        self._compile(model, num_classes, backbones.HEAD_LR)
        return model

    def recompile(self, model, learning_rate):
        self._compile(model, int(model.outputs[0].shape[-1]) - 4, learning_rate)

    @staticmethod
    def _compile(model, num_classes, learning_rate):
        import keras

        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss(num_classes))
