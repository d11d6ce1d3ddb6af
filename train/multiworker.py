"""The training loop for --strategy multiworker, where Keras's own model.fit cannot run (Keras 3.15 on
TensorFlow 2.21: "Attempt to convert a value (PerReplica ...)", keras-team/keras#20585).

It is the loop tf.distribute documents for custom training: each step runs the forward and backward pass on
every replica with `strategy.run`, the loss averaged over the global batch (`tf.nn.compute_average_loss`), the
gradients all-reduced by the optimizer, and the sums of loss and metric reduced over the workers. Around it,
the Keras callbacks (checkpoints, early stopping, the learning-rate schedule, TensorBoard) are called as
model.fit calls them, with the same logs on every worker, so every worker makes the same decisions; the output
is Keras's, one line an epoch. Metrics are the zoo's: accuracy for classifiers, MAE for steering.
"""

from __future__ import annotations

import sys
import time


def _step_functions(tf, keras, model, strategy, task, global_batch):
    loss_fn = keras.losses.get(model.loss)

    def sums(x, y, training):
        pred = model(x, training=training)
        pred = tf.cast(pred, tf.float32)
        y = tf.reshape(tf.cast(y, tf.float32), tf.shape(pred))
        per_example = loss_fn(y, pred)
        if task == "classification":
            hit = tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(y, -1)), tf.float32)
        elif task == "binary":
            hit = tf.cast(tf.equal(tf.cast(pred[:, 0] >= 0.5, tf.float32), y[:, 0]), tf.float32)
        else:
            hit = tf.reduce_mean(tf.abs(y - pred), axis=-1)
        return per_example, tf.reduce_sum(hit), tf.cast(tf.shape(pred)[0], tf.float32)

    def train_replica(x, y):
        with tf.GradientTape() as tape:
            per_example, metric, count = sums(x, y, True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.reduce_sum(per_example), metric, count

    def eval_replica(x, y):
        per_example, metric, count = sums(x, y, False)
        return tf.reduce_sum(per_example), metric, count

    def reduced(fn):
        @tf.function
        def step(x, y):
            out = strategy.run(fn, args=(x, y))
            return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in out]

        return step

    return reduced(train_replica), reduced(eval_replica)


def fit(model, strategy, task, train_data, val_data, initial_epoch, epochs, callbacks, global_batch, verbose=2,
        log=sys.stdout):
    """Train model (built and compiled in strategy.scope()) from initial_epoch to epochs; returns the logs."""
    import keras
    import tensorflow as tf

    metric = "mae" if task == "steering" else "accuracy"
    train_step, eval_step = _step_functions(tf, keras, model, strategy, task, global_batch)
    shard = tf.data.Options()  # each worker reads the data and keeps its share (in-memory data has no files)
    shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_data, val_data = train_data.with_options(shard), val_data.with_options(shard)
    dist_train = strategy.experimental_distribute_dataset(train_data)
    dist_val = strategy.experimental_distribute_dataset(val_data)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, add_history=False, add_progbar=False,
                                                 epochs=epochs, verbose=0)
    model.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        started = time.time()
        totals = [0.0, 0.0, 0.0]
        for batch, (x, y) in enumerate(dist_train):
            callback_list.on_train_batch_begin(batch)
            totals = [t + float(v) for t, v in zip(totals, train_step(x, y))]
            callback_list.on_train_batch_end(batch, {"loss": totals[0] / max(totals[2], 1.0)})
            if model.stop_training:
                break
        val = [0.0, 0.0, 0.0]
        for x, y in dist_val:
            val = [t + float(v) for t, v in zip(val, eval_step(x, y))]
        logs = {"loss": totals[0] / totals[2], metric: totals[1] / totals[2],
                "val_loss": val[0] / max(val[2], 1.0), "val_" + metric: val[1] / max(val[2], 1.0)}
        if verbose:
            print("Epoch %d/%d - %ds - %s" % (epoch + 1, epochs, time.time() - started, " - ".join(
                "%s: %.4f" % kv for kv in logs.items())), file=log, flush=True)
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return logs
