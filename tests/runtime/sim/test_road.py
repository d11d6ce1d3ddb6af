"""The procedural road: deterministic, labelled with the steering that follows the lane, of a size it can render."""

import numpy as np

from runtime.sim import road
from tests.conftest import cli, one_line_error


def test_same_seed_same_frames_other_seed_other_frames():
    a, la = road.sample_frames(4, 160, 90, seed=3)
    b, lb = road.sample_frames(4, 160, 90, seed=3)
    c, _ = road.sample_frames(4, 160, 90, seed=4)
    assert a.dtype == np.uint8 and a.shape == (4, 90, 160, 3)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_steering_follows_the_lane():
    assert road.steering_label(0.0, 0.0, 0.0) == 0.0                     # centred on a straight road
    assert road.steering_label(0.0, 0.0, 1 / 40.0) > 0.1                 # road bends right: steer right
    assert road.steering_label(0.0, 0.0, -1 / 40.0) < -0.1
    assert road.steering_label(0.8, 0.0, 0.0) < 0                        # right of centre: steer left
    assert road.steering_label(0.0, 0.1, 0.0) < 0                        # pointing right: steer left
    # pure pursuit on a curve of radius R with the car on the lane: 1/r = 1/R, so steering = R0 / R
    assert abs(road.steering_label(0.0, 0.0, 1 / 50.0) - road.STEERING_RADIUS_M / 50.0) < 1e-9


def test_frames_show_the_lane_where_the_label_says():
    """A lane bending right puts the far lane markings right of where a straight lane has them."""
    renderer = road.RoadRenderer(320, 180, seed=0)
    scene = road.Scene(np.random.RandomState(0))
    scene.noise, scene.shadows = 0.0, np.zeros((0, 4))
    rng = np.random.RandomState(0)
    row = int(180 * road.HORIZON) + 12  # far ahead
    straight = renderer.render(0, 0, 0, 0, 0, scene, rng)[row].astype(int).sum(axis=1)
    right = renderer.render(0, 0, 1 / 40.0, 0, 0, scene, rng)[row].astype(int).sum(axis=1)
    brightest = lambda r: np.argsort(r)[-5:].mean()  # noqa: E731  (the edge line is the brightest)
    assert brightest(right) > brightest(straight) + 5


def test_recovery_views_leave_the_lane_centre_and_centred_views_keep_near_it():
    """PilotNet's augmentation: views shifted and rotated off the centre, each labelled to steer back."""
    rng = np.random.RandomState(0)
    recovery = np.array([road.random_pose(rng)[:2] for _ in range(2000)])
    centred = np.array([road.random_pose(rng, "centred")[:2] for _ in range(2000)])
    assert np.abs(recovery[:, 0]).max() > 1.0 and np.abs(centred[:, 0]).max() <= 0.3
    assert recovery.std(axis=0)[0] > 3 * centred.std(axis=0)[0] and recovery.std(axis=0)[1] > 3 * centred.std(axis=0)[1]
    # a car right of the centre, heading along a straight lane, is told to steer left, back to it
    assert road.steering_label(0.8, 0.0, 0.0) < -0.2 and road.steering_label(-0.8, 0.0, 0.0) > 0.2


def test_a_road_too_large_to_render_is_one_line(pilot_bundle):
    """Within the image budget (89 MP) but 16.9 GB to render: the road is held to 4K's pixels."""
    proc = cli("runtime", "run", pilot_bundle, "--source", "synthetic://road", "--input-width", "5592405",
               "--input-height", "16", "--max-frames", "1", "--no-display", timeout=120)
    assert one_line_error(proc) and "synthetic://road renders at most 8294400 pixels" in proc.stderr, proc.stderr
