"""The car that brakes, judged: `runtime drive BUNDLE --detector DET [--freespace FS]` drives the simulator with
PilotNet steering and the braking policy (braking.py) fed by a detector's boxes and a free-space network's
boundary, and scores it (BrakeCard): collisions, stops before obstacles, false stops per km, and time lost against
the same drive braking on the obstacles' exact boxes (the ceiling); a detector that never sees anything is the
floor.

Each frame is rendered once, at FRAME_SIZE (320x180: the size train's road frames, the detector's and the free-
space network's training frames have), and each network's own preprocessing crops and resizes it (PilotNet: the
bottom 60%, to 200x66; the detector: the whole view, to 256x144; free space: the whole view, to 160x96). Free
space brakes only where the drivable road ahead in the path is shorter than the stopping distance at the car's speed
(braking.stopping_distance from the car's front: 9.8 m from the camera at 8 m/s): then the policy asks for the
limit; a detector's box brakes as braking.py's policy says, gently from 2.0 m/s^2. The
networks run one after the other in the lockstep loop (steering, then detection, then free space), so a drive is
the same every time. The predicted path is the arc of this frame's steering command.

Brakers: "detector" (the networks given), "ground-truth" (the boxes obstacles.py drew, exactly: labels() of the
frame's ObstacleLayer) and "never-sees" (no box ever: the floor). PilotNet steers every one of them the same way
(fp32; the precision under test is the detector's and the free-space network's).

A slowdown: the speed falling below SLOW_FRACTION (50%) of the scenario's; it lasts until the speed is back above
90%. It is justified when, as the speed falls below half, an obstacle stands in the car's path (its footprint
within TRUTH_HALF_WIDTH_M, 1.4 m, of the car's centre, following the lane) within justified_m() of the car's
front: the distance a stop from the scenario's speed at the policy's gentle start (2.0 m/s^2) needs, plus the
latency's and the margin (18.3 m at 8 m/s). A justified slowdown that comes to a stop without a collision is a
stop before an obstacle; an unjustified one is a false stop, whether or not the car stops."""

from __future__ import annotations

import math
import time

import numpy as np

from .braking import (ACCEL_MPS2, BRAKE_LATENCY_S, DECEL_LIMIT_MPS2, FREE_HALF_WIDTH_M, PATH_HALF_WIDTH_M,
                      STANDING_M, START_DECEL_MPS2, STOP_MARGIN_M, STOPPED_MPS, BrakingPolicy, Camera,
                      stopping_distance)
from .judge import steering_units, summary
from .scenarios import CAR_FRONT_M, CAR_HALF_WIDTH_M
from .simulator import CLEAR_S, Scorecard, Simulator
from ..errors import UserError

FRAME_SIZE = (320, 180)
TRUTH_HALF_WIDTH_M = CAR_HALF_WIDTH_M + 0.5  # an obstacle's footprint this near the car is truly in its path
BRAKERS = ("detector", "ground-truth", "never-sees")
SLOW_FRACTION, BACK_FRACTION = 0.5, 0.9
BRAKE_SUMMARISED = ("collisions", "stops_before_obstacles", "false_stops_per_km", "time_lost_s", "autonomy")
PARAMETERS = {"deceleration_limit_mps2": DECEL_LIMIT_MPS2, "acceleration_mps2": ACCEL_MPS2,
              "brake_latency_s": BRAKE_LATENCY_S, "stop_margin_m": STOP_MARGIN_M,
              "start_deceleration_mps2": START_DECEL_MPS2, "path_half_width_m": PATH_HALF_WIDTH_M,
              "freespace_half_width_m": FREE_HALF_WIDTH_M, "freespace_standing_m": STANDING_M,
              "cleared_after_standing_s": CLEAR_S, "slowdown_below": SLOW_FRACTION, "frame": list(FRAME_SIZE)}


def justified_m(v0):
    """How near an obstacle in the path makes a slowdown from v0 m/s justified (module docstring)."""
    return stopping_distance(v0, START_DECEL_MPS2)


def check_bundle(bundle, task, option):
    """A one-line refusal of a bundle of the wrong task for --detector or --freespace."""
    if bundle.task != task:
        raise UserError("%s %s is a %s bundle: it takes a %s bundle" % (option, bundle.path, bundle.task, task))


class BrakeCard(Scorecard):
    """A Scorecard with the speed, the deceleration asked, the policy's target and the true gap to the obstacle in
    the path, frame by frame; report() adds the braking figures (module docstring)."""

    def __init__(self, controller, precision, seed, delay_frames, scenario, braker, cruise):
        super().__init__(controller, precision, seed, delay_frames, scenario)
        self.braker, self.cruise = braker, cruise
        self.speed, self.asked, self.target, self.truth_gap, self.collided = [], [], [], [], []
        self.distance_m = 0.0
        self.obstacles_met = 0
        self.time_lost_s = None  # set against the ground-truth drive of the same seed (time_lost)

    def add_braking(self, sim, asked, target, truth_gap):
        self.speed.append(sim.v)
        self.asked.append(asked)
        self.target.append(target)
        self.truth_gap.append(truth_gap)
        self.collided.append(sim.collided)
        self.distance_m += sim.step_m

    def events(self):
        """(stops before obstacles, false stops, slowdowns) over the drive."""
        stops = false = slowdowns = 0
        episode = None  # [justified, stopped, collided]
        near = justified_m(self.cruise)
        for v, gap, hit in zip(self.speed, self.truth_gap, self.collided):
            if episode is None and v < SLOW_FRACTION * self.cruise:
                episode = [gap <= near, False, False]
                slowdowns += 1
            if episode is not None:
                episode[1] |= v < STOPPED_MPS
                episode[2] |= bool(hit)
                if v > BACK_FRACTION * self.cruise:
                    stops, false = self._count(episode, stops, false)
                    episode = None
        if episode is not None:
            stops, false = self._count(episode, stops, false)
        return stops, false, slowdowns

    @staticmethod
    def _count(episode, stops, false):
        justified, stopped, collided = episode
        if not justified:
            return stops, false + 1
        return stops + (stopped and not collided), false

    def report(self, fps=30.0):
        r = super().report(fps)
        stops, false, slowdowns = self.events()
        km = self.distance_m / 1000.0
        speed = np.asarray(self.speed or [0.0])
        r.update({"braker": self.braker, "distance_m": round(self.distance_m, 2), "obstacles_met": self.obstacles_met,
                  "stops_before_obstacles": stops, "false_stops": false, "slowdowns": slowdowns,
                  "false_stops_per_km": round(false / km, 3) if km > 0 else 0.0,
                  "min_speed_mps": round(float(speed.min()), 3), "mean_speed_mps": round(float(speed.mean()), 3),
                  "time_lost_s": self.time_lost_s, "braking": PARAMETERS})
        return r


def _boxes(result):
    return [d["box"] for d in (result.get("detections") or [])]


def drive(steering, seconds, seed, scenario, camera=None, detector=None, freespace=None, braker="detector",
          precision="fp32", delay_frames=1, on_frame=None, controller="model") -> BrakeCard:
    """One drive of `seconds` in `scenario` on `seed`: `steering` (a Model: PilotNet; None with controller
    "pure-pursuit") steers, and the policy brakes on what `braker` sees (BRAKERS; "detector": the detector and
    free-space Models given, either may be None). on_frame(image, steering, ideal, sim, seen) is called for each
    frame before the car moves, seen being {"boxes", "freespace" (the segmentation result or None), "target",
    "asked"} (a video: visuals.BrakeVideo)."""
    if braker not in BRAKERS:
        raise UserError("unknown braker %r (choose from: %s)" % (braker, ", ".join(BRAKERS)))
    camera = camera or Camera()
    size = FRAME_SIZE
    sim = Simulator(size[0], size[1], seed, delay_frames, scenario=scenario, braking=True)
    policy = BrakingPolicy(camera, sim.fps)
    per_unit = steering_units(steering.bundle) if controller == "model" else 0.1
    card = BrakeCard(controller, precision if braker == "detector" else "-", seed, sim.delay_frames,
                     scenario.name, braker, sim.v)
    if steering is not None and controller == "model":
        card.backend = "%s (%s)" % (steering.backend.name, steering.backend.detail)
    start = time.perf_counter()
    for _ in range(int(round(seconds * sim.fps))):
        image, ideal = sim.view()
        if controller == "model":
            value = steering(image)["steering"]
            if value is None:
                value, card.invalid = 0.0, card.invalid + 1
        else:
            value = ideal
        curvature = value * per_unit
        boxes, seg = [], None
        if braker == "ground-truth" and sim.layer is not None:
            found, _, ignore, _ = sim.layer.labels()
            boxes = [list(map(float, b)) for b, skip in zip(found, ignore) if not skip]
        elif braker == "detector":
            boxes = _boxes(detector(image)) if detector is not None else []
            seg = freespace(image) if freespace is not None else None
        targets = policy.distances(boxes, size, curvature)
        if seg is not None and getattr(seg, "mask", None) is not None:
            free = policy.freespace(seg.mask, freespace.bundle.segmentation["drivable"], seg.region, size, curvature)
            if free - CAR_FRONT_M <= stopping_distance(sim.v):  # free space shorter than the stopping distance
                targets.append(free)
        asked = policy.decide(sim.v, targets)
        gap = sim.traffic.in_path(sim.d, sim.track.travelled, 60.0, TRUTH_HALF_WIDTH_M)[0] if sim.traffic else math.inf
        if on_frame is not None:
            on_frame(image, value, ideal, sim, {"boxes": boxes, "freespace": seg, "target": policy.last_target,
                                                "asked": asked})
        intervened = sim.step(curvature, asked)
        card.add(sim, intervened, value, ideal)
        card.add_braking(sim, asked, policy.last_target, gap)
    card.wall_seconds = time.perf_counter() - start
    if sim.traffic:
        card.obstacles_met = sim.traffic.in_lane(sim.track.travelled + 1.0)
    return card


def time_lost(cards):
    """Each card's time lost against the ground-truth drive of the same seed: (its distance - this one's) / the
    scenario's speed, in seconds (0 for the ground truth's own; None without one)."""
    truth = {c.seed: c.distance_m for c in cards if c.braker == "ground-truth"}
    for c in cards:
        if c.seed in truth:
            c.time_lost_s = round((truth[c.seed] - c.distance_m) / c.cruise, 3)


def summarise(reports):
    """One row from one braker's drives over seeds: each of BRAKE_SUMMARISED as {mean, low, high, values}."""
    first = reports[0]
    row = {"scenario": first["scenario"], "braker": first["braker"], "controller": first["controller"],
           "precision": first["precision"], "seeds": [r["seed"] for r in reports],
           "sim_seconds": first["sim_seconds"], "obstacles_met": sum(r["obstacles_met"] for r in reports),
           "distance_km": round(sum(r["distance_m"] for r in reports) / 1000.0, 3)}
    for key in BRAKE_SUMMARISED:
        values = [r[key] for r in reports]
        row[key] = None if any(v is None for v in values) else summary(values)
    return row

