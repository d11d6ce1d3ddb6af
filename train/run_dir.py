"""The run directory, written and read here only, as runtime/bundle.py is for bundles: what a finished training
(train/trainer.py's Trained) leaves (model.keras, summary.txt, history.json, training.png, samples/ and meta.json,
the layout trainer.py's docstring shows); its metadata (RUN_DIR/meta.json), what `python -m export onnx` needs of
a training run (task, labels, the input contract, samples); the run's model files, written whole or not at all;
and the refusal to overwrite a run by accident. The checkpoint (RUN_DIR/checkpoints) is train/checkpoints.py's."""

from __future__ import annotations

import json
import os

from runtime import bundle
from runtime.bundle import write_atomic, write_json
from runtime.errors import UserError
from runtime.sim import road

from .plots import plot_history

FORMAT = "edge-run"
FORMAT_VERSION = 1
META = "meta.json"
SAMPLES = "samples"


def prepare(run_dir: str) -> None:
    """The run directory and its samples folder, made before training (the checkpoint goes inside)."""
    os.makedirs(os.path.join(run_dir, SAMPLES), exist_ok=True)


def write(run_dir: str, spec, dataset, trained) -> None:
    """Everything a finished training leaves in run_dir (trained: train/trainer.py's Trained, from spec and
    dataset): the model, its summary, the history and its plot, the held-out samples, and meta.json last."""
    save_model(trained.model, os.path.join(run_dir, "model.keras"))
    write_atomic(os.path.join(run_dir, "summary.txt"), trained.summary.encode("utf-8"))
    write_json(os.path.join(run_dir, "history.json"), history_record(trained))
    if spec.task in ("detection", "segmentation"):
        sizes = (len(dataset.train[0]), len(dataset.val[0])) if spec.task == "segmentation" else (
            len(dataset.train), len(dataset.val))
    else:
        sizes = (len(dataset.y_train), len(dataset.y_val))
    plot_history(trained.history, os.path.join(run_dir, "training.png"),
                 "%s on %s (%d train / %d held out)" % ((spec.name, dataset.name) + sizes))
    files = write_samples(run_dir, dataset.raw_samples)
    write_meta(run_dir, run_meta(spec, dataset, trained, files))


def history_record(trained) -> dict:
    """history.json: epochs done, batch size, seconds, Keras's per-epoch history, the phases, held-out results."""
    return {"epochs": trained.epochs, "batch_size": trained.batch_size, "seconds": round(trained.seconds, 1),
            "history": trained.history, "phases": trained.phases, "held_out": trained.held_out}


def write_samples(run_dir: str, raw_samples) -> list:
    """The held-out raw frames as RUN_DIR/samples/sample_NNN.png; their file names, in order."""
    import tensorflow as tf

    files = []
    for i, image in enumerate(raw_samples):
        name = "sample_%03d.png" % i
        tf.io.write_file(os.path.join(run_dir, SAMPLES, name), tf.io.encode_png(image))
        files.append(name)
    return files


def run_meta(spec, dataset, trained, files) -> dict:
    """meta.json's fields (write_meta adds the format's): the model's task, labels and input contract, the
    dataset, held-out results, samples (files: their names) and tools; the backbone's weights (transfer
    learning), the steering's meaning and the augmentation where they apply."""
    import keras
    import tensorflow as tf

    meta = {
        "name": spec.name, "task": spec.task,
        "labels": dataset.labels if spec.task != "steering" else [],
        "input": {"shape": [None] + list(spec.input_shape), "layout": spec.layout},
        "preprocess": spec.preprocess(),
        "dataset": dataset.name, "held_out": trained.held_out,
        "samples": {"dir": SAMPLES, "files": files, "targets": dataset.sample_targets},
        "tools": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    if spec.backbone is not None:  # transfer learning: which backbone, and where its weights came from
        meta["backbone"] = {"name": spec.backbone.name,
                            "weights": os.path.basename(spec.weights) if spec.weights else "random",
                            "fine_tune_layers": spec.fine_tune}
    if spec.task == "steering":
        meta["steering"] = dataset.steering or road.steering_metadata()
    if spec.task == "detection":
        from . import detector

        meta["detection"] = detector.manifest_section()
    if spec.task == "segmentation":
        from . import freespace

        meta["segmentation"] = freespace.manifest_section(dataset.labels, dataset.drivable)
    if trained.augment:
        meta["augment"] = list(trained.augment)
    return meta


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
