"""Several networks on one stream (issue 32, runtime/networks.py): steering first whatever the order given, every
other network on the newest frame when it is free, each result with its frame's index and age, one JSON line a
frame with a key per bundle, the overlay drawing them all; options that cannot apply are one line."""

import os

import pytest

from tests.conftest import ROOT, cli, copy_bundle, one_line_error, read_jsonl

PILOTNET, DETECTOR, DIGITS, FREESPACE = ("%s/tests/runtime/bundles/%s" % (ROOT, n)
                                         for n in ("pilotnet", "detector", "digits", "freespace"))


def test_steering_goes_first_and_the_others_follow_with_their_frames_age(tmp_path):
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    proc = cli("runtime", "run", DETECTOR, DIGITS, PILOTNET, "--source", "synthetic://road", "--max-frames", 40,
               "--jsonl", jsonl, "--output", video, "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "detector:" in proc.stdout and "results a second" in proc.stdout
    lines = read_jsonl(jsonl)
    assert len(lines) == 40 and video.stat().st_size > 0
    for line in lines:
        result = line["result"]
        assert list(result) == ["pilotnet", "detector", "mnist_cnn"]  # steering first, the rest as given (by name)
        assert result["pilotnet"]["frame"] == line["frame"] and result["pilotnet"]["age_ms"] == 0.0
        for name in ("detector", "mnist_cnn"):
            theirs = result[name]
            if theirs is not None:  # None until its first result
                assert theirs["frame"] <= line["frame"] and theirs["age_ms"] >= 0
    # how many results the others give depends on the cores left to them (steering first): not asserted here


def test_the_python_api_and_the_combined_result(tmp_path):
    np = pytest.importorskip("numpy")
    from runtime import Networks, open_source, stream
    from runtime.overlay import draw

    with Networks([DIGITS, PILOTNET]) as nets, open_source("synthetic://road") as camera:
        for i, (frame, result) in enumerate(stream(nets, camera, max_frames=5)):
            assert result.primary is result["pilotnet"] and "steer" in result.text and "mnist_cnn:" in result.text
            if i:  # settled below: the digits network has done the frame before (or this one, offered first)
                assert result["mnist_cnn"]["frame"] in (frame.index - 1, frame.index)
                assert "label" in result["mnist_cnn"]
            drawn = draw(frame.image.copy(), result)
            assert drawn.shape == frame.image.shape and not np.array_equal(drawn, frame.image)
            nets.settle()
        assert set(nets.rates(1.0)) == {"mnist_cnn"} and nets.rates(1.0)["mnist_cnn"][0] == 5


@pytest.mark.parametrize("args, says", [
    (["--dla-core", "0"], "with several networks say which goes on the DLA, --dla-core NAME=N"),
    (["--dla-core", "lidar=0"], "no network is called 'lidar' (they are pilotnet, mnist_cnn)"),
    (["--dla-core", "pilotnet=0", "--dla-core", "mnist_cnn=0"], "DLA core 0 already runs pilotnet"),
    (["--gst-preprocess", "crop"], "several networks each take the frame whole"),
    (["--threshold", "0.5"], "none is given"),
    (["--priority", "pilotnet,lidar"], "--priority pilotnet,lidar: no network is called 'lidar'"),
    (["--priority", "pilotnet,pilotnet"], "a network is named twice"),
])
def test_what_several_networks_cannot_do_is_one_line(args, says):
    proc = cli("runtime", "run", PILOTNET, DIGITS, "--source", "synthetic://road", "--no-display", *args)
    assert one_line_error(proc) and says in proc.stderr


def test_the_others_read_a_copy_that_no_overlay_or_buffer_reuse_reaches():
    """The review's race: the overlay draws on the loop's frame, and a source may reuse its buffer; a network in
    its own thread must see the frame as it came."""
    np = pytest.importorskip("numpy")
    from runtime import Model, Networks
    from runtime.errors import UserError
    from runtime.sim import road

    images, _ = road.sample_frames(2, 320, 180, seed=3)

    class Frame:
        def __init__(self, image, index):
            self.image, self.index, self.t0 = image, index, 0.0

    with Model(DIGITS) as alone:
        clean = alone(images[0].copy())
    with Networks([DIGITS, PILOTNET]) as nets:
        frame = Frame(images[0].copy(), 0)
        nets.on_frame(frame)
        frame.image[:] = 255  # drawn on, or its buffer reused, while the digits network may still be at it
        nets.settle()
        offered, seen = nets.workers[0].latest()  # the first frame's result: made on the frame as it came
        assert offered.index == 0 and not np.array_equal(offered.image, frame.image)
        assert seen["class_id"] == clean["class_id"] and seen["confidence"] == pytest.approx(clean["confidence"])
        nets.workers[0].error = UserError("boom")  # a failure just after the loop's last look at it
        with pytest.raises(UserError, match="network mnist_cnn: boom"):
            nets.close()


def _board(tmp_path, model, *compatible):
    """A board's device-tree model and compatible strings, as /proc/device-tree has them (NUL-separated)."""
    tree = tmp_path / model.replace(" ", "_") / "proc" / "device-tree"
    tree.mkdir(parents=True)
    (tree / "model").write_bytes(model.encode() + b"\0")
    (tree / "compatible").write_bytes(b"".join(c.encode() + b"\0" for c in compatible))
    return str(tree.parent.parent)


def test_each_network_is_placed_on_a_dla_core_the_board_has(tmp_path):
    from runtime.errors import UserError
    from runtime.networks import dla_placement

    names = ["pilotnet", "detector", "freespace"]
    agx = _board(tmp_path, "NVIDIA Jetson AGX Orin Developer Kit", "nvidia,p3737-0000+p3701-0005",
                 "nvidia,p3701-0005", "nvidia,tegra234")
    assert dla_placement(["detector=0", "freespace=1"], names, agx) == {"detector": 0, "freespace": 1}
    assert dla_placement(None, names, agx) == {}
    assert dla_placement(["1"], ["pilotnet"], agx) == {"pilotnet": 1}
    assert dla_placement(["detector=7"], names, str(tmp_path / "desktop")) == {"detector": 7}  # TensorRT checks
    nx8 = _board(tmp_path, "NVIDIA Jetson Orin NX Engineering Reference Developer Kit",
                 "nvidia,p3768-0000+p3767-0001", "nvidia,p3767-0001", "nvidia,tegra234")
    nano = _board(tmp_path, "NVIDIA Jetson Orin Nano Developer Kit", "nvidia,p3768-0000+p3767-0005",
                  "nvidia,p3767-0005", "nvidia,tegra234")
    xavier = _board(tmp_path, "NVIDIA Jetson Xavier NX Developer Kit", "nvidia,p3509-0000+p3668-0001",
                    "nvidia,tegra194")
    assert dla_placement(["detector=1", "freespace=0"], names, xavier) == {"detector": 1, "freespace": 0}
    for values, among, root, says in [
            (["freespace=1"], names, nx8, "--dla-core freespace=1: NVIDIA Jetson Orin NX Engineering Reference "
                                          "Developer Kit has 1 DLA core (core 0)"),
            (["2"], ["pilotnet"], nx8, "--dla-core 2: NVIDIA Jetson Orin NX"),
            (["freespace=2"], names, agx, "has 2 DLA cores (cores 0-1)"),
            (["freespace=0"], names, nano, "Orin Nano Developer Kit has no DLA: leave --dla-core out"),
            (["detector=x"], names, agx, "the DLA core is a number"),
            (["detector=0", "detector=1"], names, agx, "detector is given twice")]:
        with pytest.raises(UserError) as caught:
            dla_placement(values, among, root)
        assert says in str(caught.value)


def test_the_free_space_network_on_a_dla_beside_steering_on_the_gpu(tmp_path):
    """FAKE TensorRT 10.3 with a DLA core: each network its own engine, the free-space one on DLA core 0, whose
    build says in one line that its class map (ArgMax, TopK in TensorRT) runs on the GPU."""
    pytest.importorskip("onnx")  # the FAKE parser reads the ONNX's layers with it: a desktop package, not a board's
    pilotnet, freespace = copy_bundle(PILOTNET, tmp_path, "pilotnet"), copy_bundle(FREESPACE, tmp_path, "freespace")
    jsonl = tmp_path / "out.jsonl"
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "FAKE_DLA_CORES": "1"}
    proc = cli("runtime", "run", freespace, pilotnet, "--backend", "tensorrt", "--precision", "fp16",
               "--dla-core", "freespace=0", "--source", "synthetic://road", "--max-frames", 3, "--jsonl", jsonl,
               "--no-display", "--quiet", fake_gpu="10.3.0", env=env)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith("DLA core 0: ")]
    assert len(said) == 1 and "TOPK x1" in said[0] and "the class map is one" in said[0], proc.stderr
    assert [n for n in os.listdir(freespace / "engines") if n.endswith(".engine")][0].startswith("fp16-b1-dla0-")
    assert [n for n in os.listdir(pilotnet / "engines") if n.endswith(".engine")][0].startswith("fp16-b1-gpu-")
    lines = read_jsonl(jsonl)
    assert len(lines) == 3 and list(lines[-1]["result"]) == ["pilotnet", "freespace"]
    summary = next(ln for ln in proc.stderr.splitlines() if ln.startswith("runtime: pilotnet: "))  # each engine
    theirs = summary.split("; freespace on ")[1]
    assert "with pilotnet on tensorrt (" in summary and "fp16 engine fp16-b1-dla0-" in theirs


def test_priority_puts_a_network_first_and_the_rest_below_it_in_turn(tmp_path):
    """--priority mnist_cnn: the digits network runs in the calling thread on every frame (its frame is the
    line's, age 0), PilotNet and the detector in threads, each below the one before (nice +10, then +15)."""
    import threading

    jsonl = tmp_path / "out.jsonl"
    proc = cli("runtime", "run", PILOTNET, DETECTOR, DIGITS, "--priority", "mnist_cnn", "--source",
               "synthetic://road", "--max-frames", 5, "--jsonl", jsonl, "--no-display", "--quiet")
    assert proc.returncode == 0, proc.stderr
    for line in read_jsonl(jsonl):
        assert list(line["result"]) == ["mnist_cnn", "pilotnet", "detector"]
        assert line["result"]["mnist_cnn"]["frame"] == line["frame"] and line["result"]["mnist_cnn"]["age_ms"] == 0
    proc = cli("runtime", "run", PILOTNET, "--priority", "pilotnet", "--source", "synthetic://road", "--no-display")
    assert one_line_error(proc) and "one bundle is given" in proc.stderr

    from runtime.networks import Networks

    seen = {}
    with Networks([DIGITS, DETECTOR, PILOTNET], priority=["mnist_cnn", "detector"]) as nets:
        assert nets.names == ["mnist_cnn", "detector", "pilotnet"]
        for w in nets.workers:
            seen[w.name] = os.getpriority(os.PRIO_PROCESS, w.thread.native_id)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == {"detector": min(19, mine + 10), "pilotnet": min(19, mine + 15)}
