"""Several networks on one stream (issue 32, runtime/networks.py): steering first whatever the order given, every
other network on the newest frame when it is free, each result with its frame's index and age, one JSON line a
frame with a key per bundle, the overlay drawing them all; options that cannot apply are one line."""

import pytest

from tests.conftest import ROOT, cli, one_line_error, read_jsonl

PILOTNET, DETECTOR, DIGITS = ("%s/tests/runtime/bundles/%s" % (ROOT, n) for n in ("pilotnet", "detector", "digits"))


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
    (["--dla-core", "0"], "--dla-core with several networks"),
    (["--gst-preprocess", "crop"], "several networks each take the frame whole"),
    (["--threshold", "0.5"], "none is given"),
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
