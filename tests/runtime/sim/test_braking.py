"""The car that brakes (runtime/sim/braking.py, brake_drive.py, `runtime drive --detector`): the speed model's
deceleration limit, latency and acceleration; calm's drive unchanged by it (by hash); the ground-distance
geometry on real renders with the obstacles' exact boxes, and traffic's 16 px at the stopping distance; ground-
truth braking stops before an obstacle where a car that never sees collides; the checked-in detector and free-space
bundles each stop the car on a short traffic stretch; determinism; the command's table, JSON and refusals."""

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest

from runtime.sim import brake_drive, braking, obstacles, road, simulator
from runtime.sim.scenarios import CAR_FRONT_M, SCENARIOS
from tests.conftest import cli
from tests.runtime.conftest import BUNDLES

TRAFFIC = SCENARIOS["traffic"]
SHORT = dataclasses.replace(TRAFFIC, traffic=dataclasses.replace(TRAFFIC.traffic, first_m=25.0))  # one obstacle soon


def _bundle(name):
    return "%s/%s" % (BUNDLES, name)


@pytest.fixture(scope="module")
def models():
    from runtime import Model

    opened = {name: Model(_bundle(name)) for name in ("pilotnet", "detector", "freespace")}
    yield opened
    for m in opened.values():
        m.close()


def test_the_speed_model_brakes_after_its_latency_at_most_at_its_limit_and_accelerates_back():
    speed = braking.Speed(8.0, 30.0)
    assert speed.latency_frames == 3
    steps = [speed.step(10.0) for _ in range(3)]  # asked for more than the limit
    assert speed.v == 8.0 and steps == [8.0 / 30.0] * 3  # nothing yet: 100 ms of latency
    speed.step(10.0)
    assert speed.v == pytest.approx(8.0 - braking.DECEL_LIMIT_MPS2 / 30.0) and speed.acting == 4.9
    travelled = sum(speed.step(10.0) for _ in range(200))
    assert speed.v == 0.0
    v1 = 8.0 - 4.9 / 30.0  # from there at 4.9 m/s^2: v^2 / 2a (constant deceleration: the steps' sum is exact)
    assert travelled == pytest.approx(v1 * v1 / (2 * 4.9), abs=1e-9)
    for _ in range(3):
        speed.step(0.0)  # the release waits for the latency too
    assert speed.v == 0.0
    speed.step(0.0)
    assert speed.v == pytest.approx(braking.ACCEL_MPS2 / 30.0)
    for _ in range(300):
        speed.step(0.0)
    assert speed.v == 8.0
    assert braking.stopping_distance(8.0) == pytest.approx(64 / 9.8 + 0.8 + braking.STOP_MARGIN_M)


def test_calm_drives_bit_identically_with_the_speed_model_when_nothing_brakes():
    """The same calm drive with the speed model on (nothing brakes) and off: the same frames and poses, bit for bit.
    (Against the drive before the speed model existed: tests/runtime/test_golden.py's drive report; a hash of the
    frames themselves differs between OpenCV and numpy builds, so it is compared within one environment here.)"""
    digests = []
    for braking_on in (False, True):
        h = hashlib.sha256()
        sim = simulator.Simulator(200, 110, seed=2016, braking=braking_on)
        for _ in range(60):
            image, ideal = sim.view()
            h.update(image.tobytes())
            h.update(np.float64([sim.d, sim.psi, sim.track.travelled]).tobytes())
            sim.step(ideal / 10.0)
        digests.append(h.hexdigest())
    assert digests[0] == digests[1] and sim.track.travelled > 25.0  # 60 frames at 15 m/s: 30 m driven


def test_the_camera_geometry_inverts_and_refuses_bad_values():
    for pitch in (0.0, 5.0, -3.0):
        cam = braking.Camera(1.4, pitch)
        for z in (3.0, 9.8, 40.0):
            v = cam.row(z, 180, 320)
            x, back = cam.ground(160.0, v, 320, 180)
            assert float(back) == pytest.approx(z) and float(x) == pytest.approx(0.0)
    assert math.isinf(float(braking.Camera().ground(160.0, 0.0, 320, 180)[1]))  # the sky
    for bad in (dict(height_m=0.0), dict(height_m=float("nan")), dict(pitch_deg=80.0), dict(pitch_deg="x")):
        with pytest.raises(Exception, match="camera's"):
            braking.Camera(**bad)


def test_the_camera_comes_from_the_options_then_the_manifest_then_the_simulator():
    class Bundle:
        path = "det"
        manifest = {"camera": {"height_m": 1.2, "pitch_deg": 4.0}}

    assert braking.Camera.of_bundle(Bundle()).describe()["height_m"] == 1.2
    assert braking.Camera.of_bundle(Bundle(), pitch_deg=2.0).pitch_deg == 2.0
    Bundle.manifest = {}
    assert braking.Camera.of_bundle(Bundle()).height_m == road.CAMERA_HEIGHT_M
    Bundle.manifest = {"camera": {"height_m": "high"}}
    with pytest.raises(Exception, match="camera's height"):
        braking.Camera.of_bundle(Bundle())


@pytest.mark.parametrize("label", [obstacles.CAR, obstacles.PEDESTRIAN])
def test_traffic_obstacles_stand_16_px_at_the_stopping_distance_and_their_boxes_give_their_distance(label):
    """At traffic's speed, an in-lane obstacle whose near face stands the car's front + the stopping distance
    (braking + latency + margin) from the camera is at least 16 px tall at the detector's 256x144 input, and its
    exact box's bottom edge gives that distance within 0.5 m (flat-ground geometry)."""
    assert TRAFFIC.speed_mps == 8.0
    renderer, camera = road.RoadRenderer(320, 180, 0), braking.Camera()
    scale = 144.0 / 180.0  # the detector bundle's resize
    with open("%s/detector/manifest.json" % BUNDLES) as f:
        assert json.load(f)["preprocess"]["resize"]["height"] == 144
    for near in (CAR_FRONT_M + braking.stopping_distance(TRAFFIC.speed_mps), 6.0, 20.0):
        heights = []
        for seed in range(12):  # sizes drawn across their ranges
            half = obstacles.make(label, np.random.RandomState(seed), 0.0, 0.0).half_length
            o = obstacles.make(label, np.random.RandomState(seed), 0.3, near + half)
            light = obstacles.Light(np.random.RandomState(1))
            layer = obstacles.ObstacleLayer(renderer, [o], (0.0, 0.0, 0.0, 0.0), light)
            scene = road.Scene(np.random.RandomState(seed))
            renderer.render(0.0, 0.0, 0.0, 0.0, 0.0, scene, np.random.RandomState(2), layer)
            box = layer.labels()[0][0]
            heights.append((box[3] - box[1]) * scale)
            x, z = camera.ground(0.5 * (box[0] + box[2]), box[3], 320, 180)
            assert abs(float(z) - near) < 0.5 and abs(float(x) - 0.3) < 0.3
            policy = braking.BrakingPolicy(camera, 30.0)
            assert policy.distances([box], (320, 180), 0.0) == [pytest.approx(float(z))]
            assert policy.distances([box], (320, 180), 0.2) == []  # a path bending away leaves it out
        if near < 10.0:
            assert min(heights) >= 16.0, heights


def _drive(braker, seconds=6.0, steering=None, **kw):
    return brake_drive.drive(steering, seconds, 2016, SHORT, braker=braker,
                             controller="model" if steering is not None else "pure-pursuit", **kw).report()


def test_ground_truth_braking_stops_before_the_obstacle_where_the_never_seeing_car_collides():
    truth, never = _drive("ground-truth"), _drive("never-sees")
    assert truth["collisions"] == 0 and truth["stops_before_obstacles"] == 1 and truth["false_stops"] == 0
    assert truth["min_speed_mps"] == 0.0 and truth["braking"]["deceleration_limit_mps2"] == 4.9
    assert never["collisions"] == 1 and never["stops_before_obstacles"] == 0 and never["min_speed_mps"] == 8.0
    again = _drive("ground-truth")
    assert again == dict(truth, wall_seconds=again["wall_seconds"], realtime_factor=again["realtime_factor"])


def test_the_checked_in_detector_stops_the_car_before_the_obstacle(models):
    r = _drive("detector", steering=models["pilotnet"], detector=models["detector"])
    assert r["collisions"] == 0 and r["stops_before_obstacles"] == 1 and r["false_stops"] == 0
    assert r["autonomy"] == 100.0


def _class_map(foot_m, rows, width=160, height=96, cls=5):
    """A 96 x 160 class map of the simulator's camera: sky above the horizon, ego lane below it, and `rows` rows
    of class `cls` across the middle third, their foot where the ground is foot_m ahead."""
    camera = braking.Camera()
    mask = np.full((height, width), 2, np.int64)
    mask[:int(round(road.HORIZON * height))] = 0
    foot = int(camera.row(foot_m, 180, 320) * height / 180.0)
    mask[max(0, foot - rows + 1):foot + 1, width // 3:2 * width // 3] = cls
    return mask


def test_free_space_ends_where_something_stands_and_not_at_a_flat_patch():
    policy = braking.BrakingPolicy(braking.Camera(), 30.0)
    drivable, region = [2, 3, 4], (0, 0, 320, 180)
    sliver = policy.freespace(_class_map(8.0, 3), drivable, region, (320, 180), 0.0)  # a shadow's dark edge
    assert sliver > 40.0  # passed over: free to the horizon
    standing = policy.freespace(_class_map(8.0, 12), drivable, region, (320, 180), 0.0)  # 0.5 m tall: 5 rows
    assert 7.5 < standing < 8.5
    road_ends = _class_map(8.0, 60, cls=1)  # verge from 8 m ahead up to the horizon
    assert 7.5 < policy.freespace(road_ends, drivable, region, (320, 180), 0.0) < 8.5
    beside = _class_map(8.0, 12)
    beside[:, :] = np.where(beside == 5, 2, beside)
    beside[int(0.42 * 96) + 10:, :15] = 5  # standing 1.7 m and more to the left: outside the 1.2 m corridor
    assert policy.freespace(beside, drivable, region, (320, 180), 0.0) > 40.0


def test_free_space_alone_stops_the_car_before_the_obstacle(models):
    r = _drive("detector", 4.5, steering=models["pilotnet"], freespace=models["freespace"])
    assert r["collisions"] == 0 and r["stops_before_obstacles"] == 1 and r["false_stops"] == 0


def test_a_networks_braking_drive_is_the_same_twice(models):
    one, two = (brake_drive.drive(models["pilotnet"], 2.0, 2016, SHORT, detector=models["detector"])
                for _ in range(2))
    assert one.speed == two.speed and one.offset == two.offset and one.target == two.target


def test_the_command_prints_and_writes_the_braking_table(tmp_path):
    out = tmp_path / "b.json"
    r = cli("runtime", "drive", _bundle("pilotnet"), "--detector", _bundle("detector"), "--seconds", "1",
            "--seeds", "2", "--compare", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "false stops/km" in r.stdout and "time lost s" in r.stdout
    report = json.loads(out.read_text())
    assert [row["braker"] for row in report["rows"]] == ["detector", "ground-truth", "never-sees"]
    assert report["seeds"] == [2016, 2017] and report["camera"]["height_m"] == 1.4
    truth = report["rows"][1]
    assert truth["time_lost_s"]["values"] == [0.0, 0.0] and len(truth["drives"]) == 2


def test_the_command_drives_one_seed_of_traffic_with_its_video(tmp_path):
    video = tmp_path / "b.mp4"
    r = cli("runtime", "drive", _bundle("pilotnet"), "--detector", _bundle("detector"), "--seed", "2017",
            "--seconds", "0.5", "--output", str(video), "--json", str(tmp_path / "b.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["scenario"] == "traffic" and report["seeds"] == [2017] and video.stat().st_size > 0


@pytest.mark.parametrize("extra, message", [
    (["--detector", "freespace"], "--detector .* is a segmentation bundle: it takes a detection bundle"),
    (["--detector", "detector", "--freespace", "detector"], "--freespace .* is a detection bundle"),
    (["--detector", "detector", "--camera-height", "-1"], "camera's height must be"),
    (["--detector", "detector", "--camera-pitch", "90"], "camera's pitch must be"),
    (["--freespace", "freespace"], "--freespace goes with --detector"),
    (["--camera-height", "1.2"], "--camera-height goes with --detector"),
    (["--detector", "detector", "--scenario", "all"], "not all"),
    (["--detector", "detector", "--seed", "2017", "--seeds", "2"], "--seed picks one track"),
])
def test_the_command_refuses_bad_braking_inputs_in_one_line(extra, message):
    args = [_bundle(a) if a in ("freespace", "detector") else a for a in extra]
    r = cli("runtime", "drive", _bundle("pilotnet"), "--seconds", "1", *args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and __import__("re").search(message, lines[0]), r.stderr
