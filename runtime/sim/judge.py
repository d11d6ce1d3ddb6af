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
"""

from __future__ import annotations

import time

from . import road
from .simulator import DEFAULT_SEED, Scorecard, Simulator
from .sources import LockstepCamera
from ..errors import UserError
from ..pipeline import stream

CONTROLLERS = ("model", "zero", "pure-pursuit")
DEFAULT_SIZE = (200, 110)  # PilotNet's input: the frame size without a bundle to say


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
          on_frame=None) -> Scorecard:
    """Drive `seconds` of simulated time and score it. controller 'model' steers with `model` (a runtime Model);
    'zero' and 'pure-pursuit' need no model (the bundle, where given, sets the frame size). on_frame(image,
    steering, ideal, sim) is called for each frame before the car moves (a video writer: visuals.JudgedVideo)."""
    if controller not in CONTROLLERS:
        raise UserError("unknown controller %r (choose from: %s)" % (controller, ", ".join(CONTROLLERS)))
    bundle = model.bundle if model is not None else bundle
    size = bundle.network_frame_size if bundle is not None else DEFAULT_SIZE
    per_unit = steering_units(bundle) if controller == "model" else 1.0 / road.STEERING_RADIUS_M
    sim = Simulator(size[0], size[1], seed, delay_frames)
    card = Scorecard(controller, precision if controller == "model" else "-", seed, delay_frames)
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
