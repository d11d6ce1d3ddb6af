"""The scenario suite of `runtime drive --scenario` (runtime/sim/scenarios.py): every scenario builds and drives,
the same seed drives the same, each scenario's effect is real (on rendered frames and the car's physics), the
interval arithmetic, the docs' table against the code, and the command's table and JSON."""

import ast
import json
import math
import os
import re

import numpy as np
import pytest

from runtime.sim import judge, road, scenarios, simulator
from tests.conftest import ROOT, cli

S = scenarios.SCENARIOS
WALL_CLOCK = ("wall_seconds", "realtime_factor", "latency_ms")


def _sim(name, seed=2016):
    return simulator.Simulator(200, 110, seed=seed, scenario=S[name])


def _report(card):
    return {k: v for k, v in card.report().items() if k not in WALL_CLOCK}


@pytest.mark.parametrize("name", list(S))
def test_every_scenario_drives_and_the_same_seed_drives_the_same(name):
    for controller in ("pure-pursuit", "zero"):
        one = judge.judge(None, controller, 2, seed=2017, scenario=S[name])
        two = judge.judge(None, controller, 2, seed=2017, scenario=S[name])
        assert _report(one) == _report(two) and one.offset == two.offset
        assert one.report()["scenario"] == name and one.report()["sim_seconds"] == 2.0


def test_a_network_drives_a_scenario_the_same_twice(pilot_bundle):
    from runtime import Model

    with Model(str(pilot_bundle), backend="onnxruntime") as model:
        one, two = (judge.judge(model, "model", 2, seed=2016, scenario=S["rain"]) for _ in range(2))
    assert _report(one) == _report(two) and one.steering == two.steering


def test_calm_is_todays_track_and_every_seed_is_held_out():
    plain = judge.judge(None, "pure-pursuit", 3, seed=2016)
    calm = judge.judge(None, "pure-pursuit", 3, seed=2016, scenario=S["calm"])
    assert plain.offset == calm.offset and simulator.Simulator().scenario is scenarios.CALM
    seeds = {seed for s in S.values() for seed in s.seeds(scenarios.MAX_SEEDS)}
    assert not seeds & {0, 100003}  # train's road frames


def _mean(image):
    return float(image.astype(np.float64).mean())


def _marking_contrast(sim, rows=slice(None)):
    """(white line - asphalt) / (white line + asphalt): the brightness of the frame's ground pixels where the
    edge lines are painted on a road that is not worn, and of its asphalt (rows: of the ground)."""
    image = sim.view()[0].astype(np.float64).mean(axis=2)[sim.renderer.first_ground:][rows]
    t = sim.track
    _, _, surface, lines, centre = (a[rows] for a in sim.renderer.ground(sim.d, sim.psi, t.k, t.dk, t.travelled))
    line, asphalt = image[lines > 0.9].mean(), image[(surface > 0.99) & (lines == 0) & (centre == 0)].mean()
    return (line - asphalt) / (line + asphalt)


@pytest.mark.parametrize("seed", [2016, 2017])
def test_night_glare_and_rain_change_the_frames_as_stated(seed):
    calm = _sim("calm", seed)
    light, contrast = _mean(calm.view()[0]), _marking_contrast(calm)
    assert _mean(_sim("night", seed).view()[0]) < 0.3 * light  # 0.23x measured
    glare = _sim("glare", seed)
    assert _mean(glare.view()[0]) > 1.2 * light and _marking_contrast(glare) < 0.5 * contrast  # 1.35-2.4x, 0.3-0.4x
    rain = _sim("rain", seed)
    assert _mean(rain.view()[0]) < 0.8 * light and _marking_contrast(rain) < 0.7 * contrast  # 0.71-0.74x, 0.5-0.6x
    first = _sim("rain", seed).view()[0]
    assert np.array_equal(first, _sim("rain", seed).view()[0])  # drops and streaks: drawn from the seed


def test_worn_lines_lack_their_markings_in_the_gaps_and_40_percent_is_gone():
    wear = _sim("worn-lines").track.markings
    gaps = wear.gaps(20000.0)
    gone = sum(min(b, 20000.0) - a for a, b in gaps) / 20000.0
    assert 0.35 < gone < 0.45 and all(20.0 <= b - a <= 60.0 for a, b in gaps)
    start, end = gaps[0]
    worn, calm = _sim("worn-lines"), _sim("calm")
    for sim in (worn, calm):  # drive on to 2 m into the first gap: the near road (2.5-10 m ahead) lies in it
        while sim.track.travelled < start + 2.0:
            sim.step(sim.ideal() / road.STEERING_RADIUS_M)
    assert end - start > 12.0
    near = (calm.renderer.z[:, 0] > 2.5) & (calm.renderer.z[:, 0] < 10.0)
    painted = _marking_contrast(calm, near)
    assert painted > 0.2 and abs(_marking_contrast(worn, near)) < 0.25 * painted  # 0.47 and 0.07 measured


def test_gusts_push_an_unsteered_car_off_a_straight_road_and_keep_to_their_plan():
    def straight(name):
        sim = _sim(name)
        sim.track.k = sim.track.k_target = 0.0
        sim.track.next_bend = float("inf")
        worst = 0.0
        for _ in range(int(15 * sim.fps)):
            sim.step(0.0)
            worst = max(worst, abs(sim.d), abs(sim.left_at or 0.0))
        return worst

    assert straight("calm") == 0.0 and straight("gusts") > 0.5
    plan = S["gusts"].gusts
    gusts = scenarios.Gusts(plan, np.random.RandomState(1), 15.0)
    k = np.array([gusts.curvature(i / 30.0) for i in range(30 * 600)])
    starts = np.nonzero((k != 0) & (np.r_[0.0, k[:-1]] == 0))[0] / 30.0
    assert set(np.round(np.abs(k[k != 0]), 12)) == {round(plan.accel_mps2 / 15.0 ** 2, 12)}  # a = v^2 k
    assert plan.every_s[0] - 0.05 < np.diff(starts).min() and np.diff(starts).max() < plan.every_s[1] + 0.05
    assert (k != 0).sum() / 30.0 == pytest.approx(len(starts) * plan.seconds, abs=len(starts) / 30.0)
    assert (k > 0).sum() and (k < 0).sum()  # both sides


def test_latency_adds_three_frames_of_command_queue():
    calm, late = _sim("calm"), _sim("latency")
    assert S["latency"].added_delay_frames(30.0) == 3  # 100 ms x 30 fps / 1000, to the nearest frame
    assert late.delay_frames == calm.delay_frames + 3 and len(late.commands) == len(calm.commands) + 3
    assert judge.judge(None, "zero", 1, scenario=S["latency"]).report()["delay_frames"] == 4


def test_tight_bends_reach_a_25_m_radius_and_pure_pursuit_drives_them():
    def curvatures(name):
        track, step = _sim(name).track, S[name].speed_mps / 30.0
        out = []
        for _ in range(int(3000 / step)):
            track.bend(step)
            track.travel(step)
            out.append(abs(track.k))
        return np.array(out)

    tight, calm = curvatures("tight"), curvatures("calm")
    assert 0.039 < tight.max() <= 0.04 and calm.max() <= 0.02
    pursuit = judge.judge(None, "pure-pursuit", 20, seed=2016, scenario=S["tight"]).report()
    assert pursuit["autonomy"] == 100.0 and pursuit["max_abs_offset_m"] < 0.3


def test_traffic_draws_its_obstacles_and_a_steering_car_hits_the_one_in_its_lane():
    sim = _sim("traffic")
    traffic = sim.traffic
    traffic.in_lane(400.0)
    first = next(along for along, _, _, _, in_lane in traffic.placed if in_lane)
    while sim.track.travelled < first - 15.0:  # the first obstacle in my lane 15 m ahead
        sim.step(sim.ideal() / road.STEERING_RADIUS_M)
    t = sim.track
    layer = traffic.layer(sim.renderer, (sim.d, sim.psi, t.k, t.dk), t.travelled, t.scene.shadow_depth)
    sim.renderer.render(sim.d, sim.psi, t.k, t.dk, t.travelled, t.scene, np.random.RandomState(0), layer)
    boxes, classes, _, _ = layer.labels()
    ahead = [c for b, c in zip(boxes, classes) if b[0] < 100 < b[2]]  # across the frame's middle column
    assert ahead and scenarios.obstacles.LABELS[ahead[0]] in S["traffic"].traffic.in_lane_kinds
    assert len(boxes) > len(ahead)  # and others beside the lane
    metres = 15 * S["traffic"].speed_mps
    for controller in ("pure-pursuit", "zero"):
        report = judge.judge(None, controller, 15, seed=2016, scenario=S["traffic"]).report()
        assert report["collisions"] >= 1, controller
        if controller == "pure-pursuit":  # it hits each one in its lane, and nothing beside it
            assert _sim("traffic").traffic.in_lane(metres - 5.0) <= report["collisions"]
            assert report["collisions"] <= _sim("traffic").traffic.in_lane(metres + 5.0)


def test_the_interval_is_students_t_over_the_seeds():
    mean, low, high = judge.interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4 degrees of freedom) x sd / sqrt(n)
    assert mean == 3.0 and low == pytest.approx(3.0 - half) and high == pytest.approx(3.0 + half)
    assert judge.interval([7.0, 7.0]) == (7.0, 7.0, 7.0) and judge.interval([4.0]) == (4.0, None, None)
    assert judge.interval([0.0, 100.0])[1] == pytest.approx(50.0 - 12.706 * 50.0)  # two seeds: t = 12.706
    reports = [dict(scenario="calm", controller="zero", precision="-", backend="", seed=s, delay_frames=1,
                    sim_seconds=2.0, autonomy=a, interventions=i, collisions=0, mean_abs_offset_m=0.1,
                    max_abs_offset_m=0.5) for s, a, i in ((1, 90.0, 1), (2, 100.0, 0), (3, 80.0, 2))]
    row = judge.summarise(reports)
    assert row["seeds"] == [1, 2, 3] and row["autonomy"]["values"] == [90.0, 100.0, 80.0]
    assert row["autonomy"]["mean"] == 90.0 and row["autonomy"]["high"] == pytest.approx(90.0 + 4.303 * 10 / 3 ** .5,
                                                                                        abs=1e-4)
    assert row["collisions"] == {"mean": 0.0, "low": 0.0, "high": 0.0, "values": [0, 0, 0]}


def _docs_table():
    """{scenario: {parameter: value}} parsed from docs/simulator.md's table of the scenarios."""
    text = open(os.path.join(ROOT, "docs", "simulator.md"), encoding="utf-8").read()
    table = {}
    for scenario, parameter, value in re.findall(r"^\| ([a-z-]+) \| ([a-z_.0-9]+) \| `(.*)` \|$", text, re.M):
        table.setdefault(scenario, {})[parameter] = ast.literal_eval(value)
    return table


def test_the_docs_table_is_the_codes():
    documented = scenarios.documented()
    assert _docs_table() == documented
    assert set(documented) == set(S) and len(documented["calm"]) == len(scenarios.CALM.parameters())
    assert documented["latency"] == {"added_delay_ms": 100.0}


def test_the_suite_command_prints_and_writes_every_scenario_with_its_interval(tmp_path):
    bundle = os.path.join(ROOT, "tests", "runtime", "bundles", "pilotnet")
    proc = cli("runtime", "drive", bundle, "--scenario", "all", "--seeds", "2", "--seconds", "1", "--compare",
               "--backend", "onnxruntime", "--json", tmp_path / "suite.json")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(tmp_path / "suite.json"))
    rows = {(r["scenario"], r["controller"], r["precision"]): r for r in report["rows"]}
    assert set(rows) == {(s, c, p) for s in S for c, p in (("model", "fp32"), ("pure-pursuit", "-"), ("zero", "-"))}
    for row in report["rows"]:
        assert row["seeds"] == [2016, 2017] and len(row["drives"]) == 2
        for key in judge.SUMMARISED:
            stat = row[key]
            assert stat["low"] <= stat["mean"] <= stat["high"] and len(stat["values"]) == 2
    assert report["scenarios"]["latency"]["added_delay_ms"] == 100.0 and report["seeds"] == 2
    lines = proc.stdout.splitlines()
    assert "autonomy %" in lines[0] and len(lines) == 1 + 3 * len(S) + 2 and "Student t over 2 seed(s)" in lines[-2]
