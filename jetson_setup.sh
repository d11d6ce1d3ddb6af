#!/usr/bin/env bash
# jetson_setup.sh: turn a fresh Jetson into a ready runtime.
#
# Not written yet: it is its own issue (detect the L4T/JetPack release, apt-install TensorRT's Python
# bindings and GStreamer, build pycuda, make a --system-site-packages venv with numpy below 2, run
# `python -m runtime doctor`). Until then, on a Jetson:
#
#   python3 -m venv --system-site-packages .venv
#   .venv/bin/pip install -e ".[ort]" "numpy<2"     # the system's OpenCV (with GStreamer) stays visible
#   .venv/bin/python -m runtime run BUNDLE --source synthetic://road --no-display --max-frames 300
set -euo pipefail
echo "jetson_setup.sh is not implemented yet; see the comments at the top of $0 for the manual steps." >&2
exit 1
