"""Checkpoints and resuming (train/checkpoints.py): a real training process stopped by SIGTERM and killed by
SIGKILL, resumed each time, ends with every epoch's history; a run directory is never overwritten by accident."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, cli, one_line_error

TRAIN = ["--model", "mnist_cnn", "--data", "digits", "--limit", "600", "--batch-size", "64"]


def _state(run):
    path = run / "checkpoints" / "state.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def _start(run, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "train", *TRAIN, "--out", str(run), *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stop_after_an_epoch(proc, run, sig, beyond=0):
    """Send sig once the checkpoint holds more than `beyond` epochs (however long that takes)."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        state = _state(run)
        if state and state["epochs"] > beyond:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(sig)
    return proc.communicate(timeout=300)


def test_a_killed_run_resumes_from_its_last_finished_epoch_with_its_history(tmp_path):
    run = tmp_path / "run"
    proc = _start(run, "--epochs", "6")
    _, err = _stop_after_an_epoch(proc, run, signal.SIGTERM)
    first = _state(run)
    assert proc.returncode == 143, err[-2000:]
    assert ("stopped by SIGTERM; the last finished epoch (%d) is in %s: go on with the same command and --resume"
            % (first["epochs"], run / "checkpoints")) in err
    assert 1 <= first["epochs"] < 6 and len(first["history"]["loss"]) == first["epochs"]
    assert not (run / "model.keras").exists()  # the final model only when training has finished

    proc = _start(run, "--epochs", "6", "--resume")
    _, err = _stop_after_an_epoch(proc, run, signal.SIGKILL, beyond=first["epochs"])  # no chance to clean up
    second = _state(run)
    assert proc.returncode == -signal.SIGKILL
    assert "resuming from epoch %d of 6" % first["epochs"] in err
    assert second["history"]["loss"][:first["epochs"]] == first["history"]["loss"]  # kept, not recomputed
    assert not [p for p in os.listdir(run / "checkpoints") if p.startswith(".tmp")]  # whole files only

    import keras

    steps = -(-600 // 64)  # batches per epoch: --limit 600 training examples, 64 a batch
    model = keras.models.load_model(run / "checkpoints" / "last.keras")
    assert int(model.optimizer.iterations.numpy()) == second["epochs"] * steps  # the optimizer's state went on

    proc = cli("train", *TRAIN, "--epochs", "6", "--resume", "--out", run)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming from epoch %d of 6" % second["epochs"] in proc.stderr
    history = json.loads((run / "history.json").read_text())
    assert history["epochs"] == 6 and len(history["history"]["loss"]) == 6
    assert history["history"]["loss"][:second["epochs"]] == second["history"]["loss"]
    assert (run / "model.keras").is_file() and (run / "meta.json").is_file()

    proc = cli("train", *TRAIN, "--epochs", "6", "--resume", "--out", run)
    assert one_line_error(proc) and "has finished its 6 epochs: give more --epochs" in proc.stderr
    proc = cli("train", *TRAIN, "--epochs", "6", "--out", run)
    assert one_line_error(proc), proc.stderr
    assert "holds a training run already (6 epochs in its checkpoint): give --resume" in proc.stderr
    proc = cli("train", *TRAIN, "--epochs", "7", "--batch-size", "32", "--resume", "--out", run)
    assert one_line_error(proc) and "was trained with --batch-size 64, not --batch-size 32" in proc.stderr


def test_early_stopping_and_the_learning_rate_schedule_are_checkpointed(tmp_path):
    import numpy as np

    run = tmp_path / "run"
    args = ["--early-stopping", "3", "--reduce-lr", "1", "--out", run]
    proc = cli("train", *TRAIN, "--epochs", "2", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = _state(run)
    assert set(state["callbacks"]) == {"EarlyStopping", "ReduceLROnPlateau"}
    assert state["callbacks"]["EarlyStopping"]["best"] == min(state["history"]["val_loss"])
    with np.load(run / "checkpoints" / "best_weights.npz", allow_pickle=False) as best:
        assert len(best.files) > 0
    proc = cli("train", *TRAIN, "--epochs", "3", *args, "--resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resuming from epoch 2 of 3 (history, optimizer state, early stopping, learning rate" in proc.stderr
    assert len(_state(run)["history"]["loss"]) == 3

    proc = cli("train", *TRAIN, "--epochs", "1", "--force", "--out", run)  # starts over: a new checkpoint
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _state(run)["epochs"] == 1 and _state(run)["callbacks"] == {}


def test_resume_without_a_checkpoint_and_resume_with_force_are_one_line(tmp_path):
    proc = cli("train", *TRAIN, "--resume", "--out", tmp_path / "none")
    assert one_line_error(proc) and "nothing to resume in" in proc.stderr
    proc = cli("train", *TRAIN, "--resume", "--force", "--out", tmp_path / "none")
    assert one_line_error(proc) and "not allowed with argument" in proc.stderr
    (tmp_path / "broken" / "checkpoints").mkdir(parents=True)
    (tmp_path / "broken" / "checkpoints" / "state.json").write_text("{not json")
    proc = cli("train", *TRAIN, "--resume", "--out", tmp_path / "broken")
    assert one_line_error(proc) and "is not valid JSON" in proc.stderr and "--force" in proc.stderr
