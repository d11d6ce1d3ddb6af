"""export verify with a damaged Keras-outputs file (samples/keras_outputs.npz): one line and exit status 2, never an
internal error, and nothing in the file is unpickled (issue 26). The checked-in test bundle: no TensorFlow needed."""

import io
import os
import shutil
import zipfile

import numpy as np
import pytest

from tests.conftest import ROOT, cli, one_line_error

DIGITS = os.path.join(ROOT, "tests", "runtime", "bundles", "digits")  # 12 samples, one output 'output' [None, 10]


@pytest.fixture
def bundle(tmp_path):
    dest = tmp_path / "digits"
    shutil.copytree(DIGITS, str(dest), ignore=shutil.ignore_patterns("engines"))
    return dest


def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def good():
    return np.load(os.path.join(DIGITS, "samples", "keras_outputs.npz"))["output"]


class Pickled:
    pass


DAMAGE = {
    "not a zip": (b"\x93NUMPY this is no archive" * 10, "it is not a zip archive of arrays"),
    "a bare .npy": (None, "it is not a zip archive of arrays"),
    "cut short": (None, "damaged"),
    "a missing key": (lambda: npz(logits=good()), "it has no array for the output 'output' (it has 'logits')"),
    "the wrong shape": (lambda: npz(output=good()[:, :5]), "the output 'output' is stored with shape (12, 5)"),
    "the wrong count": (lambda: npz(output=good()[:7]), "is stored with shape (7, 10); 12 samples"),
    "object arrays": (lambda: npz(output=np.array([Pickled()] * 12, dtype=object)), "stored as object, not numbers"),
    "text": (lambda: npz(output=np.array(["a"] * 12)), "stored as <U1, not numbers"),
    "not finite": (lambda: npz(output=np.full((12, 10), np.nan, np.float32)), "holds values that are not finite"),
    "a header that lies": (None, "says it holds"),
}


def damaged_bytes(kind):
    data, _ = DAMAGE[kind]
    if kind == "a bare .npy":
        buffer = io.BytesIO()
        np.save(buffer, good())
        return buffer.getvalue()
    if kind == "cut short":
        return npz(output=good())[:300]
    if kind == "a header that lies":  # float64 in the header over float32 data: twice the bytes there are
        raw = npz(output=good())
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            member = z.read("output.npy")
        header_end = member.index(b"\n") + 1
        fake = np.lib.format.header_data_from_array_1_0(np.zeros((12, 10), np.float32))
        fake["descr"] = "<f8"
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, fake)
        buffer.write(member[header_end:])
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("output.npy", buffer.getvalue())
        return out.getvalue()
    return data() if callable(data) else data


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_keras_outputs_file_is_one_line(bundle, kind):
    from export import verify
    from runtime.errors import UserError

    (bundle / "samples" / "keras_outputs.npz").write_bytes(damaged_bytes(kind))
    with pytest.raises(UserError) as caught:  # was KeyError, ValueError, BadZipFile, ... (internal errors)
        verify.verify(str(bundle), log=None)
    message = str(caught.value)
    assert message.startswith("%s is damaged: " % (bundle / "samples" / "keras_outputs.npz")), message
    assert DAMAGE[kind][1] in message and message.endswith("; export the bundle again"), message
    assert "\n" not in message


def test_export_verify_says_so_in_one_line(bundle):
    good_copy = good()
    (bundle / "samples" / "keras_outputs.npz").write_bytes(npz(logits=good_copy))
    proc = cli("export", "verify", bundle)
    assert one_line_error(proc), proc.stderr  # was `internal error: KeyError` (exit status 1)
    assert "has no array for the output 'output'" in proc.stderr
    (bundle / "samples" / "keras_outputs.npz").write_bytes(npz(output=good_copy))
    proc = cli("export", "verify", bundle)
    assert proc.returncode == 0 and "onnxruntime model.onnx" in proc.stdout, proc.stderr  # the good file still passes


# -- the attacker's second review (issue 26): a bundle's folder, its manifest against its model, --data -------------
def export_cli(*args):
    """`python -m export ARGS` with bytes arguments as given (a name that is not UTF-8); (status, stdout, stderr)."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "export"] + [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    proc = subprocess.run(argv, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, timeout=300)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def test_variants_and_verify_on_a_bundle_whose_folder_is_not_utf8(tmp_path):
    folder = os.fsencode(str(tmp_path)) + b"/dig_\xff"
    shutil.copytree(DIGITS, os.fsdecode(folder), ignore=shutil.ignore_patterns("engines"))
    status, out, err = export_cli("variants", folder, "--precision", "int8")
    assert status == 0 and "Traceback" not in err and "Optimization Failed" not in err, err  # ORT's traceback, then
    assert "onnxruntime model.int8.onnx" in out  # `ONNX Runtime cannot load ...: __init__(): incompatible ...`
    status, out, err = export_cli("verify", folder)
    assert status == 0 and "onnxruntime model.onnx" in out and "onnxruntime model.int8.onnx" in out, err


def test_verify_says_in_one_line_that_the_manifest_disagrees_with_the_model(bundle):
    import json

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["input"].update(layout="NCHW", shape=[None, 1, 28, 28])  # the model takes [batch, 28, 28, 1]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = cli("export", "verify", bundle)
    assert one_line_error(proc), proc.stderr  # was `internal error: InvalidArgument: ... Got invalid dimensions`
    assert "takes input ['batch', 28, 28, 1], but the bundle's manifest says [None, 1, 28, 28]" in proc.stderr


def test_verify_reads_the_reference_before_decoding_any_sample(bundle, monkeypatch):
    import cv2

    from export import verify
    from runtime.errors import UserError

    (bundle / "samples" / "keras_outputs.npz").write_bytes(npz(output=good()[:7]))
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(1) or real(*a))
    with pytest.raises(UserError, match="is stored with shape"):
        verify.verify(str(bundle), log=None)
    assert decoded == []  # was: all 12 samples decoded first


def test_verify_data_named_with_glob_characters_and_its_warning_names_its_own_option(bundle, tmp_path):
    folder = tmp_path / "run[1]"
    folder.mkdir()
    for i in range(3):
        shutil.copy(os.path.join(DIGITS, "samples", "sample_%03d.png" % i), str(folder / ("f%d.png" % i)))
    proc = cli("export", "verify", bundle, "--data", folder)
    assert proc.returncode == 0, proc.stderr  # was: no images match .../run[1]
    assert "model.onnx's on %s (3 frames)" % folder in proc.stdout
    assert "warning: --data %s gave only 3 frames" % folder in proc.stderr  # was: --calib-data ...
    assert "--calib-data" not in proc.stderr and "calibrate" not in proc.stderr, proc.stderr

    from runtime import bundle as bundle_format
    from runtime.commands import engine as calibration_data

    log = io.StringIO()
    calibration_data.load_frames(bundle_format.load(str(bundle)), str(folder), 500, log, purpose="evaluation")
    assert log.getvalue() == "warning: %s gave only 3 frames to judge on; hundreds judge better\n" % folder
