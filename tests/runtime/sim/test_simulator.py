"""The one simulator (runtime/sim/simulator.py) with its built-in driver, the simulated human: what
synthetic://road shows. Driven from outside, it is test_judge.py's."""

import numpy as np
import pytest

from runtime.sim import simulator
from runtime.sim.sources import SyntheticRoad


def _human(seed=1):
    return simulator.Simulator(160, 90, seed=seed, fps=30, driver="human")


def _drive(sim, frames):
    out = []
    for _ in range(frames):
        image, ideal = sim.view()
        sim.step()
        out.append((image, ideal, sim.human.steered))
    return out


def test_the_humans_drive_is_continuous_and_its_steering_varies():
    frames, labels, steered = zip(*_drive(_human(), 600))
    step = np.mean([np.abs(frames[i].astype(int) - frames[i + 1]).mean() for i in range(0, 50)])
    assert step < 25  # neighbouring frames look alike
    assert np.std(labels) > 0.02 and max(np.abs(np.diff(labels))) < 0.1
    assert np.std(steered) > 0.02 and max(np.abs(steered)) <= 1.0  # what the human did: near the ideal, not it
    assert steered != labels


def test_the_human_never_needs_help_and_the_same_seed_drives_the_same():
    sim = _human(seed=4)
    one = _drive(sim, 900)
    assert sim.interventions == 0 and abs(sim.d) <= simulator.HUMAN_LIMIT_M
    again = _drive(_human(seed=4), 900)
    assert all(np.array_equal(a[0], b[0]) and a[1:] == b[1:] for a, b in zip(one, again))


def test_synthetic_road_is_the_humans_drive_seen_by_its_camera():
    with SyntheticRoad(160, 90, seed=2) as road:
        images = road._images()
        shown = [next(images) for _ in range(20)]
        images.close()
    driven = _drive(simulator.Simulator(160, 90, seed=2, driver="human"), 20)
    assert all(np.array_equal(image, d[0]) and truth == {"steering": d[1]} for (image, truth), d in zip(shown, driven))


def test_an_unknown_driver_or_a_size_the_road_cannot_render_is_refused():
    from runtime.errors import UserError

    with pytest.raises(ValueError, match="driver is one of"):
        simulator.Simulator(64, 36, driver="robot")
    with pytest.raises(UserError, match="at least 16x16"):
        simulator.Simulator(8, 8, driver="human")
