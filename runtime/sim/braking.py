"""The car that brakes: its speed model (Speed), the camera's flat-ground geometry that turns a pixel into metres on
the road (Camera), and the braking policy (BrakingPolicy) that turns a detector's boxes or a free-space boundary
into a deceleration. The simulator (simulator.py) drives with Speed; brake_drive.py runs the networks and the
policy in the closed loop. The policy needs only numbers a vehicle has (boxes, a boundary, its speed and steered
curvature), so the control link can use it as it is.

Stated before anything was measured (docs/simulator.md, "Braking"):

    deceleration limit      DECEL_LIMIT_MPS2 = 4.9 m/s^2 (0.5 g): more is never applied, whatever is asked
    acceleration            ACCEL_MPS2 = 1.5 m/s^2 back to the scenario's speed whenever no braking is asked
    brake latency           BRAKE_LATENCY_S = 0.1 s: a brake request acts round(0.1 x fps) frames later (3 at
                            30 fps), a queue as steering's delay is; the deceleration then applies at once
    stopping distance       v^2 / (2 x 4.9) + v x 0.1 + STOP_MARGIN_M (1.5 m), from the car's front (1 m ahead
                            of the camera): 8.8 m at traffic's 8 m/s, 9.8 m from the camera

The policy: the nearest target in the car's path (a box's ground point, or where the free space in the path ends) at
z metres from the camera leaves gap = z - CAR_FRONT_M - STOP_MARGIN_M - v x BRAKE_LATENCY_S to stop in; it needs v^2
/ (2 gap), the deceleration that stops the car STOP_MARGIN_M short (the limit where gap <= 0). It starts braking
once that reaches START_DECEL_MPS2 (2.0 m/s^2: a gentle start, 17 m ahead at 8 m/s) and then asks for the need, at
most the limit, and at least 2.0 m/s^2 while the target is within NEAR_M (10 m) of the camera (a near box's distance
may be overestimated: the car stops early, not late); it releases the brake only when the need falls under
RELEASE_DECEL_MPS2 (1.0) with the target more than NEAR_M (10 m) from the camera (the car then creeps on): braking
for a near target goes on until the car stands (a detector's box of a near obstacle may be cut short, its distance
overestimated), and a car standing before it stands. A target is held, its distance carried on by the distance
driven, for HOLD_S (0.3 s) after it was last seen, so a missed frame does not release the brake, and, when it was
last seen within NEAR_M (10 m) of the camera, until the car has stood still NEAR_HOLD_S (3 s) before it. A box is in
the path when its ground point (the middle of its bottom edge) lies within PATH_HALF_WIDTH_M, 1.5 m (the car's half-
width and 0.6 m), of the car's predicted path (the arc of the steered curvature): traffic's obstacles beside the
lane stand with their centres at least 2.3 m from the lane's centre, those in it within 0.5 m (the lane's half-
width, 1.75 m, let a cone beyond the centre line in: the detector's box put its ground point 0.5 m nearer). Boxes
cut by the frame's bottom or by one of its sides are left out (BrakingPolicy.distances).

Free space (BrakingPolicy.freespace) ends, up a column of the class map, where something stands: the first run of
pixels that are not free space at least as tall as a STANDING_M (0.5 m) post at that run's foot would be, or that
reaches the map's top (the road ends). A flat patch that a network calls an obstacle or verge (a tree shadow's
dark edge on the asphalt: 1-3 rows of 96 where a 0.5 m post 8 m ahead stands 5) is passed over, as a car drives
over a shadow; at traffic's stopping distance, 9.8 m, every in-lane obstacle stands 8 rows or more. The end
counts when its ground point lies within FREE_HALF_WIDTH_M, 1.2 m (the car's half-width and 0.3 m), of the
predicted path: free space's boundary is the edge of what is in the way, not a box's middle."""

from __future__ import annotations

import collections
import math

import numpy as np

from . import road
from .scenarios import CAR_FRONT_M, CAR_HALF_WIDTH_M
from ..errors import UserError

G = 9.80665
DECEL_LIMIT_MPS2 = 4.9  # 0.5 g
ACCEL_MPS2 = 1.5
BRAKE_LATENCY_S = 0.1
STOP_MARGIN_M = 1.5
START_DECEL_MPS2 = 2.0
HOLD_S = 0.3
NEAR_M, NEAR_HOLD_S = 10.0, 3.0  # a target last seen this near is held until the car has stood this long: a
# detector loses what is too near (obstacles.py's frames put cars 7 m and further away)
PATH_HALF_WIDTH_M = CAR_HALF_WIDTH_M + 0.6  # a box's ground point this near the predicted path is in it (1.5 m)
FREE_HALF_WIDTH_M = CAR_HALF_WIDTH_M + 0.3  # where free space ends this near the predicted path, it is in it (1.2 m)
STANDING_M = 0.5  # free space ends where what is not free space stands at least this tall
RELEASE_DECEL_MPS2 = 1.0  # braking goes on while the need is at least this, or the target is within NEAR_M
HOLD_DECEL_MPS2 = 1e-3  # asked while braking for a target already met: the car does not speed up
STOPPED_MPS = 0.05  # slower than this is standing still
CAMERA_HEIGHT_RANGE = (0.2, 10.0)  # metres
CAMERA_PITCH_RANGE = (-30.0, 60.0)  # degrees, down positive


def stopping_distance(v, decel=DECEL_LIMIT_MPS2, latency=BRAKE_LATENCY_S, margin=STOP_MARGIN_M):
    """Metres from the car's front that a stop from v m/s needs: v^2 / 2a + v x latency + margin."""
    return v * v / (2.0 * decel) + v * latency + margin


class Speed:
    """The car's speed along the road, 1/fps s a step: step(decel) asks for a deceleration (m/s^2, 0: none) that
    acts latency_s later, at most decel_limit; with none asked the car accelerates at accel back to cruise.
    While nothing was ever asked the car drives exactly cruise / fps a step, as the simulator always did."""

    def __init__(self, cruise, fps, latency_s=BRAKE_LATENCY_S, decel_limit=DECEL_LIMIT_MPS2, accel=ACCEL_MPS2):
        self.cruise, self.dt, self.v = float(cruise), 1.0 / fps, float(cruise)
        self.decel_limit, self.accel = decel_limit, accel
        self.cruise_step = cruise / fps
        self.latency_frames = int(math.floor(latency_s * fps + 0.5))
        self.queue = collections.deque([0.0] * self.latency_frames)
        self.acting = 0.0  # the deceleration applied in the last step

    def step(self, decel=0.0):
        """Metres driven this step (the mean of the speeds at its ends x dt)."""
        self.queue.append(max(0.0, float(decel)))
        asked = self.queue.popleft()
        v0 = self.v
        if asked > 0.0:
            self.acting = min(asked, self.decel_limit)
            self.v = max(0.0, v0 - self.acting * self.dt)
        else:
            self.acting = 0.0
            self.v = min(self.cruise, v0 + self.accel * self.dt)
        if self.v == v0 == self.cruise:
            return self.cruise_step
        if self.v == 0.0 and self.acting > 0.0:  # it stops within the step: v0 / a seconds of it
            t = min(self.dt, v0 / self.acting)
            return v0 * t - 0.5 * self.acting * t * t
        return 0.5 * (v0 + self.v) * self.dt


class Camera:
    """A pinhole camera height_m above flat ground, pitched pitch_deg down (0: looking along the road), its
    horizontal field of view hfov_deg, and its principal point at the frame's centre column and `principal_row`
    of its height (the simulator's camera: 1.4 m, 0 degrees, 90 degrees, 0.42: road.py's horizon row). ground()
    turns pixels into (lateral, ahead) metres on the road."""

    def __init__(self, height_m=road.CAMERA_HEIGHT_M, pitch_deg=0.0, hfov_deg=road.HFOV_DEG,
                 principal_row=road.HORIZON):
        low, high = CAMERA_HEIGHT_RANGE
        if not (isinstance(height_m, (int, float)) and low <= height_m <= high):
            raise UserError("the camera's height must be %g to %g metres, not %r" % (low, high, height_m))
        low, high = CAMERA_PITCH_RANGE
        if not (isinstance(pitch_deg, (int, float)) and low <= pitch_deg <= high):
            raise UserError("the camera's pitch must be %g to %g degrees (down positive), not %r"
                            % (low, high, pitch_deg))
        if not (isinstance(hfov_deg, (int, float)) and 10.0 <= hfov_deg <= 170.0):
            raise UserError("the camera's horizontal field of view must be 10 to 170 degrees, not %r" % (hfov_deg,))
        self.height_m, self.pitch_deg, self.hfov_deg = float(height_m), float(pitch_deg), float(hfov_deg)
        self.principal_row = float(principal_row)

    @classmethod
    def of_bundle(cls, bundle, height_m=None, pitch_deg=None):
        """The options' values, else the bundle manifest's `camera` section's (height_m, pitch_deg), else the
        simulator's camera."""
        section = (bundle.manifest.get("camera") or {}) if bundle is not None else {}
        if not isinstance(section, dict):
            raise UserError("%s: the manifest's camera section must be an object (height_m, pitch_deg)" % bundle.path)
        height = height_m if height_m is not None else section.get("height_m", road.CAMERA_HEIGHT_M)
        pitch = pitch_deg if pitch_deg is not None else section.get("pitch_deg", 0.0)
        return cls(height, pitch)

    def describe(self):
        return {"height_m": self.height_m, "pitch_deg": self.pitch_deg, "hfov_deg": self.hfov_deg,
                "principal_row": self.principal_row}

    def focal(self, width):
        return (width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    def ground(self, u, v, width, height):
        """(x, z): metres right of the camera and ahead of it where the rays through pixel coordinates (u, v)
        (continuous: pixel c covers [c, c + 1)) meet the ground; z is inf for a ray at or above the horizon."""
        f = self.focal(width)
        xn = (np.asarray(u, np.float64) - width / 2.0) / f
        yn = (np.asarray(v, np.float64) - self.principal_row * height) / f
        p = math.radians(self.pitch_deg)
        down = yn * math.cos(p) + math.sin(p)  # the ray's downward and forward components (the camera pitched)
        forward = math.cos(p) - yn * math.sin(p)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(down > 1e-9, self.height_m / np.where(down > 1e-9, down, 1.0), np.inf)
            z = np.where(np.isfinite(t), t * forward, np.inf)
            x = np.where(np.isfinite(t), t * xn, 0.0)
        return x, z

    def row(self, z, height, width):
        """The frame row (continuous) where the ground z metres ahead (on the camera's axis) shows."""
        p = math.radians(self.pitch_deg)
        angle = math.atan2(self.height_m, z) - p  # below the optical axis
        return self.principal_row * height + self.focal(width) * math.tan(angle)


def path_x(z, curvature):
    """Lateral metres (right positive) of the car's predicted path z metres ahead: the arc of its steered
    curvature (1/m, right positive)."""
    return 0.5 * curvature * np.asarray(z, np.float64) ** 2


class BrakingPolicy:
    """Boxes and a free-space boundary -> the deceleration to ask for (module docstring). One per drive: it
    holds its target for HOLD_S between frames. distances()/freespace() find targets; decide() asks."""

    def __init__(self, camera: Camera, fps, latency_s=BRAKE_LATENCY_S, decel_limit=DECEL_LIMIT_MPS2):
        self.camera, self.dt = camera, 1.0 / fps
        self.latency_s, self.decel_limit = latency_s, decel_limit
        self.held = None  # (metres from the camera, seconds since seen)
        self.braking = False
        self.last_target = None  # the nearest target this frame (metres from the camera), for plots and video

    def distances(self, boxes, frame_size, curvature):
        """Metres from the camera to each box (x0, y0, x1, y1 in the frame's pixels) whose ground point (the
        middle of its bottom edge) lies within PATH_HALF_WIDTH_M of the predicted path; the others are left out, and
        so is a box cut by the frame's bottom edge (its ground point is not in view) or by one of its sides (an
        obstacle passing beside the car: one in the path ahead stays whole in view until it is about 1 m from the
        car's front, the view being 4 m wide 2 m ahead; a long car beside the lane, cut, has its middle and its
        inner edge's ground points, taken at its nearest distance, inside the path)."""
        width, height = frame_size
        found = []
        for x0, _, x1, y1 in boxes:
            if y1 >= height - 0.5:
                continue
            if (x0 <= 0.5) != (x1 >= width - 0.5):  # cut by one side of the frame: passing beside the car
                continue
            x, z = (float(c) for c in self.camera.ground(0.5 * (x0 + x1), y1, width, height))
            if math.isfinite(z) and z > 0.0 and abs(x - float(path_x(z, curvature))) < PATH_HALF_WIDTH_M:
                found.append(z)
        return found

    def freespace(self, mask, drivable, region, frame_size, curvature):
        """Metres from the camera to where the free space ends in the path (the module docstring): mask, a class
        map (H x W), drivable its free classes, over region (x0, y0, x1, y1: the frame's part the map covers). The
        nearest end whose ground point lies within FREE_HALF_WIDTH_M of the path; inf where none does."""
        width, height = frame_size
        x0, y0, x1, y1 = region
        rows = y0 + self.standing_boundary(mask, drivable, region, frame_size) * (y1 - y0) / mask.shape[0]
        cols = x0 + (np.arange(mask.shape[1]) + 0.5) * (x1 - x0) / max(mask.shape[1], 1)
        xs, zs = self.camera.ground(cols, rows, width, height)
        with np.errstate(invalid="ignore"):  # a column free to the horizon: z inf, and 0 x inf on a straight path
            inside = np.isfinite(zs) & (np.abs(xs - path_x(zs, curvature)) < FREE_HALF_WIDTH_M)
        return float(zs[inside].min()) if inside.any() else math.inf

    def standing_boundary(self, mask, drivable, region, frame_size):
        """Per column of the class map, its row (from the top; the map's height where the whole column is free)
        where the first run of non-free pixels at least STANDING_M tall at its foot begins, or one reaching the
        top."""
        n = mask.shape[0]
        blocked = ~np.isin(mask, drivable)
        run = np.zeros(blocked.shape, np.int64)  # blocked pixels from here up, this one included
        run[0] = blocked[0]
        for r in range(1, n):
            run[r] = np.where(blocked[r], run[r - 1] + 1, 0)
        _, y0, _, y1 = region
        scale = n / float(y1 - y0)  # map rows per frame row
        foot = y0 + (np.arange(n) + 1.0) / scale  # each row's lower edge, in the frame's rows
        _, z = self.camera.ground(np.full(n, frame_size[0] / 2.0), foot, frame_size[0], frame_size[1])
        tall = self.camera.focal(frame_size[0]) * STANDING_M / np.where(np.isfinite(z), z, np.inf) * scale
        ends = blocked & ((run >= np.maximum(tall, 1.0)[:, None]) | (run == np.arange(1, n + 1)[:, None]))
        below = ends[::-1]  # bottom row first: the first end from the bottom
        return np.where(below.any(axis=0), n - np.argmax(below, axis=0), 0).astype(np.float64)

    def decide(self, v, targets):
        """The deceleration (m/s^2) to ask for at v m/s with targets (metres from the camera) seen this frame."""
        nearest = min(targets) if targets else math.inf
        if self.held is not None:
            z, age = self.held
            z -= v * self.dt  # carried on by the distance driven
            near = z < NEAR_M
            age += self.dt if (not near or v < STOPPED_MPS) else 0.0  # a near one ages only while the car stands
            if age <= (NEAR_HOLD_S if near else HOLD_S) and z < nearest:
                nearest, self.held = z, (z, age)  # a farther box (a near one's, cut short) does not replace it
            else:
                self.held = None
        if targets and (self.held is None or min(targets) <= self.held[0]):
            self.held = (min(targets), 0.0)
        self.last_target = nearest if math.isfinite(nearest) else None
        if not math.isfinite(nearest):
            self.braking = False
            return 0.0
        gap = nearest - CAR_FRONT_M - STOP_MARGIN_M - v * self.latency_s
        need = self.decel_limit if gap <= 0.0 else v * v / (2.0 * gap)
        keep = need >= RELEASE_DECEL_MPS2 or nearest < NEAR_M
        if need >= START_DECEL_MPS2 or (self.braking and keep):
            self.braking = True  # at least the start's (a token one standing): the car stops short, not late
            floor = START_DECEL_MPS2 if v > 0.0 and nearest < NEAR_M else HOLD_DECEL_MPS2
            return min(max(need, floor), self.decel_limit)
        self.braking = False
        return 0.0


class DeadReckoned:
    """The braking policy for a car whose speed is not measured (the control link, `runtime run --brake`): the
    car's speed is dead-reckoned from the decelerations asked, by this module's speed model (Speed: at most the
    limit, after the brake latency, then back to the cruise speed at ACCEL_MPS2), and the policy decides at that
    speed, as it does in the simulator (a near target held until the car stands). A car that brakes less than
    asked is taken to be slower than it is: its real speed is the vehicle's to report, and the link has no such
    reading. distances() and decel_limit are the policy's; decide(targets) and blind() step the speed one frame."""

    def __init__(self, camera: Camera, fps, cruise):
        self.policy = BrakingPolicy(camera, fps)
        self.speed = Speed(cruise, fps, latency_s=self.policy.latency_s, decel_limit=self.policy.decel_limit)
        self.decel_limit = self.policy.decel_limit

    def distances(self, boxes, frame_size, curvature):
        return self.policy.distances(boxes, frame_size, curvature)

    def decide(self, targets):
        """The deceleration to ask for with targets seen this frame, at the dead-reckoned speed."""
        return self._asked(self.policy.decide(self.speed.v, targets))

    def blind(self):
        """No detector's result to go by this frame (none yet, or too old): the policy's deceleration for what it
        still holds, at least the gentle start's (START_DECEL_MPS2): a car that cannot see stops."""
        return self._asked(max(self.policy.decide(self.speed.v, []), START_DECEL_MPS2))

    def _asked(self, decel):
        """decel asked, the speed stepped by it. Standing, any braking asks for the limit: a real brake holds a
        standing car only when pressed (the simulator's speed model needs no more than the policy's token)."""
        if decel > 0.0 and self.speed.v < STOPPED_MPS:
            decel = self.decel_limit
        self.speed.step(decel)
        return decel
