"""A checkpoint after every finished epoch (RUN_DIR/checkpoints/), resuming from it, and stopping cleanly.

    checkpoints/
        last.keras        the model after the last finished epoch, its optimizer's state included (Keras's format)
        best_weights.npz  with --early-stopping: the best epoch's weights so far (plain arrays, no pickle)
        state.json        epochs finished, the phase and whether it finished, the history so far, early
                          stopping's and the learning-rate schedule's counters, the settings the run
                          was started with

Every file is written under a temporary name, synced and renamed, state.json last: whatever kills the
process (Ctrl-C, SIGTERM, SIGKILL, a power cut), state.json describes files that are whole. A resumed run
continues from the last finished epoch with its history, optimizer, best weights, early stopping and
learning rate as they were (the batches' order after it differs from an unbroken run's: Keras's shuffle
starts again from the seed).

The first Ctrl-C or SIGTERM (runtime/signals.py) stops at the end of the batch in hand (the unfinished epoch is not
saved); a second one stops at once.
"""

from __future__ import annotations

import io
import os

import numpy as np

from runtime.bundle import write_atomic, write_json
from runtime.errors import UserError

from . import run_dir

FOLDER = "checkpoints"
STATE = "state.json"
LAST = "last.keras"
BEST = "best_weights.npz"
RESUMABLE = ("epochs", "phase", "phase_end", "phase_finished", "stopped_early", "history", "callbacks", "settings")
_COUNTERS = {"EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
             "ReduceLROnPlateau": ("wait", "best", "cooldown_counter")}


def folder(out_dir):
    return os.path.join(out_dir, FOLDER)


def read_state(out_dir):
    """The checkpoint's state, or None where the run has none; UserError for one that cannot be read."""
    state = run_dir.read_json(os.path.join(folder(out_dir), STATE), ": start over with --force")
    if state is None:
        return None
    if not isinstance(state, dict) or any(k not in state for k in RESUMABLE) or not os.path.isfile(
            os.path.join(folder(out_dir), LAST)):
        raise UserError("%s is not a complete checkpoint: start over with --force" % folder(out_dir))
    return state


def new_state(settings):
    return {"epochs": 0, "phase": 0, "phase_end": 0, "phase_finished": False, "stopped_early": False,
            "history": {}, "callbacks": {}, "settings": settings}


def check_resume(out_dir, settings, phases):
    """The state to resume from, after checking that it is this run's and that it has epochs left to train.
    phases: the (name, first epoch, end epoch) of each phase of training."""
    state = read_state(out_dir)
    if state is None:
        raise UserError("nothing to resume in %s: it has no %s/%s (train without --resume)" % (out_dir, FOLDER, STATE))
    for key, value in settings.items():
        if state["settings"].get(key) != value:
            given = ["--%s %s" % (key.replace("_", "-"), v) if v is not None else "no --%s" % key.replace("_", "-")
                     for v in (state["settings"].get(key), value)]
            raise UserError("%s was trained with %s, not %s: resume with the same settings, or start over with "
                            "--force" % (out_dir, given[0], given[1]))
    last = len(phases) - 1
    state["phase_end"] = phases[min(state["phase"], last)][2]  # more --epochs than before: a phase goes on
    state["phase_finished"] = state["stopped_early"] or state["epochs"] >= state["phase_end"]
    if state["phase"] >= last and state["phase_finished"]:
        raise UserError("%s has finished its %d epochs%s: give more --epochs to train on, or --force to start "
                        "over" % (out_dir, state["epochs"], " (stopped early)" if state["stopped_early"] else ""))
    return state


def write_state(out_dir, state):
    write_json(os.path.join(folder(out_dir), STATE), state)


def load_last(out_dir):
    import keras

    return keras.models.load_model(os.path.join(folder(out_dir), LAST))


def make_callback(out_dir, state, stop, callbacks):
    """A keras Callback that checkpoints every finished epoch into `state` (a dict, updated in place: epochs,
    phase, history, ...), restores `callbacks`' counters from it when the training begins, and stops the
    training when `stop` (runtime.signals.StopRequest) has been asked."""
    import keras

    class Checkpoint(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            saved = state["callbacks"]
            for cb in callbacks:  # called after theirs, which reset these counters
                name = type(cb).__name__
                if saved.get(name, {}).get("phase") == state["phase"]:
                    for attr in _COUNTERS[name]:
                        setattr(cb, attr, saved[name][attr])
                    if saved[name].get("has_best"):
                        with np.load(os.path.join(folder(out_dir), BEST), allow_pickle=False) as f:
                            cb.best_weights = [f["w%d" % i] for i in range(len(f.files))]

        def on_train_batch_end(self, batch, logs=None):
            if stop.requested:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if stop.requested:  # an unfinished epoch: the checkpoint keeps the last finished one
                return
            for key, value in (logs or {}).items():
                state["history"].setdefault(key, []).append(float(value))
            state["epochs"] = epoch + 1
            state["phase_finished"] = epoch + 1 >= state["phase_end"]
            os.makedirs(folder(out_dir), exist_ok=True)
            run_dir.save_model(self.model, os.path.join(folder(out_dir), LAST))
            saved = {}
            for cb in callbacks:
                name = type(cb).__name__
                saved[name] = dict({a: _plain(getattr(cb, a)) for a in _COUNTERS[name]}, phase=state["phase"])
                if getattr(cb, "best_weights", None) is not None:
                    buffer = io.BytesIO()
                    np.savez(buffer, **{"w%d" % i: w for i, w in enumerate(cb.best_weights)})
                    write_atomic(os.path.join(folder(out_dir), BEST), buffer.getvalue())
                    saved[name]["has_best"] = True
            state["callbacks"] = saved
            write_state(out_dir, state)

    return Checkpoint()


def _plain(value):
    """A counter as JSON holds it (Keras keeps some as numpy scalars; inf stays inf, which json writes)."""
    return float(value) if hasattr(value, "dtype") or isinstance(value, float) else value
