"""PilotNet's whole loop, collect -> train -> deploy, through files and the control link only: record a drive of
the procedural road whose steering comes over UDP (the simulated car's steering sensor), train pilotnet on the
recording as it is (a DonkeyCar tub), export it, and let it drive the simulator-as-vehicle through
`runtime run --output udp://`, which reports autonomy."""

import json

import pytest

from tests.conftest import cli, free_udp_port


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    base = tmp_path_factory.mktemp("loop")
    port = free_udp_port()
    proc = cli("runtime", "record", "--source", "synthetic://road?steering=udp://127.0.0.1:%d" % port,
               "--steering-from", "udp://127.0.0.1:%d" % port, "--out", base / "tub", "--max-frames", "300",
               "--input-width", "320", "--input-height", "180")
    return proc, base


def test_record_train_export_and_drive_through_the_control_link(recorded):
    proc, base = recorded
    assert proc.returncode == 0, proc.stderr
    assert "recorded 300 frames" in proc.stdout
    trained = cli("train", "--model", "pilotnet", "--data", "drivelog:%s" % (base / "tub"), "--epochs", "3",
                  "--steering-radius", "10", "--out", base / "run")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "donkey-v2" in trained.stderr and "300" in trained.stderr
    exported = cli("export", "onnx", base / "run", "--out", base / "bundle")
    assert exported.returncode == 0, exported.stderr[-2000:]
    manifest = json.loads((base / "bundle" / "manifest.json").read_text())
    assert manifest["steering"]["inverse_radius_per_unit"] == 0.1  # the road's driver: 1/r = steering / 10 m
    port = free_udp_port()
    report = base / "drive.json"
    drove = cli("runtime", "run", base / "bundle", "--source",
                "synthetic://road?control=udp://127.0.0.1:%d&report=%s" % (port, report),
                "--output", "udp://127.0.0.1:%d" % port, "--steering-rate", "4", "--input-width", "200",
                "--input-height", "110", "--max-frames", "150", "--no-display", "--quiet", "--backend", "onnxruntime")
    assert drove.returncode == 0, drove.stderr
    drive = json.loads(report.read_text())
    assert drive["received"]["cmd"] >= 140 and drive["received"]["failsafe"] == 0
    assert 0.0 <= drive["autonomy"] <= 100.0 and drive["sim_seconds"] > 4.5
    assert "vehicle: autonomy %.1f%%" % drive["autonomy"] in drove.stderr
    # the network steers with the road, not at random: its steering follows the ideal one
    assert drive["mean_abs_steering_error"] < 0.5, drive
