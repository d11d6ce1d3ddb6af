"""A zoo entry (Spec): a network's task, input contract (size, colour, scaling) and compile settings, and how to
build it. train/models.py lists the zoo; train/backbones.py subclasses Spec for keras.applications' backbones,
and train/detector.py for the detector (its own loss, and a backbone of its own choosing). They import this
module, and none imports another's entries by side effect."""

from __future__ import annotations


class Spec:
    """A zoo entry: task, input contract and compile settings; `build(num_classes)` makes the model with
    `builder(layers, models, input_shape, num_classes)` (keras.layers and keras.models) and compiles it."""

    backbone, weights, fine_tune, fine_tune_epochs = None, None, 0, None  # transfer learning (backbones, detector)

    def __init__(self, name, task, size, color, layout="NHWC", scale=1.0 / 255, offset=0.0, crop=None,
                 interpolation="linear", optimizer="rmsprop", default_data="digits", about="", builder=None):
        self.name, self.task, self.size, self.color, self.layout = name, task, size, color, layout
        self.scale, self.offset, self.crop, self.interpolation = scale, offset, crop, interpolation
        self.optimizer, self.default_data, self.about = optimizer, default_data, about
        self.builder = builder

    @property
    def channels(self):
        return 1 if self.color == "gray" else 3

    @property
    def input_shape(self):
        w, h = self.size
        return (h * w * self.channels,) if self.layout == "flat" else (h, w, self.channels)

    def preprocess(self):
        """The manifest's preprocessing section for this model."""
        return {"crop": self.crop,
                "resize": {"width": self.size[0], "height": self.size[1], "interpolation": self.interpolation},
                "color": self.color, "scale": self.scale, "offset": self.offset}

    def build(self, num_classes=10):
        from keras import layers, models

        model = self.builder(layers, models, self.input_shape, num_classes)
        loss, metrics = {"classification": ("categorical_crossentropy", ["accuracy"]),
                         "binary": ("binary_crossentropy", ["accuracy"]),
                         "steering": ("mse", ["mae"])}[self.task]
        model.compile(optimizer=self.optimizer, loss=loss, metrics=metrics)
        return model
