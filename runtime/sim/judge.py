"""The closed-loop judge behind `python -m runtime drive`: a controller drives the simulator (simulator.py) and is
judged as NVIDIA judged PilotNet (Bojarski et al. 2016), by how long it drives without help (Scorecard).

Each frame is rendered from the car's pose, the controller steers, and the car moves 1/30 s along the road with
that steering (road.move, the kinematic bicycle model; the command acts one frame later by default,
--delay-frames). Errors compound as they would on a car, which an open-loop error cannot show. The loop is the
runtime's own: stream() reads the simulator's camera inline (sources.LockstepCamera), so each frame is rendered
only once the car has moved with the command for the one before.

The track, fixed before any model is judged, and the same for every controller and precision (simulator.TRACK):
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

A scenario (scenarios.py: calm, the track above, by default) changes the track, the frames or the car's physics;
summarise() gives one controller's drives of one scenario over several seeds as means with a 95% interval
(Student t over the seeds).
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import road
from .scenarios import CALM
from .simulator import DEFAULT_SEED, Scorecard, Simulator
from .sources import LockstepCamera
from ..errors import UserError
from ..pipeline import stream

CONTROLLERS = ("model", "zero", "pure-pursuit")
DEFAULT_SIZE = (200, 110)  # PilotNet's input: the frame size without a bundle to say
SUMMARISED = ("autonomy", "interventions", "collisions", "mean_abs_offset_m", "max_abs_offset_m")
# Student t's 0.975 quantile for 1..29 degrees of freedom (a two-sided 95% interval; scenarios.MAX_SEEDS seeds)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045)


def steering_units(bundle):
    """Curvature (1/m, right positive) per unit of the bundle's steering output (Bundle.curvature_per_unit), or a
    one-line error for a bundle that does not say."""
    per_unit = bundle.curvature_per_unit
    if per_unit is None:
        raise UserError("%s is a %s bundle: drive needs a steering network whose manifest says what its output "
                        "means (steering.inverse_radius_per_unit), as train's pilotnet has"
                        % (bundle.path, bundle.task))
    return per_unit


def judge(model, controller, seconds, seed=DEFAULT_SEED, delay_frames=1, precision="fp32", bundle=None,
          on_frame=None, scenario=CALM) -> Scorecard:
    """Drive `seconds` of simulated time in `scenario` and score it. controller 'model' steers with `model` (a
    runtime Model); 'zero' and 'pure-pursuit' need no model (the bundle, where given, sets the frame size).
    on_frame(image, steering, ideal, sim) is called for each frame before the car moves (a video writer:
    visuals.JudgedVideo). delay_frames: the command's delay before the scenario adds its own."""
    if controller not in CONTROLLERS:
        raise UserError("unknown controller %r (choose from: %s)" % (controller, ", ".join(CONTROLLERS)))
    bundle = model.bundle if model is not None else bundle
    size = bundle.network_frame_size if bundle is not None else DEFAULT_SIZE
    per_unit = steering_units(bundle) if controller == "model" else 1.0 / road.STEERING_RADIUS_M
    sim = Simulator(size[0], size[1], seed, delay_frames, scenario=scenario)
    card = Scorecard(controller, precision if controller == "model" else "-", seed, sim.delay_frames, scenario.name)
    steering_model = model if controller == "model" else None
    if steering_model is not None:
        card.backend = "%s (%s)" % (model.backend.name, model.backend.detail)
    camera = LockstepCamera(sim, int(round(seconds * sim.fps)))
    start = time.perf_counter()
    for frame, result in stream(steering_model, camera, capture_thread=False):
        ideal = frame.truth["steering"]
        if steering_model is not None:
            card.latency_ms.append(frame.latency_ms)
            steering = result["steering"]
            if steering is None:  # NaN or infinite: steer straight, as a vehicle's fail-safe would, and count it
                steering, card.invalid = 0.0, card.invalid + 1
        else:
            steering = 0.0 if controller == "zero" else ideal
        if on_frame is not None:
            on_frame(frame.image, steering, ideal, sim)
        card.add(sim, sim.step(steering * per_unit), steering, ideal)
    card.wall_seconds = time.perf_counter() - start
    return card


def interval(values):
    """(mean, low, high) of values: the mean and its two-sided 95% interval, Student t with n - 1 degrees of
    freedom, mean -/+ t x sd / sqrt(n) (sd with n - 1); low and high are None for a single value."""
    x = np.asarray(values, np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, None, None
    half = T975[min(len(x) - 1, len(T975)) - 1] * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def summarise(reports):
    """One row of the suite from one scenario's drives (Scorecard reports, one a seed) by one controller and
    precision: each of SUMMARISED as {"mean", "low", "high" (the 95% interval), "values" (one a seed)}."""
    first = reports[0]
    row = {"scenario": first["scenario"], "controller": first["controller"], "precision": first["precision"],
           "backend": first["backend"], "seeds": [r["seed"] for r in reports], "delay_frames": first["delay_frames"],
           "sim_seconds": first["sim_seconds"]}
    for key in SUMMARISED:
        row[key] = summary([r[key] for r in reports])
    return row


def summary(values):
    """{"mean", "low", "high" (its 95% interval, interval()), "values"} of one quantity over the seeds."""
    mean, low, high = interval(values)
    return {"mean": round(mean, 4), "low": None if low is None else round(low, 4),
            "high": None if high is None else round(high, 4), "values": values}
