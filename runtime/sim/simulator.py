"""The simulator: one car on the procedural road (road.py), seen by its camera. The one place for the car's pose,
the track's stepping, the kinematics (road.move), the rendering and the intervention rule, whoever drives:

    Simulator(w, h, seed)                    driven from outside: step(curvature) with each command (judge.py's
                                             controllers; the control link's receiver, linked_car.py)
    Simulator(w, h, seed, driver="human")    driven by its own simulated human (SimulatedHuman), who follows the
                                             lane with lag and noise: synthetic://road's car (sources.py)

view() renders what the camera sees and the ideal steering from the true pose; step() drives the car 1/fps s on.
A scenario (scenarios.py; calm, today's track, by default) sets the speed, the added delay, the track's bends and
worn markings, the frame's look, side-force gusts and obstacles; the simulator only asks it for them.

Scorecard records a drive frame by frame and reports it as NVIDIA judged PilotNet (Bojarski et al. 2016): by how
long the car drives without help,

    autonomy = (1 - interventions x 6 s / elapsed s) x 100          (clamped at 0)

An intervention: the car's centre more than OFF_LANE_M off the lane centre (the paper's rule); a person then puts
it back on the centre, heading along the lane, and the command queue is emptied. The simulated human never needs
one: it is only held within HUMAN_LIMIT_M of the centre.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from . import road
from .braking import STOPPED_MPS, Speed
from .scenarios import CALM
from ..errors import UserError

SPEED_MPS, FPS = road.SPEED_MPS, road.FPS
OFF_LANE_M = 1.0
PENALTY_S = 6.0  # what the paper counts for each intervention
CLEAR_S = 2.0  # a braking car standing this long before an obstacle sees it cleared away ...
CLEAR_WITHIN_M = 15.0  # ... the nearest in its path within this of its front
HUMAN_LIMIT_M = 1.5  # the simulated human's car is held within this of the lane centre (it never intervenes)
DEFAULT_SEED = 2016  # the held-out track (train's road frames are independent random poses, seeds 0 and 100003)
DRIVERS = ("commands", "human")
TRACK = {"speed_mps": SPEED_MPS, "fps": FPS, "max_curvature_per_m": road.Track.MAX_CURVATURE,
         "straight_fraction": road.Track.STRAIGHT, "bend_every_m": list(road.Track.BEND_EVERY_M),
         "lane_width_m": road.LANE_WIDTH_M, "intervention_offset_m": OFF_LANE_M, "light_gain": list(road.Scene.GAIN),
         "shadows": [0, road.Scene.MAX_SHADOWS], "scene_every_m": list(road.Track.SCENE_EVERY_M)}  # from road.py


class SimulatedHuman:
    """The built-in driver: the ideal steering plus a slow wander, so its steering varies the way a person's
    would. `steered` is what it last did (normalised, clipped: synthetic://road?steering= sends it)."""

    def __init__(self, rng: np.random.RandomState, dt: float):
        self.rng, self.dt = rng, dt
        self.wander = 0.0
        self.steered = 0.0

    def curvature(self, ideal: float) -> float:
        """The path curvature (1/m) it steers, seeing the ideal normalised steering `ideal`."""
        dt = self.dt
        self.wander += -self.wander * 0.5 * dt + self.rng.normal(0.0, 0.6) * math.sqrt(dt)
        steer = ideal + self.wander * 0.3
        self.steered = float(np.clip(steer, -1.0, 1.0))
        return steer / road.STEERING_RADIUS_M


class Simulator:
    """The car on a seeded road (road.Track), 1/fps s a frame at `speed` (default: the scenario's): view() renders
    its camera's frame, step() drives it on (module docstring). delay_frames: how many frames a command from
    outside waits before it acts (the scenario adds its own). The human's drive draws the road, the camera's noise
    and the human's wander from one random state (its frames have always been drawn so); a drive from outside keeps
    the camera's noise apart (seed + 1), so that the road is the same whatever drives on it. `collided`: how many
    obstacles the car met in the last step (the traffic scenario's)."""

    def __init__(self, width=640, height=360, seed=DEFAULT_SEED, delay_frames=1, fps=FPS, speed=None,
                 driver="commands", scenario=CALM, braking=False):
        if driver not in DRIVERS:
            raise ValueError("driver is one of %s, not %r" % (", ".join(DRIVERS), driver))
        try:
            self.renderer = road.RoadRenderer(width, height, seed)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        rng = np.random.RandomState(seed)
        self.scenario = scenario
        self.track = scenario.track(rng, seed)
        self.fps = fps
        speed = scenario.speed_mps if speed is None else speed
        if driver == "human":
            self.noise = rng
            self.human = SimulatedHuman(rng, 1.0 / fps)
            self.step_m = speed * self.human.dt  # as the human's drive always measured it (speed / fps may
            # differ in the last bit, e.g. at 9 FPS)
        else:
            self.noise = np.random.RandomState(seed + 1)  # the sensor's, apart from the road's
            self.human = None
            self.step_m = speed / fps
        self.look, self.look_rng = scenario.look_of(seed)
        self.gusts = scenario.gusts_of(seed, speed)
        self.traffic = scenario.traffic_of(seed)
        self.collided = 0
        # braking (braking.py): the car's speed changes with step()'s brake; without it, it drives at `speed`
        self.speed = braking and Speed(speed, fps)
        self.stopped_s = 0.0  # how long the braking car has stood still
        self.layer = None  # the obstacles drawn into the last view (their exact boxes: layer.labels())
        self.d, self.psi = 0.0, 0.0
        delay_frames += scenario.added_delay_frames(fps)
        self.delay_frames = delay_frames
        self.commands = collections.deque([0.0] * delay_frames)
        self.frames = 0
        self.interventions = 0
        self.left_at = None  # the offset at which the car last left its lane

    @property
    def seconds(self):
        return self.frames / self.fps

    def ideal(self):
        """The normalised steering that follows the lane from the true pose (pure pursuit: road.steering_label)."""
        t = self.track
        return road.steering_label(self.d, self.psi, t.k, t.dk)

    def view(self):
        """(BGR frame, the ideal normalised steering from the true pose)."""
        t = self.track
        pose = (self.d, self.psi, t.k, t.dk)
        obstacles = self.traffic and self.traffic.layer(self.renderer, pose, t.travelled, t.scene.shadow_depth)
        self.layer = obstacles or None
        image = self.renderer.render(self.d, self.psi, t.k, t.dk, t.travelled, t.scene, self.noise, obstacles,
                                     t.markings, self.look, self.look_rng)
        return image, self.ideal()

    @property
    def v(self):
        """The car's speed now (m/s)."""
        return self.speed.v if self.speed else self.step_m * self.fps

    def step(self, curvature=None, brake=0.0):
        """Drive one frame. curvature: the command from outside (1/m, right positive), acting delay_frames
        later; with driver="human", None: the human steers. brake: with braking, the deceleration asked (m/s^2,
        acting braking.BRAKE_LATENCY_S later). True when the frame ended in an intervention."""
        track = self.track
        if self.speed:
            self.step_m = self.speed.step(brake)
            self._wait()
        if self.human is not None:
            ideal = self.ideal()  # what the human sees, before the road bends on
            track.bend(self.step_m)
            acting = self.human.curvature(ideal)  # its wander drawn after the bend's draws, as it always was
        else:
            self.commands.append(float(curvature))
            acting = self.commands.popleft()
            track.bend(self.step_m)
        if self.gusts:
            acting += self.gusts.curvature(self.seconds)  # the side-force's bend of the path
        self.d, self.psi = road.move(self.d, self.psi, track.k, acting, self.step_m)
        if self.human is not None:
            self.d = float(np.clip(self.d, -HUMAN_LIMIT_M, HUMAN_LIMIT_M))
        track.travel(self.step_m)
        self.frames += 1
        self.collided = self.traffic.hits(self.d, track.travelled) if self.traffic else 0
        if self.human is None and abs(self.d) > OFF_LANE_M:
            self.interventions += 1
            self.left_at = self.d
            self.d, self.psi = 0.0, 0.0  # a person takes over and puts the car back
            self.commands = collections.deque([0.0] * self.delay_frames)
            return True
        return False

    def _wait(self):
        """A braking car that has stood still for CLEAR_S sees the obstacle it stopped for cleared away (a
        pedestrian crosses, a car drives off): the drive goes on."""
        self.stopped_s = self.stopped_s + 1.0 / self.fps if self.speed.v < STOPPED_MPS else 0.0
        if self.stopped_s >= CLEAR_S and self.traffic:
            self.traffic.clear(self.d, self.track.travelled, CLEAR_WITHIN_M)
            self.stopped_s = 0.0


class Scorecard:
    """What one drive did, frame by frame (add), and its report: autonomy, interventions, offsets, steering."""

    def __init__(self, controller, precision, seed, delay_frames, scenario="calm"):
        self.controller, self.precision, self.seed, self.delay_frames = controller, precision, seed, delay_frames
        self.scenario = scenario
        self.offset, self.steering, self.ideal, self.latency_ms, self.intervened = [], [], [], [], []
        self.collisions = 0
        self.wall_seconds = 0.0
        self.backend = ""
        self.invalid = 0  # frames whose output was NaN or infinite

    def add(self, sim, intervened, steering, ideal):
        """The frame sim has just driven (step's answer: `intervened`), steered with `steering` where `ideal`
        was the ideal steering."""
        self.offset.append(sim.left_at if intervened else sim.d)
        self.steering.append(steering)
        self.ideal.append(ideal)
        self.intervened.append(intervened)
        self.collisions += sim.collided

    def report(self, fps=FPS):
        n = len(self.offset)
        sim_seconds = n / fps
        interventions = int(sum(self.intervened))
        offset = np.abs(np.asarray(self.offset)) if n else np.zeros(1)
        steering = np.asarray(self.steering) if n else np.zeros(1)
        latency = np.asarray(self.latency_ms) if self.latency_ms else None
        autonomy = max(0.0, 1.0 - interventions * PENALTY_S / sim_seconds) * 100.0 if sim_seconds else 0.0
        return {"scenario": self.scenario, "controller": self.controller, "precision": self.precision,
                "backend": self.backend, "seed": self.seed, "delay_frames": self.delay_frames,
                "autonomy": round(autonomy, 2), "interventions": interventions, "collisions": self.collisions,
                "invalid_outputs": self.invalid,
                "mean_abs_offset_m": round(float(offset.mean()), 4), "max_abs_offset_m": round(float(offset.max()), 4),
                "steering_change_per_s": round(float(np.abs(np.diff(steering)).mean() * fps) if n > 1 else 0.0, 4),
                "mean_abs_steering_error": round(float(np.abs(steering - np.asarray(self.ideal or [0.0])).mean()), 4),
                "latency_ms": None if latency is None else {"p50": round(float(np.percentile(latency, 50)), 3),
                                                             "p95": round(float(np.percentile(latency, 95)), 3)},
                "sim_seconds": round(sim_seconds, 2), "wall_seconds": round(self.wall_seconds, 2),
                "realtime_factor": round(sim_seconds / self.wall_seconds, 1) if self.wall_seconds else None,
                "track": TRACK}
