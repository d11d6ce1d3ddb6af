"""The procedural road: forward camera views of a lane, each labelled with the steering that follows it.

Pure numpy (1.17 and later) and deterministic by seed, so the same generator is train's `road` dataset
(`sample_frames`: independent random poses) and what the simulated car's camera sees (simulator.py: a continuous
drive along a winding road, `Track`, the car moving by `move`).

Geometry: a pinhole camera `CAMERA_HEIGHT_M` above a flat road, looking along the car's heading. The car
drives in the right lane of a two-lane road. Its pose relative to the lane is the lateral offset `d`
(metres, positive = right of the lane centre), the heading error `psi` (radians, positive = pointing
right of the lane's direction), and the road's curvature `k` and curvature rate `dk` ahead (1/m and 1/m^2,
positive = bending right).

Scenarios (scenarios.py) change the road through three parameter sets, each neutral by default: Bends (how
tight a Track winds), Wear (lane markings worn away in stretches) and Look (night, glare, rain: a frame's light and
weather, applied after the scene is painted and before the sensor noise).

Label: the steering a pure-pursuit driver would command to rejoin the lane centre `LOOKAHEAD_M` ahead,
as an inverse turning radius 1/r = 2 y / L^2, normalised so that 1.0 means a right turn on a
`STEERING_RADIUS_M` radius (1/r = 1 / STEERING_RADIUS_M), -1.0 the same to the left, clipped to [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STEERING_RADIUS_M = 10.0
LOOKAHEAD_M = 8.0
CAMERA_HEIGHT_M = 1.4
LANE_WIDTH_M = 3.5
LINE_WIDTH_M = 0.15
DASH_M, GAP_M = 3.0, 6.0
HFOV_DEG = 90.0
HORIZON = 0.42  # horizon row as a fraction of the image height

_SKY_TOP = np.array([0.85, 0.55, 0.35])  # BGR, 0..1
_SKY_LOW = np.array([0.95, 0.88, 0.80])
_ASPHALT = np.array([0.36, 0.35, 0.34])
_WHITE = np.array([0.92, 0.92, 0.92])
_YELLOW = np.array([0.20, 0.80, 0.92])
_VERGES = (np.array([0.22, 0.50, 0.30]), np.array([0.30, 0.45, 0.52]), np.array([0.18, 0.40, 0.36]))


def steering_label(d: float, psi: float, k: float, dk: float = 0.0) -> float:
    """Normalised steering that follows the lane from pose (d, psi) on a road of curvature k, dk."""
    x = lane_x(LOOKAHEAD_M, d, psi, k, dk)
    inv_r = 2.0 * x / LOOKAHEAD_M ** 2
    return float(np.clip(inv_r * STEERING_RADIUS_M, -1.0, 1.0))


def lane_x(z, d, psi, k, dk):
    """Lateral position (m, right positive) of the lane centre at distance z ahead, in the car's frame."""
    return -d - psi * z + 0.5 * k * z * z + dk * z * z * z / 6.0


def _coverage(pos, lo, hi, width):
    """Fraction of a pixel footprint [pos - width/2, pos + width/2] that lies inside [lo, hi]."""
    a = np.maximum(pos - 0.5 * width, lo)
    b = np.minimum(pos + 0.5 * width, hi)
    return np.clip((b - a) / width, 0.0, 1.0)


SPEED_MPS = 15.0  # the simulated car's speed (simulator.py), whoever drives it
FPS = 30.0  # frames a simulated second


class Scene:
    """Appearance that is not pose: lighting, verge colour, shadows, noise, texture. Drawn from a seed."""

    GAIN = (0.55, 1.25)  # overall light
    MAX_SHADOWS = 6  # roadside trees' shadows

    def __init__(self, rng: np.random.RandomState):
        self.gain = rng.uniform(*self.GAIN)
        self.tint = rng.uniform(0.9, 1.1, size=3)
        self.verge = _VERGES[rng.randint(len(_VERGES))] * rng.uniform(0.8, 1.2)
        self.asphalt = _ASPHALT * rng.uniform(0.75, 1.25)
        self.centre = _YELLOW if rng.rand() < 0.5 else _WHITE
        self.noise = rng.uniform(0.0, 0.035)
        self.texture_gain = rng.uniform(0.04, 0.12)
        n = rng.randint(0, self.MAX_SHADOWS + 1)
        # shadows of roadside trees: (lateral m from lane centre, distance m along the road, radii m)
        self.shadows = np.stack([
            rng.uniform(-9.0, 6.0, n), rng.uniform(4.0, 60.0, n),
            rng.uniform(1.0, 3.5, n), rng.uniform(1.5, 6.0, n)], axis=1) if n else np.zeros((0, 4))
        self.shadow_depth = rng.uniform(0.35, 0.7)


class RoadRenderer:
    """Renders BGR uint8 frames of a given size; per-pixel geometry is computed once per size."""

    def __init__(self, width: int = 640, height: int = 360, seed: int = 0):
        if width < 16 or height < 16:
            raise ValueError("road frames must be at least 16x16 pixels, got %dx%d" % (width, height))
        self.width, self.height = int(width), int(height)
        self.f = (width / 2.0) / math.tan(math.radians(HFOV_DEG) / 2.0)
        self.v_h = height * HORIZON
        rows = np.arange(height, dtype=np.float32) + 0.5
        self.ground_rows = np.nonzero(rows > self.v_h + 1.0)[0]
        self.first_ground = int(self.ground_rows[0])
        v = rows[self.first_ground:]
        self.z = (self.f * CAMERA_HEIGHT_M / (v - self.v_h))[:, None]  # distance ahead, per row
        cols = np.arange(width, dtype=np.float32) + np.float32(0.5 - width / 2.0)
        self.x = cols[None, :] * self.z / self.f  # lateral metres, per pixel
        self.px = self.z / self.f  # pixel footprint across the road, metres, per row
        self.pz = self.z * self.z / (self.f * CAMERA_HEIGHT_M)  # and along it
        self.fog = np.exp(-self.z / 160.0)  # per row: how much of the ground shows through the haze
        self.weights = np.empty(self.x.shape + (5,), dtype=np.float32)  # per ground pixel, per colour
        self.weights[..., 4] = 1.0 - self.fog  # the haze's share never changes
        sky_t = (rows[:self.first_ground] / max(self.v_h, 1.0))[:, None, None]
        self.sky = (_SKY_TOP * (1 - sky_t) + _SKY_LOW * sky_t).astype(np.float32)
        tex_rng = np.random.RandomState(seed + 7919)
        self.texture_flat = tex_rng.rand(256, 256).astype(np.float32).ravel()
        # sensor noise: windows of one stored field, cheaper than drawing every pixel anew
        self.noise_field = tex_rng.standard_normal((height + 64, width + 64, 3)).astype(np.float32)

    def _texture(self, lateral, along):
        """Value noise on ground coordinates (0.25 m cells), bilinear, tiled."""
        u, w = lateral * 4.0, along * 4.0
        u0, w0 = np.floor(u), np.floor(w)
        fu, fw = u - u0, w - w0
        i0, j0 = u0.astype(np.int64) & 255, (w0.astype(np.int64) & 255) << 8
        i1, j1 = (i0 + 1) & 255, (j0 + 256) & 0xFF00
        t = self.texture_flat  # flat indices: np.take is several times faster than 2-D fancy indexing
        top = np.take(t, j0 + i0) * (1 - fu) + np.take(t, j0 + i1) * fu
        bottom = np.take(t, j1 + i0) * (1 - fu) + np.take(t, j1 + i1) * fu
        return top * (1 - fw) + bottom * fw

    def _shade(self, s, travelled, scene):
        """1 in the light, scene.shadow_depth under a roadside tree's shadow (ellipses on the ground), each
        computed only on the rows it can reach."""
        shade = np.ones_like(s)
        z = self.z[:, 0]
        for xs, zs, rx, rz in scene.shadows:
            zs_here = np.mod(zs - travelled, 64.0) + 2.0
            rows = np.nonzero(np.abs(z - zs_here) < rz)[0]  # z falls row by row: one band
            if rows.size:
                a, b = rows[0], rows[-1] + 1
                inside = ((s[a:b] - xs) / rx) ** 2 + ((self.z[a:b] - zs_here) / rz) ** 2 < 1.0
                shade[a:b][inside] = scene.shadow_depth
        return shade

    def ground(self, d: float, psi: float, k: float, dk: float, travelled: float, markings=None):
        """The road's geometry under each ground pixel (rows first_ground on), as render paints it: (s: metres
        right of my lane's centre at the pixel's centre, along: metres along the road, and the shares of the
        pixel's footprint that are road surface (asphalt, shoulders included), white edge lines and centre line).
        markings: None (all painted) or a Wear, whose gaps have no lines. runtime/sim/segmentation.py labels
        pixels from the same values."""
        z, x = self.z, self.x
        s = x - lane_x(z, d, psi, k, dk)  # metres right of my lane centre
        r = s + 0.5 * LANE_WIDTH_M  # metres right of the road's centre line
        along = z + travelled  # metres along the road
        edge = LANE_WIDTH_M
        road = _coverage(r, -edge - 0.4, edge + 0.4, self.px)
        lines = (_coverage(r, edge - LINE_WIDTH_M, edge, self.px)
                 + _coverage(r, -edge, -edge + LINE_WIDTH_M, self.px))
        dash = _coverage(np.mod(along, DASH_M + GAP_M), 0.0, DASH_M, self.pz)
        centre = _coverage(r, -0.5 * LINE_WIDTH_M, 0.5 * LINE_WIDTH_M, self.px) * dash
        if markings is not None:
            painted = markings.painted(along)
            lines, centre = lines * painted, centre * painted
        return s, along, road, lines, centre

    def render(self, d: float, psi: float, k: float, dk: float, travelled: float, scene: Scene,
               rng: np.random.RandomState, objects=None, markings=None, look=None, look_rng=None) -> np.ndarray:
        """The camera's view from pose (d, psi) on a road of curvature (k, dk), `travelled` metres along it.
        Every ground pixel is a mix of five colours (verge, asphalt, white line, centre line, haze) whose
        weights are computed in float32 per pixel; one matrix product mixes them, light and tint folded in.
        objects: None, or a callable(frame, exposure) that draws into the float32 BGR frame (0..255) before the
        sensor noise is added (obstacles.py's ObstacleLayer); without it the frame is exactly as before.
        markings: a Wear (worn lane markings); look: a Look (night, glare, rain), drawing from look_rng, applied
        after the objects and before the noise. Without them (None) the frame is exactly as before."""
        s, along, road, lines, centre = self.ground(d, psi, k, dk, travelled, markings)
        tex = self._texture(s, along) - 0.5
        light = self.fog if not len(scene.shadows) else self._shade(s, travelled, scene) * self.fog
        kept = (1.0 - lines) * (1.0 - centre) * light  # what the painted lines leave of the ground
        weights = self.weights
        weights[..., 0] = (1.0 - road) * (1.0 + 2.5 * scene.texture_gain * tex) * kept  # verge
        weights[..., 1] = road * (1.0 + scene.texture_gain * tex) * kept  # asphalt
        weights[..., 2] = lines * (1.0 - centre) * light  # the white edge lines
        weights[..., 3] = centre * light  # the centre line
        exposure = (scene.gain * scene.tint * 255.0).astype(np.float32)
        colours = (np.stack([scene.verge, scene.asphalt, _WHITE, scene.centre, _SKY_LOW]) * exposure).astype(np.float32)
        frame = np.empty((self.height, self.width, 3), dtype=np.float32)
        frame[:self.first_ground] = self.sky * exposure
        np.matmul(weights.reshape(-1, 5), colours, out=frame[self.first_ground:].reshape(-1, 3))
        if objects is not None:
            objects(frame, exposure)
        if look is not None:
            look.apply(frame, self, look_rng)
        if scene.noise > 0:
            dy, dx = rng.randint(0, 64, size=2)
            frame += self.noise_field[dy:dy + self.height, dx:dx + self.width] * np.float32(scene.noise * 255.0)
        np.clip(frame, 0.0, 255.0, out=frame)
        frame += 0.5
        return frame.astype(np.uint8)


VIEWS = ("recovery", "centred")


def random_pose(rng: np.random.RandomState, views: str = "recovery"):
    """A pose a driver could plausibly be in, with straight roads well represented. "recovery": shifted
    (sd 0.45 m, up to 1.2 m) and rotated (sd 0.05 rad) off the lane centre, each labelled with the steering
    back to it, as PilotNet's paper shifts and rotates its camera views to teach recovery from drift;
    "centred": only what a careful driver's camera sees (sd 0.1 m and 0.01 rad), for comparison."""
    k = 0.0 if rng.rand() < 0.2 else rng.uniform(-1.0 / 45.0, 1.0 / 45.0)
    dk = rng.uniform(-2e-4, 2e-4)
    if views == "centred":
        d = float(np.clip(rng.normal(0.0, 0.1), -0.3, 0.3))
        psi = float(np.clip(rng.normal(0.0, 0.01), -0.03, 0.03))
    else:
        d = float(np.clip(rng.normal(0.0, 0.45), -1.2, 1.2))
        psi = float(np.clip(rng.normal(0.0, 0.05), -0.15, 0.15))
    return d, psi, k, dk


def sample_frames(n: int, width: int = 320, height: int = 180, seed: int = 0, views: str = "recovery"):
    """n independent frames (uint8 BGR, n x height x width x 3) and their steering labels (float32, n)."""
    if views not in VIEWS:
        raise ValueError("views must be one of %s, not %r" % (", ".join(VIEWS), views))
    rng = np.random.RandomState(seed)
    renderer = RoadRenderer(width, height, seed)
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.float32)
    for i in range(n):
        d, psi, k, dk = random_pose(rng, views)
        scene = Scene(rng)
        frames[i] = renderer.render(d, psi, k, dk, rng.uniform(0, 1000), scene, rng)
        labels[i] = steering_label(d, psi, k, dk)
    return frames, labels


def move(d: float, psi: float, k: float, curvature: float, distance: float):
    """The car's new pose (d, psi) after `distance` metres at the path `curvature` (1/m, right positive) on a
    road of curvature k: the kinematic bicycle model in the lane's frame (steering as the inverse radius it
    drives, as the labels give it, so no wheelbase enters). The car turns by (curvature - k) per metre
    relative to the lane, and drifts sideways by the sine of its heading error."""
    psi += (curvature - k) * distance
    d += math.sin(psi) * distance
    return d, psi


@dataclass(frozen=True)
class Bends:
    """How a Track winds: a new target curvature every every_m metres, 0 with chance `straight`, else of a
    magnitude in [min_curvature, max_curvature] 1/m (uniform, either side); the curvature eases towards it over
    ease_m metres, changing by at most max_rate 1/m per metre. The defaults are the calm track's."""

    max_curvature: float = 1.0 / 50.0  # 1/m: a radius of at least 50 m
    min_curvature: float = 0.0  # 1/m: the gentlest bend that is not straight
    straight: float = 0.3  # the share of bends that are straight
    every_m: tuple = (30.0, 120.0)
    ease_m: float = 25.0
    max_rate: float = 4e-4  # 1/m per metre


class Track:
    """A winding road as the car travels along it: its curvature eases towards a new target every 30-120 m
    (radius at least 50 m, straight 30% of the time: Bends()), and its look (light, verge, shadows) changes every
    100-250 m. Drawn from its own random state, so the road is the same whatever drives on it. markings: None
    (painted everywhere) or a Wear (worn away in stretches), which the renderer reads."""

    MAX_CURVATURE = Bends.max_curvature  # the calm track's (simulator.TRACK)
    STRAIGHT = Bends.straight
    BEND_EVERY_M = Bends.every_m
    SCENE_EVERY_M = (100.0, 250.0)

    def __init__(self, rng: np.random.RandomState, bends: Bends = Bends(), markings=None):
        self.rng, self.bends, self.markings = rng, bends, markings
        self.k, self.dk, self.k_target = 0.0, 0.0, 0.0
        self.travelled = 0.0
        self.next_bend = 40.0
        self.scene = Scene(rng)
        self.next_scene = 150.0

    def bend(self, distance: float):
        """The curvature `distance` metres on (eased towards the target, at most bends.max_rate 1/m per metre)."""
        rng, b = self.rng, self.bends
        if self.travelled >= self.next_bend:
            k = b.max_curvature
            self.k_target = 0.0 if rng.rand() < b.straight else rng.uniform(-k, k)
            if b.min_curvature and self.k_target:  # the same draw, its magnitude mapped onto [min, max]
                self.k_target = math.copysign(b.min_curvature + abs(self.k_target) / k * (k - b.min_curvature),
                                              self.k_target)
            self.next_bend = self.travelled + rng.uniform(*b.every_m)
        self.dk = float(np.clip((self.k_target - self.k) / b.ease_m, -b.max_rate, b.max_rate))
        self.k += self.dk * distance

    def travel(self, distance: float):
        """Moves `distance` metres on, and changes the scene where it is due."""
        self.travelled += distance
        if self.travelled >= self.next_scene:
            self.scene = _blend_scene(self.scene, Scene(self.rng))
            self.next_scene = self.travelled + self.rng.uniform(*self.SCENE_EVERY_M)


def _blend_scene(old: Scene, new: Scene) -> Scene:
    """Keep the road's look (asphalt, lines) but let light, verge and shadows change."""
    new.asphalt, new.centre = old.asphalt, old.centre
    new.gain = 0.5 * (old.gain + new.gain)
    return new


class Wear:
    """Lane markings worn away in stretches along the road: painted for kept_m metres (uniform in that range),
    then gone for gap_m metres (uniform), and so on from the road's start, drawn from its own random state as far
    as the road is looked at. In a gap every line is gone (both edge lines and the centre line)."""

    def __init__(self, rng: np.random.RandomState, gap_m, kept_m):
        self.rng, self.gap_m, self.kept_m = rng, tuple(gap_m), tuple(kept_m)
        self.starts, self.ends = np.zeros(0), np.zeros(0)
        self.drawn = 0.0  # metres of road whose stretches are drawn

    def gaps(self, until):
        """[(start, end), ...] of the gaps that begin before `until` metres."""
        self._draw(until)
        return [(a, b) for a, b in zip(self.starts, self.ends) if a < until]

    def painted(self, along):
        """1.0 where the markings are painted, 0.0 in a gap, for an array of metres along the road."""
        self._draw(float(np.max(along)))
        i = np.searchsorted(self.starts, along, side="right") - 1
        gap = (i >= 0) & (along < self.ends[np.maximum(i, 0)])
        return np.where(gap, np.float32(0.0), np.float32(1.0))

    def _draw(self, until):
        starts, ends = list(self.starts), list(self.ends)
        while self.drawn <= until:
            start = self.drawn + self.rng.uniform(*self.kept_m)
            self.drawn = start + self.rng.uniform(*self.gap_m)
            starts.append(start)
            ends.append(self.drawn)
        self.starts, self.ends = np.asarray(starts), np.asarray(ends)


@dataclass(frozen=True)
class Look:
    """A frame's light and weather beyond its scene's own (scenarios.py's night, glare and rain), applied in this
    order to the painted frame (obstacles included), before the sensor noise. The defaults change nothing.

        light, tint     the whole frame times light x tint (BGR)
        headlight_m     0: daylight; else headlights: the ground z metres ahead lit as
                        ambient + (1 - ambient) x min(1, (headlight_m / z)^2), the sky as ambient
        contrast        each pixel pulled towards the frame's mean colour: mean + contrast x (pixel - mean)
        glare           a low sun's bloom: glare x 255 x exp(-(r / (bloom x width))^2) added, r the distance in
                        pixels from the sun, at sun = (fraction of the width, rows above the horizon as a fraction
                        of the height)
        veil            every pixel moved that share of the way to white (washed-out contrast)
        blur            passes of a 3x3 binomial blur ([1, 2, 1] / 4 each way: a wet windscreen)
        droplets        drops on the windscreen, drawn anew each frame: discs of radius droplet x width showing a
                        5x5 mean of what is behind them
        streaks         rain streaks per 10,000 pixels, drawn anew each frame: lines streak_length x height long,
                        slanting streak_slant px across per px down, streak_gain x 255 brighter
    """

    light: float = 1.0
    tint: tuple = (1.0, 1.0, 1.0)
    headlight_m: float = 0.0
    ambient: float = 1.0
    contrast: float = 1.0
    glare: float = 0.0
    sun: tuple = (0.0, 0.0)
    bloom: float = 0.0
    veil: float = 0.0
    blur: int = 0
    droplets: int = 0
    droplet: float = 0.0
    streaks: float = 0.0
    streak_length: float = 0.0
    streak_slant: float = 0.0
    streak_gain: float = 0.0

    def apply(self, frame, renderer, rng):
        """Changes the float32 BGR frame (0..255) in place; rng: draws the droplets and streaks."""
        h, w = frame.shape[:2]
        if self.light != 1.0 or tuple(self.tint) != (1.0, 1.0, 1.0):
            frame *= np.float32(self.light) * np.asarray(self.tint, np.float32)
        if self.headlight_m:
            gain = np.full(h, self.ambient, np.float32)
            lit = np.minimum(1.0, (self.headlight_m / renderer.z[:, 0]) ** 2)
            gain[renderer.first_ground:] = self.ambient + (1.0 - self.ambient) * lit
            frame *= gain[:, None, None]
        if self.contrast != 1.0:
            mean = frame.reshape(-1, 3).mean(axis=0)
            frame -= mean
            frame *= np.float32(self.contrast)
            frame += mean
        if self.glare:
            rows = (np.arange(h, dtype=np.float32) + 0.5 - (renderer.v_h - self.sun[1] * h))[:, None]
            cols = (np.arange(w, dtype=np.float32) + 0.5 - self.sun[0] * w)[None, :]
            bloom = np.exp(-(rows ** 2 + cols ** 2) / np.float32((self.bloom * w) ** 2))
            frame += (np.float32(self.glare * 255.0) * bloom)[:, :, None]
        if self.veil:
            frame *= np.float32(1.0 - self.veil)
            frame += np.float32(self.veil * 255.0)
        for _ in range(self.blur):
            frame[:] = _binomial(frame)
        if self.droplets:
            behind, r = _box_mean(frame, 2), self.droplet * w
            for cx, cy in rng.uniform(0.0, 1.0, (self.droplets, 2)) * (w, h):
                rows = slice(max(0, int(cy - r)), min(h, int(cy + r) + 1))
                cols = slice(max(0, int(cx - r)), min(w, int(cx + r) + 1))
                inside = ((np.arange(rows.start, rows.stop)[:, None] - cy) ** 2
                          + (np.arange(cols.start, cols.stop)[None, :] - cx) ** 2 < r * r)
                frame[rows, cols][inside] = behind[rows, cols][inside]
        n = int(round(self.streaks * h * w / 10000.0))
        if n:
            start = rng.uniform(0.0, 1.0, (n, 2)) * (w, h)
            t = np.arange(max(1, int(round(self.streak_length * h))))[None, :]
            xs = np.round(start[:, :1] + self.streak_slant * t).astype(np.int64).ravel()
            ys = np.round(start[:, 1:] + t).astype(np.int64).ravel()
            keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
            frame[ys[keep], xs[keep]] += np.float32(self.streak_gain * 255.0)


def _binomial(frame):
    """A 3x3 binomial blur ([1, 2, 1] / 4 down and across), the edges repeated."""
    out = frame.copy()
    out[1:-1] = 0.25 * frame[:-2] + 0.5 * frame[1:-1] + 0.25 * frame[2:]
    across = out.copy()
    across[:, 1:-1] = 0.25 * out[:, :-2] + 0.5 * out[:, 1:-1] + 0.25 * out[:, 2:]
    return across


def _box_mean(frame, r):
    """The mean over each pixel's (2r + 1) x (2r + 1) window, the edges repeated."""
    padded = np.pad(frame, ((r, r), (r, r), (0, 0)), mode="edge")
    h, w, n = frame.shape[0], frame.shape[1], 2 * r + 1
    down = sum(padded[i:i + h] for i in range(n))
    return sum(down[:, i:i + w] for i in range(n)) / np.float32(n * n)


def steering_metadata() -> dict:
    """What a steering bundle's manifest (and a run's meta.json) says its output means."""
    return {"inverse_radius_per_unit": 1.0 / STEERING_RADIUS_M, "positive": "right",
            "meaning": "normalised steering: 1/r = value / %g m, clipped to [-1, 1]" % STEERING_RADIUS_M}
