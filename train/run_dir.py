"""The run directory's metadata (RUN_DIR/meta.json), read and written here only, as runtime/bundle.py is for
bundles: what `python -m export onnx` needs of a training run (task, labels, the input contract, samples);
the run's model files, written whole or not at all; and the refusal to overwrite a run by accident."""

from __future__ import annotations

import json
import os

from runtime.bundle import write_json
from runtime.errors import UserError

FORMAT = "edge-run"
FORMAT_VERSION = 1
META = "meta.json"


def save_model(model, path: str) -> None:
    """model.save(path), atomically: Keras writes a temporary file beside it, which is synced and renamed."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, ".tmp-%d-%s" % (os.getpid(), os.path.basename(path)))
    try:
        model.save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def holds_a_run(run_dir: str) -> bool:
    """Whether run_dir has anything a training run writes (so that starting another there would overwrite it)."""
    return any(os.path.exists(os.path.join(run_dir, name)) for name in (META, "model.keras", "checkpoints"))


def write_meta(run_dir: str, meta: dict) -> None:
    """meta without its format fields; they are added here."""
    write_json(os.path.join(run_dir, META), dict({"format": FORMAT, "format_version": FORMAT_VERSION}, **meta))


def read_json(path: str, fix: str = ""):
    """A JSON file of the run directory, or None where it is not there; a UserError in one line (with `fix`)
    for one that does not parse."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep for the parser
        raise UserError("%s is not valid JSON (%s)%s" % (path, exc if isinstance(exc, ValueError)
                                                      else "nested too deep", fix)) from None


def read_meta(run_dir: str):
    """The run's metadata, or None where there is no meta.json (a model file from elsewhere); UserError for
    one that is not a train run's."""
    path = os.path.join(run_dir, META)
    meta = read_json(path)
    if meta is None:
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError("%s is not a train run's metadata" % path)
    problems = meta_problems(meta)
    if problems:
        raise UserError("%s: %s (train the run again, or export the model file alone)" % (path, "; ".join(problems)))
    return meta


def meta_problems(meta) -> list:
    """What is wrong with a run's metadata, as short phrases: the fields export reads, checked as the bundle's
    manifest is (runtime/bundle.py), so a damaged meta.json is one line rather than a crash in export."""
    from runtime import bundle

    if meta.get("task") not in bundle.TASKS:
        return ["task %r is not one of %s" % (meta.get("task"), ", ".join(bundle.TASKS))]
    problems = []
    if not bundle.is_string_list(meta.get("labels", [])):
        problems.append("labels must be a list of strings")
    inp, pre = meta.get("input"), meta.get("preprocess")
    if not isinstance(inp, dict) or not isinstance(pre, dict):
        return problems + ["input and preprocess must be JSON objects"]
    problems += bundle.input_problems(dict({"name": "input", "dtype": "float32"}, **inp))
    problems += bundle.preprocess_problems(pre)
    if not bundle.samples_ok(meta.get("samples", {})):
        problems.append("samples needs dir and files as names inside the run directory")
    return problems
