"""Closed-loop driving (runtime/sim/simulator.py and judge.py, road.Track and road.move): the simulator's physics
driven from outside, the references, the checked-in PilotNet driving the held-out track, and the command's outputs
and refusals."""

import json

import pytest

from runtime.sim import judge, road, simulator
from tests.conftest import cli, one_line_error


def _sim(curvature, seed=3):
    """A simulator on a road of constant curvature (no bends drawn)."""
    sim = simulator.Simulator(64, 36, seed=seed)
    sim.track.k = sim.track.k_target = curvature
    sim.track.next_bend = float("inf")
    return sim


def _steer(sim, frames, steering):
    for _ in range(frames):
        _, ideal = sim.view()
        sim.step(steering(ideal) / road.STEERING_RADIUS_M)
    return sim


def test_on_a_straight_road_zero_steering_stays_centred():
    sim = _steer(_sim(0.0), 300, lambda ideal: 0.0)
    assert sim.interventions == 0 and abs(sim.d) < 1e-12 and abs(sim.psi) < 1e-12
    assert sim.track.travelled == pytest.approx(300 * 15.0 / 30.0)


def test_on_a_curve_the_right_sign_keeps_the_lane_and_the_wrong_one_leaves_it():
    curve = 1.0 / 60.0  # bending right
    right = _steer(_sim(curve), 300, lambda ideal: ideal)
    assert right.interventions == 0 and abs(right.d) < 0.2
    wrong = _steer(_sim(curve), 300, lambda ideal: -ideal)
    assert wrong.interventions > 0
    straight_on = _steer(_sim(curve), 300, lambda ideal: 0.0)
    assert straight_on.interventions > 0 and straight_on.left_at < -simulator.OFF_LANE_M  # it leaves on the left


def test_the_references_bound_the_track():
    """Pure pursuit on the true pose drives the whole track; never steering cannot."""
    pursuit = judge.judge(None, "pure-pursuit", 60, seed=simulator.DEFAULT_SEED).report()
    zero = judge.judge(None, "zero", 60, seed=simulator.DEFAULT_SEED).report()
    assert pursuit["autonomy"] == 100.0 and pursuit["interventions"] == 0 and pursuit["max_abs_offset_m"] < 0.3
    assert zero["autonomy"] < 50.0 and zero["interventions"] > 5


def test_the_judge_reads_its_camera_in_lockstep_with_the_car():
    """Each frame is rendered after the car moved with the command for the one before: a reader that runs ahead
    (a capture thread) is refused rather than judged on stale views."""
    from runtime import stream
    from runtime.sim.sources import LockstepCamera

    sim = simulator.Simulator(64, 36, seed=3)
    seen = []
    for frame, _ in stream(None, LockstepCamera(sim, 5), capture_thread=False):
        seen.append((frame.index, sim.frames))
        sim.step(0.0)
    assert seen == [(i, i) for i in range(5)] and sim.frames == 5
    ahead = iter(LockstepCamera(simulator.Simulator(64, 36, seed=3), 5))
    next(ahead)
    with pytest.raises(RuntimeError, match="read ahead"):
        next(ahead)


def test_the_same_seed_gives_the_same_drive_and_another_seed_another(pilot_bundle):
    from runtime import Model

    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        one = judge.judge(model, "model", 8, seed=5)
        two = judge.judge(model, "model", 8, seed=5)
        other = judge.judge(model, "model", 8, seed=6)
    assert one.offset == two.offset and one.steering == two.steering
    assert one.offset != other.offset


def test_the_trained_network_drives_the_held_out_track_far_better_than_zero(pilot_bundle, tmp_path):
    proc = cli("runtime", "drive", pilot_bundle, "--seconds", "30", "--compare", "--backend", "onnxruntime",
               "--json", tmp_path / "compare.json")
    assert proc.returncode == 0, proc.stderr
    rows = {(r["controller"], r["precision"]): r for r in json.load(open(tmp_path / "compare.json"))["rows"]}
    model, zero = rows[("model", "fp32")], rows[("zero", "-")]
    assert model["autonomy"] >= zero["autonomy"] + 50.0, proc.stdout
    assert model["sim_seconds"] == 30.0 and model["latency_ms"]["p50"] > 0
    assert rows[("pure-pursuit", "-")]["autonomy"] == 100.0
    assert "autonomy" in proc.stdout.splitlines()[0] and len(proc.stdout.splitlines()) >= 4


def test_a_drive_writes_its_video_plot_and_json(pilot_bundle, tmp_path):
    pytest.importorskip("matplotlib")
    import cv2

    proc = cli("runtime", "drive", pilot_bundle, "--seconds", "2", "--backend", "onnxruntime", "--output",
               tmp_path / "drive.mp4", "--plot", tmp_path / "drive.png", "--json", tmp_path / "drive.json")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(tmp_path / "drive.json"))
    assert {"autonomy", "interventions", "mean_abs_offset_m", "max_abs_offset_m", "sim_seconds",
            "wall_seconds"} <= set(report)
    video = cv2.VideoCapture(str(tmp_path / "drive.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    ok, frame = video.read()
    assert ok and frame.shape[:2] == (330, 600)  # the 200x110 camera view, three times
    assert cv2.imread(str(tmp_path / "drive.png")) is not None


@pytest.mark.parametrize("args, message", [
    (["--delay-frames", "-1"], "--delay-frames must be 0 or more"),
    (["--output", "drive.txt"], "give a video file"),
    (["--json", "/no/such/folder/d.json"], "does not exist"),
    (["--compare", "--output", "d.mp4"], "--output and --plot go with one drive"),
    (["--scenario", "windy"], "unknown scenario 'windy' (choose from: calm, gusts, latency, night, glare, rain, "
                              "worn-lines, tight, traffic, all)"),
    (["--scenario", "all", "--seeds", "0"], "--seeds must be 1 to 30, not 0"),
    (["--scenario", "calm", "--seeds", "-2"], "--seeds must be 1 to 30, not -2"),
    (["--seeds", "3"], "--seeds goes with --scenario"),
    (["--scenario", "calm", "--seed", "7"], "a scenario drives its own fixed seeds"),
    (["--scenario", "all", "--seeds", "1", "--output", "d.mp4"], "--output and --plot go with one drive"),
    (["--scenario", "night", "--plot", "d.png"], "--output and --plot go with one drive"),
])
def test_bad_drive_options_are_one_line(pilot_bundle, args, message):
    proc = cli("runtime", "drive", pilot_bundle, "--seconds", "1", *args)
    assert one_line_error(proc) and message in proc.stderr, proc.stderr


def test_a_classifier_cannot_drive(digits_bundle):
    proc = cli("runtime", "drive", digits_bundle, "--seconds", "1")
    assert one_line_error(proc) and "drive needs a steering network" in proc.stderr, proc.stderr
