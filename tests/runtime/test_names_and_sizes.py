"""File names of any bytes, the pixel budget, ports, deep manifests, FIFOs named like images and a JSON-lines file
on a full disk (issue 26): each a real `python -m runtime` run, or the function the run goes through.

A name that is not UTF-8 (Python holds its bytes as surrogates) crashed OpenCV's binding with a segmentation
fault; an image whose header says 16000x16000 (a 1 MB PNG of zeros) was decoded into 768 MB; a FIFO named x.png
blocked the run for ever; a failed write left a torn JSON line."""

import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import pytest

from tests.runtime.conftest import tmpfs
from tests.conftest import ROOT, free_tcp_port

BIG = 16000  # 16000 x 16000 = 256,000,000 pixels: 768 MB decoded, a 1 MB PNG of zeros


def child_env(env):
    """This environment without a pixel budget of its own, plus env."""
    base = {k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"}
    return dict(base, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1", **(env or {}))


def run(*args, env=None, limit_bytes=None, timeout=60):
    """`python -m runtime ...` with bytes arguments as given, stdout strict UTF-8 (as under an en_US.UTF-8
    locale), RLIMIT_FSIZE at limit_bytes if given. Returns (exit status, stdout bytes, stderr text)."""
    def limit():
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    argv = [sys.executable, "-m", "runtime"] + [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    proc = subprocess.Popen(argv, cwd=ROOT, env=child_env(dict(env or {}, PYTHONIOENCODING="utf-8:strict")),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=limit)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err.decode("utf-8", "replace")


# `python -m MODULE ARGS`, reporting the process's own peak resident memory (VmHWM) as it exits. Not the child's
# rusage: Linux keeps in ru_maxrss the high-water mark of the image forked from this process before exec, so
# under a suite whose process has grown (TensorFlow loaded) every child "peaked" at that size.
_MEASURED = """
import atexit, os, runpy, sys
def _peak(path=os.environ["PEAK_FILE"]):
    with open("/proc/self/status") as f, open(path, "w") as out:
        out.write(next(line for line in f if line.startswith("VmHWM:")).split()[1])
atexit.register(_peak)
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_measured(*args, timeout=120):
    """`python -m ARGS...`: (exit status, stderr text, the child's own peak resident memory in MB, VmHWM as it
    exits)."""
    with tempfile.TemporaryDirectory() as tmp:
        peak = os.path.join(tmp, "peak")
        proc = subprocess.run([sys.executable, "-c", _MEASURED] + [str(a) for a in args], cwd=ROOT,
                              env=child_env({"PEAK_FILE": peak}), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout)
        with open(peak) as f:
            peak_kb = int(f.read())
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), peak_kb / 1024.0


def one_line(status, stderr):
    """Exit status 2 and one error line (after the run's own start line, where it had begun), no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if lines and lines[0].startswith("runtime: "):
        lines = lines[1:]
    return status == 2 and len(lines) == 1 and "Traceback" not in stderr and lines[0].startswith("python -m ")


def zero_png(path, width, height):
    """A real PNG of width x height black RGB pixels, made without ever holding them: each row deflated once
    (a full flush makes every later row's deflate block the same bytes), the Adler-32 of zeros computed."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = bytes(1 + 3 * width)  # the filter byte and the pixels
    deflate = zlib.compressobj(9)
    first = deflate.compress(row) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(row) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush()[:-4]  # the last (empty) block; its Adler-32 covered two rows only
    adler = (((len(row) * height) % 65521) << 16) | 1  # all zeros: A = 1, B = n
    data = first + again * (height - 1) + end + struct.pack(">I", adler)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def png(path, seed=0, size=(48, 64)):
    import cv2

    image = np.random.RandomState(seed).randint(0, 256, size + (3,)).astype(np.uint8)
    ok, data = cv2.imencode(".png", image)
    with open(path, "wb") as f:
        f.write(data.tobytes())
    return image


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data, [json.loads(line) for line in data.splitlines()]


# -- names of any bytes --------------------------------------------------------------------------------------------
def test_names_that_are_not_utf8_work_for_images_folders_videos_and_outputs(pilot_bundle, tmp_path):
    folder = os.fsencode(str(tmp_path)) + b"/frames_\xff"
    os.mkdir(folder)
    for i, name in enumerate([b"img_\xff\xfe.png", b"caf\xe9.png", "naïve.png".encode("utf-8")]):  # Latin-1, UTF-8
        png(folder + b"/" + name, seed=i)
    video = os.fsencode(str(tmp_path)) + b"/road_\xff\xfe.avi"
    lines = os.fsencode(str(tmp_path)) + b"/lines_caf\xe9.jsonl"
    status, out, err = run("run", str(pilot_bundle), "--source", folder, "--output", video, "--jsonl", lines,
                              "--no-display", "--quiet")
    assert status == 0, err  # was a segmentation fault (-11) in OpenCV
    assert b"wrote " + video in out and b"wrote " + lines in out  # the names as they are, on a strict stdout
    _, rows = read_lines(lines)
    assert [r["frame"] for r in rows] == [0, 1, 2]

    again = os.fsencode(str(tmp_path)) + b"/again_\xe9.mp4"
    lines2 = os.fsencode(str(tmp_path)) + b"/again.jsonl"
    status, out, err = run("run", str(pilot_bundle), "--source", video, "--output", again, "--jsonl", lines2,
                              "--no-display", "--quiet")
    assert status == 0, err
    assert "file://%s" % str(tmp_path) + "/road_\\xff\\xfe.avi" in err  # printed with its bytes escaped
    _, rows2 = read_lines(lines2)
    assert [r["frame"] for r in rows2] == [0, 1, 2]  # every frame of the video (annotated, so other results)
    assert os.path.getsize(again) > 0

    single = folder + b"/caf\xe9.png"
    status, out, err = run("run", str(pilot_bundle), "--source", single, "--jsonl", lines2, "--no-display",
                              "--quiet")
    assert status == 0 and read_lines(lines2)[1][0]["result"] == rows[0]["result"], err  # sorted first
    missing = os.fsencode(str(tmp_path)) + b"/gone_\xff.png"
    status, out, err = run("run", str(pilot_bundle), "--source", missing, "--no-display")
    assert one_line(status, err) and err.strip().endswith("gone_\\xff.png"), err


def test_a_device_or_stream_uri_that_is_not_utf8_is_one_line(pilot_bundle):
    from runtime.errors import UserError
    from runtime.outputs import open_output
    from runtime.sources import open_source

    for uri in (b"v4l2:///dev/video\xff", b"gst://filesrc location=/tmp/caf\xe9.mp4 ! decodebin ! appsink"):
        with pytest.raises(UserError, match="not UTF-8"):
            open_source(os.fsdecode(uri))
    for uri in (b"rtp://h\xffst:5000", b"http://h\xffst:8080", b"udp://h\xffst:5005"):
        with pytest.raises(UserError, match="not UTF-8"):
            open_output(os.fsdecode(uri))


# -- FIFOs and other files named like images ------------------------------------------------------------------------
def test_a_fifo_named_like_an_image_never_blocks(pilot_bundle, tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(str(fifo))
    status, _, err = run("run", str(pilot_bundle), "--source", str(fifo), "--no-display", timeout=30)
    assert one_line(status, err) and "not a regular file" in err, err
    folder = tmp_path / "frames"
    folder.mkdir()
    png(str(folder / "a.png"))
    os.mkfifo(str(folder / "b.png"))
    (folder / "c.png").mkdir()  # a folder named like an image
    status, out, err = run("run", str(pilot_bundle), "--source", str(folder), "--no-display", "--quiet",
                              timeout=30)  # blocked for ever on b.png
    assert status == 0, err
    assert out.startswith(b"1 frames") and b"skipped 2 unusable frame(s)" in out, out
    assert "warning: skipping %s: it is a FIFO, not an image file" % (folder / "b.png") in err
    assert "warning: skipping %s: it is a folder, not an image file" % (folder / "c.png") in err


# -- the pixel budget ------------------------------------------------------------------------------------------------
def test_image_headers_give_the_size_for_every_format_without_decoding(tmp_path):
    import cv2

    from runtime import images

    image = np.random.RandomState(1).randint(0, 256, (37, 53, 3)).astype(np.uint8)
    for ext, params in ((".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
                        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 50]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
                        (".tiff", []), (".ppm", []), (".pgm", []), (".pbm", [])):  # webp 101: lossless (VP8L)
        ok, data = cv2.imencode(ext, image if ext not in (".pgm", ".pbm") else image[:, :, 0], params)
        assert ok, ext
        path = str(tmp_path / ("a" + ext))
        with open(path, "wb") as f:
            f.write(data.tobytes())
        with open(path, "rb") as f:
            assert images.image_size(f) == (53, 37), (ext, params)
        assert images.read_image(path).shape == (37, 53, 3)
    gif = io.BytesIO(b"GIF89a" + struct.pack("<HH", 53, 37) + bytes(8))
    assert images.image_size(gif) == (53, 37)
    # a JPEG whose frame header follows a large EXIF segment, and a top-down BMP (negative height)
    ok, data = cv2.imencode(".jpg", image)
    exif = b"\xff\xe1" + struct.pack(">H", 60002) + b"Exif\x00\x00" + bytes(59994)
    jpeg = tmp_path / "exif.jpg"
    jpeg.write_bytes(data.tobytes()[:2] + exif + data.tobytes()[2:])
    with open(str(jpeg), "rb") as f:
        assert images.image_size(f) == (53, 37)
    assert images.read_image(str(jpeg)).shape == (37, 53, 3)
    bmp = bytearray((tmp_path / "a.bmp").read_bytes())
    bmp[22:26] = struct.pack("<i", -37)
    with pytest.raises(ValueError):
        images.image_size(io.BytesIO(bytes(bmp[:20])))  # cut short
    assert images.image_size(io.BytesIO(bytes(bmp))) == (53, 37)
    assert images.image_size(io.BytesIO(b"not an image at all")) is None  # left to OpenCV's own limit


def test_an_image_over_the_budget_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    from runtime import images

    big = str(tmp_path / "big.png")
    zero_png(big, BIG, BIG)
    assert os.path.getsize(big) < 1200000
    decoded = []
    import cv2

    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a))
    with pytest.raises(images.TooLarge) as caught:
        images.read_image(big)
    assert not decoded  # refused from the header: OpenCV was never asked
    assert str(caught.value) == ("cannot read image %s: 16000x16000 = 256,000,000 pixels, over the image budget of "
                                 "89,478,485 (raise it with --max-image-pixels N or OPENCV_IO_MAX_IMAGE_PIXELS=N)"
                                 % big)
    header_only = tmp_path / "cut.png"  # the header of a 16000x16000 image and nothing more
    header_only.write_bytes(open(big, "rb").read()[:33])
    with pytest.raises(images.TooLarge):
        images.read_image(str(header_only))


def test_the_budget_holds_in_bench_run_and_verify_and_can_be_raised(pilot_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    for i in range(3):
        zero_png(str(bundle / "samples" / ("sample_%03d.png" % i)), BIG, BIG)
    for args in (("runtime", "bench", bundle, "--frames", "5", "--warmup", "1"), ("export", "verify", bundle)):
        status, err, peak_mb = run_measured(*args)  # each peaked at 3.1 GB
        assert one_line(status, err), err
        assert "sample %s is 16000x16000 = 256,000,000 pixels, over the image budget" % (
            bundle / "samples" / "sample_000.png") in err
        assert peak_mb < 600, (args[:2], peak_mb)

    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(str(bundle / "samples" / "sample_000.png"), str(folder / "a_big.png"))
    png(str(folder / "b.png"), size=(100, 100))
    status, out, err = run("run", str(pilot_bundle), "--source", str(folder), "--no-display", "--quiet")
    assert status == 0 and out.startswith(b"1 frames") and b"skipped 1 unusable frame(s)" in out, err
    assert "warning: skipping %s: 16000x16000 = 256,000,000 pixels, over the image budget" % (
        folder / "a_big.png") in err
    status, out, err = run("run", str(pilot_bundle), "--source", str(folder / "a_big.png"), "--no-display")
    assert one_line(status, err) and "over the image budget of 89,478,485" in err, err

    # lowered by the environment (OpenCV's own variable, so OpenCV agrees), raised again by the option
    small = str(folder / "b.png")
    status, _, err = run("run", str(pilot_bundle), "--source", small, "--no-display",
                            env={"OPENCV_IO_MAX_IMAGE_PIXELS": "5000"})
    assert one_line(status, err) and "100x100 = 10,000 pixels, over the image budget of 5,000" in err
    status, out, err = run("run", str(pilot_bundle), "--source", small, "--no-display", "--quiet",
                              "--max-image-pixels", "10000", env={"OPENCV_IO_MAX_IMAGE_PIXELS": "5000"})
    assert status == 0 and out.startswith(b"1 frames"), err
    status, _, err = run("run", str(pilot_bundle), "--source", small, "--no-display",
                            env={"OPENCV_IO_MAX_IMAGE_PIXELS": "abc"})  # OpenCV aborted (134) on loading
    assert one_line(status, err) and "OPENCV_IO_MAX_IMAGE_PIXELS=abc: give the most pixels" in err, err


def test_frame_sizes_and_network_inputs_are_bounded(pilot_bundle, tmp_path, monkeypatch):
    from runtime import bundle as bundle_format

    status, _, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--input-width", "20000",
                            "--input-height", "20000", "--no-display")  # was a MemoryError: internal error
    assert one_line(status, err) and "20000x20000 = 400,000,000 pixels a frame, over the image budget" in err, err

    manifest = json.loads((pilot_bundle / "manifest.json").read_text())
    assert bundle_format.validate(manifest) == []
    manifest["preprocess"]["resize"].update(width=16384, height=16384)  # 3 GB a frame with a dynamic-shape ONNX
    assert bundle_format.validate(manifest) == ["preprocess resize 16384x16384 is 268435456 pixels, more than the "
                                                "16777216 (4096x4096) a network input may have"]
    manifest["preprocess"]["resize"].update(width=200, height=66)
    manifest["input"]["shape"] = [None, 16384, 16384, 3]
    assert bundle_format.validate(manifest)[0].startswith("input shape [None, 16384, 16384, 3] is 805306368 values")

    from runtime.commands import bench
    from runtime.errors import UserError

    manifest["input"]["shape"] = [None, 66, 200, 3]
    manifest["preprocess"]["crop"].update(left=0.0, right=0.01)  # the narrowest crop: bench's frame is 20000x110
    bundle = tmp_path / "sliver"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    from runtime import images

    monkeypatch.setattr(images, "_budget", 2000000)  # under its 2,200,000 pixels
    with pytest.raises(UserError, match="the frame whose crop is the network's input would be 20000x110"):
        bench.network_sized(bundle_format.load(str(bundle)), [np.zeros((360, 640, 3), np.uint8)])


# -- deep manifests, ports -----------------------------------------------------------------------------------------
def test_a_manifest_nested_200000_levels_deep_is_one_line(pilot_bundle, tmp_path):
    from runtime import bundle as bundle_format

    bundle = tmp_path / "bundle"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    (bundle / "manifest.json").write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(bundle_format.BundleError, match="nested too deeply"):  # was a RecursionError
        bundle_format.load(str(bundle))
    manifest = json.loads((pilot_bundle / "manifest.json").read_text())
    deep = []
    for _ in range(40):
        deep = [deep]
    manifest["extra"] = deep  # parses, but `runtime info` could not print it again
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    status, _, err = run("info", str(bundle))
    assert one_line(status, err) and "nested more than 32 levels deep" in err, err


def test_ports_are_ascii_digits_from_1_to_65535_everywhere(pilot_bundle):
    from runtime.vehicle import link as control
    from runtime.errors import UserError
    from runtime.outputs import open_output
    from runtime.sources import open_source

    assert [control.port_number(p) for p in ("8080", "1", "65535", "080")] == [8080, 1, 65535, 80]
    assert [control.port_number(p) for p in ("²", "٨٠٨٠", "+80", " 80", "0", "65536", "", "1e3", None)] == [None] * 9
    assert control.port_text("user@[::1]:5005") == "5005" and control.port_text("[::1]") == ""
    for uri in ("http://127.0.0.1:²", "http://127.0.0.1:٨٠٨٠", "udp://127.0.0.1:²", "udp://127.0.0.1:٨٠",
                "rtp://127.0.0.1:²", "rtsp://@:²/live"):
        with pytest.raises(UserError):
            open_output(uri)
    with pytest.raises(UserError, match="the port must be a number from 1 to 65535"):
        open_source("rtsp://127.0.0.1:²/x")
    status, _, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--output",
                            "http://127.0.0.1:²", "--no-display")  # was an internal error (int('²'))
    assert one_line(status, err) and "give http://HOST:PORT" in err, err


# -- JSON lines on a full disk -------------------------------------------------------------------------------------
def _no_torn_line(path, err):
    data, rows = read_lines(path)
    assert data.endswith(b"\n") and rows, data[-80:]  # every line whole, and some written
    assert "its first %d line(s) are kept" % len(rows) in err, err
    assert [r["frame"] for r in rows] == list(range(len(rows)))


def test_a_json_lines_file_never_ends_in_a_torn_line(pilot_bundle, tmp_path):
    lines = tmp_path / "road.jsonl"
    status, out, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--max-frames", "100",
                              "--jsonl", str(lines), "--no-display", "--quiet", limit_bytes=1000)  # EFBIG mid-line
    assert one_line(status, err) and "cannot write %s: File too large" % lines in err, err
    assert os.path.getsize(str(lines)) < 1000
    _no_torn_line(str(lines), err)


@pytest.fixture
def tiny_disk(tmp_path):
    yield from tmpfs(tmp_path, "16k")


def test_a_json_lines_file_on_a_disk_that_fills_up_keeps_only_whole_lines(pilot_bundle, tiny_disk):
    lines = tiny_disk / "road.jsonl"
    status, out, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--max-frames", "100000",
                              "--jsonl", str(lines), "--no-display", "--quiet")
    assert one_line(status, err) and "cannot write %s: No space left on device" % lines in err, err
    _no_torn_line(str(lines), err)


# -- the attacker's second review: bundle folders, glob characters, samples together, crops, tokens, control bytes --
DIGITS = os.path.join(ROOT, "tests", "runtime", "bundles", "digits")  # 12 gray 28x28 samples, output 'output'


def test_a_bundle_in_a_folder_whose_name_is_not_utf8_runs_and_benches(tmp_path):
    bundle = os.fsencode(str(tmp_path)) + b"/dig_\xff"
    shutil.copytree(DIGITS, os.fsdecode(bundle))
    frame = os.fsencode(str(tmp_path)) + b"/frame[1].png"  # and a source named with glob characters, below
    shutil.copy(os.path.join(DIGITS, "samples", "sample_000.png"), frame)
    private = tmp_path / "tmp"  # where the children make their links
    private.mkdir()
    status, out, err = run("run", bundle, "--source", "synthetic://road", "--max-frames", "1", "--no-display",
                           "--quiet", env={"TMPDIR": str(private)})
    assert status == 0 and out.startswith(b"1 frames"), err  # was: ONNX Runtime cannot load ...: __init__() ...
    status, out, err = run("bench", bundle, "--source", frame, "--frames", "5", "--warmup", "1",
                           env={"TMPDIR": str(private)})
    assert status == 0 and b"FPS end to end" in out, err  # was: ONNX Runtime cannot load, or no images match
    assert sorted(os.listdir(bundle)) == [b"manifest.json", b"model.onnx", b"parity.json", b"samples"]  # intact
    assert not [n for n in os.listdir(str(private)) if n.startswith("runtime-name-")]  # the links to it removed


def test_the_plain_name_links_the_folder_and_never_removes_what_it_links_to(tmp_path):
    from runtime import images

    folder = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    os.mkdir(folder)
    for name in (b"model.onnx", b"weights.bin"):
        with open(folder + b"/" + name, "wb") as f:
            f.write(name)
    path = os.fsdecode(folder + b"/model.onnx")
    with images.PlainName(path, folder=True) as name:
        assert images.utf8(name) and name.endswith("/folder/model.onnx")
        assert open(os.path.join(os.path.dirname(name), "weights.bin"), "rb").read() == b"weights.bin"  # beside it
    assert not os.path.exists(os.path.dirname(os.path.dirname(name)))
    assert sorted(os.listdir(folder)) == [b"model.onnx", b"weights.bin"]
    with images.PlainName(os.fsdecode(folder + b"/m\xff.onnx"), folder=True) as name:
        assert images.utf8(name) and name.endswith("/file.onnx")  # the file's own name is not UTF-8: linked itself
    assert images.PlainName("/tmp/plain.onnx").name == "/tmp/plain.onnx"


def test_names_with_glob_characters_are_the_files_and_folders_they_name(pilot_bundle, tmp_path):
    import cv2

    from runtime.sources import open_source

    image = png(str(tmp_path / "frame[1].png"), seed=3)
    (tmp_path / "run[1]").mkdir()
    for i in range(3):
        png(str(tmp_path / "run[1]" / ("f%d.png" % i)), seed=i)
    (tmp_path / "run1").mkdir()  # what run[1] matches as a glob: never taken for it
    writer = cv2.VideoWriter(str(tmp_path / "clip[1].avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    expect = {"frame[1].png": 1, "file://%s" % (tmp_path / "frame[1].png"): 1, "run[1]": 3, "run[1]/*.png": 3,
              "clip[1].avi": 4, "frame?1?.png": 1}  # a glob still globs where no file has its very name
    for given, count in expect.items():
        uri = given if given.startswith("file://") else str(tmp_path / given)
        with open_source(uri) as source:  # was: no images match ...
            frames = [f.image for f in source]
        assert len(frames) == count, given
    with open_source(str(tmp_path / "frame[1].png")) as source:
        assert np.array_equal(next(iter(source)).image, image)
    status, out, err = run("run", str(pilot_bundle), "--source", str(tmp_path / "run[1]"), "--no-display", "--quiet")
    assert status == 0 and out.startswith(b"3 frames"), err


def test_a_bundles_samples_are_held_to_the_budget_together_before_any_is_decoded(pilot_bundle, tmp_path):
    from runtime import bundle as bundle_format

    bundle = tmp_path / "bundle"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    zero_png(str(bundle / "samples" / "big.png"), 4000, 4000)  # 16,000,000 pixels, 48 MB decoded, a small file
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["samples"]["files"] = ["big.png"] * 60
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    reference = np.load(str(bundle / "samples" / manifest["samples"]["keras_outputs"]))
    np.savez(str(bundle / "samples" / manifest["samples"]["keras_outputs"]),
             **{k: np.repeat(reference[k][:1], 60, axis=0) for k in reference.files})  # verify's reference fits
    for args in (("runtime", "bench", bundle, "--frames", "5", "--warmup", "1"), ("export", "verify", bundle)):
        status, err, peak_mb = run_measured(*args)  # each peaked at 2.9 GB
        assert one_line(status, err), err
        assert "%s: its 60 sample images hold" % bundle in err and "over the image budget of 89,478,485" in err, err
        assert peak_mb < 400, (args[:2], peak_mb)

    manifest["samples"]["files"] = ["sample_%03d.png" % (i % 12) for i in range(bundle_format.MAX_SAMPLES + 1)]
    assert bundle_format.validate(manifest) == ["samples lists 65 files, more than the 64 a bundle may have (export "
                                                "writes at most 64)"]


def test_bench_holds_its_network_sized_frames_to_the_budget_together(pilot_bundle, monkeypatch):
    from runtime import images
    from runtime.commands import bench
    from runtime import bundle as bundle_format

    loaded = bundle_format.load(str(pilot_bundle))  # its network-sized frame is 200x110 = 22,000 pixels
    monkeypatch.setattr(images, "_budget", 50000)
    frames = bench.network_sized(loaded, [np.zeros((360, 640, 3), np.uint8)] * 12)
    assert len(frames) == 2 and frames[0].shape == (110, 200, 3)  # cycled: 2 of the 12 fit the budget together


@pytest.mark.parametrize("right", [5e-324, 1e-9, 0.0099])
def test_a_crop_narrower_than_the_least_fraction_is_refused_naming_the_field(pilot_bundle, tmp_path, right):
    from runtime import bundle as bundle_format

    manifest = json.loads((pilot_bundle / "manifest.json").read_text())
    manifest["preprocess"]["crop"].update(left=0.0, right=right)
    assert bundle_format.validate(manifest) == [
        "preprocess crop keeps right - left = %.3g of the frame's width, less than the 0.01 a crop must keep" % right]
    manifest["preprocess"]["crop"].update(left=0.5, right=0.75, top=0.0, bottom=right)
    assert bundle_format.validate(manifest) == [
        "preprocess crop keeps bottom - top = %.3g of the frame's height, less than the 0.01 a crop must keep" % right]
    if right == 5e-324:  # bench's frame whose crop is the network's input was infinite: internal error OverflowError
        bundle = tmp_path / "sliver"
        shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
        manifest["preprocess"]["crop"].update(top=0.4, bottom=1.0, left=0.0, right=right)
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        status, _, err = run("bench", str(bundle), "--frames", "5", "--warmup", "1")
        assert one_line(status, err) and "preprocess crop keeps right - left = 4.94e-324" in err, err


def test_a_web_token_that_cannot_go_in_a_url_unescaped_is_one_line(pilot_bundle):
    for token in (b"\xff", b"a b", b"</script>", b"a&b", b"caf\xc3\xa9", b"", b"x" * 257, b"x" * 15):
        status, _, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--max-frames", "1",
                             "--no-display", "--output", "http://127.0.0.1:%d" % free_tcp_port(), "--web-token", token)
        assert one_line(status, err) and "argument --web-token: a token goes into the address unescaped" in err, err

    from runtime.errors import UserError
    from runtime.outputs.web import WebOutput, token_problem

    assert token_problem("s3cret-._~A9" * 2) is None and token_problem("s3cret-._~A9")
    with pytest.raises(UserError, match="--web-token: a token goes"):  # every request was a 500 and a traceback
        WebOutput("127.0.0.1", free_tcp_port(), token=os.fsdecode(b"\xff"), log=None)


def test_an_error_is_one_line_whatever_a_name_holds(pilot_bundle, tmp_path, capsys):
    from runtime import cli
    from runtime.errors import UserError, printable

    assert printable("a\nb\rc\td\x00\x1b[31m\x7f\x85\x9f\u2028\u2029\u202e\u2066") == \
        "a\\nb\\rc\\td\\x00\\x1b[31m\\x7f\\u0085\\u009f\\u2028\\u2029\\u202e\\u2066"
    assert printable(os.fsdecode(b"caf\xe9 \xff") + "\ud800 naïve ü") == "caf\\xe9 \\xff\\ud800 naïve ü"
    for name in (b"no\nsuch.png", b"no\x1b[31mred.png", b"no\rsuch\x85.png", "no\u2028such.png".encode()):
        status, _, err = run("run", str(pilot_bundle), "--source", os.fsencode(str(tmp_path)) + b"/" + name,
                             "--no-display")
        assert one_line(status, err), err  # was two lines, or a raw terminal escape
        assert not any(c in err[:-1] for c in "\n\r\x1b\x85\u2028"), repr(err)
    status, _, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "extra\narg")  # argparse's error
    assert one_line(status, err) and "unrecognized arguments: extra\\narg" in err, err

    def fails(kind):
        def body(argv):
            raise kind("line one\nline two \x1b[2J")
        return body

    assert cli.main("python -m x", fails(UserError), []) == 2 and cli.main("python -m x", fails(ValueError), []) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["python -m x: error: line one\\nline two \\x1b[2J",
                     "python -m x: internal error: ValueError: line one line two \\x1b[2J (a bug: run again with "
                     "--debug and report the traceback)"]


def test_frames_to_judge_on_are_held_preprocessed_not_raw(pilot_bundle, tmp_path):
    """`export verify --data VIDEO` (and calibration from a video) kept every raw frame until all were read:
    500 4K frames were 12 GB. Each is now preprocessed as it is read, so 120 1080p frames (750 MB raw) stay small."""
    import cv2

    video = str(tmp_path / "hd.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 30, (1920, 1080))
    frame = np.zeros((1080, 1920, 3), np.uint8)
    for i in range(120):
        frame[:, :] = (i, 255 - i, 128)
        writer.write(frame)
    writer.release()
    status, err, peak_mb = run_measured("export", "verify", pilot_bundle, "--data", video, "--frames", "120")
    assert status == 0, err
    assert peak_mb < 500, peak_mb  # before: above 900 MB
