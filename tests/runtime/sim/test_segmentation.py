"""Free-space segmentation labels of the procedural road: deterministic, the detection frames' own images, every class
where the frame shows it (sky above the ground, my lane under the car, markings where the paint is, obstacles in
their boxes, shadows not), and the runtime's two reductions of a class map."""

import numpy as np
import pytest

from runtime.sim import obstacles as ob
from runtime.sim import road
from runtime.sim import segmentation as sg

W, H = 320, 180


def test_same_seed_same_frames_and_masks_other_seed_other():
    a = sg.sample_segmentation_frames(4, 160, 90, seed=3)
    b = sg.sample_segmentation_frames(4, 160, 90, seed=3)
    c = sg.sample_segmentation_frames(4, 160, 90, seed=4)
    assert a[0].dtype == np.uint8 and a[0].shape == (4, 90, 160, 3)
    assert a[1].dtype == np.uint8 and a[1].shape == (4, 90, 160)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def test_the_frames_are_the_detection_frames():
    """By design: the same seed gives the images obstacles.sample_detection_frames gives, so one network's frames
    are another's. (Not the steering frames: those have no obstacles and draw their poses from the random state
    without the obstacles' draws in between.)"""
    frames, _ = sg.sample_segmentation_frames(5, 160, 90, seed=7)
    images, _, _, _ = ob.sample_detection_frames(5, 160, 90, seed=7)
    assert np.array_equal(frames, images)
    with pytest.raises(ValueError, match="views must be one of"):
        sg.sample_segmentation_frames(1, views="sideways")


def test_every_class_shows_and_no_id_is_out_of_range():
    _, masks = sg.sample_segmentation_frames(20, 160, 90, seed=0)
    assert masks.max() < len(sg.CLASSES)
    shares = np.bincount(masks.ravel(), minlength=len(sg.CLASSES)) / masks.size
    assert np.all(shares > 0) and abs(shares.sum() - 1.0) < 1e-12
    assert [sg.CLASSES[i] for i in sg.DRIVABLE] == ["ego lane", "other road", "marking"]


def test_sky_is_exactly_the_rows_above_the_ground():
    """The rows the renderer paints as sky (pixel centres above the horizon row + 1) are sky wherever no obstacle
    stands in front of it, and no row below is."""
    renderer = road.RoadRenderer(W, H, seed=0)
    first = renderer.first_ground
    assert first - 0.5 <= renderer.v_h + 1.0 < first + 0.5
    _, masks = sg.sample_segmentation_frames(12, W, H, seed=2)
    assert np.all(np.isin(masks[:, :first], (sg.SKY, sg.OBSTACLE))) and np.mean(masks[:, :first] == sg.SKY) > 0.99
    assert not np.any(masks[:, first:] == sg.SKY)


def _lateral(renderer, row):
    """Metres right of the camera of each pixel centre on a ground row (the renderer's own geometry)."""
    return renderer.x[row - renderer.first_ground]


def test_my_lane_is_where_the_car_is():
    renderer = road.RoadRenderer(W, H, seed=0)
    bottom = H - 1
    x = _lateral(renderer, bottom)
    centred = sg.label_frame(renderer, (0.0, 0.0, 0.0, 0.0), 0.0)[bottom]
    assert np.all(centred[np.abs(x) < 1.5] == sg.EGO_LANE)
    assert np.all(centred[x < -1.9] != sg.EGO_LANE) and np.any(centred == sg.OTHER_ROAD)
    assert np.all(centred[(x > 1.61) & (x < 1.74)] == sg.MARKING)  # my lane's right edge line
    # a lane width left of my lane's centre: the car is on the other lane, mine is to its right
    over = sg.label_frame(renderer, (-road.LANE_WIDTH_M, 0.0, 0.0, 0.0), 0.0)[bottom]
    assert np.all(over[np.abs(x) < 1.5] == sg.OTHER_ROAD) and np.all(over[x > 1.9] == sg.EGO_LANE)
    # a road bending right takes my lane right, far ahead
    row = renderer.first_ground + 10
    ahead = _lateral(renderer, row)
    bend = sg.label_frame(renderer, (0.0, 0.0, 1 / 40.0, 0.0), 0.0)[row]
    straight = sg.label_frame(renderer, (0.0, 0.0, 0.0, 0.0), 0.0)[row]
    assert ahead[bend == sg.EGO_LANE].mean() > ahead[straight == sg.EGO_LANE].mean() + 3.0  # 4.4 m at 18.8 m


def _plain_scene(seed):
    scene = road.Scene(np.random.RandomState(seed))
    scene.noise, scene.shadows, scene.texture_gain, scene.centre = 0.0, np.zeros((0, 4)), 0.0, road._WHITE
    return scene


@pytest.mark.parametrize("pose, travelled", [((0.0, 0.0, 0.0, 0.0), 0.0), ((0.5, 0.04, 1 / 50.0, 1e-4), 4.0),
                                             ((-0.8, -0.06, -1 / 45.0, 0.0), 7.5)])
def test_markings_are_where_the_paint_outweighs_the_rest(pose, travelled):
    """Without noise, texture and shadows (a white centre line), a ground pixel's brightness is its shares' mix
    of verge, asphalt and paint, hazed: a pixel more than half paint is brighter than halfway from the brighter of
    verge and asphalt to white, and is a marking; a marking is at least a third paint, so at least a third of the
    way from the darker one to white."""
    renderer = road.RoadRenderer(W, H, seed=0)
    scene = _plain_scene(1)
    frame = renderer.render(pose[0], pose[1], pose[2], pose[3], travelled, scene, np.random.RandomState(0))
    mask = sg.label_frame(renderer, pose, travelled)[renderer.first_ground:]
    exposure = (scene.gain * scene.tint * 255.0).astype(np.float32)
    verge, asphalt, white, haze = ((np.asarray(c) * exposure).sum() for c in
                                   (scene.verge, scene.asphalt, road._WHITE, road._SKY_LOW))
    fog = renderer.fog
    bright = frame[renderer.first_ground:].astype(np.float64).sum(axis=2)
    marking = mask == sg.MARKING
    high = fog * (0.5 * (max(verge, asphalt) + white)) + (1.0 - fog) * haze + 2.0  # 2: the rounding to uint8
    low = fog * (min(verge, asphalt) + (white - min(verge, asphalt)) / 3.0) + (1.0 - fog) * haze - 2.0
    assert np.all(marking[bright > high]) and np.all(bright[marking] >= np.broadcast_to(low, bright.shape)[marking])
    assert marking.sum() > 400 and np.sum(bright > high) > 0.6 * marking.sum()


def _layer(renderer, obstacles, shadows):
    return ob.ObstacleLayer(renderer, obstacles, (0.0, 0.0, 0.0, 0.0), ob.Light(np.random.RandomState(1)), 0.5,
                            shadows)


def test_obstacles_and_their_posts_are_obstacle_pixels_and_their_shadows_are_not():
    renderer = road.RoadRenderer(W, H, seed=0)
    scene = _plain_scene(2)
    things = [ob._MAKE[ob.CAR](np.random.RandomState(0), 0.2, 12.0),
              ob._MAKE[ob.STOP_SIGN](np.random.RandomState(0), 2.8, 9.0)]
    drawn = {}
    for shadows in (False, True):
        layer = _layer(renderer, things, shadows)
        frame = renderer.render(0.0, 0.0, 0.0, 0.0, 0.0, scene, np.random.RandomState(0), objects=layer)
        drawn[shadows] = frame, layer.ids
    frame, ids = drawn[True]
    mask = sg.label_frame(renderer, (0.0, 0.0, 0.0, 0.0), 0.0, ids)
    assert np.array_equal(mask == sg.OBSTACLE, ids != -1) and np.any(ids == -2)  # -2: the post
    shaded = np.any(frame != drawn[False][0], axis=2)
    assert shaded.sum() > 100
    bare = sg.label_frame(renderer, (0.0, 0.0, 0.0, 0.0), 0.0)
    assert np.array_equal(mask[shaded], bare[shaded]) and not np.any(mask[shaded] == sg.OBSTACLE)


def test_obstacle_pixels_fill_the_detection_boxes_and_lie_nowhere_else_but_under_stop_signs():
    """Each box (positives and ignore regions) is the tight extent of obstacle pixels, and an obstacle pixel outside
    every box is a stop sign's post: below its sign, within its columns."""
    _, masks = sg.sample_segmentation_frames(16, 256, 144, seed=0)
    _, boxes, classes, _ = ob.sample_detection_frames(16, 256, 144, seed=0)
    posts = 0
    for mask, frame_boxes, frame_classes in zip(masks, boxes, classes):
        obstacle = mask == sg.OBSTACLE
        outside = obstacle.copy()
        for (x0, y0, x1, y1) in frame_boxes.astype(int):
            inside = obstacle[y0:y1, x0:x1]
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            outside[y0:y1, x0:x1] = False
        under_a_sign = np.zeros_like(outside)
        for (x0, _, x1, y1) in frame_boxes[frame_classes == ob.STOP_SIGN].astype(int):
            under_a_sign[y1:, x0:x1] = True
        assert not np.any(outside & ~under_a_sign)
        posts += int(outside.sum())
    assert posts > 0 and sum(len(b) for b in boxes) > 30


def test_the_runtimes_boundary_on_the_labelled_road():
    """runtime/postprocess.py's free space per column (rows up from the bottom) on these classes."""
    from runtime.postprocess import freespace_boundary

    E, R, M, V, S, X = sg.EGO_LANE, sg.OTHER_ROAD, sg.MARKING, sg.VERGE, sg.SKY, sg.OBSTACLE
    mask = np.array([[E, S, S, S],
                     [E, S, X, V],
                     [R, E, M, E],
                     [M, E, E, X],
                     [E, V, E, R]], np.uint8)
    assert freespace_boundary(mask, sg.DRIVABLE).tolist() == [5, 0, 3, 1]
    _, masks = sg.sample_segmentation_frames(2, 160, 90, seed=0)
    ground = 90 - road.RoadRenderer(160, 90).first_ground
    for m in masks:
        assert np.all(freespace_boundary(m, sg.DRIVABLE) <= ground)  # the sky is never free space
