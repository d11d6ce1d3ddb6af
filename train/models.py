"""The model zoo, by name: the lecture's networks (lecture-cnn-part1), NVIDIA's PilotNet, and the edge backbones
of keras.applications for transfer learning (train/backbones.py: MobileNetV2, MobileNetV3Small, EfficientNetB0).

Each entry says how to build and compile the network and what its input is (size, colour, scaling):
that input contract goes into the run's metadata and from there into the bundle's manifest.
"""

from __future__ import annotations

from runtime.errors import UserError


class Spec:
    """A zoo entry: task, input contract and compile settings; `build(num_classes)` makes the model."""

    weights, fine_tune, fine_tune_epochs = None, 0, None  # only backbones (train/backbones.py) use them

    def __init__(self, name, task, size, color, layout="NHWC", scale=1.0 / 255, offset=0.0, crop=None,
                 interpolation="linear", optimizer="rmsprop", default_data="digits", about=""):
        self.name, self.task, self.size, self.color, self.layout = name, task, size, color, layout
        self.scale, self.offset, self.crop, self.interpolation = scale, offset, crop, interpolation
        self.optimizer, self.default_data, self.about = optimizer, default_data, about

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

        builder = _BUILDERS[self.name]
        model = builder(layers, models, self.input_shape, num_classes)
        loss, metrics = {"classification": ("categorical_crossentropy", ["accuracy"]),
                         "binary": ("binary_crossentropy", ["accuracy"]),
                         "steering": ("mse", ["mae"])}[self.task]
        model.compile(optimizer=self.optimizer, loss=loss, metrics=metrics)
        return model


def _mnist_dense(layers, models, shape, n):
    # the lecture's first Keras program, as written there
    return models.Sequential([
        layers.Input(shape),
        layers.Dense(512, activation="relu"),
        layers.Dense(n, activation="softmax"),
    ], name="mnist_dense")


def _mnist_cnn(layers, models, shape, n):
    return models.Sequential([
        layers.Input(shape),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dense(n, activation="softmax"),
    ], name="mnist_cnn")


def _cifar_cnn(layers, models, shape, n):
    # the lecture's "CNNs in Keras" slide, layer for layer
    return models.Sequential([
        layers.Input(shape),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dense(n, activation="softmax"),
    ], name="cifar_cnn")


def _binary_cnn(layers, models, shape, n):
    # the lecture's 150x150 classifier whose summary it prints (Chollet 8.1's cats vs dogs)
    return models.Sequential([
        layers.Input(shape),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(128, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(512, activation="relu"),
        layers.Dense(1, activation="sigmoid"),
    ], name="binary_cnn")


def _pilotnet(layers, models, shape, n):
    # Bojarski et al. 2016: YUV in, fixed normalisation, 5 convolutions, 3 dense layers, one output
    return models.Sequential([
        layers.Input(shape),
        layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalization"),
        layers.Conv2D(24, (5, 5), strides=(2, 2), activation="relu"),
        layers.Conv2D(36, (5, 5), strides=(2, 2), activation="relu"),
        layers.Conv2D(48, (5, 5), strides=(2, 2), activation="relu"),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(100, activation="relu"),
        layers.Dense(50, activation="relu"),
        layers.Dense(10, activation="relu"),
        layers.Dense(1, name="steering"),
    ], name="pilotnet")


_BUILDERS = {"mnist_dense": _mnist_dense, "mnist_cnn": _mnist_cnn, "cifar_cnn": _cifar_cnn,
             "binary_cnn": _binary_cnn, "pilotnet": _pilotnet}

ZOO = {
    "mnist_dense": Spec("mnist_dense", "classification", (28, 28), "gray", layout="flat", optimizer="sgd",
                        about="the lecture's dense net: Dense 512 relu -> Dense 10 softmax on 28x28 flattened"),
    "mnist_cnn": Spec("mnist_cnn", "classification", (28, 28), "gray", optimizer="adam",
                      about="a small Conv2D/MaxPooling2D classifier for 28x28x1"),
    "cifar_cnn": Spec("cifar_cnn", "classification", (32, 32), "rgb", optimizer="adam",
                      about="the lecture's CIFAR-10 network on 32x32x3"),
    "binary_cnn": Spec("binary_cnn", "binary", (150, 150), "rgb", default_data=None,
                       about="the lecture's 150x150x3 binary classifier (cats vs dogs)"),
    "pilotnet": Spec("pilotnet", "steering", (200, 66), "yuv", scale=1.0, crop={
        "top": 0.40, "bottom": 1.0, "left": 0.0, "right": 1.0}, interpolation="area", optimizer="adam",
        default_data="road", about="NVIDIA's end-to-end steering network, 66x200 YUV"),
}


# mobilenetv2, mobilenetv3small, efficientnetb0 for transfer learning: train/backbones.py subclasses Spec (above)
# and adds them to ZOO when it is imported, whichever of the two modules is imported first
from . import backbones  # noqa: E402, F401


def get(name: str) -> Spec:
    if name not in ZOO:
        raise UserError("unknown model %r (choose from: %s)" % (name, ", ".join(ZOO)))
    return ZOO[name]
