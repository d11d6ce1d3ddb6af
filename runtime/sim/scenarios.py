"""The scenario suite of `runtime drive --scenario NAME`: every scenario's parameters in one table (SCENARIOS), fixed
and written out in docs/simulator.md before any network is measured on them, and the two things a scenario adds to
the simulator beyond the road's own parameters (road.Bends, road.Wear, road.Look): side-force gusts on the car
(Gusts) and obstacles standing along the road (Traffic).

A scenario changes the simulator only through its parameters: the Simulator (simulator.py) asks it for its speed,
its added delay, its Track (bends, worn markings), its Look, its Gusts and its Traffic, and everything else is the
calm track's. Each scenario is driven on seeds first_seed, first_seed + 1, ... (`--seeds N`): the same held-out
tracks for every scenario (train's road frames use seeds 0 and 100003), so that two scenarios differ only by what
the scenario changes. Its own random draws (gusts, worn stretches, rain, traffic) come from random states of their
own, seeded with (seed, a tag), so the road under them is the calm one."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import obstacles, road

FIRST_SEED = 2016  # the held-out track (simulator.DEFAULT_SEED)
MAX_SEEDS = 30
CAR_HALF_WIDTH_M = 0.9  # the car's footprint (traffic's collisions): 1.8 m wide, 4.5 m long,
CAR_FRONT_M, CAR_BACK_M = 1.0, 3.5  # from 1 m ahead of the camera to 3.5 m behind it
_TAGS = {"gusts": 1, "worn": 2, "look": 3, "traffic": 4}  # each draw's random state: (seed, tag)


@dataclass(frozen=True)
class GustPlan:
    """Side-force gusts: a steady lateral acceleration of accel_mps2, left or right (even chance), for seconds
    each, a gust starting every every_s seconds (uniform) from the drive's start."""

    accel_mps2: float
    seconds: float
    every_s: tuple


@dataclass(frozen=True)
class WornPlan:
    """Lane markings gone in gaps of gap_m metres between painted stretches of kept_m metres (road.Wear)."""

    gap_m: tuple
    kept_m: tuple


@dataclass(frozen=True)
class TrafficPlan:
    """Obstacles (obstacles.py's kinds) standing along the road: one in my lane every in_lane_every_m metres
    (uniform; the first at least first_m ahead), of in_lane_kinds, its centre in_lane_s metres right of the lane
    centre; and one beside the lane every beside_every_m metres, of beside_kinds, left or right (even chance),
    its near edge beside_clear_m to beside_clear_m + 1.5 m from my lane's centre (the car reaches at most 1.9 m
    from it before an intervention, so it can only hit an obstacle in its lane)."""

    in_lane_every_m: tuple
    in_lane_kinds: tuple
    in_lane_s: tuple
    beside_every_m: tuple
    beside_kinds: tuple
    beside_clear_m: float
    first_m: float


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str = field(metadata={"doc": "what it tests"})
    first_seed: int = field(default=FIRST_SEED, metadata={"doc": "seeds first_seed, first_seed + 1, ..."})
    speed_mps: float = field(default=road.SPEED_MPS, metadata={"doc": "m/s"})
    added_delay_ms: float = field(default=0.0, metadata={
        "doc": "ms added to the actuation delay: round(ms x fps / 1000) more frames of command queue (nearest)"})
    bends: road.Bends = road.Bends()
    look: road.Look = road.Look()
    worn: Optional[WornPlan] = None
    gusts: Optional[GustPlan] = None
    traffic: Optional[TrafficPlan] = None

    def seeds(self, n):
        return [self.first_seed + i for i in range(n)]

    def added_delay_frames(self, fps):
        """added_delay_ms as frames of command queue, to the nearest frame (100 ms at 30 fps: 3)."""
        return int(math.floor(self.added_delay_ms * fps / 1000.0 + 0.5))

    def track(self, rng, seed):
        """The Track this scenario drives on (its bends, its worn markings) from the track's random state."""
        worn = self.worn and road.Wear(_rng(seed, "worn"), self.worn.gap_m, self.worn.kept_m)
        return road.Track(rng, self.bends, worn)

    def look_of(self, seed):
        """(the Look, or None when it changes nothing, and the random state its rain draws from)."""
        return (None, None) if self.look == road.Look() else (self.look, _rng(seed, "look"))

    def gusts_of(self, seed, speed):
        return self.gusts and Gusts(self.gusts, _rng(seed, "gusts"), speed)

    def traffic_of(self, seed):
        return self.traffic and Traffic(self.traffic, _rng(seed, "traffic"))

    def parameters(self):
        """Every parameter but its name and about, flat ("look.light": 0.45; a plan that is absent: "worn": None):
        the docs' table."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                out.update(("%s.%s" % (f.name, g.name), getattr(value, g.name)) for g in dataclasses.fields(value))
            elif f.name not in ("name", "about"):
                out[f.name] = value
        return out


def _rng(seed, tag):
    return np.random.RandomState([seed, _TAGS[tag]])


NIGHT = road.Look(light=0.45, tint=(1.1, 0.95, 0.8), headlight_m=12.0, ambient=0.25)
GLARE = road.Look(glare=0.9, sun=(0.7, 0.05), bloom=0.3, veil=0.35)
RAIN = road.Look(light=0.7, contrast=0.6, blur=1, droplets=6, droplet=0.04, streaks=25.0, streak_length=0.12,
                 streak_slant=0.25, streak_gain=0.15)

SCENARIOS = {s.name: s for s in (
    Scenario("calm", "today's track: the held-out road of `runtime drive` without --scenario"),
    Scenario("gusts", "side-force gusts the controller must correct from what it sees",
             gusts=GustPlan(accel_mps2=3.0, seconds=1.0, every_s=(4.0, 10.0))),
    Scenario("latency", "100 ms more between a command and its effect", added_delay_ms=100.0),
    Scenario("night", "dark: headlights light the near road, the far road and sky dim and blue", look=NIGHT),
    Scenario("glare", "a low sun's bloom beside the road ahead, contrast washed out", look=GLARE),
    Scenario("rain", "a darker, greyer road, a blurred wet windscreen with drops and streaks", look=RAIN),
    Scenario("worn-lines", "lane markings gone in stretches: 40% of the road on average (mean gap 40 m, kept 60 m)",
             worn=WornPlan(gap_m=(20.0, 60.0), kept_m=(30.0, 90.0))),
    Scenario("tight", "bends of 25-33 m radius at 10 m/s: 4.0 m/s^2 at the tightest, under calm's 4.5 (15 m/s, 50 m)",
             speed_mps=10.0, bends=road.Bends(max_curvature=0.04, min_curvature=0.03, straight=0.2, ease_m=10.0,
                                              max_rate=1e-3)),
    Scenario("traffic", "obstacles in and beside the lane at 8 m/s: steering alone hits those in the lane "
             "(collisions); braking (--detector) can stop for them",
             speed_mps=8.0, traffic=TrafficPlan(in_lane_every_m=(120.0, 240.0), in_lane_kinds=("car", "pedestrian"),
                                                 in_lane_s=(-0.5, 0.5), beside_every_m=(25.0, 60.0),
                                                 beside_kinds=("cone", "box", "car", "pedestrian", "stop sign"),
                                                 beside_clear_m=2.1, first_m=60.0)),
)}
CALM = SCENARIOS["calm"]


def documented():
    """{scenario: {parameter: value}} as docs/simulator.md's table lists them: every parameter of calm, and of
    each other scenario those that differ from calm's."""
    calm = CALM.parameters()
    return {name: {k: v for k, v in s.parameters().items() if s is CALM or k not in calm or calm[k] != v}
            for name, s in SCENARIOS.items()}


def markdown_table():
    """docs/simulator.md's table of the scenarios (documented(), one row a parameter)."""
    lines = ["| scenario | parameter | value |", "|---|---|---|"]
    for name, params in documented().items():
        lines += ["| %s | %s | `%r` |" % (name, key, value) for key, value in params.items()]
    return "\n".join(lines)


class Gusts:
    """A GustPlan's gusts on one drive: curvature(t) is the path curvature (1/m, right positive) the side-force
    adds at t seconds. A steady lateral acceleration a that the steering does not counter bends a car's path at
    speed v by a / v^2 (a = v^2 k), so the simulator adds that to the steered curvature while a gust blows."""

    def __init__(self, plan: GustPlan, rng, speed):
        self.plan, self.rng = plan, rng
        self.k = plan.accel_mps2 / speed ** 2
        self.start, self.side = rng.uniform(*plan.every_s), self._side()

    def _side(self):
        return 1.0 if self.rng.rand() < 0.5 else -1.0

    def curvature(self, t):
        while t >= self.start + self.plan.seconds:  # that gust is over: draw the next
            self.start += self.rng.uniform(*self.plan.every_s)
            self.side = self._side()
        return self.side * self.k if t >= self.start else 0.0


class Traffic:
    """A TrafficPlan's obstacles along one drive's road, placed as far as the road is looked at: layer() draws
    those ahead into a frame (obstacles.ObstacleLayer), hits() says which ones the car's footprint meets."""

    VIEW_M = (0.5, 80.0)  # drawn when all of it is this far ahead

    def __init__(self, plan: TrafficPlan, rng):
        self.plan, self.rng = plan, rng
        self.light = obstacles.Light(rng)
        self.placed = []  # (metres along the road, s, label, the seed of its look, in my lane)
        self.next_in, self.next_beside = plan.first_m, plan.first_m * 0.5
        self.hit = set()
        self.cleared = set()  # those cleared away after a braking car stood before them (simulator.CLEAR_S)

    def _place(self, until):
        p, rng = self.plan, self.rng
        while min(self.next_in, self.next_beside) <= until:
            if self.next_in <= self.next_beside:
                label = obstacles.LABELS.index(p.in_lane_kinds[rng.randint(len(p.in_lane_kinds))])
                self.placed.append((self.next_in, rng.uniform(*p.in_lane_s), label, rng.randint(2 ** 31), True))
                self.next_in += rng.uniform(*p.in_lane_every_m)
            else:
                label = obstacles.LABELS.index(p.beside_kinds[rng.randint(len(p.beside_kinds))])
                side, clear, seed = (1.0 if rng.rand() < 0.5 else -1.0), rng.uniform(0.0, 1.5), rng.randint(2 ** 31)
                half = _make(label, seed, 0.0, 0.0).half_width
                self.placed.append((self.next_beside, side * (p.beside_clear_m + clear + half), label, seed, False))
                self.next_beside += rng.uniform(*p.beside_every_m)

    def ahead(self, travelled, near, far):
        """The obstacles standing from near to far metres ahead, built where they stand relative to the car."""
        self._place(travelled + far + 10.0)
        return [(i, _make(label, seed, s, along - travelled)) for i, (along, s, label, seed, _)
                in enumerate(self.placed) if near - 5.0 < along - travelled < far and i not in self.cleared]

    def layer(self, renderer, pose, travelled, shadow_depth):
        """The ObstacleLayer that draws the obstacles in view from pose (d, psi, k, dk) into a frame."""
        near, far = self.VIEW_M
        shown = [o for _, o in self.ahead(travelled, near, far) if o.z - o.half_length > near]
        return obstacles.ObstacleLayer(renderer, shown, pose, self.light, shadow_depth)

    def hits(self, d, travelled):
        """How many obstacles the car's footprint (d metres right of the lane centre) meets for the first time."""
        new = 0
        for i, o in self.ahead(travelled, -CAR_BACK_M - 5.0, CAR_FRONT_M + 5.0):
            s0, s1, z0, z1 = o.footprint()
            if (i not in self.hit and s0 < d + CAR_HALF_WIDTH_M and d - CAR_HALF_WIDTH_M < s1
                    and z0 < CAR_FRONT_M and -CAR_BACK_M < z1):
                self.hit.add(i)
                new += 1
        return new

    def in_path(self, d, travelled, within, half_width):
        """Metres from the car's front to the nearest obstacle whose footprint overlaps the lane-following
        corridor of half_width around the car (d metres right of the lane centre) within `within` metres of its
        front (inf for none), and its index."""
        best = (math.inf, None)
        for i, o in self.ahead(travelled, 0.0, CAR_FRONT_M + within + 5.0):
            s0, s1, z0, _ = o.footprint()
            gap = z0 - CAR_FRONT_M
            if s0 < d + half_width and d - half_width < s1 and -1.0 < gap <= within:
                best = min(best, (gap, i))
        return best

    def clear(self, d, travelled, within):
        """Clear away the nearest obstacle in the car's footprint's way within `within` metres of its front."""
        _, i = self.in_path(d, travelled, within, CAR_HALF_WIDTH_M)
        if i is not None:
            self.cleared.add(i)
        return i

    def in_lane(self, until):
        """How many obstacles stand in my lane in the first `until` metres."""
        self._place(until)
        return sum(1 for along, _, _, _, mine in self.placed if mine and along < until)


def _make(label, seed, s, z):
    """Obstacle `label` (obstacles.py's) standing at (s, z), its size and colours drawn from its own seed."""
    return obstacles.make(label, np.random.RandomState(seed), s, z)
