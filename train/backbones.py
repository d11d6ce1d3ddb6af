"""Transfer learning on the standard edge backbones from keras.applications: MobileNetV2, MobileNetV3Small and
EfficientNetB0, each with `include_top=False`, global average pooling and a new softmax head for the dataset's
classes.

    --weights PATH   ImageNet weights a user downloaded (.h5 or .keras); without it the backbone starts from
                     random weights (nothing here fetches them) and every layer trains
    --image-size N   input N x N (a default per backbone that suits an edge board; at least 32)
    --fine-tune N    with --weights: train the head on the frozen backbone, then unfreeze the backbone's last N
                     layers (BatchNormalization stays frozen) and train on with a 100x lower learning rate

As Keras's transfer-learning guide does, a pretrained backbone is called with training=False, so its
BatchNormalization layers run in inference mode (their ImageNet statistics) in both phases. From random weights
the backbone trains as a whole and its BatchNormalization momentum is lowered from keras.applications' 0.999
(0.99 for EfficientNet) to 0.9, so the moving statistics that inference uses keep up on a small dataset.

Each backbone's own input scaling is its Spec's (and so the run's and the bundle's manifest's) preprocessing:
MobileNetV2 takes x / 127.5 - 1 (keras.applications.mobilenet_v2.preprocess_input, mode "tf"); MobileNetV3
(include_preprocessing=True) and EfficientNet rescale inside the model and take RGB 0..255.

FirstBlocks is the same for a network whose encoder is a backbone's first blocks, its maps at the strides its
decoder takes (MAPS), rather than a classifier's whole backbone: the detector and the free-space network
(--backbone).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from runtime.errors import UserError

from .spec import Spec

HEAD_LR = 1e-3  # Adam: the head alone, or the whole network from random weights
FINE_TUNE_LR = 1e-5  # Adam: the unfrozen layers of a pretrained backbone, as Keras's guide does
SCRATCH_BN_MOMENTUM = 0.9
MIN_SIZE = 32  # keras.applications' minimum for all three
WEIGHT_SUFFIXES = (".h5", ".hdf5", ".keras")
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)  # keras.applications.efficientnet's constant


class Backbone:
    """A keras.applications family as this toolkit uses it: constructor, input contract, sizes, weight files."""

    def __init__(self, name, app, size, scale, offset, layers, weight_files, about, **kwargs):
        self.name, self.app, self.size, self.scale, self.offset = name, app, size, scale, offset
        self.layers, self.weight_files, self.about, self.kwargs = layers, weight_files, about, kwargs


BACKBONES = {
    "mobilenetv2": Backbone(
        "mobilenetv2", "MobileNetV2", 96, 1.0 / 127.5, -1.0, 154,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{96,128,160,192,224}_no_top.h5",
        "keras.applications.MobileNetV2 (alpha 1.0) + a new softmax head; input x/127.5-1"),
    "mobilenetv3small": Backbone(
        "mobilenetv3small", "MobileNetV3Small", 128, 1.0, 0.0, 157,
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        "keras.applications.MobileNetV3Small + a new softmax head; rescales inside, input RGB 0..255",
        include_preprocessing=True),
    "efficientnetb0": Backbone(
        "efficientnetb0", "EfficientNetB0", 128, 1.0, 0.0, 237, "efficientnetb0_notop.h5",
        "keras.applications.EfficientNetB0 + a new softmax head; normalises inside, input RGB 0..255"),
}


class BackboneSpec(Spec):
    """A zoo entry for a backbone; `configure()` gives the Spec for one run (size, weights, fine-tuning)."""

    def __init__(self, backbone: Backbone, size=None, weights=None, fine_tune=0, fine_tune_epochs=None):
        size = size or backbone.size
        super().__init__(backbone.name, "classification", (size, size), "rgb", scale=backbone.scale,
                         offset=backbone.offset, optimizer="adam", about=backbone.about)
        self.backbone, self.weights = backbone, weights
        self.fine_tune, self.fine_tune_epochs = fine_tune, fine_tune_epochs
        self.scratch_bn_momentum = SCRATCH_BN_MOMENTUM  # None keeps keras.applications' (benchmarks/transfer.py)

    def configure(self, image_size=None, weights=None, fine_tune=None, fine_tune_epochs=None):
        """Validate the run's options without TensorFlow; UserError (one line) when they do not fit."""
        b = self.backbone
        if image_size is not None and image_size < MIN_SIZE:
            raise UserError("--image-size %d is too small for %s (at least %d)" % (image_size, b.name, MIN_SIZE))
        check_transfer(b, weights, fine_tune, fine_tune_epochs)
        return BackboneSpec(b, image_size, weights, fine_tune or 0, fine_tune_epochs)

    def describe(self) -> str:
        """What this run will do with the backbone's weights, for stderr."""
        size = "%dx%d" % self.size
        if self.weights is None:
            return ("%s at %s from RANDOM weights (no --weights given; nothing is downloaded): every layer trains, "
                    "nothing is frozen, BatchNormalization momentum %g" % (self.name, size, SCRATCH_BN_MOMENTUM))
        text = "%s at %s from %s: backbone frozen (BatchNormalization in inference mode), the head trains" % (
            self.name, size, self.weights)
        if self.fine_tune:
            text += "; then its last %d layers (BatchNormalization still frozen) at learning rate %g" % (
                self.fine_tune, FINE_TUNE_LR)
        return text

    def build(self, num_classes=10):
        import keras

        base = self.build_base()
        inputs = keras.Input(self.input_shape, name="image")
        if self.weights is not None:
            base.trainable = False
            x = base(inputs, training=False)  # BatchNormalization keeps its ImageNet statistics, in every phase
        else:
            x = base(inputs)
        x = keras.layers.Dropout(0.2, name="head_dropout")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(x)
        model = keras.Model(inputs, outputs, name=self.name)
        _compile(model, HEAD_LR)
        return model

    def build_base(self):
        """The keras.applications backbone (pooled features out), with --weights loaded or scratch BN momentum."""
        import keras

        b = self.backbone
        base = getattr(keras.applications, b.app)(input_shape=self.input_shape, include_top=False, weights=None,
                                                  pooling="avg", **b.kwargs)
        if self.weights is not None:
            self._load(base)
        elif self.scratch_bn_momentum is not None:
            set_bn_momentum(base, self.scratch_bn_momentum)
        return base

    def _load(self, base):
        import keras

        load_weights(base, self.weights, self.backbone)
        for layer in base.layers:
            if isinstance(layer, keras.layers.Normalization) and layer.input_mean is None:
                _square_imagenet_stddev(layer)

    def start_fine_tune(self, model):
        """Phase 2: unfreeze the backbone's last `fine_tune` layers except BatchNormalization; recompile."""
        unfreeze_last(backbone_of(model), self.fine_tune)
        _compile(model, FINE_TUNE_LR)


# A backbone's maps by stride, for the networks whose encoder is its first blocks (the detector, the free-space
# network): the output of its last block at that stride (keras.applications' names; at 96x160, MobileNetV2's are
# 16, 24, 32 and 96 channels deep) and the layers up to it (its input not counted: --fine-tune's most where it is
# the deepest map taken)
MAPS = {"mobilenetv2": {2: ("expanded_conv_project_BN", 8), 4: ("block_2_add", 26), 8: ("block_5_add", 53),
                        16: ("block_12_add", 115)}}


class FirstBlocks:
    """Mixed into a Spec whose encoder can be a backbone's first blocks (--backbone): the detector and the
    free-space network. The subclass names its STRIDES (the maps its decoder takes, shallowest first), its NOUN
    (for messages) and compiles in `recompile(model, learning_rate)`. From random weights every layer trains
    (BatchNormalization momentum SCRATCH_BN_MOMENTUM); with --weights the first blocks are loaded, frozen and
    called with training=False (BatchNormalization keeps the file's statistics, since Keras uses batch statistics
    only in a layer that is training and trainable), and --fine-tune N unfreezes their last N layers for a second
    phase at FINE_TUNE_LR, as the classifiers' transfer learning does."""

    STRIDES, NOUN = (), ""

    def take_backbone(self, backbone, weights, fine_tune, fine_tune_epochs):
        """backbone: a name in MAPS, or None for the network's own encoder."""
        self.backbone = BACKBONES[backbone] if backbone else None
        self.weights, self.fine_tune, self.fine_tune_epochs = weights, fine_tune, fine_tune_epochs

    def check_backbone(self, backbone, weights, fine_tune, fine_tune_epochs):
        """The options for one run, checked without TensorFlow; UserError (one line) when they do not fit."""
        if backbone is None:
            if any(v is not None for v in (weights, fine_tune, fine_tune_epochs)):
                raise UserError("--weights and --fine-tune are for a backbone's pretrained layers: give the %s one "
                                "with --backbone %s" % (self.NOUN, "|".join(MAPS)))
            return
        if backbone not in MAPS:
            raise UserError("--backbone %s: the %s's encoder can be %s" % (backbone, self.NOUN, "|".join(MAPS)))
        check_transfer(BACKBONES[backbone], weights, fine_tune, fine_tune_epochs, self.feature_layers(backbone),
                       "the %s's encoder (%s through %s)" % (self.NOUN, backbone, MAPS[backbone][max(self.STRIDES)][0]))

    def feature_layers(self, backbone):
        """The backbone's layers up to the deepest map taken (its input not counted)."""
        return MAPS[backbone][max(self.STRIDES)][1]

    def describe(self) -> str:
        """What this run does with the backbone's weights, for stderr."""
        name = "the %s on %s's first blocks (%d layers: its maps at strides %s)" % (
            self.NOUN, self.backbone.name, self.feature_layers(self.backbone.name),
            ", ".join(str(s) for s in self.STRIDES))
        if self.weights is None:
            return "%s from RANDOM weights (no --weights given; nothing is downloaded): every layer trains" % name
        return "%s from %s: backbone frozen (BatchNormalization in inference mode), the rest trains%s" % (
            name, self.weights, "; then its last %d layers at learning rate %g" % (self.fine_tune, FINE_TUNE_LR)
            if self.fine_tune else "")

    def build_base(self):
        """The backbone's maps at STRIDES, as one model named after the backbone, with --weights loaded (and
        frozen) or from random weights with BatchNormalization momentum that keeps up."""
        import keras

        b = self.backbone
        whole = getattr(keras.applications, b.app)(input_shape=self.input_shape, include_top=False, weights=None,
                                                   **b.kwargs)
        if self.weights is not None:
            load_weights(whole, self.weights, b)
        names = [MAPS[b.name][s][0] for s in self.STRIDES]
        base = keras.Model(whole.inputs, [whole.get_layer(n).output for n in names], name=b.name)
        if self.weights is not None:
            base.trainable = False
        else:
            set_bn_momentum(base, SCRATCH_BN_MOMENTUM)
        return base

    def features(self, base, inputs):
        """The backbone's maps of inputs: a frozen one in inference mode."""
        return base(inputs, training=False) if self.weights is not None else base(inputs)

    def start_fine_tune(self, model):
        """Phase 2: the backbone's last fine_tune layers unfrozen (BatchNormalization stays), recompiled."""
        unfreeze_last(backbone_of(model), self.fine_tune)
        self.recompile(model, FINE_TUNE_LR)

    def recompile(self, model, learning_rate):
        raise NotImplementedError


def set_bn_momentum(base, momentum):
    """A backbone trained from random weights: BatchNormalization statistics that keep up (keras.applications'
    0.999 lags far behind weights that move fast)."""
    import keras

    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def unfreeze_last(base, n):
    """A frozen backbone's last n layers made trainable, except BatchNormalization (its ImageNet statistics stay)."""
    import keras

    base.trainable = True
    layers = base.layers[1:]  # without its InputLayer
    for i, layer in enumerate(layers):
        layer.trainable = i >= len(layers) - n and not isinstance(layer, keras.layers.BatchNormalization)


def load_weights(base, weights, backbone):
    """A weights file a user downloaded, into the keras.applications model of backbone (a Backbone); UserError
    (one line) when it is not that model's."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per layer before it raises on a mismatch
            base.load_weights(weights)
    except Exception as exc:  # h5py's OSError, Keras's ValueError: all mean "not this backbone's file"
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError("--weights %s does not fit %s (expected %s): %s"
                        % (weights, backbone.name, backbone.weight_files, reason)) from None


def check_transfer(backbone, weights, fine_tune, fine_tune_epochs, layers=None, what=None):
    """The transfer-learning options for a backbone, checked without TensorFlow; UserError (one line). layers and
    what: the part of it that --fine-tune can reach where that is not all of it (its first blocks)."""
    if weights is not None:
        if not os.path.isfile(weights):
            raise UserError("--weights %s: no such file (download %s from Keras's storage)"
                            % (weights, backbone.weight_files))
        if not weights.lower().endswith(WEIGHT_SUFFIXES):
            raise UserError("--weights %s: expected a Keras weights file (%s)" % (weights, ", ".join(WEIGHT_SUFFIXES)))
    if fine_tune is not None:
        if weights is None:
            raise UserError("--fine-tune needs --weights PATH: from random weights there is nothing pretrained to "
                            "keep, and every layer trains from the start anyway")
        layers = layers or backbone.layers
        if fine_tune > layers:
            raise UserError("--fine-tune %d: %s has %d layers" % (fine_tune, what or backbone.name, layers))
    if fine_tune_epochs is not None and fine_tune is None:
        raise UserError("--fine-tune-epochs needs --fine-tune N")


def _compile(model, learning_rate):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])


def _square_imagenet_stddev(layer):
    """keras.applications' EfficientNet with weights="imagenet" adds a Rescaling(1/sqrt(stddev)) after its
    Normalization, whose ImageNet "variance" is the standard deviation (keras issue tensorflow#49930), so the
    input becomes (x/255 - mean) / stddev. Built with a weights file instead, that Rescaling is missing: the same
    result comes from the variance squared, which this sets when the loaded variance is ImageNet's stddev."""
    variance = np.asarray(layer.adapt_variance).reshape(-1)
    if variance.shape == (3,) and np.allclose(variance, IMAGENET_STDDEV_RGB, atol=1e-4):
        layer.adapt_variance.assign(np.square(np.asarray(layer.adapt_variance)))
        layer.finalize_state()


def backbone_of(model):
    """The keras.applications model nested inside a transfer-learning model."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError("%s has no nested backbone" % model.name)


def zoo_entries():
    """(name, BackboneSpec) of each backbone, for the zoo (train/models.py), in BACKBONES' order."""
    return [(name, BackboneSpec(b)) for name, b in BACKBONES.items()]
