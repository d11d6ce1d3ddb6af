"""Golden outputs (issue 28's acceptance): what the runtime writes stays identical while runtime/ is reshaped.
Recorded before the reshaping (GOLDEN_UPDATE=1 rewrites them; do that only for an intended change, and say so):

- `runtime drive --json` on a fixed seed: the report, less its timings;
- JSON lines from a fixed source: each frame's result and truth. The one intended change: a left-positive
  bundle's `inverse_radius` is right-positive, as the control line's always was;
- a tub's bytes, recorded from a fixed source and fixed readings (the clock held still).
"""

import datetime
import hashlib
import json
import os
import shutil
import time

import pytest

from tests.conftest import cli

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.path.join(HERE, "bundles", "pilotnet")
GOLDEN = os.path.join(HERE, "data", "golden")
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
TIMINGS = ("latency_ms", "wall_seconds", "realtime_factor", "backend")


def golden(name, value):
    path = os.path.join(GOLDEN, name)
    if UPDATE:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            json.dump(value, f, indent=1, sort_keys=True)
            f.write("\n")
    with open(path) as f:
        return json.load(f)


def test_drive_reports_the_same_drive(tmp_path):
    proc = cli("runtime", "drive", BUNDLE, "--seconds", "10", "--seed", "7", "--backend", "onnxruntime", "--json",
               tmp_path / "drive.json")
    assert proc.returncode == 0, proc.stderr
    report = {k: v for k, v in json.load(open(tmp_path / "drive.json")).items() if k not in TIMINGS}
    assert report == golden("drive_seed7.json", report)


def _left_positive(tmp_path):
    """The demo PilotNet with its manifest saying that its steering is positive to the left."""
    bundle = tmp_path / "left"
    shutil.copytree(BUNDLE, bundle)
    manifest = json.load(open(bundle / "manifest.json"))
    manifest["steering"]["positive"] = "left"
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return bundle


@pytest.mark.parametrize("sign", ["right", "left"])
def test_json_lines_say_the_same(tmp_path, sign):
    bundle = BUNDLE if sign == "right" else _left_positive(tmp_path)
    proc = cli("runtime", "run", bundle, "--source", "synthetic://road", "--max-frames", "20", "--input-width", "200",
               "--input-height", "110", "--jsonl", tmp_path / "out.jsonl", "--no-display", "--quiet", "--backend",
               "onnxruntime")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in open(tmp_path / "out.jsonl")]
    seen = [{k: line.get(k) for k in ("frame", "result", "truth")} for line in lines]
    assert len(seen) == 20
    assert seen == golden("jsonl_%s.json" % sign, seen)
    for line in seen:  # right-positive for every bundle: the left-positive one's sign turned
        result = line["result"]
        turn = 1.0 if sign == "right" else -1.0
        assert result["inverse_radius"] == pytest.approx(turn * result["steering"] * 0.1, abs=1e-6)


def test_a_tub_records_the_same_bytes(tmp_path, monkeypatch):
    from runtime.vehicle import tub as tub_module
    from runtime.vehicle.record import Recorder
    from runtime.sources.base import Frame
    from runtime.sim.sources import SyntheticRoad

    monkeypatch.setattr(time, "time", lambda: 1764201234.5)  # created_at, sessions: the clock held still

    class Day(datetime.datetime):  # and the session's name, the day's: the test failed on any other day
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 12, 3, 12, 0, 0)

    monkeypatch.setattr(tub_module.datetime, "datetime", Day)

    class Readings:  # the human's steering, fixed: one reading 10 ms after each frame
        def newest(self):
            return 1e12

        def nearest(self, t, tolerance):
            index = round((t - 1764201000.0) * 30)
            return (t + 0.01, round(0.05 * index - 0.4, 6), 0.25)

    writer = tub_module.TubWriter(str(tmp_path / "tub"))
    recorder = Recorder(writer, Readings(), 0.05, 90)
    with SyntheticRoad(160, 90, seed=3) as road:
        images = road._images()
        for index in range(12):
            image, _ = next(images)
            frame = Frame(image, index)
            frame.timestamp = 1764201000.0 + index / 30.0
            recorder.add(frame)
        images.close()
    recorder.settle(final=True)
    writer.close()
    digests = {}
    for folder, _, files in os.walk(tmp_path / "tub"):
        for name in files:
            path = os.path.join(folder, name)
            digests[os.path.relpath(path, tmp_path / "tub")] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert len(digests) == 12 + 3  # the images, a catalog and its manifest, manifest.json
    assert digests == golden("tub_sha256.json", digests)
