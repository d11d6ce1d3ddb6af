"""Obstacles on the procedural road: deterministic by seed, boxes that are the exact extent of what shows, occlusion
and the frame's edges, and the ignore rules (under MIN_VISIBLE shown, under MIN_HEIGHT_PX high)."""

import numpy as np
import pytest

from runtime.sim import obstacles as ob
from runtime.sim import road

W, H = 320, 180
POSE = (0.0, 0.0, 0.0, 0.0)


def _layer(obstacles, shadows=False, width=W, height=H):
    renderer = road.RoadRenderer(width, height, seed=0)
    return ob.ObstacleLayer(renderer, obstacles, POSE, ob.Light(np.random.RandomState(1)), 0.5, shadows)


def _make(label, s, z, seed=0):
    return ob._MAKE[label](np.random.RandomState(seed), s, z)


def test_same_seed_same_frames_and_boxes_other_seed_other():
    a = ob.sample_detection_frames(6, 160, 90, seed=3)
    b = ob.sample_detection_frames(6, 160, 90, seed=3)
    c = ob.sample_detection_frames(6, 160, 90, seed=4)
    assert a[0].dtype == np.uint8 and a[0].shape == (6, 90, 160, 3)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    for i in range(6):
        assert np.array_equal(a[1][i], b[1][i]) and np.array_equal(a[2][i], b[2][i])
        assert np.array_equal(a[3][i], b[3][i])
        assert a[1][i].dtype == np.float32 and a[1][i].shape == (len(a[2][i]), 4)
        assert a[2][i].dtype == np.int64 and a[3][i].dtype == bool


@pytest.mark.parametrize("label", range(len(ob.LABELS)))
def test_a_box_is_the_tight_extent_of_the_pixels_an_obstacle_changes(label):
    """Alone on a flat background, without a shadow: the box is exactly the extent of the changed pixels (for a
    stop sign, of its octagon: the post is drawn but not in the box)."""
    obstacle = _make(label, 0.5, 9.0)
    layer = _layer([obstacle])
    frame = np.full((H, W, 3), 7.0, np.float32)
    layer(frame, np.full(3, 255.0, np.float32))
    boxes, classes, ignore, visible = layer.labels()
    changed = np.any(frame != 7.0, axis=2)
    if label == ob.STOP_SIGN:
        changed &= layer.ids == 0
    ys, xs = np.nonzero(changed)
    assert list(boxes[0]) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert list(classes) == [label] and not ignore[0] and visible[0] == 1.0


def test_road_frames_without_obstacles_are_unchanged():
    renderer = road.RoadRenderer(160, 90, seed=2)
    scene = road.Scene(np.random.RandomState(5))
    plain = renderer.render(0.1, 0.02, 0.01, 0.0, 12.0, scene, np.random.RandomState(9))
    empty = _layer([], width=160, height=90)
    assert np.array_equal(plain, renderer.render(0.1, 0.02, 0.01, 0.0, 12.0, scene, np.random.RandomState(9),
                                                 objects=empty))
    assert not empty.labels()[0].size


def _drawn(obstacles, width=W, height=H):
    layer = _layer(obstacles, width=width, height=height)
    layer(np.zeros((height, width, 3), np.float32), np.full(3, 255.0, np.float32))
    return layer


def test_a_nearer_obstacle_hides_a_farther_one_and_its_box_is_what_shows():
    car = _make(ob.CAR, 0.0, 14.0)
    alone = _drawn([car])
    person = _make(ob.PEDESTRIAN, -0.5, 8.0)  # in front of the car's left side, taller than it looks
    both = _drawn([car, person])
    boxes, classes, ignore, visible = both.labels()
    assert list(classes) == [ob.CAR, ob.PEDESTRIAN] and list(visible) == [np.sum(both.ids == 0) / alone.full[0], 1.0]
    ys, xs = np.nonzero((alone.ids == 0) & (both.ids != 1))  # the car's pixels that the person leaves
    assert list(boxes[0]) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert boxes[0][0] > alone.labels()[0][0][0] and 0.7 < visible[0] < 0.8 and not ignore[0]


def test_mostly_hidden_or_clipped_or_small_obstacles_are_ignore_regions():
    hidden = _drawn([_make(ob.CONE, 0.0, 12.0), _make(ob.BOX, 0.3, 9.0)])  # a box in front shows an eighth
    _, classes, ignore, visible = hidden.labels()
    assert list(classes) == [ob.CONE, ob.BOX] and list(ignore) == [True, False] and visible[0] < ob.MIN_VISIBLE
    half = _drawn([_make(ob.CONE, 0.0, 12.0), _make(ob.BOX, 0.4, 9.0)])  # a half shows: a positive
    assert half.labels()[3][0] > ob.MIN_VISIBLE and not half.labels()[2][0]
    edge = _drawn([_make(ob.CAR, -9.5, 9.0)])  # mostly off the left edge of the frame
    boxes, _, ignore, visible = edge.labels()
    assert boxes[0][0] == 0 and visible[0] < ob.MIN_VISIBLE and ignore[0]
    small = _drawn([_make(ob.PEDESTRIAN, 1.0, 36.0, seed=2)], 160, 90)  # 3 px high at 160 x 90
    boxes, _, ignore, visible = small.labels()
    assert boxes[0][3] - boxes[0][1] < ob.MIN_HEIGHT_PX and visible[0] == 1.0 and ignore[0]
    assert not small.labels(min_height=1.0)[2][0]


def test_sampled_frames_have_every_class_positives_and_ignore_regions():
    _, boxes, classes, ignore = ob.sample_detection_frames(60, 256, 144, seed=0)
    classes, ignore, boxes = np.concatenate(classes), np.concatenate(ignore), np.concatenate(boxes)
    assert set(classes[~ignore]) == set(range(len(ob.LABELS))) and ignore.any()
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    assert boxes.min() >= 0 and boxes[:, 2].max() <= 256 and boxes[:, 3].max() <= 144
    assert np.all(boxes[~ignore, 3] - boxes[~ignore, 1] >= ob.MIN_HEIGHT_PX)
