"""Preprocessing as TensorRT layers (runtime/backends/tensorrt/frame_input.py): the numpy weights against the CPU
path (the skew contract's bounds), and the layers built on the FAKE tensorrt's network (both API generations)
computing the same as numpy. NVIDIA's real bindings (8.6.1, 10.3, 11.4) were checked for every name used by hand
(docs/performance.md); a network cannot be made with them without TensorRT's libraries."""

import numpy as np
import pytest

from runtime.backends.tensorrt.frame_input import add_frame_input, area_matrix, frame_weights, reference
from runtime.bundle import load
from runtime.preprocess import Preprocessor
from tests.conftest import ROOT
from tests.realtrt.probe import load_fake

PILOTNET = ROOT + "/tests/runtime/bundles/pilotnet"


def test_area_weights_are_the_box_average():
    m = area_matrix(1280, 200)
    assert m.shape == (200, 1280) and np.allclose(m.sum(axis=1), 1.0) and np.isclose(m[0, 6], 0.4 / 6.4)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_the_weights_give_the_cpu_paths_tensor_within_the_contract(size):
    from runtime.sim import road

    b = load(PILOTNET)
    frames, _ = road.sample_frames(4, size[0], size[1], seed=777)
    fw = frame_weights(b.preprocess, b.input, size[::-1])
    pre = Preprocessor(b.preprocess, b.input)
    diff = np.abs(np.concatenate([pre(f).copy() for f in frames]) - np.concatenate([reference(f, fw) for f in frames]))
    # one uint8 step before YUV (at most 0.62 after it) on at most 1% of values: measured 0.04% / 0.02%
    assert diff.max() < 0.62 and np.mean(diff > 1e-3) < 0.01


@pytest.mark.parametrize("version", ["8.5.2", "10.3.0"])
def test_the_layers_on_the_fake_network_compute_the_reference(version):
    trt = load_fake(version)
    b = load(PILOTNET)
    network = trt.INetworkDefinition(0)
    old = trt.ITensor("input", (1, 66, 200, 3))
    network._fake_inputs.append(old)
    reader = network.add_identity(old)  # a layer of the parsed model reading its input
    fw = frame_weights(b.preprocess, b.input, (180, 320))
    kept = []
    frame = add_frame_input(trt, network, fw, kept)
    assert kept and all(isinstance(a, np.ndarray) for a in kept)  # held by the caller until the build
    assert [t.name for t in network._fake_inputs] == ["frame"] and reader.get_input(0) is not old
    image = np.random.default_rng(3).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    got = trt.FAKE_evaluate(reader.get_output(0), {frame.name: image[None]})
    assert np.allclose(got, reference(image, fw), atol=1e-3)
