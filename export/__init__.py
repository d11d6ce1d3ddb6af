"""export: Keras -> ONNX, checked numerically against Keras, packed into a bundle the runtime reads.

Needs TensorFlow, tf2onnx, onnx and onnxruntime (the `train` and `ort` extras).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load_tensorflow():
    """Import TensorFlow once, without the C++ start-up lines it writes to stderr whatever it is told."""
    from runtime.cli import import_quietly

    return import_quietly("tensorflow", lambda tf: tf.config.list_physical_devices())
