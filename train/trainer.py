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

import json
import os
import sys
import time

import numpy as np

from runtime import road
from runtime.bundle import write_json

from . import run_dir



def _summary_text(model) -> str:
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), line_length=88)
    return "\n".join(lines) + "\n"


def evaluate(model, dataset) -> dict:
    """Held-out results a person can judge: accuracy, or MAE against always predicting the mean."""
    pred = model.predict(dataset.x_val, verbose=0, batch_size=256)
    if dataset.task == "steering":
        mae = float(np.mean(np.abs(pred.reshape(-1) - dataset.y_val)))
        baseline = float(np.mean(np.abs(np.mean(dataset.y_train) - dataset.y_val)))
        return {"val_mae": mae, "constant_mae": baseline, "mae_ratio": mae / baseline if baseline else None}
    if pred.shape[-1] == 1:
        chosen = (pred.reshape(-1) >= 0.5).astype(np.int64)
    else:
        chosen = pred.argmax(axis=-1)
    return {"val_accuracy": float(np.mean(chosen == dataset.y_val))}


def train(spec, dataset, out_dir, epochs, batch_size, seed=0, verbose=None):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # Python, NumPy and TensorFlow: weights, shuffling, dropout
    tf.config.experimental.enable_op_determinism()  # and the same kernels' results on every run
    os.makedirs(os.path.join(out_dir, "samples"), exist_ok=True)
    num_classes = max(len(dataset.labels), 2)
    model = spec.build(num_classes)
    summary = _summary_text(model)
    y_train, y_val = dataset.y_train, dataset.y_val
    if spec.task == "classification":
        y_train = keras.utils.to_categorical(y_train, num_classes)
        y_val = keras.utils.to_categorical(y_val, num_classes)
    if verbose is None:  # Keras's progress bar on a terminal, one line per epoch in a log
        verbose = 1 if sys.stdout.isatty() else 2
    started = time.time()
    history = model.fit(dataset.x_train, y_train, validation_data=(dataset.x_val, y_val), epochs=epochs,
                        batch_size=batch_size, shuffle=True, verbose=verbose)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    phases = [{"phase": "head" if spec.weights is not None else "all layers", "epochs": epochs}]
    if spec.fine_tune:  # a pretrained backbone (train/backbones.py): now its last layers too, at a lower rate
        more = spec.fine_tune_epochs or epochs
        print("fine-tuning the backbone's last %d layers for %d epochs" % (spec.fine_tune, more), file=sys.stderr)
        spec.start_fine_tune(model)
        history = model.fit(dataset.x_train, y_train, validation_data=(dataset.x_val, y_val),
                            initial_epoch=epochs, epochs=epochs + more, batch_size=batch_size, shuffle=True,
                            verbose=verbose)
        for k, vals in history.history.items():
            hist.setdefault(k, []).extend(float(v) for v in vals)
        phases.append({"phase": "fine-tune last %d layers" % spec.fine_tune, "epochs": more})
        epochs += more
    seconds = time.time() - started
    results = evaluate(model, dataset)

    model.save(os.path.join(out_dir, "model.keras"))
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(summary)
    write_json(os.path.join(out_dir, "history.json"),
               {"epochs": epochs, "batch_size": batch_size, "seconds": round(seconds, 1), "history": hist,
                "phases": phases, "held_out": results})
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
        meta["steering"] = road.steering_metadata()
    run_dir.write_meta(out_dir, meta)
    print("held out: %s" % json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}),
          file=sys.stderr)
    return model, results
