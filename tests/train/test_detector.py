"""The detector's pieces (train/detector.py): targets that decode back to their boxes, a loss that is small only
for the right answer, and a decoding graph that converts to ONNX and gives Keras's detections in ONNX Runtime."""

import numpy as np
import pytest

from train import detector

pytest.importorskip("keras")

SIZE = (128, 80)  # width, height: multiples of 16
BOXES = np.array([[10.0, 12.0, 42.0, 36.0], [70.0, 40.0, 94.0, 76.0], [100.0, 4.0, 120.0, 20.0]])
CLASSES = np.array([0, 1, 0])


def _perfect_raw(target, num_classes):
    """The RAW a perfect network would give for a target: huge logits where the centres are, the sizes and
    offsets as they are."""
    raw = np.zeros(target.shape[:2] + (detector.raw_channels(num_classes),), np.float32)
    raw[..., :num_classes] = np.where(target[..., :num_classes] == 1.0, 20.0, -20.0)
    raw[..., num_classes:] = target[..., num_classes:num_classes + 4]
    return raw[None]


def test_a_target_decodes_back_to_its_boxes_exactly():
    target = detector.encode(BOXES, CLASSES, [], SIZE, 2)
    assert target.shape == (20, 32, detector.target_channels(2)) and target[..., -2].sum() == 3
    found = np.asarray(detector.decode(_perfect_raw(target, 2), 2, k=5))[0]
    kept = found[found[:, 4] > 0.5]
    order = np.lexsort((kept[:, 0],))
    assert np.allclose(kept[order, :4], BOXES[np.lexsort((BOXES[:, 0],))], atol=1e-4)
    assert list(kept[order, 5]) == [0.0, 1.0, 0.0]
    assert np.all(found[3:, 4] < 1e-6)  # padded to k with scores of 0


def test_ignore_regions_weigh_nothing_but_a_centre_inside_one_still_counts():
    ignore = [[60.0, 30.0, 128.0, 80.0]]
    target = detector.encode(BOXES, CLASSES, ignore, SIZE, 2)
    weight = target[..., -1]
    assert weight[10:, 20:].sum() == 1.0  # the ignored quarter weighs nothing, except the centre of box 2
    assert weight[:5, :5].all()


def test_the_loss_is_small_for_the_right_answer_and_large_for_a_wrong_one():
    from keras import ops

    target = detector.encode(BOXES, CLASSES, [], SIZE, 2)[None]
    loss = detector.loss(2)
    right = float(ops.mean(loss(ops.convert_to_tensor(target), ops.convert_to_tensor(_perfect_raw(target[0], 2)))))
    shifted = np.roll(_perfect_raw(target[0], 2), 3, axis=2)
    wrong = float(ops.mean(loss(ops.convert_to_tensor(target), ops.convert_to_tensor(shifted))))
    assert right < 0.05 and wrong > 1.0, (right, wrong)


def test_the_decoding_converts_to_onnx_and_gives_kerass_detections():
    import keras

    from export import keras_onnx

    keras.utils.set_random_seed(0)
    net = detector.build(keras.layers, keras.models, (SIZE[1], SIZE[0], 3), 2)
    full = detector.with_decoding(net, 2, k=8)
    proto, _, _ = keras_onnx.convert(full)
    assert not {n.op_type for n in proto.graph.node} & {"NonMaxSuppression", "ArgMax", "Loop", "If"}
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.RandomState(1).uniform(0, 1, (1, SIZE[1], SIZE[0], 3)).astype(np.float32)
    raw, found = session.run(None, {"input": x})
    want_raw, want = (np.asarray(t) for t in full(x, training=False))
    assert found.shape == (1, 8, 6) and np.abs(raw - want_raw).max() < 1e-4
    assert np.abs(found - want).max() < 1e-3
