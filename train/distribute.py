"""--strategy: training on several devices or machines through TensorFlow's own tf.distribute.

    default      one device (TensorFlow's default strategy: the first GPU, else the CPU)
    mirrored     MirroredStrategy: a replica of the model on each GPU of this machine, gradients all-reduced
                 after every batch. Without a GPU it refuses, unless --cpu-replicas N splits the CPU into N
                 logical devices (to try it, and for the tests: no faster than one device)
    multiworker  MultiWorkerMirroredStrategy across machines, each told the cluster by TF_CONFIG, trained by
                 train/multiworker.py's loop (Keras 3.15's model.fit fails under it, keras-team/keras#20585)

--batch-size is the global batch: each of N replicas computes batch/N examples a step, so one epoch takes the
same number of steps whatever N. The learning rate is not scaled; with N times the batch, N times the rate
(warmed up) is the usual start (Goyal et al., 2017).

`configure` must run before TensorFlow places its first op (it may split the CPU into logical devices).
"""

from __future__ import annotations

import json
import os
import sys

from runtime.errors import UserError

STRATEGIES = ("default", "mirrored", "multiworker")


def check(name, cpu_replicas=None):
    """What can be refused before TensorFlow is imported: --cpu-replicas without mirrored, a bad TF_CONFIG.
    Returns (workers, this worker's index) for multiworker."""
    if cpu_replicas and name != "mirrored":
        raise UserError("--cpu-replicas is for --strategy mirrored")
    if name != "multiworker":
        return None
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise UserError("--strategy multiworker needs TF_CONFIG: the cluster's workers and this one's index, as in "
                        "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": "
                        "{\"type\": \"worker\", \"index\": 0}}'")
    try:
        parsed = json.loads(config)
        workers = parsed["cluster"]["worker"]
        index = parsed["task"]["index"]
        if parsed["task"]["type"] != "worker" or not 0 <= index < len(workers):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserError("TF_CONFIG is not a cluster with workers and this worker's index (%s)" % config[:80]) \
            from None
    return workers, index


def configure(name, cpu_replicas=None, log=sys.stderr):
    """The tf.distribute strategy for --strategy name, or None for the default; UserError where it cannot be."""
    import tensorflow as tf

    cluster = check(name, cpu_replicas)
    if name == "default":
        return None
    if name == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        print("strategy: multiworker, worker %d of %d, %d replicas in all (a custom training loop: "
              "train/multiworker.py)" % (cluster[1], len(cluster[0]), strategy.num_replicas_in_sync), file=log)
        return strategy
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if cpu_replicas:
            raise UserError("--cpu-replicas is for a machine without a GPU; this one has %d" % len(gpus))
        strategy = tf.distribute.MirroredStrategy()
    elif not cpu_replicas:
        raise UserError("--strategy mirrored needs GPUs, and this machine has none: give --cpu-replicas N to split "
                        "the CPU into N devices (to try it; no faster than --strategy default)")
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
        except RuntimeError:  # TensorFlow has placed an op already: a programming error, not the user's
            raise RuntimeError("distribute.configure must run before TensorFlow's first op") from None
        devices = ["/cpu:%d" % i for i in range(cpu_replicas)]
        strategy = tf.distribute.MirroredStrategy(devices=devices,
                                                  cross_device_ops=tf.distribute.ReductionToOneDevice())
    print("strategy: mirrored, %d replica%s (%s)" % (strategy.num_replicas_in_sync,
                                                    "" if strategy.num_replicas_in_sync == 1 else "s",
                                                    ", ".join(d.split("device:")[-1] for d in
                                                              strategy.extended.worker_devices)), file=log)
    return strategy


def custom_loop(strategy):
    """Whether training under strategy needs train/multiworker.py's loop instead of model.fit."""
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
