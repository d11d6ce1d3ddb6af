"""The simulator wing: one simulated car on a procedural road, and the sources that show it.

    road.py        the road: renderer, scene, winding track, the car's kinematics (move), steering labels
    obstacles.py   cones, boxes, parked cars, pedestrians and stop signs on the road, with exact boxes (detection)
    segmentation.py  every pixel of those frames labelled: sky, verge, my lane, other road, markings, obstacles
    scenarios.py   `runtime drive --scenario`'s fixed suite (calm, gusts, latency, night, glare, rain, worn lines,
                   tight bends, traffic): one table of their parameters, and what each adds to the simulator
    simulator.py   the simulator: car + track + camera, driven from outside or by its simulated human, and the
                   intervention rule and Scorecard (autonomy)
    judge.py       `runtime drive`'s closed loop: a controller (the bundle, zero, pure pursuit) drives and is scored
    braking.py     the car that brakes: its speed model, the camera's flat-ground geometry, the braking policy
    brake_drive.py `runtime drive --detector`'s closed loop: PilotNet steers, a detector and free space brake
    visuals.py     a judged drive's video and plot
    linked_car.py  the simulated car as the vehicle at the far end of the control link
    sources.py     synthetic://road (and ?steering=, ?control=) and the judge's lockstep camera

Importing it adds synthetic:// to the core's source table (runtime's package and the commands import it)."""

from ..sources import OPENERS as _SOURCES
from .sources import open_synthetic

_SOURCES["synthetic"] = open_synthetic
