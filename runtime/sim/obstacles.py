"""Obstacles on the procedural road, for detection: traffic cones, boxes, parked cars, pedestrians and stop signs,
placed in the world by seed, drawn into road.py's frames with its camera, light and haze, each frame with exact
2D boxes. Pure numpy (1.17 and later), deterministic by seed.

Geometry: an obstacle stands on the ground at (s, z): s metres right of my lane's centre, z metres ahead, so it
follows the road's bends as the lane markings do (road.lane_x). Its parts are cuboids and flat polygons, projected
with RoadRenderer's pinhole camera (focal length f, horizon row v_h, camera CAMERA_HEIGHT_M above the road):

    u = width / 2 + f * X / Z,   v = v_h + f * (CAMERA_HEIGHT_M - Y) / Z      (pixel c covers u in [c, c + 1))

A pixel belongs to a face when its centre is inside the projected polygon (no anti-aliasing: a box is exact).
Faces are lit by the frame's sun (ambient plus diffuse), and each obstacle casts a shadow on the ground away from
it; the scene's exposure and the haze of distance apply as to the road, and the sensor noise comes after.

Labels: obstacles are drawn far to near into an id buffer, so a nearer one occludes a farther one; an obstacle's
box is the tight extent of its visible pixels, after occlusion and the frame's edges, as [x0, y0, x1, y1] in
pixel edges (pixels x0..x1-1 and y0..y1-1: COCO's convention, width x1 - x0). A stop sign's box is its octagon
(its post is drawn but not labelled, as COCO labels stop signs). An obstacle shown in under MIN_VISIBLE of its
pixels (those it would cover alone in an unbounded frame), or whose box is under MIN_HEIGHT_PX high, is an ignore
region: neither a positive nor a false positive. One with no visible pixel has no box at all.
"""

from __future__ import annotations

import math

import numpy as np

from . import road

LABELS = ("cone", "box", "car", "pedestrian", "stop sign")
CONE, BOX, CAR, PEDESTRIAN, STOP_SIGN = range(len(LABELS))
MIN_VISIBLE = 0.4  # fraction of an obstacle's pixels that must show for it to be a positive
MIN_HEIGHT_PX = 6.0  # a box lower than this (pixels of the frame) is an ignore region
MAX_OBSTACLES = 7
_CHANCE = (0.24, 0.16, 0.24, 0.2, 0.16)  # of each label, in LABELS' order
_CLUTTER = -2  # id of pixels drawn but not labelled (a stop sign's post); -1: no obstacle
_AMBIENT, _DIFFUSE = 0.45, 0.65

_ORANGE, _WHITE, _DARK = (0.05, 0.33, 0.95), (0.92, 0.92, 0.92), (0.08, 0.08, 0.09)
_CARDBOARD = (0.30, 0.48, 0.62)
_CAR_PAINT = ((0.15, 0.12, 0.72), (0.60, 0.32, 0.10), (0.86, 0.86, 0.86), (0.13, 0.13, 0.14), (0.60, 0.60, 0.62),
              (0.22, 0.48, 0.20), (0.10, 0.72, 0.85))
_GLASS = (0.20, 0.17, 0.15)
_CLOTHES = ((0.45, 0.25, 0.12), (0.15, 0.15, 0.55), (0.20, 0.55, 0.25), (0.70, 0.70, 0.70), (0.12, 0.12, 0.12),
            (0.15, 0.55, 0.75))
_SKIN = ((0.55, 0.68, 0.85), (0.35, 0.48, 0.65), (0.20, 0.28, 0.40))
_SIGN_RED, _POST = (0.12, 0.10, 0.72), (0.50, 0.50, 0.52)


class Part:
    """A cuboid (box = s0, s1, y0, y1, z0, z1 in metres) or a flat polygon (points: n x 3 of s, y, z, facing
    `normal`), its colour (BGR, 0..1), and whether its pixels belong to the obstacle's box."""

    def __init__(self, colour, box=None, points=None, normal=None, labelled=True):
        self.colour, self.box, self.labelled = np.asarray(colour, np.float64), box, labelled
        self.points = None if points is None else np.asarray(points, np.float64)
        self.normal = None if normal is None else np.asarray(normal, np.float64) / np.linalg.norm(normal)


class Obstacle:
    """One obstacle: its label (an index into LABELS), where it stands (s, z), its parts (drawn in order), and
    its footprint and height for its shadow."""

    def __init__(self, label, s, z, parts, half_width, half_length, height):
        self.label, self.s, self.z, self.parts = label, s, z, parts
        self.half_width, self.half_length, self.height = half_width, half_length, height

    def footprint(self, margin=0.0):
        return (self.s - self.half_width - margin, self.s + self.half_width + margin,
                self.z - self.half_length - margin, self.z + self.half_length + margin)


def _cuboid(s, z, width, length, y0, y1, colour, dz=0.0):
    return Part(colour, box=(s - width / 2, s + width / 2, y0, y1, z + dz - length / 2, z + dz + length / 2))


def _cone(rng, s, z):
    h = rng.uniform(0.55, 0.8)
    r = 0.27 * h
    parts = [_cuboid(s, z, 2.3 * r, 2.3 * r, 0.0, 0.04, _DARK)]
    levels = ((0.0, 0.45, _ORANGE), (0.45, 0.62, _WHITE), (0.62, 1.0, _ORANGE))
    for lo, hi, colour in levels:  # two halves, turned left and right, so that the light rounds it
        w0, w1 = r * (1 - lo * 0.9), r * (1 - hi * 0.9)
        for side in (-1, 1):
            pts = [(s, lo * h, z), (s + side * w0, lo * h, z), (s + side * w1, hi * h, z), (s, hi * h, z)]
            parts.append(Part(colour, points=pts, normal=(0.7 * side, 0.3, -0.7)))
    return Obstacle(CONE, s, z, parts, r, r, h)


def _box(rng, s, z):
    w, length, h = rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0), rng.uniform(0.45, 0.9)
    colour = np.asarray(_CARDBOARD) * rng.uniform(0.8, 1.2)
    return Obstacle(BOX, s, z, [_cuboid(s, z, w, length, 0.0, h, colour)], w / 2, length / 2, h)


def _car(rng, s, z):
    paint = np.asarray(_CAR_PAINT[rng.randint(len(_CAR_PAINT))]) * rng.uniform(0.85, 1.15)
    w, length, h = rng.uniform(1.7, 1.9), rng.uniform(3.9, 4.8), rng.uniform(1.35, 1.6)
    parts = [_cuboid(s, z, w - 0.06, length - 0.7, 0.0, 0.35, _DARK),  # wheels and underbody
             _cuboid(s, z, w, length, 0.3, 0.95, paint),
             _cuboid(s, z, w - 0.2, 0.5 * length, 0.95, h, _GLASS, dz=0.05 * length)]
    return Obstacle(CAR, s, z, parts, w / 2, length / 2, h)


def _pedestrian(rng, s, z):
    k = rng.uniform(0.85, 1.1)
    legs, shirt = _CLOTHES[rng.randint(len(_CLOTHES))], _CLOTHES[rng.randint(len(_CLOTHES))]
    parts = [_cuboid(s, z, 0.32 * k, 0.22 * k, 0.0, 0.85 * k, np.asarray(legs) * 0.7),
             _cuboid(s, z, 0.46 * k, 0.26 * k, 0.85 * k, 1.45 * k, shirt),
             _cuboid(s, z, 0.2 * k, 0.2 * k, 1.47 * k, 1.72 * k, _SKIN[rng.randint(len(_SKIN))])]
    return Obstacle(PEDESTRIAN, s, z, parts, 0.23 * k, 0.13 * k, 1.72 * k)


def _octagon(s, y, z, radius):
    a = (np.arange(8) + 0.5) * (math.pi / 4)
    return np.stack([s + radius * np.cos(a), y + radius * np.sin(a), np.full(8, z)], axis=1)


def _stop_sign(rng, s, z):
    radius, y = rng.uniform(0.33, 0.42), rng.uniform(1.9, 2.3)
    post = _cuboid(s, z + 0.03, 0.07, 0.07, 0.0, y, _POST)
    post.labelled = False
    parts = [post, Part(_WHITE, points=_octagon(s, y, z, radius), normal=(0.0, 0.2, -1.0)),
             Part(_SIGN_RED, points=_octagon(s, y, z - 0.001, 0.86 * radius), normal=(0.0, 0.2, -1.0))]
    return Obstacle(STOP_SIGN, s, z, parts, 0.05, 0.05, y)


# where each kind stands: (chance, lateral range s, metres right of my lane's centre); the road spans s in
# [-5.65, 2.15] (two lanes and their edges), the verges lie beyond
_WHERE = {CONE: [(1.0, (-5.2, 2.6))], BOX: [(1.0, (-5.0, 2.0))],
          CAR: [(0.6, (3.0, 3.8)), (0.25, (-7.6, -6.8)), (0.15, (-3.8, -3.2))],
          PEDESTRIAN: [(0.4, (2.5, 5.0)), (0.3, (-8.5, -6.0)), (0.3, (-5.0, 2.0))],
          STOP_SIGN: [(0.75, (2.6, 3.4)), (0.25, (-7.0, -6.2))]}
_DISTANCE = {CONE: (6.0, 20.0), BOX: (6.0, 22.0), CAR: (7.0, 45.0), PEDESTRIAN: (6.0, 36.0), STOP_SIGN: (7.0, 24.0)}
_MAKE = {CONE: _cone, BOX: _box, CAR: _car, PEDESTRIAN: _pedestrian, STOP_SIGN: _stop_sign}


def make(label, rng: np.random.RandomState, s, z):
    """One obstacle of kind `label` standing at s metres right of my lane's centre, z metres ahead; its size and
    colours drawn from rng."""
    return _MAKE[label](rng, s, z)


def place(rng: np.random.RandomState, count=None):
    """Obstacles for one frame, drawn from rng: count of them (default: 0 to MAX_OBSTACLES, none one time in
    ten), of labels by _CHANCE, where each kind stands, their footprints apart by 0.3 m at least."""
    if count is None:
        count = 0 if rng.rand() < 0.1 else rng.randint(1, MAX_OBSTACLES + 1)
    placed = []
    for _ in range(count):
        label = int(rng.choice(len(LABELS), p=_CHANCE))
        for _try in range(10):
            spots = _WHERE[label]
            spot = spots[rng.choice(len(spots), p=[chance for chance, _ in spots])][1]
            obstacle = make(label, rng, rng.uniform(*spot), rng.uniform(*_DISTANCE[label]))
            if not any(_overlap(obstacle.footprint(0.3), other.footprint()) for other in placed):
                placed.append(obstacle)
                break
    return placed


def _overlap(a, b):
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


class Light:
    """The frame's sun: a unit vector towards it in the car's frame (X right, Y up, Z ahead), 25-65 degrees up."""

    def __init__(self, rng: np.random.RandomState):
        elevation, azimuth = math.radians(rng.uniform(25.0, 65.0)), rng.uniform(-math.pi, math.pi)
        self.towards = np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                                 math.cos(elevation) * math.cos(azimuth)])

    def shade(self, normal):
        return _AMBIENT + _DIFFUSE * max(0.0, float(np.dot(normal, self.towards)))


def raster(points):
    """The pixels whose centres lie inside a convex polygon (n x 2 of u, v, in either winding): (row0, col0,
    mask), the mask over the polygon's bounding pixels, unclipped (rows and columns may be negative)."""
    u, v = points[:, 0], points[:, 1]
    c0, r0 = int(math.floor(u.min())), int(math.floor(v.min()))
    c1, r1 = int(math.ceil(u.max())), int(math.ceil(v.max()))
    cols = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5
    rows = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5
    area = float(np.dot(u, v[np.r_[1:len(v), 0]]) - np.dot(u[np.r_[1:len(u), 0]], v))
    inside = np.full((r1 - r0, c1 - c0), area != 0.0)
    sign = 1.0 if area > 0 else -1.0
    for i in range(len(u)):
        j = (i + 1) % len(u)
        cross = (u[j] - u[i]) * (rows - v[i]) - (v[j] - v[i]) * (cols - u[i])
        inside &= cross * sign >= 0.0
    return r0, c0, inside


def _hull(points):
    """Convex hull (monotone chain) of a few 2-D points, counter-clockwise."""
    pts = sorted(set(map(tuple, np.round(points, 9))))
    if len(pts) < 3:
        return np.asarray(pts)

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.asarray(lower[:-1] + upper[:-1])


_FACES = (((0, 0, 0), (0, 1, 0), (0, 1, 1), (0, 0, 1)), ((1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)),  # sides
          ((0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)), ((0, 1, 0), (1, 1, 0), (1, 1, 1), (0, 1, 1)),  # bottom, top
          ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)), ((0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)))  # front, back
_CAMERA = np.array([0.0, road.CAMERA_HEIGHT_M, 0.0])


class ObstacleLayer:
    """Draws obstacles into one road frame (road.RoadRenderer.render's `objects`: called with the float frame and
    the scene's exposure) and keeps what it drew: `ids` (which obstacle each pixel shows: its index in
    `obstacles`, -1 for none, -2 for a part that is not labelled) and, per obstacle, the pixels it would cover
    alone in an unbounded frame (`full`). `labels()` then gives the boxes."""

    def __init__(self, renderer: road.RoadRenderer, obstacles, pose, light: Light, shadow_depth=0.5, shadows=True):
        self.renderer, self.obstacles, self.pose, self.light = renderer, list(obstacles), pose, light
        self.shadow_depth, self.shadows = shadow_depth, shadows
        self.ids = np.full((renderer.height, renderer.width), -1, np.int16)
        self.full = np.zeros(len(self.obstacles), np.int64)
        self.extent = [None] * len(self.obstacles)  # rows and columns of the frame each obstacle drew in

    def world(self, points):
        """Points (n x 3: s, y, z on the road) in the car's frame (X right, Y up, Z ahead)."""
        d, psi, k, dk = self.pose
        z = points[:, 2]
        return np.stack([road.lane_x(z, d, psi, k, dk) + points[:, 0], points[:, 1], z], axis=1)

    def project(self, xyz):
        r = self.renderer
        return np.stack([r.width / 2.0 + r.f * xyz[:, 0] / xyz[:, 2],
                         r.v_h + r.f * (road.CAMERA_HEIGHT_M - xyz[:, 1]) / xyz[:, 2]], axis=1)

    def __call__(self, frame, exposure):
        haze = road._SKY_LOW * exposure
        if self.shadows:
            for obstacle in self.obstacles:
                self._shadow(frame, obstacle, haze)
        for i in sorted(range(len(self.obstacles)), key=lambda i: -self.obstacles[i].z):  # far to near
            self._draw(frame, i, exposure, haze)

    def _faces(self, part):
        """(car-frame points, normal) of each face of a part that the camera sees."""
        if part.box is None:
            yield self.world(part.points), part.normal
            return
        s, y, z = (part.box[0], part.box[1]), (part.box[2], part.box[3]), (part.box[4], part.box[5])
        corners = self.world(np.array([[s[i], y[j], z[k]] for i in (0, 1) for j in (0, 1) for k in (0, 1)]))
        centre = corners.mean(axis=0)
        for face in _FACES:
            pts = corners[[4 * i + 2 * j + k for i, j, k in face]]
            mid = pts.mean(axis=0)
            normal = _cross(pts[1] - pts[0], pts[3] - pts[0])
            normal = normal if np.dot(normal, mid - centre) > 0 else -normal
            if np.dot(normal, _CAMERA - mid) > 0:
                yield pts, normal / np.linalg.norm(normal)

    def _draw(self, frame, index, exposure, haze):
        """Draws one obstacle's visible faces, lit and hazed, and counts the pixels of its labelled parts."""
        drawn = []
        for part in self.obstacles[index].parts:
            for pts, normal in self._faces(part):
                fog = math.exp(-float(pts[:, 2].mean()) / 160.0)
                value = part.colour * self.light.shade(normal) * exposure * fog + haze * (1.0 - fog)
                drawn.append((raster(self.project(pts)), value.astype(np.float32), part.labelled))
        mine = [r for r, _, labelled in drawn if labelled]
        if mine:
            top, left = min(r[0] for r in mine), min(r[1] for r in mine)
            bottom = max(r[0] + r[2].shape[0] for r in mine)
            right = max(r[1] + r[2].shape[1] for r in mine)
            alone = np.zeros((bottom - top, right - left), bool)
            for r0, c0, mask in mine:
                alone[r0 - top:r0 - top + mask.shape[0], c0 - left:c0 - left + mask.shape[1]] |= mask
            self.full[index] = int(alone.sum())
        for (r0, c0, mask), value, labelled in drawn:
            window = _window(self.ids.shape, r0, c0, mask)
            if window is not None:
                rows, cols, inside = window
                frame[rows, cols][inside] = value
                self.ids[rows, cols][inside] = index if labelled else _CLUTTER
                if labelled:
                    old = self.extent[index] or (rows.start, rows.stop, cols.start, cols.stop)
                    self.extent[index] = (min(old[0], rows.start), max(old[1], rows.stop),
                                          min(old[2], cols.start), max(old[3], cols.stop))

    def _shadow(self, frame, obstacle, haze):
        """Darkens the ground (not its haze) where the obstacle's footprint, cast away from the sun, falls."""
        r = self.renderer
        s0, s1, z0, z1 = obstacle.footprint()
        sun = self.light.towards
        shift = -obstacle.height * np.array([sun[0], sun[2]]) / sun[1]
        foot = np.array([[s0, z0], [s1, z0], [s1, z1], [s0, z1]])
        hull = _hull(np.concatenate([foot, foot + shift]))
        hull[:, 1] = np.maximum(hull[:, 1], 1.0)  # a shadow cast behind the camera stops short of it
        ground = self.world(np.stack([hull[:, 0], np.zeros(len(hull)), hull[:, 1]], axis=1))
        window = _window((r.height, r.width), *raster(self.project(ground)))
        if window is None:
            return
        rows, cols, inside = window
        first = max(rows.start, r.first_ground)
        inside = inside[first - rows.start:]
        rows = slice(first, rows.stop)
        if rows.start >= rows.stop:
            return
        through = (1.0 - r.fog[rows.start - r.first_ground:rows.stop - r.first_ground])[:, :, None] * haze
        block = frame[rows, cols]
        block[:] = np.where(inside[:, :, None], (block - through) * self.shadow_depth + through, block)

    def labels(self, min_visible=MIN_VISIBLE, min_height=MIN_HEIGHT_PX):
        """(boxes float32 M x 4 of x0, y0, x1, y1 in pixel edges, classes int64 M, ignore bool M, visible float
        M: the fraction of each box's obstacle that shows) for the obstacles with a visible pixel."""
        boxes, classes, ignore, visible = [], [], [], []
        for i, obstacle in enumerate(self.obstacles):
            if self.extent[i] is None:
                continue
            top, _, left, _ = self.extent[i]
            ys, xs = np.nonzero(self.ids[top:self.extent[i][1], left:self.extent[i][3]] == i)
            if not len(ys):
                continue
            box = (left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1)
            fraction = len(ys) / float(max(self.full[i], 1))
            boxes.append(box)
            classes.append(obstacle.label)
            visible.append(fraction)
            ignore.append(fraction < min_visible or box[3] - box[1] < min_height)
        return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64),
                np.asarray(ignore, bool), np.asarray(visible, np.float64))


def _cross(a, b):
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _window(shape, r0, c0, mask):
    """(row slice, column slice, the mask's part inside them) of a mask at (r0, c0) clipped to a frame of shape;
    None when nothing of it is inside."""
    a, b = max(r0, 0), min(r0 + mask.shape[0], shape[0])
    c, d = max(c0, 0), min(c0 + mask.shape[1], shape[1])
    if a >= b or c >= d:
        return None
    return slice(a, b), slice(c, d), mask[a - r0:b - r0, c - c0:d - c0]


def draw_frames(n: int, width: int = 320, height: int = 180, seed: int = 0, views: str = "recovery"):
    """The frames sample_detection_frames labels, one at a time, from one random state: an iterator of (image uint8
    BGR, height x width x 3; the ObstacleLayer that drew its obstacles, with its renderer and ids; pose (d, psi, k,
    dk); metres travelled). Other labels of the same frames (segmentation.py's) come from here too."""
    if views not in road.VIEWS:
        raise ValueError("views must be one of %s, not %r" % (", ".join(road.VIEWS), views))
    return _drawn(n, road.RoadRenderer(width, height, seed), np.random.RandomState(seed), views)


def _drawn(n, renderer, rng, views):
    for _ in range(n):
        pose = road.random_pose(rng, views)
        scene = road.Scene(rng)
        travelled = rng.uniform(0, 1000)
        layer = ObstacleLayer(renderer, place(rng), pose, Light(rng), scene.shadow_depth)
        image = renderer.render(pose[0], pose[1], pose[2], pose[3], travelled, scene, rng, objects=layer)
        yield image, layer, pose, travelled


def sample_detection_frames(n: int, width: int = 320, height: int = 180, seed: int = 0,
                            min_visible: float = MIN_VISIBLE, min_height: float = MIN_HEIGHT_PX,
                            views: str = "recovery"):
    """n independent road frames with obstacles: (images uint8 BGR, n x height x width x 3; boxes: a list of
    float32 M x 4 arrays, x0, y0, x1, y1 in pixel edges; classes: a list of int64 M arrays, indices into LABELS;
    ignore: a list of bool M arrays, True for an ignore region). min_height is in pixels of these frames: give
    MIN_HEIGHT_PX x height / the detector's input height when they are not at the detector's size."""
    frames = draw_frames(n, width, height, seed, views)
    images = np.empty((n, height, width, 3), dtype=np.uint8)
    boxes, classes, ignore = [], [], []
    for i, (image, layer, _, _) in enumerate(frames):
        images[i] = image
        b, c, g, _ = layer.labels(min_visible, min_height)
        boxes.append(b)
        classes.append(c)
        ignore.append(g)
    return images, boxes, classes, ignore
