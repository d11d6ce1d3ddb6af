"""python -m runtime drive BUNDLE: the steering network drives the procedural road in closed loop, and is
judged as NVIDIA judged PilotNet (Bojarski et al. 2016): by how long it drives without help.

    autonomy = (1 - interventions x 6 s / elapsed s) x 100          (clamped at 0)

Each frame is rendered from the car's pose, the controller steers, and the car moves 1/30 s along the
road with that steering (road.move, the kinematic bicycle model; the command acts one frame later by
default, --delay-frames). Errors compound as they would on a car, which an open-loop error cannot show.

The track, fixed before any model is judged, and the same for every controller and precision (TRACK):
    speed 15 m/s (54 km/h), 30 frames a second, one frame of actuation delay
    curvature eased towards a new target every 30-120 m: straight 30% of the time, else a radius of at
      least 50 m (|k| <= 0.02 1/m), changing by at most 4e-4 1/m per metre (road.Track)
    lane 3.5 m wide; an intervention when the car's centre is more than 1.0 m off the lane centre (the
      paper's rule); the car is then put back on the centre, heading along the lane, and drives on
    light gain 0.55-1.25 with a colour tint, 0-6 tree shadows, sensor noise, the verge's colour and the
      asphalt's texture, changing every 100-250 m
    held out: seed 2016 by default (train's road frames are independent random poses, seeds 0 and 100003)
Frames are rendered at the size whose crop is exactly the network's input (200x110 for PilotNet), so no
time goes to pixels the network never sees.

Controllers: model (the bundle, through the same Model as `runtime run`: ONNX Runtime here, TensorRT on a
board), zero (never steers: the floor) and pure-pursuit (the ideal steering from the true pose: the ceiling).
"""

from __future__ import annotations

import collections
import time

import numpy as np

from . import road
from ..errors import UserError

SPEED_MPS, FPS = road.SPEED_MPS, road.FPS  # one speed and frame rate for both simulated drives
OFF_LANE_M = 1.0
PENALTY_S = 6.0  # what the paper counts for each intervention
DEFAULT_SEED = 2016
CONTROLLERS = ("model", "zero", "pure-pursuit")
TRACK = {"speed_mps": SPEED_MPS, "fps": FPS, "max_curvature_per_m": road.Track.MAX_CURVATURE,
         "straight_fraction": road.Track.STRAIGHT, "bend_every_m": list(road.Track.BEND_EVERY_M),
         "lane_width_m": road.LANE_WIDTH_M, "intervention_offset_m": OFF_LANE_M, "light_gain": list(road.Scene.GAIN),
         "shadows": [0, road.Scene.MAX_SHADOWS], "scene_every_m": list(road.Track.SCENE_EVERY_M)}  # from road.py


class Simulator:
    """The car on a seeded road: view() renders what its camera sees, step(curvature) drives 1/fps s."""

    def __init__(self, width, height, seed=DEFAULT_SEED, delay_frames=1, fps=FPS, speed=SPEED_MPS):
        try:
            self.renderer = road.RoadRenderer(width, height, seed)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        self.track = road.Track(np.random.RandomState(seed))
        self.noise = np.random.RandomState(seed + 1)  # the sensor's, apart from the road's
        self.fps, self.step_m = fps, speed / fps
        self.d, self.psi = 0.0, 0.0
        self.delay_frames = delay_frames
        self.commands = collections.deque([0.0] * delay_frames)
        self.frames = 0
        self.interventions = 0
        self.left_at = None  # the offset at which the car last left its lane

    @property
    def seconds(self):
        return self.frames / self.fps

    def view(self):
        """(BGR frame, the ideal normalised steering from the true pose)."""
        t = self.track
        image = self.renderer.render(self.d, self.psi, t.k, t.dk, t.travelled, t.scene, self.noise)
        return image, road.steering_label(self.d, self.psi, t.k, t.dk)

    def step(self, curvature):
        """Drive one frame; the command given delay_frames ago acts now. True when this was an intervention."""
        self.commands.append(float(curvature))
        acting = self.commands.popleft()
        self.track.bend(self.step_m)
        self.d, self.psi = road.move(self.d, self.psi, self.track.k, acting, self.step_m)
        self.track.travel(self.step_m)
        self.frames += 1
        if abs(self.d) > OFF_LANE_M:
            self.interventions += 1
            self.left_at = self.d
            self.d, self.psi = 0.0, 0.0  # a person takes over and puts the car back
            self.commands = collections.deque([0.0] * self.delay_frames)
            return True
        return False


def steering_units(bundle):
    """Curvature (1/m, right positive) per unit of the bundle's steering output (Bundle.curvature_per_unit), or a
    one-line error for a bundle that does not say."""
    per_unit = bundle.curvature_per_unit
    if per_unit is None:
        raise UserError("%s is a %s bundle: drive needs a steering network whose manifest says what its output "
                        "means (steering.inverse_radius_per_unit), as train's pilotnet has"
                        % (bundle.path, bundle.task))
    return per_unit


class Drive:
    """What one drive recorded, frame by frame, and its report."""

    def __init__(self, controller, precision, seed, delay_frames):
        self.controller, self.precision, self.seed, self.delay_frames = controller, precision, seed, delay_frames
        self.offset, self.steering, self.ideal, self.latency_ms, self.intervened = [], [], [], [], []
        self.wall_seconds = 0.0
        self.backend = ""
        self.invalid = 0  # frames whose output was NaN or infinite

    def step(self, sim, steering, per_unit, ideal):
        """Drive sim one frame with `steering` (per_unit: its curvature per unit) and record the frame."""
        intervened = sim.step(steering * per_unit)
        self.offset.append(sim.left_at if intervened else sim.d)
        self.steering.append(steering)
        self.ideal.append(ideal)
        self.intervened.append(intervened)

    def report(self, fps=FPS):
        n = len(self.offset)
        sim_seconds = n / fps
        interventions = int(sum(self.intervened))
        offset = np.abs(np.asarray(self.offset)) if n else np.zeros(1)
        steering = np.asarray(self.steering) if n else np.zeros(1)
        latency = np.asarray(self.latency_ms) if self.latency_ms else None
        autonomy = max(0.0, 1.0 - interventions * PENALTY_S / sim_seconds) * 100.0 if sim_seconds else 0.0
        return {"controller": self.controller, "precision": self.precision, "backend": self.backend,
                "seed": self.seed, "delay_frames": self.delay_frames,
                "autonomy": round(autonomy, 2), "interventions": interventions, "invalid_outputs": self.invalid,
                "mean_abs_offset_m": round(float(offset.mean()), 4), "max_abs_offset_m": round(float(offset.max()), 4),
                "steering_change_per_s": round(float(np.abs(np.diff(steering)).mean() * fps) if n > 1 else 0.0, 4),
                "mean_abs_steering_error": round(float(np.abs(steering - np.asarray(self.ideal or [0.0])).mean()), 4),
                "latency_ms": None if latency is None else {"p50": round(float(np.percentile(latency, 50)), 3),
                                                             "p95": round(float(np.percentile(latency, 95)), 3)},
                "sim_seconds": round(sim_seconds, 2), "wall_seconds": round(self.wall_seconds, 2),
                "realtime_factor": round(sim_seconds / self.wall_seconds, 1) if self.wall_seconds else None,
                "track": TRACK}


def drive(model, controller, seconds, seed=DEFAULT_SEED, delay_frames=1, precision="fp32", bundle=None,
          on_frame=None) -> Drive:
    """Drive `seconds` of simulated time. controller 'model' steers with `model` (a runtime Model); 'zero'
    and 'pure-pursuit' need no model (the bundle, where given, sets the frame size). on_frame(image,
    steering, ideal, sim) is called for each frame before the car moves (a video writer)."""
    if controller not in CONTROLLERS:
        raise UserError("unknown controller %r (choose from: %s)" % (controller, ", ".join(CONTROLLERS)))
    bundle = model.bundle if model is not None else bundle
    size = bundle.network_frame_size if bundle is not None else (200, 110)
    per_unit = steering_units(bundle) if controller == "model" else 1.0 / road.STEERING_RADIUS_M
    sim = Simulator(size[0], size[1], seed, delay_frames)
    record = Drive(controller, precision if controller == "model" else "-", seed, delay_frames)
    if controller == "model":
        record.backend = "%s (%s)" % (model.backend.name, model.backend.detail)
    clock, start = time.perf_counter, time.perf_counter()
    for _ in range(int(round(seconds * sim.fps))):
        image, ideal = sim.view()
        if controller == "model":
            t = clock()
            steering = model(image)["steering"]
            record.latency_ms.append((clock() - t) * 1000.0)
            if steering is None:  # NaN or infinite: steer straight, as a vehicle's fail-safe would, and count it
                steering, record.invalid = 0.0, record.invalid + 1
        else:
            steering = 0.0 if controller == "zero" else ideal
        if on_frame is not None:
            on_frame(image, steering, ideal, sim)
        record.step(sim, steering, per_unit, ideal)
    record.wall_seconds = clock() - start
    return record


# -- what a person looks at: a video of the drive and a plot ------------------------------------------------
class DriveVideo:
    """on_frame for drive(): the camera view (3x) with the predicted and the ideal steering (overlay), a
    top-down inset of the car on the road, and the time, offset and interventions so far."""

    SCALE = 3
    INSET = 180  # pixels; 5 px a metre: 33 m ahead
    PX_PER_M = 5.0

    def __init__(self, path):
        from ..outputs.files import VideoOutput

        self.video = VideoOutput(path, FPS)

    def __call__(self, image, steering, ideal, sim):
        import cv2

        from .. import overlay
        from ..postprocess import Result

        big = cv2.resize(image, (image.shape[1] * self.SCALE, image.shape[0] * self.SCALE),
                         interpolation=cv2.INTER_LINEAR)
        overlay.draw(big, Result(steering=steering), None, ideal)
        inset = self.top_down(sim)
        big[8:8 + inset.shape[0], -8 - inset.shape[1]:-8] = inset
        status = "t %.1f s  offset %+.2f m  interventions %d" % (sim.seconds, sim.d, sim.interventions)
        overlay.text(cv2, big, status, (10, big.shape[0] - 12), 0.5, (255, 255, 255))
        self.video.write(None, None, big)

    def top_down(self, sim):
        """The road ahead seen from above, in the car's frame: lane lines, and the car at the bottom."""
        import cv2

        n, px = self.INSET, self.PX_PER_M
        img = np.full((n, n, 3), (60, 110, 70), np.uint8)
        z = np.linspace(0.0, (n - 10) / px, 40)
        centre = road._lane_x(z, sim.d, sim.psi, sim.track.k, sim.track.dk)

        def line(lateral, color, width=1):
            pts = np.stack([n / 2 + lateral * px, n - 10 - z * px], axis=1).astype(np.int32)
            cv2.polylines(img, [pts], False, color, width, cv2.LINE_AA)

        half = road.LANE_WIDTH_M / 2
        road_poly = np.concatenate([np.stack([n / 2 + (centre + half + 0.4) * px, n - 10 - z * px], 1),
                                    np.stack([n / 2 + (centre - 3 * half - 0.4) * px, n - 10 - z * px], 1)[::-1]])
        cv2.fillPoly(img, [road_poly.astype(np.int32)], (90, 90, 90))
        line(centre + half, (235, 235, 235))
        line(centre - half, (0, 200, 230))
        line(centre - 3 * half, (235, 235, 235))
        line(centre + OFF_LANE_M, (0, 0, 200))  # where an intervention begins
        line(centre - OFF_LANE_M, (0, 0, 200))
        w, length = 1.8 * px / 2, 4.5 * px
        cv2.rectangle(img, (int(n / 2 - w), int(n - 10)), (int(n / 2 + w), int(n - 10 + length)), (40, 40, 220), -1)
        return img

    def close(self):
        self.video.close()


def plot(record, path, fps=FPS):
    """Offset and steering over the drive, interventions marked, as a PNG."""
    from ..errors import require

    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(record.offset)) / fps
    report = record.report(fps)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 5.5))
    top.plot(t, record.offset, lw=1, color="tab:blue")
    for bound in (-OFF_LANE_M, OFF_LANE_M):
        top.axhline(bound, color="tab:red", ls="--", lw=0.8)
    for when in t[np.asarray(record.intervened, bool)]:
        top.axvline(when, color="tab:red", alpha=0.5, lw=0.8)
    top.set_ylabel("lateral offset (m)")
    top.set_title("%s%s on seed %d: autonomy %.1f%%, %d intervention(s), mean |offset| %.2f m"
                  % (record.controller, "" if record.controller != "model" else " (%s)" % record.precision,
                     record.seed, report["autonomy"], report["interventions"], report["mean_abs_offset_m"]))
    bottom.plot(t, record.steering, lw=1, label=record.controller)
    bottom.plot(t, record.ideal, lw=1, alpha=0.7, label="ideal (pure pursuit on the true pose)")
    bottom.set_ylabel("steering (normalised)")
    bottom.set_xlabel("simulated seconds")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- the command ----------------------------------------------------------------------------------------------
