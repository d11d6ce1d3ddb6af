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
import uuid
import zlib

import numpy as np
import pytest

from tests.conftest import ROOT

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


def run_measured(*args, timeout=120):
    """`python -m ARGS...`: (exit status, stderr text, the child's own peak resident memory in MB, from
    os.wait4's rusage of this child alone)."""
    argv = [sys.executable, "-m"] + [str(a) for a in args]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=ROOT, env=child_env(None), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            proc.returncode = 0  # reaped here
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)  # Python 3.8 (JetPack 5)
    return code, stderr, usage.ru_maxrss / 1024.0


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


def test_frame_sizes_and_network_inputs_are_bounded(pilot_bundle, tmp_path):
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

    from runtime import bench
    from runtime.errors import UserError

    manifest["input"]["shape"] = [None, 66, 200, 3]
    manifest["preprocess"]["crop"].update(left=0.0, right=0.0002)  # a sliver: bench's frame would be 1000000x110
    bundle = tmp_path / "sliver"
    shutil.copytree(str(pilot_bundle), str(bundle), ignore=shutil.ignore_patterns("engines"))
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="the frame whose crop is the network's input would be 1000000x110"):
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
    from runtime import control
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
    mount = tmp_path / ("disk-" + uuid.uuid4().hex[:8])
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_json_lines_file_on_a_disk_that_fills_up_keeps_only_whole_lines(pilot_bundle, tiny_disk):
    lines = tiny_disk / "road.jsonl"
    status, out, err = run("run", str(pilot_bundle), "--source", "synthetic://road", "--max-frames", "100000",
                              "--jsonl", str(lines), "--no-display", "--quiet")
    assert one_line(status, err) and "cannot write %s: No space left on device" % lines in err, err
    _no_torn_line(str(lines), err)
