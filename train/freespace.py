"""`--model freespace`: a small encoder-decoder (U-Net, Ronneberger et al. 2015) that labels every pixel of a road
frame: sky, verge, my lane, the other road, lane markings and obstacles (runtime/sim/segmentation.py defines
them); free space is the drivable ones. The job of NVIDIA's OpenRoadNet and of jetson-inference's segNet.

The network maps a SIZE frame (the contract resizes any camera frame to it) to per-pixel class probabilities at
the input's size: three 2x2 max-pools down (16, 32, 64 filters, two 3x3 convolutions each), a 3x3 bottleneck,
then three 2x upsamplings (nearest: ONNX's Resize and every TensorRT have it) each joined to the encoder's map
of its size, and a 1x1 softmax. With --backbone mobilenetv2 the encoder is MobileNetV2's first blocks instead
(train/backbones.py's FirstBlocks, as the detector's: random weights, or --weights frozen then --fine-tune N), its
maps at strides 2, 4, 8 and 16 taken the same way up, the last upsampling joined to the input, and the backbone's
input scaling the contract's. Its training input is made by the runtime's own preprocessing
(runtime/preprocess.py, the bundle's contract) and the masks sampled at the network's pixel centres, as
detection's are (train/detection_pipeline.py); a horizontal flip (half the frames) and a brightness of
0.75-1.25 augment it, seeded by (seed, epoch, frame). The export puts the class map in the graph
(`with_classes`: ArgMax, int32) beside the probabilities.
"""

from __future__ import annotations

import functools

import numpy as np

from runtime.postprocess import class_iou
from runtime.preprocess import Preprocessor, nearest_indices

from . import backbones
from .pipeline import seeded_batches
from .spec import Spec

SIZE = (160, 96)  # width x height: a 16:9 frame at a size that three 2x pools divide (20 x 12 at the bottom)
BRIGHTNESS = (0.75, 1.25)


def _up(layers, x, skips, filters):
    """The U-Net's way up: for each skip (deepest first) a nearest 2x upsampling joined to it and two 3x3
    convolutions of its filters."""
    for f, skip in zip(filters, skips):
        x = layers.UpSampling2D(2, interpolation="nearest")(x)
        x = layers.Concatenate()([x, skip])
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
    return x


def _unet(layers, models, shape, n):
    inputs = layers.Input(shape)
    x, skips = inputs, []
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(96, 3, padding="same", activation="relu")(x)
    x = _up(layers, x, reversed(skips), (64, 32, 16))
    outputs = layers.Conv2D(n, 1, activation="softmax", name="probabilities")(x)
    return models.Model(inputs, outputs, name="freespace")


def _unet_on(layers, models, shape, n, features):
    """The U-Net with a backbone's first blocks as its encoder: features (a function of the input) gives its maps
    at strides 2, 4, 8 and 16; a 3x3 bottleneck on the deepest, the way up joined to the other three, then a
    last 2x upsampling joined to the input itself (the only map at full size), a 3x3 convolution and the 1x1
    softmax."""
    inputs = layers.Input(shape)
    s2, s4, s8, s16 = features(inputs)
    x = layers.Conv2D(96, 3, padding="same", activation="relu")(s16)
    x = _up(layers, x, (s8, s4, s2), (64, 32, 16))
    x = layers.UpSampling2D(2, interpolation="nearest")(x)
    x = layers.Concatenate()([x, inputs])
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    outputs = layers.Conv2D(n, 1, activation="softmax", name="probabilities")(x)
    return models.Model(inputs, outputs, name="freespace")


class FreespaceSpec(backbones.FirstBlocks, Spec):
    """The zoo's `freespace`: per-pixel classes of a road frame, trained with sparse categorical cross-entropy; its
    own encoder, or (--backbone) a keras.applications backbone's first blocks, from random weights or --weights
    (frozen, then --fine-tune N of its last layers), as the detector's (train/backbones.py's FirstBlocks)."""

    STRIDES, NOUN = (2, 4, 8, 16), "free-space network"

    def __init__(self, backbone=None, weights=None, fine_tune=0, fine_tune_epochs=None):
        b = backbones.BACKBONES[backbone] if backbone else None
        super().__init__("freespace", "segmentation", SIZE, "rgb", scale=b.scale if b else 1.0 / 255,
                         offset=b.offset if b else 0.0, interpolation="area", optimizer="adam",
                         default_data="road-freespace", builder=_unet,
                         about="free-space segmentation (U-Net) of road frames: sky, verge, my lane, other road, "
                               "markings, obstacles" + (", on %s's first blocks" % b.name if b else ""))
        self.take_backbone(backbone, weights, fine_tune, fine_tune_epochs)

    def configure(self, backbone=None, weights=None, fine_tune=None, fine_tune_epochs=None):
        """The Spec for one run, its options checked without TensorFlow; UserError (one line) when they do not
        fit."""
        self.check_backbone(backbone, weights, fine_tune, fine_tune_epochs)
        return FreespaceSpec(backbone, weights, fine_tune or 0, fine_tune_epochs) if backbone else FreespaceSpec()

    def build(self, num_classes=6):
        import keras

        if self.backbone is None:
            model = self.builder(keras.layers, keras.models, self.input_shape, num_classes)
        else:
            model = _unet_on(keras.layers, keras.models, self.input_shape, num_classes,
                             functools.partial(self.features, self.build_base()))
        self.recompile(model, backbones.HEAD_LR)
        return model

    def recompile(self, model, learning_rate):
        import keras

        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])


def manifest_section(classes, drivable):
    """The bundle's `segmentation` section: its outputs and which classes are free space, for the runtime."""
    return {"output": "classes", "probabilities_output": "probabilities", "drivable": list(drivable),
            "classes_dtype": "int32"}


class Encoder:
    """A frame (uint8 BGR) and its mask -> (network input, mask at the network's pixels)."""

    def __init__(self, spec):
        self.preprocessor = Preprocessor(spec.preprocess(), {"layout": spec.layout,
                                                             "shape": [None] + list(spec.input_shape)})
        self.size = spec.size

    def __call__(self, image, mask):
        return self.preprocessor(image, self.preprocessor.new_buffer())[0], self.at_network(mask)

    def at_network(self, mask):
        """A mask (or an ignore map) at the network's pixels, by the centre rule."""
        rows, cols = nearest_indices(mask.shape[0], self.size[1]), nearest_indices(mask.shape[1], self.size[0])
        return mask[rows[:, None], cols]


def batches(split, spec, batch_size, seed=0, training=False, ignored=None):
    """split: (frames uint8 BGR N x H x W x 3, masks uint8 N x H x W) as a keras.utils.PyDataset of batches;
    training: shuffled and augmented anew each epoch (seeded). ignored (N x H x W bool, or None): pixels that are
    no class (a dataset's ignore label): each batch then carries per-pixel weights, 0 there, so the loss and the
    accuracy leave them out."""
    import cv2

    frames, masks = split
    encode = Encoder(spec)

    def example(i, rng):
        image, mask = frames[i], masks[i]
        hole = None if ignored is None else ignored[i]
        if rng is not None:
            if rng.rand() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
                hole = None if hole is None else hole[:, ::-1]
            image = cv2.convertScaleAbs(np.ascontiguousarray(image), alpha=rng.uniform(*BRIGHTNESS))
        x, y = encode(np.ascontiguousarray(image), mask)
        return (x, y) if hole is None else (x, y, (~encode.at_network(hole)).astype(np.float32))

    return seeded_batches(len(frames), batch_size, seed, training, example)


def predict_classes(model, split, spec, batch_size=32, ignored=None):
    """The network's class map for every frame of a split and the masks at its pixels, those of the pixels that
    are a class (ignored: N x H x W bool, or None: all): two flat arrays where ignored is given."""
    encode = Encoder(spec)
    found, truth, kept = [], [], []
    frames, masks = split
    for a in range(0, len(frames), batch_size):
        pairs = [encode(frames[i], masks[i]) for i in range(a, min(a + batch_size, len(frames)))]
        probabilities = model.predict(np.stack([p[0] for p in pairs]), verbose=0)
        found.append(np.argmax(probabilities, axis=-1))
        truth.append(np.stack([p[1] for p in pairs]))
        if ignored is not None:
            kept.append(~np.stack([encode.at_network(ignored[i]) for i in range(a, a + len(pairs))]))
    found, truth = np.concatenate(found), np.concatenate(truth)
    if ignored is not None:
        kept = np.concatenate(kept)
        return found[kept], truth[kept]
    return found, truth


def ignored_of(dataset, side):
    """A dataset's ignore map for a side (0: train, 1: val), or None (road-freespace has none)."""
    return (getattr(dataset, "ignored", None) or (None, None))[side]


def held_out(model, dataset, spec):
    """mIoU, per-class IoU and pixel accuracy on the held-out frames (pixels that are a class)."""
    found, truth = predict_classes(model, dataset.val, spec, ignored=ignored_of(dataset, 1))
    scores = class_iou(truth, found, dataset.labels)
    return {"val_miou": scores["miou"], "val_iou": scores["iou"], "val_pixel_accuracy": scores["pixel_accuracy"]}


def iou_callback(keras, dataset, spec):
    """A callback that adds the held-out mIoU and each class's IoU to every epoch's logs (history.json, the
    plots)."""

    class HeldOutIoU(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            scores = held_out(self.model, dataset, spec)
            logs["val_miou"] = scores["val_miou"]
            for name, value in scores["val_iou"].items():
                logs["val_iou_" + name.replace(" ", "_")] = -1.0 if value is None else value

    return HeldOutIoU()


def with_classes(model):
    """The model with its class map beside its probabilities: (probabilities, ArgMax over classes as int32), the
    two outputs the bundle has (int32: TensorRT cannot cast int32 to uint8, and its ArgMax gives int32)."""
    import keras
    import tensorflow as tf

    class Classes(keras.layers.Layer):  # tf's ArgMax: keras.ops.argmax adds a Bitcast that tf2onnx cannot convert
        def call(self, p):
            return tf.math.argmax(p, axis=-1, output_type=tf.int32)

        def compute_output_spec(self, p):
            return keras.KerasTensor(p.shape[:-1], dtype="int32")

    probabilities = model.outputs[0]
    return keras.Model(model.inputs[0], [probabilities, Classes(name="classes")(probabilities)], name=model.name)


class SegmentationSet:
    """A segmentation dataset: train and val as (frames uint8 BGR N x H x W x 3, masks uint8 N x H x W), the
    class names, the drivable classes' indices, notes."""

    SAMPLES = 8  # held-out frames the run keeps, for export's checks

    def __init__(self, name, labels, drivable, train, val, notes=()):
        self.name, self.labels, self.drivable = name, list(labels), list(drivable)
        self.train, self.val, self.task, self.notes = train, val, "segmentation", list(notes)

    @property
    def raw_samples(self):
        """The first held-out frames (RGB), as the run keeps them (train/run_dir.py)."""
        return [np.ascontiguousarray(f[..., ::-1]) for f in self.val[0][:self.SAMPLES]]

    @property
    def sample_targets(self):
        """Their class shares (the masks themselves stay out of meta.json)."""
        return [{"shares": [round(float(np.mean(m == c)), 4) for c in range(len(self.labels))]}
                for m in self.val[1][:self.SAMPLES]]
