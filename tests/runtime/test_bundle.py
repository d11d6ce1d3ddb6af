"""The manifest's schema and the bundle's files (runtime/bundle.py): every missing field, wrong type, value out of
range and file name that leaves the bundle is one clear line; random manifests (hypothesis, derandomized) give a
BundleError or a bundle the runtime can use, never another exception."""

import copy
import json
import os
import random
import shutil

import pytest

from runtime import bundle as bundle_format
from runtime.bundle import BundleError
from tests.conftest import cli, one_line_error


def _manifest(bundle):
    return json.loads((bundle / "manifest.json").read_text())


def _with(manifest, path, value):
    """A copy of manifest with the field at path (keys and indexes) set to value, or removed when value is ..."""
    out = copy.deepcopy(manifest)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@pytest.mark.parametrize("path, value, message", [
    (("task",), ..., "no 'task'"),
    (("task",), ["steering"], "'task' must be a string"),
    (("task",), "captioning", "task 'captioning' is not one of"),
    (("input",), "NHWC", "'input' must be a JSON object"),
    (("input", "shape"), [None, 66, 200], "input shape must be [null, d1, d2, d3]"),
    (("input", "shape"), [None, 66, "200", 3], "input shape must be"),
    (("input", "shape"), [None, 66, -200, 3], "input shape must be"),
    (("input", "dtype"), "uint8", "dtype float32"),
    (("input", "layout"), "NWHC", "input layout 'NWHC' is not one of"),
    (("preprocess", "resize", "width"), 0, "integer width and height from 1 to 16384"),
    (("preprocess", "resize", "width"), 200.5, "integer width and height"),
    (("preprocess", "resize", "width"), True, "integer width and height"),
    (("preprocess", "resize", "interpolation"), "cubic", "resize interpolation 'cubic'"),
    (("preprocess", "color"), "hsv", "preprocess color 'hsv'"),
    (("preprocess", "scale"), "1/255", "preprocess scale must be a number"),
    (("preprocess", "offset"), [0.0, 0.0], "preprocess offset must be a number or a list of 3"),
    (("preprocess", "scale"), float("nan"), "preprocess scale must be a number"),
    (("preprocess", "crop"), {"top": 0.6, "bottom": 0.4, "left": 0, "right": 1}, "0 <= top < bottom <= 1"),
    (("preprocess", "crop"), {"top": "0"}, "preprocess crop needs"),
    (("outputs",), [], "outputs must be a non-empty list"),
    (("outputs", 0, "activation"), "relu", "outputs must be a non-empty list of {name, shape, activation"),
    (("labels",), "left,right", "labels must be a list of strings"),
    (("steering", "positive"), "up", "steering needs"),
    (("model", "sha256"), "abc", "'sha256' (64 hex digits)"),
    (("model", "file"), "../model.onnx", "model needs 'file' (a name inside the bundle)"),
    (("model", "file"), "/etc/passwd", "model needs 'file' (a name inside the bundle)"),
    (("samples", "files"), ["../../secret.png"], "samples needs dir, files and keras_outputs as names inside"),
    (("samples", "dir"), "/tmp", "samples needs dir"),
    (("variants",), {"fp16": {"file": "../x.onnx", "sha256": "0" * 64}}, "variants must map fp16 or int8"),
])
def test_each_bad_manifest_field_is_one_clear_line(pilot_bundle, tmp_path, path, value, message):
    bundle = tmp_path / "b"
    shutil.copytree(pilot_bundle, bundle)
    (bundle / "manifest.json").write_text(json.dumps(_with(_manifest(pilot_bundle), path, value)))
    with pytest.raises(BundleError) as error:
        bundle_format.load(str(bundle))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_command_line_says_it_in_one_line(pilot_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(pilot_bundle, bundle)
    (bundle / "manifest.json").write_text(json.dumps(_with(_manifest(pilot_bundle), ("input", "dtype"), "int4")))
    proc = cli("runtime", "run", bundle, "--source", "synthetic://road", "--max-frames", "1", "--no-display")
    assert one_line_error(proc) and "dtype float32" in proc.stderr


def test_a_file_that_links_out_of_the_bundle_is_refused(pilot_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(pilot_bundle, bundle)
    outside = tmp_path / "elsewhere.onnx"
    os.replace(bundle / "model.onnx", outside)
    os.symlink(outside, bundle / "model.onnx")
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle_format.load(str(bundle))
    samples = bundle / "samples"
    shutil.move(str(samples), str(tmp_path / "samples"))
    os.symlink(tmp_path / "samples", samples)
    os.replace(outside, bundle / "model.onnx")  # the model is back; the samples folder now links out
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle_format.load(str(bundle))


def test_random_manifests_give_a_clean_error_or_a_usable_bundle(pilot_bundle, digits_bundle, tmp_path_factory):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from runtime.errors import UserError
    from runtime.postprocess import Postprocessor
    from runtime.preprocess import Preprocessor

    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=8)
    good = [_manifest(pilot_bundle), _manifest(digits_bundle)]
    folders = {}

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for k, v in node.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node[:2]):  # a list's first items stand for the rest (samples lists 32 files)
                yield from paths(v, prefix + (i,))

    @hypothesis.settings(derandomize=True, max_examples=400, deadline=None, database=None)
    @hypothesis.given(which=st.integers(0, 1), data=st.data())
    def check(which, data):
        source = (pilot_bundle, digits_bundle)[which]
        if which not in folders:  # one copy per bundle; only its manifest changes
            folders[which] = tmp_path_factory.mktemp("fuzz") / "b"
            shutil.copytree(source, folders[which])
        manifest = good[which]
        for _ in range(data.draw(st.integers(1, 3))):
            where = [p for p in paths(manifest) if p and p[0] not in ("tools", "conversion")]
            path = random.Random(data.draw(st.integers(0, 2 ** 32))).choice(where)  # any field alike: hypothesis's
            # own choices favour the first
            manifest = _with(manifest, path, data.draw(st.just(...) | json_values))
        (folders[which] / "manifest.json").write_text(json.dumps(manifest))
        try:
            b = bundle_format.load(str(folders[which]), verify_model=False)
        except BundleError as exc:
            assert "\n" not in str(exc)
            return
        try:  # a manifest that passed must be one the runtime can use, or a UserError in one line
            assert b.describe() and min(b.network_frame_size) > 0
            Preprocessor(b.preprocess, b.input)
            Postprocessor(b.task, b.labels, b.outputs, b.steering)
        except UserError:
            pass

    check()


def test_a_manifest_whose_input_the_model_does_not_take_is_one_line(pilot_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(pilot_bundle, bundle)
    manifest = _with(_manifest(pilot_bundle), ("preprocess", "resize", "width"), 100)  # consistent in itself
    manifest["input"]["shape"] = [None, 66, 100, 3]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = cli("runtime", "run", bundle, "--source", "synthetic://road", "--max-frames", "1", "--no-display")
    assert one_line_error(proc), proc.stderr
    assert "model.onnx takes input ['batch', 66, 200, 3], but the bundle's manifest says [None, 66, 100, 3]: " \
        "the bundle is inconsistent" in proc.stderr
