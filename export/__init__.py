"""export: Keras -> ONNX, checked numerically against Keras, packed into a bundle the runtime reads.

Needs TensorFlow, tf2onnx, onnx and onnxruntime (the `train` and `ort` extras).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from train import load_tensorflow  # noqa: E402, F401 (the one TensorFlow loader; train's package is light)
