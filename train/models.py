"""The model zoo, by name: the lecture's networks (lecture-cnn-part1), NVIDIA's PilotNet, and the edge backbones
of keras.applications for transfer learning (train/backbones.py: MobileNetV2, MobileNetV3Small, EfficientNetB0).

Each entry (a Spec, train/spec.py) says how to build and compile the network and what its input is (size, colour,
scaling): that input contract goes into the run's metadata and from there into the bundle's manifest. This module
is the zoo's one list: it imports train/backbones.py and train/detector.py for their entries, and neither imports
anything from here.
"""

from __future__ import annotations

from runtime.errors import UserError

from . import backbones, detector, freespace
from .spec import Spec


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


ZOO = {
    "mnist_dense": Spec("mnist_dense", "classification", (28, 28), "gray", layout="flat", optimizer="sgd",
                        about="the lecture's dense net: Dense 512 relu -> Dense 10 softmax on 28x28 flattened",
                        builder=_mnist_dense),
    "mnist_cnn": Spec("mnist_cnn", "classification", (28, 28), "gray", optimizer="adam",
                      about="a small Conv2D/MaxPooling2D classifier for 28x28x1", builder=_mnist_cnn),
    "cifar_cnn": Spec("cifar_cnn", "classification", (32, 32), "rgb", optimizer="adam",
                      about="the lecture's CIFAR-10 network on 32x32x3", builder=_cifar_cnn),
    "binary_cnn": Spec("binary_cnn", "binary", (150, 150), "rgb", default_data=None,
                       about="the lecture's 150x150x3 binary classifier (cats vs dogs)", builder=_binary_cnn),
    "pilotnet": Spec("pilotnet", "steering", (200, 66), "yuv", scale=1.0, crop={
        "top": 0.40, "bottom": 1.0, "left": 0.0, "right": 1.0}, interpolation="area", optimizer="adam",
        default_data="road", about="NVIDIA's end-to-end steering network, 66x200 YUV", builder=_pilotnet),
    "detector": detector.DetectorSpec(),
    "freespace": freespace.FreespaceSpec(),
}
# mobilenetv2, mobilenetv3small, efficientnetb0 for transfer learning (train/backbones.py), after the lecture's
ZOO.update(backbones.zoo_entries())


def get(name: str) -> Spec:
    if name not in ZOO:
        raise UserError("unknown model %r (choose from: %s)" % (name, ", ".join(ZOO)))
    return ZOO[name]
