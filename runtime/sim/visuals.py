"""What a person looks at from a judged drive (judge.py): its video (JudgedVideo: the camera view with the
predicted and the ideal steering, and a top-down inset of the car on the road) and its plot (plot: offset and
steering over time, interventions marked); a braking drive's (brake_drive.py) video also shows the boxes the policy
saw, the free space's boundary and the speed (BrakeVideo), and its plot the speed and the deceleration asked."""

from __future__ import annotations

import numpy as np

from . import road
from .scenarios import CAR_FRONT_M
from .simulator import FPS, OFF_LANE_M
from .. import overlay
from ..errors import require
from ..outputs.files import VideoOutput
from ..postprocess import Result


class JudgedVideo:
    """on_frame for judge(): the camera view (3x) with the predicted and the ideal steering (overlay), a
    top-down inset of the car on the road, and the time, offset and interventions so far."""

    SCALE = 3
    INSET = 180  # pixels; 5 px a metre: 33 m ahead
    PX_PER_M = 5.0

    def __init__(self, path):
        self.video = VideoOutput(path, FPS)

    def __call__(self, image, steering, ideal, sim):
        import cv2

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
        centre = road.lane_x(z, sim.d, sim.psi, sim.track.k, sim.track.dk)

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


def plot(card, path, fps=FPS):
    """Offset and steering over the drive (a Scorecard), interventions marked, as a PNG."""
    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(card.offset)) / fps
    report = card.report(fps)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 5.5))
    top.plot(t, card.offset, lw=1, color="tab:blue")
    for bound in (-OFF_LANE_M, OFF_LANE_M):
        top.axhline(bound, color="tab:red", ls="--", lw=0.8)
    for when in t[np.asarray(card.intervened, bool)]:
        top.axvline(when, color="tab:red", alpha=0.5, lw=0.8)
    top.set_ylabel("lateral offset (m)")
    top.set_title("%s%s on seed %d: autonomy %.1f%%, %d intervention(s), mean |offset| %.2f m"
                  % (card.controller, "" if card.controller != "model" else " (%s)" % card.precision,
                     card.seed, report["autonomy"], report["interventions"], report["mean_abs_offset_m"]))
    bottom.plot(t, card.steering, lw=1, label=card.controller)
    bottom.plot(t, card.ideal, lw=1, alpha=0.7, label="ideal (pure pursuit on the true pose)")
    bottom.set_ylabel("steering (normalised)")
    bottom.set_xlabel("simulated seconds")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class BrakeVideo(JudgedVideo):
    """on_frame for brake_drive.drive(): JudgedVideo's view with the boxes the braking policy was given (green),
    the free space's boundary (yellow), the speed, the deceleration asked and the policy's target distance."""

    def __call__(self, image, steering, ideal, sim, seen):
        import cv2

        image = image.copy()
        for x0, y0, x1, y1 in seen["boxes"]:
            cv2.rectangle(image, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), (0, 220, 0), 1)
        seg = seen.get("freespace")
        if seg is not None and seg.get("boundary") is not None:
            x0, _, x1, _ = seg.region
            rows = np.asarray(seg["boundary"], np.float64)
            cols = x0 + (np.arange(len(rows)) + 0.5) * (x1 - x0) / max(len(rows), 1)
            pts = np.stack([cols, rows], 1).astype(np.int32)
            cv2.polylines(image, [pts], False, (0, 230, 230), 1)
        text = "%.1f m/s  brake %.1f m/s^2  target %s" % (sim.v, seen["asked"], "-" if seen["target"] is None
                                                           else "%.1f m" % seen["target"])
        cv2.putText(image, text, (4, image.shape[0] - 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1,
                    cv2.LINE_AA)  # above the status line
        super().__call__(image, steering, ideal, sim)


def plot_braking(card, path, fps=FPS):
    """A braking drive (brake_drive.BrakeCard): speed, the deceleration asked and the policy's target distance
    over time, collisions marked, as a PNG."""
    matplotlib = require("matplotlib", "plot", "--plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(card.speed)) / fps
    r = card.report(fps)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 5.5))
    top.plot(t, card.speed, lw=1, label="speed (m/s)")
    top.plot(t, card.asked, lw=1, label="deceleration asked (m/s^2)")
    for when in t[np.asarray(card.collided, bool)]:
        top.axvline(when, color="tab:red", alpha=0.7, lw=1)
    top.legend(loc="upper right", fontsize=8)
    top.set_title("%s braking (%s) on seed %d: %d collision(s), %d stop(s) before obstacles, %d false stop(s)"
                  % (card.braker, card.precision, card.seed, r["collisions"], r["stops_before_obstacles"],
                     r["false_stops"]))
    target = [np.nan if v is None else v for v in card.target]
    gap = [np.nan if not np.isfinite(v) else v + CAR_FRONT_M for v in card.truth_gap]  # from the camera
    bottom.plot(t, target, lw=1, label="policy's target (m from the camera)")
    bottom.plot(t, gap, lw=1, alpha=0.7, label="true obstacle in the path (m from the camera)")
    bottom.set_ylim(0, 40)
    bottom.set_xlabel("simulated seconds")
    bottom.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
