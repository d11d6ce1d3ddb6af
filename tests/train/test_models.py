"""The zoo matches the lecture's Keras code and model summary."""

import pytest

from tests.conftest import cli, one_line_error
from train import models


@pytest.mark.parametrize("name, params", [
    ("mnist_dense", 407_050),     # lecture: Dense 512 relu -> Dense 10 softmax on 784 inputs
    ("cifar_cnn", 703_594),       # lecture: "CNNs in Keras"
    ("binary_cnn", 3_453_121),    # lecture: the printed summary, "Total params: 3,453,121"
    ("pilotnet", 252_219),        # Bojarski et al.: "about 250 thousand parameters"
])
def test_parameter_counts_match_the_lecture(name, params):
    assert models.get(name).build().count_params() == params


def test_binary_cnn_layers_match_the_printed_summary():
    model = models.get("binary_cnn").build()
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers]
    assert shapes == [(148, 148, 32), (74, 74, 32), (72, 72, 64), (36, 36, 64), (34, 34, 128), (17, 17, 128),
                      (15, 15, 128), (7, 7, 128), (6272,), (512,), (1,)]


def test_mnist_dense_is_compiled_as_in_the_lecture():
    model = models.get("mnist_dense").build()
    assert model.optimizer.__class__.__name__ == "SGD"
    assert model.loss == "categorical_crossentropy"


def test_pilotnet_normalises_inside_the_model_and_takes_66x200_yuv():
    spec = models.get("pilotnet")
    model = spec.build()
    assert tuple(model.input_shape[1:]) == (66, 200, 3)
    assert spec.color == "yuv" and spec.scale == 1.0
    assert model.layers[0].name == "normalization"


def test_summary_flag_prints_keras_summary():
    proc = cli("train", "--model", "binary_cnn", "--summary")
    assert proc.returncode == 0, proc.stderr
    assert "Total params: 3,453,121" in proc.stdout


def test_unknown_model_is_one_line_exit_2():
    proc = cli("train", "--model", "resnet9000", "--summary")
    assert one_line_error(proc), proc.stderr
    assert "unknown model 'resnet9000'" in proc.stderr
