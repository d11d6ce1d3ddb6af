"""Train a zoo model on a dataset; train/run_dir.py writes what it made into the run directory that export reads:

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
import functools
import os
import sys
import time

import numpy as np

from runtime.signals import StopRequest

from . import checkpoints, distribute, multiworker, pipeline, run_dir


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
    if spec.task == "segmentation":  # frames and masks, preprocessed as the runtime does (train/freespace.py)
        from . import freespace

        return (freespace.batches(dataset.train, spec, batch_size, seed, True, freespace.ignored_of(dataset, 0)),
                freespace.batches(dataset.val, spec, batch_size, seed, ignored=freespace.ignored_of(dataset, 1)))
    if spec.task == "detection":  # frames and boxes: augmented with the boxes, encoded as the detector's targets
        from . import detection_pipeline as detection

        return (detection.batches(detection.Frames(dataset.train), spec, num_classes, batch_size, seed, True),
                detection.batches(detection.Frames(dataset.val), spec, num_classes, batch_size, seed))
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


class Trained:
    """What train() made, for run_dir.write: the model (float32), its Keras summary, Keras's per-epoch history
    (both phases), the epochs done and each phase's share of them, the seconds the phases took, the held-out
    results (evaluate()), and the batch size and augmentation it trained with."""

    def __init__(self, model, summary, history, epochs, phases, seconds, held_out, batch_size, augment):
        self.model, self.summary, self.history, self.epochs, self.phases = model, summary, history, epochs, phases
        self.seconds, self.held_out, self.batch_size, self.augment = seconds, held_out, batch_size, augment


def _make_deterministic(keras, tf, seed):
    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow: weights, shuffling, dropout
    tf.config.experimental.enable_op_determinism()  # and the same kernels' results on every run


def _model_and_state(keras, spec, out_dir, settings, phases, num_classes, resume, options):
    """The model to train and the checkpoint state: out_dir's last checkpoint with resume, else a new model
    (its output float32 under mixed precision). Variables are made in the strategy's scope."""
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
    return model, state


def _callbacks(keras, out_dir, early_stopping, reduce_lr, options):
    """(the callbacks the checkpoint saves and restores: early stopping, learning rate; TensorBoard's logs)."""
    callbacks = []
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping,
                                                       restore_best_weights=True, verbose=1))
    if reduce_lr:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=reduce_lr,
                                                           verbose=1))
    logs = [keras.callbacks.TensorBoard(log_dir=os.path.join(out_dir, "tensorboard"))] if options.tensorboard else []
    return callbacks, logs


def _fit(model, spec, data, initial_epoch, end, callbacks, batch_size, verbose, strategy):
    """Epochs initial_epoch to end: Keras's fit, or train/multiworker.py's loop where the strategy needs it."""
    train_data, val_data = data
    if strategy is not None and distribute.custom_loop(strategy):
        multiworker.fit(model, strategy, spec.task, train_data, val_data, initial_epoch, end, callbacks, batch_size,
                        verbose=verbose)
    else:
        model.fit(train_data, validation_data=val_data, initial_epoch=initial_epoch, epochs=end, shuffle=False,
                  verbose=verbose, callbacks=callbacks)  # the pipeline shuffles


def _start_phase(spec, model, state, index, first, end):
    """A phase begins: the second one unfreezes the backbone's last layers; the state says which phase runs."""
    if index == 1:
        print("fine-tuning the backbone's last %d layers for %d epochs" % (spec.fine_tune, end - first),
              file=sys.stderr)
        spec.start_fine_tune(model)
    state.update(phase=index, phase_end=end, phase_finished=False, stopped_early=False)


def _run_phases(spec, model, state, phases, out_dir, callbacks, logs, fit, metrics=()):
    """Each phase that a resume has not finished, from its first epoch not done; the checkpoint's state written
    after each. fit(initial_epoch, end, callbacks) trains. metrics: callbacks that add to an epoch's logs before
    the checkpoint records them. Interrupted on Ctrl-C or SIGTERM."""
    with StopRequest() as stop:
        for index, (_, first, end) in enumerate(phases):
            if index < state["phase"] or (index == state["phase"] and state["phase_finished"]):
                continue  # finished before this resume
            if index > state["phase"] or state["epochs"] == 0:
                _start_phase(spec, model, state, index, first, end)
            every = list(metrics) + callbacks + [checkpoints.make_callback(out_dir, state, stop, callbacks)] + logs
            fit(max(first, state["epochs"]), end, every)
            if stop.requested:
                raise Interrupted(stop.signum, state["epochs"])
            state.update(phase_finished=True, stopped_early=state["epochs"] < end)
            checkpoints.write_state(out_dir, state)


def train(spec, dataset, out_dir, epochs, batch_size, seed=0, verbose=None, settings=None, resume=False,
          early_stopping=None, reduce_lr=None, options=None) -> Trained:
    """Train (or, with resume, go on training from out_dir's checkpoint); returns what it made, which
    run_dir.write(out_dir, spec, dataset, trained) writes. out_dir holds the checkpoint (and TensorBoard's logs)
    meanwhile. early_stopping / reduce_lr: patience in epochs of keras's EarlyStopping (best weights restored) and
    ReduceLROnPlateau (learning rate halved), on the validation loss. options: Options. Raises Interrupted
    after a Ctrl-C or SIGTERM, once the last finished epoch is in the checkpoint."""
    import keras
    import tensorflow as tf

    options = options or Options()
    _make_deterministic(keras, tf, seed)
    run_dir.prepare(out_dir)
    num_classes = len(dataset.labels) if spec.task in ("detection", "segmentation") else max(len(dataset.labels), 2)
    phases = phases_of(spec, epochs)
    model, state = _model_and_state(keras, spec, out_dir, dict(settings or {}), phases, num_classes, resume, options)
    summary = _summary_text(model)
    data = _pipelines(spec, dataset, batch_size, seed, num_classes, options)
    if verbose is None:  # Keras's progress bar on a terminal, one line per epoch in a log
        verbose = 1 if sys.stdout.isatty() else 2
    callbacks, logs = _callbacks(keras, out_dir, early_stopping, reduce_lr, options)
    metrics = []
    if spec.task == "segmentation":  # the held-out mIoU and each class's IoU, every epoch
        from . import freespace

        metrics.append(freespace.iou_callback(keras, dataset, spec))
    started = time.time()
    _run_phases(spec, model, state, phases, out_dir, callbacks, logs,
                functools.partial(_fit, model, spec, data, batch_size=batch_size, verbose=verbose,
                                  strategy=options.strategy), metrics)
    done = state["epochs"]
    phase_list = [{"phase": name, "epochs": min(end, done) - first} for name, first, end in phases if first < done]
    seconds = time.time() - started
    if spec.task == "detection":
        from . import detection_pipeline

        results = detection_pipeline.held_out(model, dataset, spec, num_classes)
    elif spec.task == "segmentation":
        from . import freespace

        results = freespace.held_out(model, dataset, spec)
    else:
        results = evaluate(model, dataset, data[1])
    if options.mixed_precision:
        model = _float32_copy(keras, spec, model, num_classes)
        keras.mixed_precision.set_dtype_policy("float32")  # for whatever this process builds next
    return Trained(model, summary, state["history"], done, phase_list, seconds, results, batch_size,
                   list(options.augment))
