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
