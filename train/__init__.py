"""train: the lecture's Keras networks and PilotNet, trained on real or embedded data, with plots.

Writes a run directory that `python -m export onnx` reads. Needs TensorFlow (the `train` extra).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
