"""train: the lecture's Keras networks and PilotNet, trained on real or embedded data, with plots.

Writes a run directory that `python -m export onnx` reads. Needs TensorFlow (the `train` extra).
"""

import os

from runtime.errors import import_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ chatter, errors included (they surface in Python)


def load_tensorflow():
    """Import TensorFlow once, without the C++ start-up lines it writes to stderr whatever it is told."""
    return import_quietly("tensorflow", lambda tf: tf.config.list_physical_devices())
