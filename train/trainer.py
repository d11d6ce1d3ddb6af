"""Train a zoo model on a dataset and write the run directory that export reads.

RUN_DIR/
    model.keras      the trained model
    history.json     per-epoch loss and metrics (Keras's History, both phases when fine-tuning), held-out results
    training.png     loss and metric curves
    summary.txt      the Keras summary
    meta.json        what export needs: task, labels, input contract (size, colour, scaling), samples
    samples/         a few held-out raw frames (PNG) and their targets
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import numpy as np

from runtime import road
from runtime.bundle import write_atomic, write_json
from runtime.signals import StopRequest

from . import checkpoints, distribute, multiworker, run_dir


def _summary_text(model) -> str:
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=88)
    return "\n".join(lines) + "\n"


def evaluate(model, dataset, val_data) -> dict:
    """Held-out results a person can judge: accuracy, or MAE against always predicting the mean.
    val_data: the validation split's tf.data batches, in the split's order."""
    pred = np.concatenate([np.asarray(model(x, training=False), np.float32) for x, _ in val_data])
    if dataset.task == "steering":
        mae = float(np.mean(np.abs(pred.reshape(-1) - dataset.y_val)))
        baseline = float(np.mean(np.abs(np.mean(dataset.y_train) - dataset.y_val)))
        return {"val_mae": mae, "constant_mae": baseline, "mae_ratio": mae / baseline if baseline else None}
    if pred.shape[-1] == 1:
        chosen = (pred.reshape(-1) >= 0.5).astype(np.int64)
    else:
        chosen = pred.argmax(axis=-1)
    return {"val_accuracy": float(np.mean(chosen == dataset.y_val))}


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM; the checkpoint holds the last finished epoch."""

    def __init__(self, signum, epochs):
        super().__init__(signum, epochs)
        self.signum, self.epochs = signum, epochs


def phases_of(spec, epochs):
    """(name, first epoch, end epoch) of each phase: all layers, or a pretrained backbone's head and then
    its fine-tuning (train/backbones.py)."""
    phases = [("head" if spec.weights is not None else "all layers", 0, epochs)]
    if spec.fine_tune:
        phases.append(("fine-tune last %d layers" % spec.fine_tune, epochs, epochs + (spec.fine_tune_epochs or epochs)))
    return phases


class Options:
    """How to train, beyond the model and the data: the input pipeline's and the devices' settings.
    augment: train/pipeline.py's kinds; cache_mb: the in-memory cache's bound; strategy: a tf.distribute
    strategy (train/distribute.py) or None; mixed_precision: the mixed_float16 policy (GPUs); tensorboard: logs
    in RUN_DIR/tensorboard."""

    def __init__(self, augment=(), shift_correction=0.0, cache_mb=1024, strategy=None, mixed_precision=False,
                 tensorboard=False):
        self.augment, self.cache_mb, self.strategy = tuple(augment), cache_mb, strategy
        self.shift_correction = shift_correction
        self.mixed_precision, self.tensorboard = mixed_precision, tensorboard


def _pipelines(spec, dataset, batch_size, seed, num_classes, options):
    from . import pipeline

    pre = spec.preprocess()
    for name, split in (("training", dataset.train), ("validation", dataset.val)):
        if split.files is not None:
            print("%s: %d images read from disk%s" % (
                name, len(split), ", cached in memory after the first epoch" if pipeline.fits(
                    len(split), pre, options.cache_mb) else ", decoded again each epoch (more than --cache-mb %d "
                                                            "MB at the network's size)" % options.cache_mb),
                  file=sys.stderr)
    common = dict(pre=pre, layout=spec.layout, task=spec.task, num_classes=num_classes, batch_size=batch_size,
                  seed=seed, cache_mb=options.cache_mb)
    train_data = pipeline.build(dataset.train, training=True, augment=options.augment,
                                shift_correction=options.shift_correction, **common)
    return train_data, pipeline.build(dataset.val, **common)


def _float32_output(keras, model):
    """Under mixed precision: the model's output cast to float32 (softmax and the loss stay accurate)."""
    if model.outputs[0].dtype == "float32":
        return model
    config = model.get_compile_config()
    wrapped = keras.Model(model.inputs, keras.layers.Activation("linear", dtype="float32")(model.outputs[0]),
                          name=model.name)
    wrapped.compile_from_config(config)
    return wrapped


def _float32_copy(keras, spec, model, num_classes):
    """The trained mixed-precision model's weights in a float32 model (the export and the board run float32)."""
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        plain = spec.build(num_classes)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    plain.set_weights(model.get_weights())
    return plain


def train(spec, dataset, out_dir, epochs, batch_size, seed=0, verbose=None, settings=None, resume=False,
          early_stopping=None, reduce_lr=None, options=None):
    """Train (or, with resume, go on training from out_dir's checkpoint), then write the run directory.
    early_stopping / reduce_lr: patience in epochs of keras's EarlyStopping (best weights restored) and
    ReduceLROnPlateau (learning rate halved), on the validation loss. options: Options. Raises Interrupted
    after a Ctrl-C or SIGTERM, once the last finished epoch is in the checkpoint."""
    import keras
    import tensorflow as tf

    options = options or Options()
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow: weights, shuffling, dropout
    tf.config.experimental.enable_op_determinism()  # and the same kernels' results on every run
    os.makedirs(os.path.join(out_dir, "samples"), exist_ok=True)
    num_classes = max(len(dataset.labels), 2)
    phases = phases_of(spec, epochs)
    settings = dict(settings or {})
    scope = options.strategy.scope() if options.strategy is not None else contextlib.nullcontext()
    if options.mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    with scope:  # variables made here are mirrored over the strategy's replicas
        if resume:
            state = checkpoints.check_resume(out_dir, settings, phases)
            model = checkpoints.load_last(out_dir)
            print("resuming from epoch %d of %d (history, optimizer state%s restored from %s)"
                  % (state["epochs"], phases[-1][2], ", early stopping, learning rate" if state["callbacks"] else "",
                     checkpoints.folder(out_dir)), file=sys.stderr)
        else:
            state = checkpoints.new_state(settings)
            model = spec.build(num_classes)
            if options.mixed_precision:
                model = _float32_output(keras, model)
    summary = _summary_text(model)
    train_data, val_data = _pipelines(spec, dataset, batch_size, seed, num_classes, options)
    if verbose is None:  # Keras's progress bar on a terminal, one line per epoch in a log
        verbose = 1 if sys.stdout.isatty() else 2
    callbacks = []
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping,
                                                       restore_best_weights=True, verbose=1))
    if reduce_lr:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=reduce_lr,
                                                           verbose=1))
    logs = [keras.callbacks.TensorBoard(log_dir=os.path.join(out_dir, "tensorboard"))] if options.tensorboard else []
    started = time.time()
    with StopRequest() as stop:
        for index, (_, first, end) in enumerate(phases):
            if index < state["phase"] or (index == state["phase"] and state["phase_finished"]):
                continue  # finished before this resume
            if index > state["phase"] or state["epochs"] == 0:
                if index == 1:
                    print("fine-tuning the backbone's last %d layers for %d epochs" % (spec.fine_tune, end - first),
                          file=sys.stderr)
                    spec.start_fine_tune(model)
                state.update(phase=index, phase_end=end, phase_finished=False, stopped_early=False)
            every = callbacks + [checkpoints.make_callback(out_dir, state, stop, callbacks)] + logs
            if options.strategy is not None and distribute.custom_loop(options.strategy):
                multiworker.fit(model, options.strategy, spec.task, train_data, val_data,
                                max(first, state["epochs"]), end, every, batch_size, verbose=verbose)
            else:
                model.fit(train_data, validation_data=val_data, initial_epoch=max(first, state["epochs"]),
                          epochs=end, shuffle=False, verbose=verbose, callbacks=every)  # the pipeline shuffles
            if stop.requested:
                raise Interrupted(stop.signum, state["epochs"])
            state.update(phase_finished=True, stopped_early=state["epochs"] < end)
            checkpoints.write_state(out_dir, state)
    hist = state["history"]
    done = state["epochs"]
    phase_list = [{"phase": name, "epochs": min(end, done) - first} for name, first, end in phases if first < done]
    seconds = time.time() - started
    results = evaluate(model, dataset, val_data)
    if options.mixed_precision:
        model = _float32_copy(keras, spec, model, num_classes)
        keras.mixed_precision.set_dtype_policy("float32")  # for whatever this process builds next

    run_dir.save_model(model, os.path.join(out_dir, "model.keras"))
    write_atomic(os.path.join(out_dir, "summary.txt"), summary.encode("utf-8"))
    write_json(os.path.join(out_dir, "history.json"),
               {"epochs": done, "batch_size": batch_size, "seconds": round(seconds, 1), "history": hist,
                "phases": phase_list, "held_out": results})
    from .plots import plot_history

    plot_history(hist, os.path.join(out_dir, "training.png"),
                 "%s on %s (%d train / %d held out)" % (spec.name, dataset.name, len(dataset.y_train),
                                                         len(dataset.y_val)))
    files = []
    for i, image in enumerate(dataset.raw_samples):
        name = "sample_%03d.png" % i
        tf.io.write_file(os.path.join(out_dir, "samples", name), tf.io.encode_png(image))
        files.append(name)
    meta = {
        "name": spec.name, "task": spec.task,
        "labels": dataset.labels if spec.task != "steering" else [],
        "input": {"shape": [None] + list(spec.input_shape), "layout": spec.layout},
        "preprocess": spec.preprocess(),
        "dataset": dataset.name, "held_out": results,
        "samples": {"dir": "samples", "files": files, "targets": dataset.sample_targets},
        "tools": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    if getattr(spec, "backbone", None) is not None:  # transfer learning: where its weights came from
        meta["backbone"] = {"weights": os.path.basename(spec.weights) if spec.weights else "random",
                            "fine_tune_layers": spec.fine_tune}
    if spec.task == "steering":
        meta["steering"] = dataset.steering or road.steering_metadata()
    if options.augment:
        meta["augment"] = list(options.augment)
    run_dir.write_meta(out_dir, meta)
    print("held out: %s" % json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}),
          file=sys.stderr)
    return model, results
