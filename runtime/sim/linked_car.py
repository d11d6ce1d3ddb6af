"""The simulated car as the vehicle at the far end of the control link (synthetic://road?control=udp://:PORT):
it listens on the link, judges every line with the reference receiver (vehicle.receiver.Receiver: its rules, and
its own fail-safe, which steers straight when nothing is accepted for the timeout), and before each frame drives
the simulator 1/fps s with the newest command the receiver accepted. A Scorecard says how it was driven (autonomy,
as `runtime drive` judges it), printed and written to a report file when the car is closed. sources.py's
SimulatedVehicle is its camera.

The car drives a scenario (scenarios.py; calm by default) with the speed model (braking.Speed): the receiver's
brake in force (0 to 1, `runtime run --brake`) asks for that fraction of the deceleration limit (0.5 g), acting
after the speed model's 100 ms latency; with no brake it goes back to the scenario's speed. So `scenario=traffic`
with `runtime run bundles/pilotnet bundles/detector --brake 1 --speed 8` is the car that brakes, closed through
the link; the report counts its collisions."""

from __future__ import annotations

import sys
import time

from .braking import DECEL_LIMIT_MPS2
from .road import STEERING_RADIUS_M
from .scenarios import CALM
from .simulator import Scorecard, Simulator
from ..bundle import write_json
from ..outputs.base import check_writable
from ..vehicle import link as control
from ..vehicle.receiver import Receiver

DATAGRAMS_PER_FRAME = 64  # read at most so many a frame (a sender sends about 2): a flood must not stop the clock
PER_UNIT = 1.0 / STEERING_RADIUS_M  # curvature (1/m) per unit of the road's normalised steering


class LinkedCar:
    """The simulator (driven from outside, no actuation delay but the scenario's) at `fps` in `scenario`,
    commanded through the link at control_uri (listened on). timeout_s: the receiver's fail-safe timeout;
    report_path: where close() writes the report."""

    def __init__(self, control_uri, width, height, fps, seed, timeout_s, report_path=None, log=sys.stderr,
                 link=None, scenario=CALM):
        self.log, self.fps, self.report_path = log, fps, report_path
        if report_path:
            check_writable(report_path)
        self.sim = Simulator(width, height, seed, delay_frames=0, fps=fps, scenario=scenario, braking=True)
        self.card = Scorecard("control link", "-", seed, 0, scenario.name)
        link = link or control.NO_SECURITY
        self.link = control.open_link(control_uri, listen=True, security=link, log=log)
        self.receiver = Receiver(timeout_s, log=log, key=link.key, newest=link.newest())
        self.started = None
        self.seen = None  # the ideal steering of the frame last seen; None before the first
        self.distance_m, self.min_speed = 0.0, self.sim.v

    def start(self):
        """A new run of frames: the clock starts, and the first frame is seen before the car moves."""
        self.started = time.perf_counter()
        self.seen = None

    def listen(self):
        """What came since the last frame (the newest is in force), at most DATAGRAMS_PER_FRAME lines, judged by
        the receiver; then its fail-safe's clock ticks."""
        for _ in range(DATAGRAMS_PER_FRAME):
            data = self.link.receive(0.0)
            if data is None:
                break
            self.receiver.apply(data, time.monotonic())
        self.receiver.tick(time.monotonic())

    def steering(self):
        """The command in force as the road's normalised steering (1/r = steering / 10 m): its inverse_radius
        where it has one, else its steering; straight while the fail-safe holds."""
        command = self.receiver.command
        if self.receiver.failsafe or not command:
            return 0.0
        if "inverse_radius" in command:
            return command["inverse_radius"] * STEERING_RADIUS_M
        return command.get("steering", 0.0)

    def next_view(self):
        """The camera's next frame and its ideal steering: the car hears the link, moves with the command in force
        (after the first frame), and is seen again."""
        self.listen()
        if self.seen is not None:
            steering = self.steering()
            brake = self.receiver.brake * DECEL_LIMIT_MPS2
            self.card.add(self.sim, self.sim.step(steering * PER_UNIT, brake), steering, self.seen)
            self.distance_m += self.sim.step_m
            self.min_speed = min(self.min_speed, self.sim.v)
        image, self.seen = self.sim.view()
        return image, self.seen

    def report(self):
        report = self.card.report(self.fps)
        met = self.sim.traffic.in_lane(self.sim.track.travelled + 1.0) if self.sim.traffic else 0
        report.update(controller="control link", received=dict(self.receiver.counts),
                      distance_m=round(self.distance_m, 2), min_speed_mps=round(self.min_speed, 3), obstacles_met=met,
                      wall_seconds=round(time.perf_counter() - self.started, 2) if self.started else 0.0)
        report.pop("realtime_factor", None)
        return report

    def close(self):
        """Closes the link and the receiver, says how the car was driven and writes the report where asked."""
        self.link.close()
        self.receiver.close()
        report = self.report()
        if self.log is not None:
            print("vehicle: autonomy %.1f%% (%d intervention(s) in %.0f simulated s, mean |offset| %.2f m); %s"
                  % (report["autonomy"], report["interventions"], report["sim_seconds"], report["mean_abs_offset_m"],
                     self.receiver.summary()), file=self.log, flush=True)
        if self.report_path:
            write_json(self.report_path, report)
