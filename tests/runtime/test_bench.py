"""python -m runtime bench: what it reports, on real frames and the real backend (no timing is asserted:
speed targets are checked by benchmarks/compare.py by hand, never by unit tests)."""

import json

from tests.conftest import cli, one_line_error

KEYS = {"backend", "frames", "fps", "latency_ms", "stages_ms", "slowest_stage_fps", "bare_fps", "peak_rss_mb",
        "startup_s", "per_frame_ms", "bare_ms", "rss_growth_mb", "dropped", "source", "frame_size"}


def test_bench_on_the_bundles_samples_in_memory(pilot_bundle, tmp_path):
    proc = cli("runtime", "bench", pilot_bundle, "--frames", "300", "--warmup", "20", "--json", tmp_path / "b.json")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(tmp_path / "b.json"))
    assert KEYS <= set(report) and report["frames"] == 300 and report["source"] == "memory://samples"
    assert report["frame_size"] == [200, 110]  # whose crop is the network's 200x66
    assert set(report["stages_ms"]) == {"capture", "preprocess", "infer", "postprocess", "output"}
    assert set(report["latency_ms"]) == {"p50", "p95", "max"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["max"]
    assert report["fps"] > 0 and report["bare_fps"] > 0 and report["slowest_stage_fps"] > 0
    assert report["slowest_stage_fps"] == round(1000 / max(report["stages_ms"].values()), 2) or \
        abs(report["slowest_stage_fps"] - 1000 / max(report["stages_ms"].values())) < 0.05 * report["slowest_stage_fps"]
    assert 0 < report["startup_s"] < 60
    assert 20 < report["peak_rss_mb"] < 500  # the runtime alone: no TensorFlow (which takes ~530 MB by itself)
    assert "FPS end to end" in proc.stdout and "the backend alone" in proc.stdout


def test_bench_on_frames_in_memory_at_a_cameras_size(pilot_bundle, tmp_path):
    """--frame-size: the samples held at a camera's size, so preprocessing (crop and area resize from 1280x432)
    is measured at its real cost, with no decoder in the way."""
    proc = cli("runtime", "bench", pilot_bundle, "--frame-size", "1280x720", "--frames", "60", "--warmup", "5",
               "--json", tmp_path / "c.json")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(tmp_path / "c.json"))
    assert report["frame_size"] == [1280, 720] and report["source"] == "memory://samples@1280x720"
    assert report["stages_ms"]["preprocess"] > 0 and "(1280x720 frames)" in proc.stdout
    assert cli("runtime", "bench", pilot_bundle, "--frame-size", "1280").returncode == 2
    assert one_line_error(cli("runtime", "bench", pilot_bundle, "--frame-size", "1280x720", "--source",
                              "synthetic://road"))
    assert one_line_error(cli("runtime", "bench", pilot_bundle, "--frame-size", "100000x100000"))


def test_frames_in_memory_are_cropped_to_exactly_the_network_input(pilot_bundle):
    import cv2

    from runtime import bundle as bundle_format
    from runtime.commands.bench import network_sized
    from runtime.preprocess import Preprocessor

    b = bundle_format.load(str(pilot_bundle))
    frames = network_sized(b, [cv2.imread(p) for p in b.sample_paths[:3]])
    pre = Preprocessor(b.preprocess, b.input)
    assert frames[0].shape[:2] == (110, 200)  # 66 rows after PilotNet's crop of the top 40%
    crop = b.preprocess["crop"]
    h = frames[0].shape[0]
    assert round(crop["bottom"] * h) - round(crop["top"] * h) == pre.size[1]


def test_bench_on_a_source_and_bad_input(pilot_bundle, tmp_path):
    proc = cli("runtime", "bench", pilot_bundle, "--source", "synthetic://road", "--frames", "20", "--warmup", "5",
               "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(tmp_path / "r.json"))
    assert report["source"] == "synthetic://road" and report["stages_ms"]["capture"] > 1  # rendering the road
    assert one_line_error(cli("runtime", "bench", tmp_path / "nope"))
    assert one_line_error(cli("runtime", "bench", pilot_bundle, "--source", "nosuch.mp4"))
    assert cli("runtime", "bench", pilot_bundle, "--frames", "0").returncode == 2


def test_a_bundle_without_samples_is_one_line_not_a_spin(pilot_bundle, tmp_path):
    """Found on the TensorRT fakes: bench on a bundle with no samples/ and no --source cycled an empty list for
    ever at 100% CPU."""
    import shutil

    bundle = tmp_path / "nosamples"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines", "samples"))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest.pop("samples", None)
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = cli("runtime", "bench", str(bundle), "--frames", "5", timeout=60)
    assert one_line_error(proc) and "has no sample frames to measure on: give --source" in proc.stderr, proc.stderr
